"""``run_bench``: measure every (artifact, device, threads, batch), then check gates.

Each measurement runs in its own child process (:mod:`edgekit.bench.isolate`), one after the
other so that they do not disturb each other. Everything is planned and checked first
(:mod:`edgekit.bench.plan`), so a typo fails in a second, not after the benchmark. On a remote
device (``ssh://...`` or a configured NAME) the device's own edgekit measures
(:mod:`edgekit.bench.remote`) and the gates are checked here on the rows it returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgekit.bench.flags import (
    DEFAULT_TIMEOUT,
    check_local_only,
    check_repeat,
    parse_devices,
    remote_device,
)
from edgekit.bench.isolate import (
    DEFAULT_MEMORY_LIMIT_MB,
    MemoryLimit,
    WorkerPool,
    check_memory_limit,
)
from edgekit.bench.plan import Plan, apply_gates, plan_bench
from edgekit.bench.remote import run_remote
from edgekit.bench.result import BenchResult
from edgekit.bench.rows import combine_rounds, make_row
from edgekit.bench.schema import BenchRow
from edgekit.errors import EdgekitError

OnRow = Callable[[BenchRow, int, int], None]


def run_bench(
    paths: Sequence[str | os.PathLike] = (),
    *,
    runtime: str | Sequence[str] = "auto",
    device: str | Sequence[str] = "cpu",
    threads: Sequence[int] = (1,),
    batch: Sequence[int] = (1,),
    warmup: int = 10,
    runs: int = 100,
    min_time: float = 0.5,
    repeat: int = 1,
    data: str | os.PathLike | None = None,
    budgets: Sequence[str] = (),
    baseline: str | os.PathLike | None = None,
    max_regression: float = 10.0,
    timeout: float = DEFAULT_TIMEOUT,
    remote_python: str | None = None,
    ssh_options: Sequence[str | tuple[str, str]] = (),
    allow_failed: bool = False,
    memory_limit_mb: MemoryLimit = DEFAULT_MEMORY_LIMIT_MB,
    on_row: OnRow | None = None,
) -> BenchResult:
    """Benchmark artifacts or export directories (default ``runs/latest/export``).

    >>> from edgekit.bench import run_bench
    >>> result = run_bench(["model.int8.tflite"], threads=[1, 2], budgets=["p95_ms<=2"])  # doctest: +SKIP
    >>> result.passed, result.rows[0].latency_ms["p50"]                                     # doctest: +SKIP
    >>> run_bench(["export/"], device="ssh://pi@raspberrypi.local")                   # doctest: +SKIP

    Bad input raises :class:`~edgekit.errors.EdgekitError` before anything is measured.
    ``repeat`` measures each row in that many processes, in interleaved rounds (for noisy
    machines). ``on_row(row, index, total)`` is called as each row is complete.
    ``device`` may name a remote board (``ssh://[user@]host[:port]`` or a device NAME from
    ``edgekit.toml``): the measuring happens there (:func:`edgekit.devices.bench_remote`,
    with ``remote_python`` and ``ssh_options`` as ``KEY=VALUE``), budgets and the baseline
    here.

    Only measured rows count: a budget whose rows were all skipped or failed, or that matches
    no row, fails; so does an artifact whose export validation failed (its manifest entry's
    ``validation.passed`` is false) unless ``allow_failed``. Every measuring child runs under
    a memory limit of ``memory_limit_mb`` MiB (``RLIMIT_DATA``; ``"auto"``, the default: what
    the child holds once its runtime is imported plus
    :func:`~edgekit.bench.measure.auto_allowance`; 0 or None: none), and one that exceeds it
    is an error row.
    """
    check_repeat(repeat)
    memory_limit_mb = check_memory_limit(memory_limit_mb)
    remote = remote_device(device)
    if remote is not None:
        return run_remote(
            paths, remote, runtime=runtime, threads=threads, batch=batch, warmup=warmup,
            runs=runs, min_time=min_time, repeat=repeat, data=data, budgets=budgets,
            baseline=baseline, max_regression=max_regression, timeout=timeout,
            remote_python=remote_python, ssh_options=ssh_options, allow_failed=allow_failed,
            memory_limit_mb=memory_limit_mb, on_row=on_row,
        )  # fmt: skip
    check_local_only(remote_python, ssh_options)
    devices = parse_devices(device)
    with WorkerPool(memory_limit_mb=memory_limit_mb) as pool:
        # The first child starts up while this process reads manifests and checks data.
        pool.prestart(preload=_likely_runtime(paths))
        plan = plan_bench(
            paths, runtime=runtime, devices=devices, threads=threads, batch=batch,
            warmup=warmup, runs=runs, min_time=min_time, data=data, budgets=budgets,
            baseline=baseline, max_regression=max_regression, timeout=timeout,
            allow_failed=allow_failed,
        )  # fmt: skip
        rows = _measure(pool, plan, repeat=repeat, timeout=timeout, on_row=on_row)

    from edgekit.envinfo import environment

    return apply_gates(BenchResult(environment=environment(), rows=rows), plan)


def _measure(
    pool: WorkerPool, plan: Plan, *, repeat: int, timeout: float, on_row: OnRow | None
) -> list[BenchRow]:
    """Every job of ``plan``, ``repeat`` times; the rows in the plan's order."""
    # Rounds interleave in time: every row once, then every row again, ... A job's row is
    # made once, when its last round ran or when a round did not come back ok (failed or
    # skipped: it is not measured again), so every job has exactly one row.
    measured: list[list[dict[str, Any]]] = [[] for _ in plan.jobs]
    rows: list[BenchRow | None] = [None] * len(plan.jobs)
    for r in range(repeat):
        for i, (target, job) in enumerate(plan.jobs):
            if rows[i] is not None:
                continue
            job.evaluate = r == 0
            result = pool.run(job, timeout=timeout)
            if "usage_error" in result:
                raise EdgekitError(result["usage_error"])
            if r and result.get("status") != "ok" and result.get("error"):
                result = {**result, "error": f"{result['error']} (round {r + 1} of {repeat})"}
            measured[i].append(result)
            if r == repeat - 1 or result.get("status") != "ok":
                row = make_row(target, job, combine_rounds(measured[i], batch=job.batch))
                rows[i] = row
                if on_row is not None:
                    done = sum(x is not None for x in rows)
                    on_row(row, done - 1, len(plan.jobs))
    return [row for row in rows if row is not None]


def _likely_runtime(paths: Sequence[str | os.PathLike]) -> str | None:
    if not paths:
        return None
    return {".tflite": "tflite", ".onnx": "onnxruntime"}.get(Path(paths[0]).suffix.lower())
