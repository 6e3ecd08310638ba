"""The PNG plots of ``edgekit report``: latency distributions and the accuracy/size trade-off.

Both keep their legends outside the data, label their log axes with plain numbers (1, 2, 5,
10, 20 µs, ...), and state the batch size and thread count of what they show.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from edgekit.bench.schema import BenchRow
from edgekit.tables import latency, percent, sig

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def figure(width: float, height: float) -> Any:
    from edgekit._lazy import require

    require("matplotlib")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def timed(row: BenchRow) -> bool:
    """A measured row with a median latency (files written by hand may lack the others)."""
    return row.ok and "p50" in (row.latency_ms or {})


def _lat(row: BenchRow) -> dict[str, float]:
    return row.latency_ms or {}


def nice_ticks(lo: float, hi: float) -> list[float]:
    """Ticks from the 1-2-5 ladder (1..9 when that gives too few) covering ``[lo, hi]``:
    the one at or below ``lo`` to the one at or above ``hi``, so at least two are labelled.

    >>> nice_ticks(2.4, 4.7)
    [2.0, 3.0, 4.0, 5.0]
    >>> nice_ticks(3.0, 480.0)
    [2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
    """
    lo, hi = max(lo, 1e-12), max(hi, lo * 1.0001)
    for mantissas in ((1, 2, 5), tuple(range(1, 10))):
        ladder = [
            m * 10.0**k
            for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
            for m in mantissas
        ]
        below = max(t for t in ladder if t <= lo * (1 + 1e-9))
        above = min(t for t in ladder if t >= hi * (1 - 1e-9))
        ticks = [round(t, 12) for t in ladder if below <= t <= above]
        if len(ticks) >= 4 or mantissas != (1, 2, 5):
            return ticks
    return ticks  # pragma: no cover


def _tick_label(v: float) -> str:
    """Three significant digits at most, no trailing zeros: 0.05, 2.34, 19.5, 200, 1,500."""
    text = sig(v, 3)
    return text.rstrip("0").rstrip(".") if "." in text else text


def colorbar_ticks(lo: float, hi: float) -> list[float]:
    """The colour bar's ticks: both ends of the range (so every marker's colour can be read
    against a label) and the 1-2-5 ladder's values between them that are not crowding an end.

    >>> colorbar_ticks(2.33, 19.5)
    [2.33, 5.0, 10.0, 19.5]
    """
    inside = [t for t in nice_ticks(lo, hi) if lo < t < hi]
    if len(inside) < 2:  # a narrow range: every integer mantissa (2, 3, 4, 5)
        k = math.floor(math.log10(max(lo, 1e-12)))
        ladder = [m * 10.0**e for e in range(k, k + 3) for m in range(1, 10)]
        inside = [round(t, 12) for t in ladder if lo < t < hi]
    span = math.log(hi / lo) if lo > 0 and hi > lo else 0.0
    room = 0.12 * span  # no interior tick closer than 12% of the bar to an end label
    inside = [t for t in inside if span and min(math.log(t / lo), math.log(hi / t)) > room]
    return [lo, *inside, hi]  # the ends exactly (a rounded end could fall off the bar)


def _colorbar_ticks(bar: Any, lo: float, hi: float) -> None:
    """Plain-number ticks on a colour bar (instead of 4x10^0), its ends labelled."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    ticks = colorbar_ticks(lo, hi)
    bar.ax.yaxis.set_major_locator(FixedLocator(ticks))
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _tick_label(v)))
    bar.ax.yaxis.set_minor_locator(NullLocator())
    bar.ax.yaxis.set_minor_formatter(NullFormatter())


