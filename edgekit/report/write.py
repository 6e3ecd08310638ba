"""The markdown report and the PNG plots of ``edgekit report``."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

from edgekit.bench.output import COLUMNS, row_cells
from edgekit.bench.schema import BenchRow, load_bench
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_bytes, atomic_write_text
from edgekit.tables import markdown_table, num


def _figure(width: float, height: float):
    from edgekit._lazy import require

    require("matplotlib")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _log_axis(axis, set_scale) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    set_scale("log")
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _latency(row: BenchRow) -> dict[str, float]:
    """The row's latency statistics (empty for a row that was not timed)."""
    return row.latency_ms or {}


def _timed(row: BenchRow) -> bool:
    """A measured row with a median latency (files written by hand may lack the others)."""
    return row.ok and "p50" in (row.latency_ms or {})


def _label(row: BenchRow) -> str:
    return f"{row.artifact} ({row.runtime}, {row.device}, t{row.threads}, b{row.batch})"


def latency_plot(rows: Sequence[BenchRow]) -> bytes:
    """Horizontal box plots of per-call latency, one per measured row."""
    rows = [r for r in rows if _timed(r)]
    fig = _figure(9, 1.2 + 0.45 * max(1, len(rows)))
    ax = fig.add_subplot()
    if not rows:
        ax.text(0.5, 0.5, "no successful measurement", ha="center", va="center")
        ax.set_axis_off()
        return _png(fig)
    positions = list(range(len(rows), 0, -1))
    with_samples = [(p, r) for p, r in zip(positions, rows, strict=True) if r.samples_ms]
    if with_samples:
        ax.boxplot(
            [r.samples_ms for _, r in with_samples],
            positions=[p for p, _ in with_samples],
            orientation="horizontal",
            whis=(5, 95),
            showfliers=False,
            widths=0.6,
        )
    p50 = [_latency(r)["p50"] for r in rows]
    p95 = [_latency(r).get("p95", _latency(r)["p50"]) for r in rows]
    ax.scatter(p50, positions, marker="o", color="tab:blue", zorder=3, label="p50")
    ax.scatter(p95, positions, marker="|", s=200, color="tab:red", zorder=3, label="p95")
    ax.set_yticks(positions, [_label(r) for r in rows], fontsize=8)
    values = [v for r in rows for v in (r.samples_ms or [_latency(r)["p50"]])] + p95
    lo, hi = min(values), max(values)
    if lo > 0 and hi / lo > 20:
        _log_axis(ax.xaxis, ax.set_xscale)
    ax.set_xlabel("latency per call (ms)")
    ax.set_title("Latency distribution per artifact")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def _one_per_artifact(rows: Sequence[BenchRow]) -> list[BenchRow]:
    """Per artifact, its fastest-configured row at the smallest batch (for p50)."""
    best: dict[tuple, BenchRow] = {}
    for r in rows:
        if not _timed(r):
            continue
        key = (r.artifact, r.runtime, r.device)
        old = best.get(key)
        if old is None or (r.batch, _latency(r)["p50"]) < (old.batch, _latency(old)["p50"]):
            best[key] = r
    return list(best.values())


def tradeoff_plot(rows: Sequence[BenchRow]) -> bytes:
    """Size (KB) against accuracy (or MAE), one point per artifact, coloured by p50."""
    points = _one_per_artifact(rows)
    metric = "accuracy"
    if points and all("accuracy" not in (r.metrics or {}) for r in points):
        metric = "mae"
    points = [r for r in points if (r.metrics or {}).get(metric) is not None]
    fig = _figure(7.5, 5)
    ax = fig.add_subplot()
    if not points:
        ax.text(0.5, 0.5, "no accuracy measured (no test data)", ha="center", va="center")
        ax.set_axis_off()
        return _png(fig)
    x = [r.size_bytes / 1024 for r in points]
    y = [(r.metrics or {})[metric] * (100 if metric == "accuracy" else 1) for r in points]
    c = [_latency(r)["p50"] for r in points]
    sc = ax.scatter(x, y, c=c, s=90, cmap="viridis_r", edgecolors="black", zorder=3)
    fig.colorbar(sc, ax=ax, label="p50 latency (ms)", fraction=0.05, pad=0.02)
    for i, (r, xi, yi) in enumerate(zip(points, x, y, strict=True)):
        ax.annotate(
            f"{r.variant} ({r.runtime})",
            (xi, yi),
            textcoords="offset points",
            xytext=(6, 5 if i % 2 == 0 else -12),  # alternate, so neighbours do not overlap
            fontsize=8,
        )
    ax.margins(x=0.2, y=0.12)  # room for the labels inside the axes
    ax.set_xlabel("size (KB)")
    ax.set_ylabel("accuracy (%)" if metric == "accuracy" else "MAE (lower is better)")
    ax.set_title(f"{'Accuracy' if metric == 'accuracy' else 'MAE'} vs size vs p50 latency")
    ax.grid(alpha=0.3)
    if len(x) > 1 and min(x) > 0 and max(x) / min(x) > 20:
        _log_axis(ax.xaxis, ax.set_xscale)
    return _png(fig)


def report_markdown(rows: Sequence[BenchRow], environment: dict, *, source: str) -> str:
    env = environment
    body = [row_cells(r) for r in rows]
    best = [r for r in rows if _timed(r)]
    lines = [
        "# edgekit bench report",
        "",
        f"Source: `{source}`. Machine: {env.get('cpu', '?')}, {env.get('cores', '?')} cores, "
        f"Python {env.get('python', '?')}.",
        "",
        markdown_table(COLUMNS, body),
        "",
    ]
    if best:
        fastest = min(best, key=lambda r: _latency(r)["p50"] / r.batch)
        lines += [
            f"Fastest per sample: {fastest.artifact} on {fastest.runtime} "
            f"(p50 {num(_latency(fastest)['p50'])} ms at batch {fastest.batch}).",
            "",
        ]
    lines += [
        "![latency distribution per artifact](latency.png)",
        "",
        "![accuracy vs size vs p50](tradeoff.png)",
        "",
    ]
    not_ok = [r for r in rows if not r.ok]
    if not_ok:
        lines += [f"- {r.status}: {r.label}: {r.error}" for r in not_ok] + [""]
    return "\n".join(lines)


def write_report(
    bench_json: str | os.PathLike, *, out: str | os.PathLike | None = None
) -> list[Path]:
    """Write ``report.md``, ``latency.png`` and ``tradeoff.png``; returns their paths."""
    bench = load_bench(os.fspath(bench_json))
    out_dir = Path(out) if out is not None else bench.path.parent / "report"
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgekitError(f"--out {out_dir}: exists and is not a directory")
    if not bench.rows:
        raise EdgekitError(f"{bench.path}: holds no results to report")
    latency = latency_plot(bench.rows)  # plots first: a missing matplotlib writes nothing
    tradeoff = tradeoff_plot(bench.rows)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return [
            atomic_write_text(
                out_dir / "report.md",
                report_markdown(bench.rows, bench.environment, source=bench.path.name),
            ),
            atomic_write_bytes(out_dir / "latency.png", latency),
            atomic_write_bytes(out_dir / "tradeoff.png", tradeoff),
        ]
    except OSError as err:
        raise EdgekitError(f"cannot write the report to {out_dir}: {err.strerror or err}") from err


__all__ = ["latency_plot", "report_markdown", "tradeoff_plot", "write_report"]
