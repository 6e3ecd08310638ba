"""The runner interface shared by every backend, and int8/uint8/int16 (de)quantization.

A runner is a context manager. ``infer(x)`` takes real-valued features of any batch size and
returns real-valued outputs: a runner quantizes inputs and dequantizes outputs itself from the
model's own quantization parameters. For timing, ``prepare(x)`` does all of that work up front
and ``call(feed)`` is only the runtime call, so the clock measures the runtime and not numpy.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError


class RuntimeUnavailable(EdgekitError):
    """The runtime or device is not available here (bench reports the row as ``skipped``)."""


@dataclass
class TensorInfo:
    """One model input or output, as the manifest describes it."""

    name: str
    shape: list[int]  # -1 for the batch dimension
    dtype: str  # numpy dtype name: float32, int8, uint8, int16
    # {"scale": s, "zero_point": z}, or per feature {"scale": [...], "zero_point": [...],
    # "axis": -1} over the flattened features of one sample (an integer model's input).
    quantization: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Real values -> this tensor's dtype: ``q = clip(round(x / scale + zero_point))``,
        per tensor or per feature (identity for float tensors)."""
        dtype = np.dtype(self.dtype)
        if self.quantization is None or dtype.kind == "f":
            return np.ascontiguousarray(x, dtype=dtype)
        info = np.iinfo(dtype)
        scale, zero_point = feature_params(self.quantization)
        x = np.asarray(x, np.float32)
        flat = x.reshape(len(x), -1) if x.ndim > 1 else x
        q = np.round(flat / scale + zero_point)
        q = np.clip(q, info.min, info.max).astype(dtype).reshape(x.shape)
        return np.ascontiguousarray(q)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """This tensor's values -> real float32 values."""
        if self.quantization is None or np.dtype(self.dtype).kind == "f":
            return np.asarray(q, dtype=np.float32)
        scale, zp = self.quantization["scale"], self.quantization["zero_point"]
        return ((q.astype(np.float32) - zp) * scale).astype(np.float32)


def _manifest_input_quantization(path: Path, tensor: TensorInfo) -> dict[str, Any] | None:
    """What the ``manifest.json`` beside ``path`` says of an integer input's quantization,
    when it lists this very file (an integer model with per-feature input parameters is
    only run right with them)."""
    if tensor.quantization is None or np.dtype(tensor.dtype).kind == "f":
        return None
    from edgekit.formats.manifest import beside, input_quantization

    entry = beside(path)
    return input_quantization(entry) if entry else None


def feature_params(quantization: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, zero_point)`` as float32 arrays: one value, or one per feature."""
    scale = np.asarray(quantization["scale"], np.float32)
    zero_point = np.asarray(quantization["zero_point"], np.float32)
    if scale.shape != zero_point.shape or scale.ndim > 1 or not np.all(scale > 0):
        raise EdgekitError(
            "invalid input quantization: scale and zero_point must be one positive scale and "
            "a zero point, or one of each per feature"
        )
    return scale, zero_point


def override_quantization(
    path: Path, tensor: TensorInfo, quantization: dict[str, Any], *, named: bool = False
) -> None:
    """Quantize ``tensor`` (an integer input of the artifact at ``path``) with the manifest's
    (per-feature) parameters instead of its own; refused for a float input or a feature
    count that is not the tensor's. ``named``: messages name the input (several inputs)."""
    which = f"float input {tensor.name}" if named else "a float input"
    if tensor.quantization is None or np.dtype(tensor.dtype).kind == "f":
        raise EdgekitError(f"{path.name}: the manifest gives input quantization for {which}")
    scale, _ = feature_params(quantization)
    features = int(np.prod([d for d in tensor.shape[1:] if d > 0]))
    if scale.ndim == 1 and len(scale) != features:
        what = f"quantization of input {tensor.name}" if named else "input quantization"
        taker = "it takes" if named else "the model takes"
        raise EdgekitError(
            f"{path.name}: the manifest's {what} has {len(scale)} features, {taker} {features}"
        )
    tensor.quantization = dict(quantization)