def _log_axis_us(ax: Any, lo_us: float, hi_us: float) -> None:
    """A log x axis in µs whose ticks are labelled numbers (no 10^k, no single tick)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    ticks = nice_ticks(lo_us, hi_us)
    ax.set_xscale("log")
    ax.set_xlim(ticks[0], ticks[-1])
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _tick_label(v)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _config(row: BenchRow) -> str:
    threads = f"{row.threads} thread{'s' if row.threads != 1 else ''}"
    return f"{row.runtime}, {row.device}, {threads}, batch {row.batch}"


def latency_plot(rows: Sequence[BenchRow]) -> bytes:
    """Horizontal box plots of per-call latency in µs (log axis), one per measured row."""
    rows = [r for r in rows if timed(r)]
    fig = figure(10, 1.9 + 0.42 * max(1, len(rows)))
    ax = fig.add_subplot()
    if not rows:
        ax.text(0.5, 0.5, "no successful measurement", ha="center", va="center")
        ax.set_axis_off()
        return png(fig)
    positions = list(range(len(rows), 0, -1))
    us = 1000.0  # ms -> µs
    with_samples = [(p, r) for p, r in zip(positions, rows, strict=True) if r.samples_ms]
    if with_samples:
        ax.boxplot(
            [[v * us for v in r.samples_ms] for _, r in with_samples],
            positions=[p for p, _ in with_samples],
            orientation="horizontal",
            whis=(5, 95),
            showfliers=False,
            widths=0.6,
            medianprops={"color": "tab:blue", "alpha": 0.6},
        )
    p50 = [_lat(r)["p50"] * us for r in rows]
    p95 = [_lat(r).get("p95", _lat(r)["p50"]) * us for r in rows]
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor="none", edgecolor="black", label="middle half (box), p5..p95 (whiskers)")
    ] * bool(with_samples)
    handles.append(ax.scatter(p50, positions, marker="o", color="tab:blue", zorder=3, label="p50"))
    handles.append(
        ax.scatter(p95, positions, marker="|", s=200, color="tab:red", zorder=3, label="p95")
    )
    labels = [f"{r.artifact} ({_config(r)})" + (" *unstable" if r.unstable else "") for r in rows]
    ax.set_yticks(positions, labels, fontsize=8)
    shown = [*p50, *p95]  # what is drawn: whiskers at p5 and p95, the reported p50 and p95
    for _, r in with_samples:
        ordered = sorted(r.samples_ms)
        shown += [
            ordered[int(0.05 * (len(ordered) - 1))] * us,
            ordered[-1 - int(0.05 * (len(ordered) - 1))] * us,
        ]
    positive = [v for v in shown if v > 0]
    if positive:
        _log_axis_us(ax, min(positive), max(positive))
    ax.set_xlabel("latency per call of one batch (µs, log scale)")
    ax.set_title("Latency distribution per measurement")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return png(fig)


def one_per_artifact(rows: Sequence[BenchRow]) -> list[BenchRow]:
    """Per artifact, its fastest-configured row at the smallest batch (for p50)."""
    best: dict[tuple, BenchRow] = {}
    for r in rows:
        if not timed(r):
            continue
        key = (r.artifact, r.runtime, r.device)
        old = best.get(key)
        if old is None or (r.batch, _lat(r)["p50"]) < (old.batch, _lat(old)["p50"]):
            best[key] = r
    return list(best.values())


def _span(values: list[float], *, cap: float | None) -> tuple[float, float]:
    """Axis limits around ``values`` with some room, never beyond ``cap`` (100%)."""
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.15, 0.2 if cap is not None else abs(hi) * 0.05 or 1e-6)
    top = hi + pad if cap is None else min(cap, hi + pad)
    return lo - pad, top


def tradeoff_plot(rows: Sequence[BenchRow]) -> bytes:
    """Size (KB) against accuracy (%, or MAE), one marker per artifact, coloured by p50.

    Each marker is named in the legend beside the axes (no label can cover another), with
    its p50 and, when the points differ in them, its batch and threads.
    """
    points = one_per_artifact(rows)
    metric = "accuracy"
    if points and all("accuracy" not in (r.metrics or {}) for r in points):
        metric = "mae"
    points = [r for r in points if (r.metrics or {}).get(metric) is not None]
    fig = figure(9, 5.4 + 0.18 * ((len(points) + 1) // 2))
    ax = fig.add_subplot()
    if not points:
        ax.text(0.5, 0.5, "no accuracy measured (no test data)", ha="center", va="center")
        ax.set_axis_off()
        return png(fig)
    from matplotlib.colors import LogNorm, Normalize

    x = [r.size_bytes / 1024 for r in points]
    y = [(r.metrics or {})[metric] * (100 if metric == "accuracy" else 1) for r in points]
    c = [_lat(r)["p50"] * 1000.0 for r in points]  # µs
    norm = (
        LogNorm(min(c), max(c))
        if min(c) > 0 and max(c) / min(c) > 3
        else Normalize(min(c), max(c) + 1e-12)
    )
    configs = {(r.batch, r.threads) for r in points}
    sc = None
    for i, (r, xi, yi, ci) in enumerate(zip(points, x, y, c, strict=True)):
        extra = f", {_config(r).split(', ', 2)[2]}" if len(configs) > 1 else ""
        quality = percent(y[i] / 100) if metric == "accuracy" else f"MAE {sig(yi)}"
        sc = ax.scatter(
            [xi], [yi], c=[ci], norm=norm, cmap="viridis_r", s=110, marker=MARKERS[i % len(MARKERS)],
            edgecolors="black", zorder=3 + i, clip_on=False,
            label=f"{r.variant} ({r.runtime}): {quality}, {r.size_bytes / 1024:.1f} KB, "
                  f"p50 {latency(_lat(r)['p50'])}{extra}",
        )  # fmt: skip
    if max(c) > min(c) * 1.001:  # one latency (one marker): the legend says it, no bar
        bar = fig.colorbar(sc, ax=ax, label="p50 latency (µs)", fraction=0.05, pad=0.02)
        _colorbar_ticks(bar, min(c), max(c))
    ax.set_ylim(*_span(y, cap=100.0 if metric == "accuracy" else None))
    lo_x, hi_x = _span(x, cap=None)
    ax.set_xlim(max(0.0, lo_x), hi_x)
    ax.set_xlabel("size (KB)")
    ax.set_ylabel("accuracy (%)" if metric == "accuracy" else "MAE (lower is better)")
    (batch, threads), *_ = sorted(configs)
    at = (
        f"batch {batch}, {threads} thread{'s' if threads != 1 else ''}"
        if len(configs) == 1
        else "see legend"
    )
    colour = "; colour: p50" if max(c) > min(c) * 1.001 else ""  # one latency: no colour bar
    ax.set_title(f"{'Accuracy' if metric == 'accuracy' else 'MAE'} vs size{colour} ({at})", pad=12)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return png(fig)
