"""Bench on a remote board: plan and check here, measure there, apply the gates here.

The device's own edgekit measures (:func:`edgekit.devices.bench_remote`, over SSH) with the
flags this side has already checked; its rows come back as JSON and are read like a bench
file's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from edgekit.bench.flags import positive_ints
from edgekit.bench.isolate import DEFAULT_MEMORY_LIMIT_MB, MemoryLimit
from edgekit.bench.plan import Plan, apply_gates, plan_bench
from edgekit.bench.result import BenchResult
from edgekit.bench.rows import make_row
from edgekit.bench.schema import BenchRow
from edgekit.errors import EdgekitError

if TYPE_CHECKING:
    from edgekit.devices import Device


def run_remote(
    paths: Sequence[str | os.PathLike],
    device: Device,
    *,
    runtime: str | Sequence[str],
    threads: Sequence[int],
    batch: Sequence[int],
    warmup: int,
    runs: int,
    min_time: float,
    repeat: int,
    data: str | os.PathLike | None,
    budgets: Sequence[str],
    baseline: str | os.PathLike | None,
    max_regression: float,
    timeout: float,
    remote_python: str | None,
    ssh_options: Sequence[str | tuple[str, str]],
    on_row: Callable[[BenchRow, int, int], None] | None,
    allow_failed: bool = False,
    memory_limit_mb: MemoryLimit = DEFAULT_MEMORY_LIMIT_MB,
) -> BenchResult:
    """Check everything here, measure on ``device``, then apply the gates here."""
    from edgekit.devices import bench_remote, parse_ssh_option

    options = [o if isinstance(o, tuple) else parse_ssh_option(o) for o in ssh_options]
    if remote_python is not None and not str(remote_python).strip():
        raise EdgekitError("--remote-python needs a path (or a command name such as python3)")
    plan = plan_bench(
        paths, runtime=runtime, devices=[device.name], threads=threads, batch=batch,
        warmup=warmup, runs=runs, min_time=min_time, data=data, budgets=budgets,
        baseline=baseline, max_regression=max_regression, timeout=timeout,
        allow_failed=allow_failed,
    )  # fmt: skip
    targets = plan.targets()
    flags = [
        "--runtime", ",".join(dict.fromkeys(t.runtime for t in targets)),
        "--threads", ",".join(map(str, positive_ints("--threads", threads))),
        "--batch", ",".join(map(str, positive_ints("--batch", batch))),
        "--warmup", str(warmup), "--runs", str(runs), "--min-time", repr(float(min_time)),
        "--repeat", str(repeat), "--timeout", repr(float(timeout)),
    ]  # fmt: skip
    if memory_limit_mb != DEFAULT_MEMORY_LIMIT_MB:  # (a device's older edgekit lacks the flag)
        flags += ["--memory-limit", str(memory_limit_mb or 0)]
    # The device enforces --timeout per measurement; this bounds the whole run on top.
    total = len(plan.jobs) * repeat * (timeout + 30.0) + 120.0
    environment, raw_rows = bench_remote(
        device, targets, flags=flags, data=data, python=remote_python, ssh_options=options,
        timeout=total,
    )  # fmt: skip
    returned = [
        BenchRow.from_json(r, where=f"{device.label}: results[{i}]") for i, r in enumerate(raw_rows)
    ]
    rows = rows_per_job(plan, returned, device.label)
    for i, row in enumerate(rows):
        if on_row is not None:
            on_row(row, i, len(rows))
    return apply_gates(BenchResult(environment=environment, rows=rows), plan)


def rows_per_job(plan: Plan, returned: Sequence[BenchRow], label: str) -> list[BenchRow]:
    """Exactly one row per job of ``plan``, in the plan's order, from a device's rows.

    A device's row is matched to its job on the local file (``path``, mapped back from the
    device) and threads and batch, and named as here (artifact, variant and format come
    from this side's target). A job that the device returned no row for, or several rows,
    becomes an ``error`` row: a device that measured less than it was asked to fails.
    """
    by_key: dict[tuple[str, int, int], list[BenchRow]] = {}
    for row in returned:
        by_key.setdefault((row.path, row.threads, row.batch), []).append(row)
    rows = []
    for target, job in plan.jobs:
        found = by_key.get((str(target.path), job.threads, job.batch), [])
        if len(found) == 1:
            row = found[0]
            row.artifact, row.variant, row.format = target.artifact, target.variant, target.format
            row.device = job.device
            rows.append(row)
            continue
        error = (
            f"{label} returned no result for this measurement ({len(returned)} row(s) for "
            f"{len(plan.jobs)} measurement(s))"
            if not found
            else f"{label} returned {len(found)} results for this one measurement"
        )
        rows.append(make_row(target, job, {"status": "error", "error": error}))
    return rows