class Runner(ABC):
    """Load an artifact, then run it: ``with Runner(path) as r: y = r.infer(x)``."""

    runtime: str = ""

    def __init__(
        self,
        path: str | Path,
        *,
        threads: int = 1,
        device: str = "cpu",
        input_quantization: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.threads = int(threads)
        self.device = device
        # The manifest's quantization of the input, when it differs from the file's own: an
        # integer model whose normalization was folded into per-feature parameters.
        self.input_quantization = input_quantization
        self.inputs: list[TensorInfo] = []
        self.outputs: list[TensorInfo] = []
        # What the runtime measured of the model's own size (compiled code and constants),
        # when the file's size is not it; None means the file's size is the model's size.
        self.size_bytes: int | None = None
        # A model traced with a fixed batch size (``--mcu``, ``Input(..., batch_size=1)``)
        # takes exactly that many samples per call; ``infer`` feeds it in chunks.
        self.fixed_batch: int | None = None

    def __enter__(self) -> Runner:
        if not self.path.is_file():
            raise EdgekitError(f"{self.path}: no such file")
        self.load()
        if self.input_quantization is None and self.inputs:
            self.input_quantization = _manifest_input_quantization(self.path, self.inputs[0])
        if self.input_quantization is not None and self.inputs:
            override_quantization(self.path, self.inputs[0], self.input_quantization)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @abstractmethod
    def load(self) -> None:
        """Load the model and fill ``inputs``/``outputs``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the runtime."""

    @property
    def input(self) -> TensorInfo:
        return self.inputs[0]

    @property
    def output(self) -> TensorInfo:
        return self.outputs[0]

    def check_features(self, x: np.ndarray) -> np.ndarray:
        """Check ``x`` against the model's input shape (batch first) and make it float32."""
        x = np.asarray(x)
        want = self.input.shape[1:]
        if x.ndim != len(want) + 1 or any(
            w not in (-1, d) for w, d in zip(want, x.shape[1:], strict=False)
        ):
            raise EdgekitError(
                f"{self.path.name}: input has shape {list(x.shape)}, the model takes "
                f"[batch, {', '.join(map(str, want))}]"
            )
        return x.astype(np.float32, copy=False)

    def prepare(self, x: np.ndarray) -> Any:
        """Everything before the runtime call: checks, quantization, resizing."""
        return self.input.quantize(self.check_features(x))

    @abstractmethod
    def call(self, feed: Any) -> np.ndarray:
        """The runtime call alone, on a prepared feed; returns the raw output."""

    def bind(self, feed: Any) -> Callable[[], Any]:
        """``call(feed)`` as a zero-argument function, for timing loops.

        Runners return a closure over their bound runtime methods, so a timing loop pays no
        attribute lookups or extra frames beyond what a bare loop calling the runtime pays.
        """
        return functools.partial(self.call, feed)

    def finish(self, raw: np.ndarray) -> np.ndarray:
        return self.output.dequantize(raw)

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Real features in, real outputs out, for any batch size."""
        n = self.fixed_batch
        if n is None or len(x) == n:
            return self.finish(self.call(self.prepare(x)))
        parts = []
        for i in range(0, len(x), n):  # a fixed batch: chunks of n, the last one padded
            chunk = np.asarray(x[i : i + n])
            k = len(chunk)
            if k < n:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], n - k, axis=0)])
            parts.append(self.finish(self.call(self.prepare(chunk)))[:k])
        return np.concatenate(parts) if parts else np.empty((0, *self.output.shape[1:]), np.float32)

    def check_batch(self, batch: int) -> None:
        """Refuse a batch size a fixed-batch model cannot take in one call."""
        if self.fixed_batch is not None and batch != self.fixed_batch:
            raise EdgekitError(
                f"{self.path.name} has a fixed batch of {self.fixed_batch} (exported with "
                f"--mcu or a fixed batch_size); measure it at --batch {self.fixed_batch}"
            )

    def infer_batched(self, x: np.ndarray, *, batch: int = 256) -> np.ndarray:
        """``infer`` over a large array in chunks of ``batch`` rows."""
        parts = [self.infer(x[i : i + batch]) for i in range(0, len(x), batch)]
        return np.concatenate(parts) if parts else np.empty((0, *self.output.shape[1:]), np.float32)
