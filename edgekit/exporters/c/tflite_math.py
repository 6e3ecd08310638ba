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


# gemmlowp's fixed-point arithmetic on int32 (what TFLM's integer SOFTMAX computes with)
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def _wrap32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def srdhm(a: int, b: int) -> int:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` (C's truncating division)."""
    if a == b == _I32_MIN:
        return _I32_MAX
    ab = a * b
    v = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    return abs(v) >> 31 if v >= 0 else -(abs(v) >> 31)  # C division truncates


def rdbpot(x: int, exponent: int) -> int:
    """gemmlowp ``RoundingDivideByPOT``: ties away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def _sat_shl(x: int, exponent: int) -> int:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT`` with a positive exponent."""
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return _I32_MAX
    if x < -threshold:
        return _I32_MIN
    return _wrap32(x << exponent)


def _exp_quarter(a: int) -> int:
    """gemmlowp ``exp_on_interval_between_negative_one_quarter_and_0_excl`` (Q0.31)."""
    constant_term, one_third = 1895147668, 715827883
    x = _wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(_wrap32(srdhm(_wrap32(x4_over_4 + x3), one_third) + x2), 1)
    return _wrap32(constant_term + srdhm(constant_term, _wrap32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))  # fmt: skip


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """gemmlowp ``exp_on_negative_values`` of a Q``integer_bits`` value; the result in Q0.31."""
    fractional = 31 - integer_bits
    quarter = 1 << (fractional - 2)
    a_mod = _wrap32((a & (quarter - 1)) - quarter)
    result = _exp_quarter(_sat_shl(a_mod, integer_bits) if integer_bits else a_mod)
    remainder = _wrap32(a_mod - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent and remainder & (1 << (fractional + exponent)):
            result = srdhm(result, multiplier)
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):
        result = 0
    return _I32_MAX if a == 0 else result


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplierGreaterThanOne``: (multiplier, left shift >= 0)."""
    m, shift = quantize_multiplier(real)
    if shift < 0:
        raise EdgekitError(f"multiplier {real} is below one")
    return m, shift


def softmax_tflm_table(input_scale: float, beta: float) -> np.ndarray:
    """TFLM's int8 SOFTMAX (``reference_ops::Softmax``), its exponentials as a table.

    TFLM computes, for each input difference ``d = x - max`` (-255..0), the gemmlowp Q0.31
    ``exp_on_negative_values`` of ``d`` rescaled to Q5.26 by ``PreprocessSoftmaxScaling``
    (``beta * scale * 2**26``, capped at ``2**31 - 1``), or leaves it out (0) below
    ``diff_min = -CalculateInputRadius(5, left_shift)``. It depends on ``d`` only, so
    ``table[-d]`` holds it; the C adds the table entries in Q12.19 and divides with TFLM's
    ``GetReciprocal``.
    """
    integer_bits = 5
    real = min(float(beta) * float(input_scale) * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    mult, left = quantize_multiplier_greater_than_one(real)
    radius = math.floor(((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left))
    diff_min = -radius
    table = np.zeros(256, np.int64)
    for k in range(256):
        diff = -k
        if diff < diff_min:
            continue
        rescaled = srdhm(_wrap32(diff * (1 << left)), mult)
        table[k] = exp_on_negative_values(rescaled, integer_bits)
    return table
