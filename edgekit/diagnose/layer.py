"""The numbers diagnosis reports for one layer of one artifact, and how they are measured.

Each layer is judged on what it *adds*: its output in the artifact against the float layer run
on the artifact's own input to it (TFLite's QuantizationDebugger compares each op with its float
twin on the same dequantized inputs). ``error`` carries that difference to the model's output:
the float model continues from both tensors, and the RMSE between the two outputs over the
output's range is how far this layer alone moves the predictions, comparable across layers.
``channel_error`` is the difference at the layer itself, RMSE over each channel's float range
averaged over channels: per channel, because a per-tensor scale fails one channel at a time (a
tensor whose one channel spans 300x the others has a small error against the tensor's range
while every other channel is left one or two levels). ``rmse_rel``, ``cosine`` and
``top1_downstream`` compare with the float model run end to end (everything before included).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.diagnose.graph import Tensor

# A channel narrower than this fraction of the widest is dead (a ReLU that never fires).
DEAD = 1e-6
# A channel at least this many times the median channel's range is an outlier.
OUTLIER = 10.0


@dataclass
class LayerReport:
    """One layer of one artifact. ``None`` where a number does not apply (float tensors)."""

    layer: str
    kind: str  # the Keras layer class
    position: int  # in the model, the input layer being 0
    tensor: str
    dtype: str
    error: float  # added by this layer, at the model output: RMSE / output range
    channel_error: float  # added by this layer, here: mean over channels of RMSE / range
    rmse_rel: float  # RMSE against the float model / the tensor's float range
    cosine: float  # against the float model, over all values
    scale: float | None
    zero_point: int | None
    range_used: float | None  # fraction of the integer grid the values occupy
    saturation: float | None  # fraction of values beyond the integer limits (clipped)
    channels: int
    channel_span: float | None  # widest channel's range / the median channel's
    outliers: list[int]  # channels at least OUTLIER times the median channel's range
    levels: float | None  # the median channel's range, in quantization steps
    others_levels: list[float] | None  # quartiles of levels of the non-outlier channels
    top1_downstream: float | None  # agreement when the float model continues from here
    sentence: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _rms(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    return np.sqrt(np.mean(np.square(values), axis=axis))


def live_channels(values: np.ndarray) -> np.ndarray:
    """A mask of the channels (columns of ``[samples, features]``) that ever vary."""
    ranges = values.max(axis=0) - values.min(axis=0)
    return ranges > max(float(ranges.max(initial=0.0)) * DEAD, 0.0)


def _per_channel(
    values: np.ndarray, reference: np.ndarray, ranges: np.ndarray, live: np.ndarray
) -> float:
    if not np.any(live):
        return float(_rms(values - reference))
    errors = _rms(values - reference, axis=0)[live] / ranges[live]
    return float(np.mean(errors))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0:
        return 1.0 if not np.any(a) and not np.any(b) else 0.0
    return float(np.sum(a * b) / norm)


def measure(
    *,
    layer: str,
    kind: str,
    position: int,
    tensor: Tensor,
    isolated: np.ndarray,
    reference: np.ndarray,
    error: float,
    downstream: float | None,
) -> LayerReport:
    """``isolated``: the float layer on the artifact's input to it; ``reference``: the float
    model's output of this layer; both ``[samples, features]``. ``error`` and ``downstream``
    are measured at the model's output (see the module docstring)."""
    real = tensor.real()
    ranges = reference.max(axis=0) - reference.min(axis=0)
    live = live_channels(reference)
    spread = float(reference.max() - reference.min()) if reference.size else 0.0
    median = float(np.median(ranges[live])) if np.any(live) else 0.0
    outliers = [int(i) for i in np.flatnonzero(live & (ranges >= OUTLIER * median))]
    span = float(ranges[live].max() / median) if median > 0 else None
    report = LayerReport(
        layer=layer,
        kind=kind,
        position=position,
        tensor=tensor.name,
        dtype=tensor.dtype,
        error=error,
        channel_error=_per_channel(real, isolated, ranges, live),
        rmse_rel=float(_rms(real - reference) / spread) if spread > 0 else float(_rms(real)),
        cosine=_cosine(real, reference),
        scale=tensor.scale,
        zero_point=tensor.zero_point,
        range_used=None,
        saturation=None,
        channels=int(real.shape[1]),
        channel_span=span,
        outliers=outliers if median > 0 else [],
        levels=None,
        others_levels=None,
        top1_downstream=downstream,
    )
    if tensor.quantized and tensor.scale:
        lo, hi = tensor.limits()
        q = tensor.values.astype(np.int64)
        zp, s = float(tensor.zero_point or 0), float(tensor.scale)
        report.range_used = float((q.max() - q.min()) / (hi - lo))
        # Beyond the limits by more than a step: clipped, not rounded (a sigmoid's 1.0 on a
        # [0, 255/256] grid is rounding).
        beyond = (isolated > (hi - zp) * s + s) | (isolated < (lo - zp) * s - s)
        report.saturation = float(np.mean(beyond))
        report.levels = median / s
        rest = live.copy()
        rest[outliers] = False
        if np.any(rest):
            report.others_levels = [float(v) for v in np.percentile(ranges[rest] / s, [25, 75])]
    return report
