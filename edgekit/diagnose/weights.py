"""What int8 weights do to a ``Dense`` layer's kernel, read from the float Keras weights.

Two failures explain most weight-side damage: an output channel whose weights are far larger
than the others' (one int8 scale for the whole tensor then leaves the rest few levels), and an
input whose every weight is so small next to its column's largest that int8 rounds all of them
to zero, so the layer loses that input. The second is computed with one scale per output
channel (what TFLite and ONNX Runtime's static quantization use); a per-tensor scale only
rounds more weights to zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INT8_MAX = 127


@dataclass(frozen=True)
class WeightFindings:
    span: float | None  # the largest output channel's max |w| / the median channel's
    dropped: list[int]  # live inputs whose every weight rounds to zero in int8
    smaller: float | None  # how many times smaller the dropped inputs' weights are


def _kernel(layer) -> np.ndarray | None:
    if type(layer).__name__ != "Dense":
        return None
    weights = layer.get_weights()
    return np.asarray(weights[0], np.float64) if weights else None


def weight_findings(layer, live_inputs: np.ndarray | None) -> WeightFindings | None:
    """``live_inputs``: a mask of the inputs that ever vary (None: all of them)."""
    kernel = _kernel(layer)
    if kernel is None or kernel.ndim != 2 or not np.any(kernel):
        return None
    magnitude = np.abs(kernel)  # [inputs, outputs]
    peaks = magnitude.max(axis=0)
    median = float(np.median(peaks[peaks > 0])) if np.any(peaks > 0) else 0.0
    span = float(peaks.max() / median) if median > 0 else None
    half_step = peaks / INT8_MAX / 2
    rounds_to_zero = np.all(magnitude < half_step, axis=1)
    if live_inputs is not None and len(live_inputs) == len(rounds_to_zero):
        rounds_to_zero &= live_inputs
    dropped = [int(i) for i in np.flatnonzero(rounds_to_zero)]
    smaller = None
    kept = magnitude[~rounds_to_zero]
    if dropped and kept.size and np.any(magnitude[dropped]):
        smaller = float(np.median(kept[kept > 0]) / magnitude[dropped].max())
    return WeightFindings(span=span, dropped=dropped, smaller=smaller)
