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
    quantization: dict[str, float] | None = None  # {"scale": s, "zero_point": z}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Real values -> this tensor's dtype (identity for float tensors)."""
        dtype = np.dtype(self.dtype)
        if self.quantization is None or dtype.kind == "f":
            return np.ascontiguousarray(x, dtype=dtype)
        info = np.iinfo(dtype)
        q = np.round(x / self.quantization["scale"]) + self.quantization["zero_point"]
        return np.ascontiguousarray(np.clip(q, info.min, info.max).astype(dtype))

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """This tensor's values -> real float32 values."""
        if self.quantization is None or np.dtype(self.dtype).kind == "f":
            return np.asarray(q, dtype=np.float32)
        scale, zp = self.quantization["scale"], self.quantization["zero_point"]
        return ((q.astype(np.float32) - zp) * scale).astype(np.float32)


class Runner(ABC):
    """Load an artifact, then run it: ``with Runner(path) as r: y = r.infer(x)``."""

    runtime: str = ""

    def __init__(self, path: str | Path, *, threads: int = 1, device: str = "cpu") -> None:
        self.path = Path(path)
        self.threads = int(threads)
        self.device = device
        self.inputs: list[TensorInfo] = []
        self.outputs: list[TensorInfo] = []
        # What the runtime measured of the model's own size (compiled code and constants),
        # when the file's size is not it; None means the file's size is the model's size.
        self.size_bytes: int | None = None

    def __enter__(self) -> Runner:
        if not self.path.is_file():
            raise EdgekitError(f"{self.path}: no such file")
        self.load()
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
        return self.finish(self.call(self.prepare(x)))

    def infer_batched(self, x: np.ndarray, *, batch: int = 256) -> np.ndarray:
        """``infer`` over a large array in chunks of ``batch`` rows."""
        parts = [self.infer(x[i : i + batch]) for i in range(0, len(x), batch)]
        return np.concatenate(parts) if parts else np.empty((0, *self.output.shape[1:]), np.float32)
