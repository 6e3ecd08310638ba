"""TensorFlow Lite's fixed-point maths, in Python, for the constants of the int8 C code.

Each function mirrors the TFLite routine it names, float32 where TFLite computes in float,
so the multipliers, shifts, clamps and tables are the ones TFLite's own kernels use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from edgekit.errors import EdgekitError

ADD_LEFT_SHIFT = 20  # TFLite's 8-bit ADD/SUB widen both inputs by 2**20 (as ek_addsub does)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``real = m * 2**(shift - 31)``, ``m`` in [2**30, 2**31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    x = abs(q) * (1 << 31)
    whole = math.floor(x)
    q_fixed = whole + (1 if x - whole >= 0.5 else 0)  # std::round: ties away from zero
    q_fixed = q_fixed if q >= 0 else -q_fixed
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def round_away(v: float) -> int:
    """``std::round``: halves away from zero."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


# fused activation -> (lo, hi), given q(real) -> the quantized value
_ACTIVATION_RANGES: dict[str, Callable[[Callable[[float], int]], tuple[int, int]]] = {
    "NONE": lambda q: (-128, 127),
    "RELU": lambda q: (max(-128, q(0.0)), 127),
    "RELU6": lambda q: (max(-128, q(0.0)), min(127, q(6.0))),
    "RELU_N1_TO_1": lambda q: (max(-128, q(-1.0)), min(127, q(1.0))),
}


def activation_range(act: str, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLite's ``CalculateActivationRangeQuantized`` for int8 outputs: ``(lo, hi)``."""

    def q(f: float) -> int:
        return zero_point + round_away(float(np.float32(f) / np.float32(scale)))

    if act not in _ACTIVATION_RANGES:
        raise EdgekitError(f"fused activation {act} is not supported in int8 C code")
    return _ACTIVATION_RANGES[act](q)


def conv_multiplier(x_scale: float, w_scale: float, y_scale: float) -> float:
    """TFLite's ``GetQuantizedConvolutionMultipler``: the scale product in float32."""
    prod = np.float32(np.float32(x_scale) * np.float32(w_scale))
    return float(np.float64(prod) / np.float64(y_scale))


def per_channel_multipliers(
    x_scale: float, w_scales: Sequence[float], y_scale: float
) -> list[float]:
    """FULLY_CONNECTED with per-channel weights: one real multiplier per output, in double."""
    return [float(np.float64(x_scale) * np.float64(s) / np.float64(y_scale)) for s in w_scales]


def mul_multiplier(a_scale: float, b_scale: float, y_scale: float) -> float:
    """MUL: ``input1_scale * input2_scale / output_scale`` in float32."""
    prod = np.float32(np.float32(a_scale) * np.float32(b_scale))
    return float(np.float32(prod / np.float32(y_scale)))


def add_multipliers(a_scale: float, b_scale: float, y_scale: float) -> tuple[float, float, float]:
    """ADD/SUB's general 8-bit path: the real multipliers of input a, input b and the output."""
    twice = 2.0 * float(max(np.float32(a_scale), np.float32(b_scale)))
    ra = float(np.float64(np.float32(a_scale)) / twice)
    rb = float(np.float64(np.float32(b_scale)) / twice)
    ro = twice / float(np.float32(np.float32(1 << ADD_LEFT_SHIFT) * np.float32(y_scale)))
    return ra, rb, ro


def _libm_expf() -> Callable[[float], float] | None:
    """The C library's ``expf`` (what TFLite's kernels call), or None where it cannot load."""
    import ctypes
    import ctypes.util

    try:
        name = ctypes.util.find_library("m")
        lib = ctypes.CDLL(name) if name else ctypes.CDLL(None)
        fn = lib.expf
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float]
    return fn


def softmax_table(input_scale: float, beta: float) -> np.ndarray:
    """TFLite's ``PopulateSoftmaxLookupTable``: ``table[255 - v] = expf(-scale * beta * v)``."""
    scale = np.float32(-np.float32(input_scale) * np.float32(beta))
    expf = _libm_expf()
    table = np.zeros(256, np.float32)
    for v in range(256):
        arg = np.float32(scale * np.float32(v))
        table[255 - v] = expf(float(arg)) if expf else np.float32(math.exp(float(arg)))
    return table
