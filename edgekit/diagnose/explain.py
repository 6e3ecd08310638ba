"""One sentence per layer that says what went wrong, in words a user acts on.

Rules are tried in order and the first that holds speaks; each names the number behind it.
``dense_0: one channel spans 181x the others; per-tensor int8 leaves the other 15 channels
0.6-1.3 levels of 256`` says both the cause and why it costs accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgekit.diagnose.layer import LayerReport
from edgekit.diagnose.weights import WeightFindings

# A layer that moves the output by less than this fraction of its range is fine.
NOTICEABLE = 0.01
SATURATED = 0.01  # fraction of values clipped
NARROW = 0.1  # fraction of the integer grid used
FEW_LEVELS = 8.0  # levels per channel below which a channel is crushed
WIDE = 10.0  # an output channel's weights this many times the median's


@dataclass(frozen=True)
class Context:
    """What a rule may look at besides the layer's own numbers."""

    static: bool  # activations quantized with fixed scales
    weights: str  # the type of the layer's weights: "int8", "float16" or "float32"
    previous: LayerReport | None  # the reported layer before this one
    findings: WeightFindings | None


LEVELS = {"int8": 256, "uint8": 256, "int16": 65536}


def _count(n: int, word: str) -> str:
    return f"one {word}" if n == 1 else f"{n} {word}s"


def _outlier_channels(report: LayerReport, ctx: Context) -> str | None:
    if not ctx.static or not report.outliers or not report.others_levels:
        return None
    low, high = report.others_levels
    if high > FEW_LEVELS:
        return None
    span = report.channel_span or 0.0
    rest = report.channels - len(report.outliers)
    return (
        f"{_count(len(report.outliers), 'channel')} {'spans' if len(report.outliers) == 1 else 'span'} "
        f"{span:.0f}x the others; per-tensor {report.dtype} leaves the other {rest} channels "
        f"{low:.1f}-{high:.1f} levels of {LEVELS.get(report.dtype, '?')}"
    )


def _dropped_inputs(report: LayerReport, ctx: Context) -> str | None:
    found = ctx.findings
    if ctx.weights != "int8" or found is None or not found.dropped or report.error < NOTICEABLE:
        return None
    source = ctx.previous.layer if ctx.previous else "its input"
    which = ", ".join(str(i) for i in found.dropped[:4]) + ("..." if len(found.dropped) > 4 else "")
    smaller = f" ({found.smaller:.0f}x smaller than the rest)" if found.smaller else ""
    plural = "s" if len(found.dropped) > 1 else ""
    return (
        f"int8 rounds to zero every weight that reads {source}'s channel{plural} {which}"
        f"{smaller}, so the layer loses {'that input' if not plural else 'those inputs'}"
    )


def _wide_weights(report: LayerReport, ctx: Context) -> str | None:
    found = ctx.findings
    if ctx.static or ctx.weights != "int8" or found is None or report.error < NOTICEABLE:
        return None
    if found.span is None or found.span < WIDE:
        return None
    return (
        f"one output channel's weights are {found.span:.0f}x the others'; one int8 scale for "
        "the whole weight tensor leaves the rest few levels"
    )


def _outlier_input(report: LayerReport, ctx: Context) -> str | None:
    before = ctx.previous
    if ctx.static or before is None or not before.outliers or report.error < NOTICEABLE:
        return None
    return (
        f"its input {before.layer} has a channel {before.channel_span or 0:.0f}x the others, "
        "and quantizing that input on the fly with one scale flattens the rest"
    )


def _saturation(report: LayerReport, ctx: Context) -> str | None:
    if report.saturation is None or report.saturation < SATURATED:
        return None
    return (
        f"{report.saturation:.1%} of its values clip at the {report.dtype} limits: the "
        "calibration data did not reach this data's range"
    )


def _narrow(report: LayerReport, ctx: Context) -> str | None:
    if report.range_used is None or report.range_used >= NARROW:
        return None
    return (
        f"its values use {report.range_used:.0%} of the {report.dtype} range: calibration saw "
        "a far wider range than this data"
    )


def _rounding(report: LayerReport, ctx: Context) -> str | None:
    if report.error < NOTICEABLE:
        return None
    if not ctx.static:
        return f"{ctx.weights} weights move the output by {report.error:.1%} of its range"
    levels = f" ({report.levels:.0f} levels for the median channel)" if report.levels else ""
    return f"{report.dtype} rounding moves the output by {report.error:.1%} of its range{levels}"


def _fine(report: LayerReport, ctx: Context) -> str:
    moves = f"the output by {report.error:.2%} of its range"
    if ctx.static:
        return f"fine: moves {moves}"
    if ctx.weights == "float32":
        return f"fine: weights and activations stay float here; moves {moves}"
    return f"fine: activations stay float; {ctx.weights} weights move {moves}"


RULES: tuple[Callable[[LayerReport, Context], str | None], ...] = (
    _outlier_channels,
    _dropped_inputs,
    _wide_weights,
    _outlier_input,
    _saturation,
    _narrow,
    _rounding,
)


def explain(report: LayerReport, ctx: Context) -> str:
    """``"<layer>: <what happened>"``."""
    for rule in RULES:
        text = rule(report, ctx)
        if text:
            return f"{report.layer}: {text}"
    return f"{report.layer}: {_fine(report, ctx)}"
