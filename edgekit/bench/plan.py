"""Planning a bench run: the jobs to measure and the gates, all checked before measuring.

Budgets and the baseline are read and matched against the targets here, so a mistake in them
fails before the first measurement and not after the last. :func:`apply_gates` then checks the
gates on the rows, wherever they were measured.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from edgekit.bench.budgets import Budget, check_budgets, check_scopes, parse_budgets
from edgekit.bench.comparison import compare
from edgekit.bench.flags import (
    EMULATED_DEVICES,
    check_emulated,
    check_max_regression,
    check_timing,
    parse_runtimes,
    positive_ints,
)
from edgekit.bench.job import Job
from edgekit.bench.result import BenchResult, Unvalidated
from edgekit.bench.schema import BenchRow, load_bench
from edgekit.bench.targets import Target, resolve_targets
from edgekit.errors import EdgekitError


@dataclass
class Plan:
    """Everything checked before measuring: the measurements to make and the gates."""

    jobs: list[tuple[Target, Job]]
    budgets: list[Budget]
    baseline: list[BenchRow] | None
    max_regression: float
    allow_failed: bool = False  # artifacts whose export validation failed pass the gates

    def targets(self) -> list[Target]:
        """The distinct targets of the jobs, in order."""
        seen: dict[int, Target] = {}
        for target, _ in self.jobs:
            seen.setdefault(id(target), target)
        return list(seen.values())


def plan_bench(
    paths: Sequence[str | os.PathLike],
    *,
    runtime: str | Sequence[str],
    devices: Sequence[str],
    threads: Sequence[int],
    batch: Sequence[int],
    warmup: int,
    runs: int,
    min_time: float,
    data: str | os.PathLike | None,
    budgets: Sequence[str],
    baseline: str | os.PathLike | None,
    max_regression: float,
    timeout: float,
    allow_failed: bool = False,
) -> Plan:
    """Check the flags, resolve the targets and make one job per (target, device, n, b)."""
    thread_counts = positive_ints("--threads", threads)
    batch_sizes = positive_ints("--batch", batch)
    check_timing(warmup=warmup, runs=runs, min_time=min_time, timeout=timeout)
    check_emulated(devices, runtime)
    emulated = any(d in EMULATED_DEVICES for d in devices)
    runtimes, explicit = ({"c"}, True) if emulated else parse_runtimes(runtime)
    parsed = parse_budgets(budgets)
    base_rows = load_bench(baseline).rows if baseline is not None else None
    check_max_regression(max_regression)

    if emulated:
        _check_c_paths(paths, devices[0])
    targets = _resolve(paths, runtimes=runtimes, explicit=explicit, data=data)
    check_scopes(parsed, [t.variant for t in targets], [t.artifact for t in targets])
    jobs = [
        (
            t,
            Job(
                path=str(t.path),
                runtime=t.runtime,
                device=d,
                threads=n,
                batch=b,
                warmup=warmup,
                runs=runs,
                min_time=min_time,
                max_time=timeout / 2,
                data=str(t.data.path) if t.data else None,
                x_key=t.data.x_key if t.data else "x",
                y_key=t.data.y_key if t.data else None,
                reference_key=t.data.reference_key if t.data else None,
                columns=t.data.columns if t.data else None,
                label=t.data.label if t.data else None,
                label_names=t.labels,
                task=t.task,
                sha256=t.sha256 if t.runtime != "c" else None,  # the c runner checks its own
            ),
        )
        for t in targets
        for d in devices
        for n in thread_counts
        for b in _batches(t, batch_sizes)
    ]
    if base_rows is not None:
        keys = {(t.artifact, t.variant, t.runtime, j.device, j.threads, j.batch) for t, j in jobs}
        if not keys & {r.key for r in base_rows}:
            raise EdgekitError(
                f"--baseline {baseline}: has no measurement in common with this run (rows are "
                "matched on artifact, variant, runtime, device, threads and batch)"
            )
    return Plan(
        jobs=jobs, budgets=parsed, baseline=base_rows, max_regression=max_regression,
        allow_failed=bool(allow_failed),
    )  # fmt: skip


def _batches(target: Target, sizes: list[int]) -> list[int]:
    """The batch sizes to measure ``target`` at: ``sizes``, except that an artifact whose
    input is fixed to a batch of N (the manifest's ``fixed_batch``) is measured at N under
    the default ``--batch 1``: one call of the model as it was exported."""
    fixed = target.fixed_batch
    return [fixed] if fixed is not None and sizes == [1] else sizes


def _check_c_paths(paths: Sequence[str | os.PathLike], device: str) -> None:
    """An emulated device runs an export's generated C: refuse other files in one line."""
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.suffix.lower() != ".c":
            raise EdgekitError(
                f"{path}: {device} runs the generated C of an export; export with --c-source "
                "float32|int8 and bench the export directory"
            )


def _resolve(
    paths: Sequence[str | os.PathLike],
    *,
    runtimes: set[str],
    explicit: bool,
    data: str | os.PathLike | None,
) -> list[Target]:
    """The targets; ``tflm`` measures the ``.tflite`` files that ``tflite`` would, each as
    a row of its own."""
    if "tflm" not in runtimes:
        return resolve_targets(paths, runtimes=runtimes, explicit_runtime=explicit, data=data)
    found = resolve_targets(
        paths, runtimes=(runtimes - {"tflm"}) | {"tflite"}, explicit_runtime=explicit, data=data
    )
    out: list[Target] = []
    for t in found:
        if t.runtime != "tflite" or "tflite" in runtimes:
            out.append(t)
        if t.runtime == "tflite":
            out.append(replace(t, runtime="tflm"))
    return out


def apply_gates(result: BenchResult, plan: Plan) -> BenchResult:
    """Budgets, the baseline and the export validation of each artifact, checked here on
    the rows (measured here or on a device)."""
    failed = {
        str(t.path): t.validation_error for t in plan.targets() if t.validation_error is not None
    }
    result.allow_failed = plan.allow_failed
    result.unvalidated = [
        Unvalidated(row=row, reason=failed[row.path]) for row in result.rows if row.path in failed
    ]
    result.budgets = check_budgets(plan.budgets, result.rows)
    if plan.baseline is not None:
        result.comparison = compare(plan.baseline, result.rows, max_regression=plan.max_regression)
    return result
