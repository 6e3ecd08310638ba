"""What a capture hands back: every activation tensor of one artifact, run on every sample.

Both capture backends (:mod:`~edgekit.diagnose.tflite`, :mod:`~edgekit.diagnose.onnx`) list
the tensors in execution order: the graph input first, then each output of each op that reads
an activation (constants, weights and their dequantized copies are left out). Values are as the
runtime stored them (integers for quantized tensors), one row per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Integer types that hold quantized activations (int32/int64 are accumulators and biases).
ACTIVATION_INTS = ("int8", "uint8", "int16")


@dataclass
class Tensor:
    """One activation tensor of the artifact."""

    name: str
    op: str  # the op that produced it ("" for the graph input)
    inputs: list[str]  # the activation tensors that op read
    values: np.ndarray  # [samples, *shape of one sample] as stored
    node: str = ""  # the producing node's name, where the format has one (ONNX)
    # Static quantization of an integer tensor: q = round(x / scale) + zero_point.
    scale: float | None = None
    zero_point: int | None = None
    is_input: bool = False
    is_output: bool = False

    @property
    def dtype(self) -> str:
        return self.values.dtype.name

    @property
    def quantized(self) -> bool:
        """An integer activation with a static scale (fixed when the model was quantized)."""
        return self.dtype in ACTIVATION_INTS and self.scale is not None

    def real(self) -> np.ndarray:
        """The real values, ``[samples, features]`` in float64."""
        flat = self.values.reshape(len(self.values), -1)
        if not self.quantized:
            return flat.astype(np.float64)
        return (flat.astype(np.float64) - float(self.zero_point or 0)) * float(self.scale or 0.0)

    def limits(self) -> tuple[int, int]:
        """The smallest and largest integer this tensor's type holds."""
        info = np.iinfo(np.dtype(self.dtype))
        return int(info.min), int(info.max)


@dataclass
class Capture:
    """Every activation tensor of one artifact, in execution order."""

    tensors: list[Tensor] = field(default_factory=list)
    constants: dict[str, str] = field(default_factory=dict)  # weights and biases: name -> dtype

    def by_name(self) -> dict[str, Tensor]:
        return {t.name: t for t in self.tensors}

    @property
    def static(self) -> bool:
        """Whether activations are quantized with fixed scales (int8, int16x8, QDQ)."""
        return any(t.quantized and not t.is_input for t in self.tensors)


def stack(rows: list[np.ndarray]) -> np.ndarray:
    """Per-sample results (each with a batch dimension of one) as one array.

    A tensor without a batch dimension (a scalar, a shape) stacks to something no layer's
    output matches, which is what it should: it is no layer's output.
    """
    arrays = [np.reshape(r, (1,)) if np.ndim(r) == 0 else np.asarray(r) for r in rows]
    if len({a.shape[1:] for a in arrays}) > 1:  # a shape that changed from run to run
        return np.empty((0,), arrays[0].dtype)
    return np.concatenate(arrays, axis=0)
