"""From what the measuring children return to bench rows: one row per job, rounds combined."""

from __future__ import annotations

from typing import Any

from edgekit.bench.job import Job
from edgekit.bench.schema import BenchRow
from edgekit.bench.targets import Target

# The measured fields a child's result may set on a row.
MEASURED = (
    "status",
    "error",
    "size_bytes",
    "init_ms",
    "first_ms",
    "latency_ms",
    "throughput_per_s",
    "peak_rss_mb",
    "metrics",
    "max_abs_diff",
    "accuracy_drop",
    "runs",
    "rounds",
    "samples_ms",
    "arena_bytes",
    "instructions_per_inference",
    "instructions",
    "cycles_per_inference",
    "cycles",
    "cycles_source",
    "emulated",
    "clock_hz",
    "latency_source",
)


def make_row(target: Target, job: Job, measured: dict[str, Any]) -> BenchRow:
    """The row of one job: what it measured, on top of what the target says."""
    row = BenchRow(
        artifact=target.artifact,
        format=target.format,
        variant=target.variant,
        runtime=target.runtime,
        device=job.device,
        threads=job.threads,
        batch=job.batch,
        size_bytes=target.size_bytes,
        path=str(target.path),
    )
    for key in MEASURED:
        if key in measured:
            setattr(row, key, measured[key])
    if row.status not in ("ok", "error", "skipped"):
        row.status, row.error = "error", f"the worker returned status {row.status!r}"
    return row


def combine_rounds(results: list[dict[str, Any]], *, batch: int) -> dict[str, Any]:
    """One row's measurements from several processes (``--repeat``) -> one result.

    Latency statistics are over the rounds' stored samples pooled, each round weighing the
    same; ``samples_ms`` keeps an equal segment per round (in order), which ``compare``
    resamples round by round. A failed round makes the row fail.
    """
    if len(results) == 1 or any(r.get("status") != "ok" for r in results):
        bad = [r for r in results if r.get("status") != "ok"]
        return bad[0] if bad else results[0]
    import statistics

    from edgekit.bench.stats import KEEP_SAMPLES, summarize, thin, throughput

    per = KEEP_SAMPLES // len(results)
    samples = [v for r in results for v in thin(r["samples_ms"], per).tolist()]
    lat = summarize(samples)
    out = dict(results[0])  # accuracy and parity come from the first round
    out.update(
        latency_ms=lat,
        throughput_per_s=throughput(lat, batch),
        init_ms=statistics.median(r["init_ms"] for r in results),
        first_ms=statistics.median(r["first_ms"] for r in results),
        peak_rss_mb=max((r.get("peak_rss_mb") or 0.0) for r in results) or None,
        runs=sum(r["runs"] for r in results),
        rounds=len(results),
        samples_ms=samples,
    )
    return out
