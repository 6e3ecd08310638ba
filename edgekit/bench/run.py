"""``run_bench``: measure every (artifact, device, threads, batch), then check gates.

Each measurement runs in its own child process (:mod:`edgekit.bench.isolate`), one after the
other so that they do not disturb each other. Budgets and the baseline are read and checked for
mistakes before anything is measured, so a typo fails in a second, not after the benchmark.
On a remote device (``ssh://...`` or a configured NAME) the device's own edgekit measures
(:mod:`edgekit.devices.remote`) and the gates are checked here on the rows it returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.bench.budgets import (
    BudgetCheck,
    check_budgets,
    check_scopes,
    parse_budgets,
    violations,
    violations_table,
)
from edgekit.bench.comparison import Comparison, compare
from edgekit.bench.isolate import WorkerPool
from edgekit.bench.job import Job
from edgekit.bench.output import rows_markdown, rows_table
from edgekit.bench.schema import BENCH_SCHEMA, BenchRow, load_bench
from edgekit.bench.targets import RUNTIME_OF_FORMAT, Target, resolve_targets
from edgekit.errors import EdgekitError

DEVICES = ("cpu", "gpu")
DEFAULT_TIMEOUT = 300.0


@dataclass
class BenchResult:
    """Rows, environment, and the outcome of budgets and the baseline comparison."""

    environment: dict[str, Any]
    rows: list[BenchRow]
    budgets: list[BudgetCheck] = field(default_factory=list)
    comparison: Comparison | None = None

    @property
    def errors(self) -> list[BenchRow]:
        return [r for r in self.rows if r.status == "error"]

    @property
    def violations(self) -> list[BudgetCheck]:
        return violations(self.budgets)

    @property
    def passed(self) -> bool:
        """No error row, no violated budget, no regression against the baseline."""
        return (
            not self.errors
            and not self.violations
            and (self.comparison is None or self.comparison.passed)
        )

    def problems(self) -> str:
        """One line saying what failed (empty when everything passed)."""
        parts = []
        if self.errors:
            parts.append(f"{len(self.errors)} measurement(s) failed")
        if self.violations:
            parts.append(f"{len(self.violations)} budget check(s) violated")
        if self.comparison is not None and not self.comparison.passed:
            parts.append(self.comparison.summary())
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": BENCH_SCHEMA,
            "environment": self.environment,
            "results": [r.to_json() for r in self.rows],
            "budgets": [c.to_json() for c in self.budgets],
        }
        if self.comparison is not None:
            out["comparison"] = self.comparison.to_json()
        return out

    def table(self) -> str:
        """The console table, then the violated budgets and the baseline comparison."""
        parts = [rows_table(self.rows)]
        if self.violations:
            parts.append("budget violations:\n" + violations_table(self.budgets))
        elif self.budgets:
            parts.append(f"budgets: {len(self.budgets)} check(s) passed")
        if self.comparison is not None:
            parts.append(
                f"against the baseline (max regression {self.comparison.max_regression:g}%):\n"
                + self.comparison.table()
            )
        return "\n\n".join(parts)

    def markdown(self) -> str:
        env = self.environment
        where = f"{env['device']} ({env.get('host', '?')}): " if env.get("device") else ""
        parts = [
            "## edgekit bench",
            f"{where}{env.get('cpu', '?')}, {env.get('cores', '?')} cores, Python "
            f"{env.get('python', '?')}",
            rows_markdown(self.rows),
        ]
        if self.budgets:
            bad = self.violations
            if bad:
                from edgekit.tables import markdown_table, num

                parts.append(f"**{len(bad)} budget check(s) violated**")
                parts.append(
                    markdown_table(
                        ["budget", "artifact", "runtime", "threads", "batch", "value"],
                        [
                            [
                                c.budget.expr,
                                c.row.artifact,
                                c.row.runtime,
                                str(c.row.threads),
                                str(c.row.batch),
                                "not measured" if c.value is None else num(c.value),
                            ]
                            for c in bad
                        ],
                    )
                )
            else:
                parts.append(f"Budgets: all {len(self.budgets)} check(s) passed.")
        if self.comparison is not None:
            parts.append(
                f"Against the baseline (max regression {self.comparison.max_regression:g}%):"
            )
            parts.append(self.comparison.markdown())
        return "\n\n".join(parts) + "\n"


MAX_THREADS = 1024


def _positive(flag: str, values: Sequence[int]) -> list[int]:
    values = list(values)
    if not values:
        raise EdgekitError(f"{flag} needs at least one value")
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise EdgekitError(f"{flag} takes integers >= 1, got {v}")
        if flag == "--threads" and v > MAX_THREADS:  # runtimes crash or hang on absurd counts
            raise EdgekitError(f"--threads takes at most {MAX_THREADS}, got {v}")
    return list(dict.fromkeys(values))


def _names(text: str | Sequence[str]) -> list[str]:
    items = text.split(",") if isinstance(text, str) else list(text)
    return [s.strip() for s in items if s.strip()]


def parse_runtimes(runtime: str | Sequence[str]) -> tuple[set[str], bool]:
    """``auto`` or a comma list of runtimes -> (runtime set, whether it was explicit).

    ``auto`` picks the runtime by file type (tflite, onnxruntime); it combines with others,
    as in ``auto,c`` (the file types, plus the generated C of export directories).
    """
    # The runtimes bench can measure with (edgekit.runtime.RUNTIMES, without importing numpy
    # in this process: the parent stays light so the first child starts sooner).
    known = list(dict.fromkeys(RUNTIME_OF_FORMAT.values()))
    names = _names(runtime) or ["auto"]
    for name in names:
        if name != "auto" and name not in known:
            raise EdgekitError(f"unknown runtime {name!r}; choose from auto, {', '.join(known)}")
    if "auto" in names:
        return {"tflite", "onnxruntime", *names} - {"auto"}, False
    return set(names), True


def parse_devices(device: str | Sequence[str]) -> list[str]:
    """Local devices (``cpu``, ``gpu``) from ``--device``; see :func:`remote_device`."""
    names = _names(device) or ["cpu"]
    for name in names:
        if name not in DEVICES:
            raise EdgekitError(
                f"unknown device {name!r}; choose cpu, gpu, ssh://[user@]host[:port] or a "
                "device name from edgekit.toml"
            )
    return list(dict.fromkeys(names))


def remote_device(device: str | Sequence[str]):
    """The remote :class:`~edgekit.devices.Device` that ``--device`` names, or None.

    A remote device (``ssh://...`` or a configured NAME) is benched on its own, not in a list
    with other devices (each device run has its own environment block).
    """
    names = _names(device) or ["cpu"]
    remote = [n for n in names if n not in DEVICES]
    if not remote:
        return None
    if len(names) > 1:
        raise EdgekitError(
            f"--device {','.join(names)}: a remote device ({remote[0]}) is benched on its own; "
            "run bench once per device"
        )
    from edgekit.devices import resolve_device

    return resolve_device(remote[0])


def _row(target: Target, job: Job, measured: dict) -> BenchRow:
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
    for key in (
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
    ):
        if key in measured:
            setattr(row, key, measured[key])
    if row.status not in ("ok", "error", "skipped"):
        row.status, row.error = "error", f"the worker returned status {row.status!r}"
    return row


def combine_rounds(results: list[dict], *, batch: int) -> dict:
    """One row's measurements from several processes (``--repeat``) -> one result.

    Latency statistics are over the rounds' stored samples pooled, each round weighing the
    same; ``samples_ms`` keeps an equal segment per round (in order), which ``compare``
    resamples round by round. A failed round makes the row fail.
    """
    if len(results) == 1 or any(r.get("status") != "ok" for r in results):
        bad = [r for r in results if r.get("status") != "ok"]
        return bad[0] if bad else results[0]
    import statistics

    from edgekit.bench.stats import KEEP_SAMPLES, summarize, thin

    per = KEEP_SAMPLES // len(results)
    samples = [v for r in results for v in thin(r["samples_ms"], per).tolist()]
    lat = summarize(samples)
    out = dict(results[0])  # accuracy and parity come from the first round
    out.update(
        latency_ms=lat,
        throughput_per_s=batch * 1000.0 / lat["mean"] if lat["mean"] > 0 else None,
        init_ms=statistics.median(r["init_ms"] for r in results),
        first_ms=statistics.median(r["first_ms"] for r in results),
        peak_rss_mb=max((r.get("peak_rss_mb") or 0.0) for r in results) or None,
        runs=sum(r["runs"] for r in results),
        rounds=len(results),
        samples_ms=samples,
    )
    return out


def _likely_runtime(paths: Sequence[str | os.PathLike]) -> str | None:
    if not paths:
        return None
    return {".tflite": "tflite", ".onnx": "onnxruntime"}.get(Path(paths[0]).suffix.lower())


@dataclass
class _Plan:
    """Everything checked before measuring: the measurements to make and the gates."""

    jobs: list[tuple[Target, Job]]
    budgets: list
    baseline: list[BenchRow] | None


def _plan(
    paths, *, runtime, devices, threads, batch, warmup, runs, min_time, data, budgets, baseline,
    max_regression, timeout,
) -> _Plan:  # fmt: skip
    threads = _positive("--threads", threads)
    batch = _positive("--batch", batch)
    if not isinstance(warmup, int) or warmup < 0:
        raise EdgekitError(f"--warmup takes an integer >= 0, got {warmup}")
    if not isinstance(runs, int) or runs < 1:
        raise EdgekitError(f"--runs takes an integer >= 1, got {runs}")
    if not (timeout > 0):
        raise EdgekitError(f"--timeout takes seconds > 0, got {timeout}")
    if not (0 <= min_time < timeout / 2):
        raise EdgekitError(
            f"--min-time takes seconds >= 0 and below half the timeout ({timeout / 2:g} s), "
            f"got {min_time}"
        )
    runtimes, explicit = parse_runtimes(runtime)
    parsed = parse_budgets(budgets)
    base_rows = load_bench(baseline).rows if baseline is not None else None
    if not (max_regression >= 0):
        raise EdgekitError(f"--max-regression must be a percentage >= 0, got {max_regression}")

    targets = resolve_targets(paths, runtimes=runtimes, explicit_runtime=explicit, data=data)
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
                task=t.task,
            ),
        )
        for t in targets
        for d in devices
        for n in threads
        for b in batch
    ]
    if base_rows is not None:
        keys = {(t.artifact, t.variant, t.runtime, j.device, j.threads, j.batch) for t, j in jobs}
        if not keys & {r.key for r in base_rows}:
            raise EdgekitError(
                f"--baseline {baseline}: has no measurement in common with this run (rows are "
                "matched on artifact, variant, runtime, device, threads and batch)"
            )
    return _Plan(jobs=jobs, budgets=parsed, baseline=base_rows)


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
    on_row: Callable[[BenchRow, int, int], None] | None = None,
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
    """
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        raise EdgekitError(f"--repeat takes an integer >= 1, got {repeat}")
    remote = remote_device(device)
    if remote is not None:
        return _run_remote(
            paths, remote, runtime=runtime, threads=threads, batch=batch, warmup=warmup,
            runs=runs, min_time=min_time, repeat=repeat, data=data, budgets=budgets,
            baseline=baseline, max_regression=max_regression, timeout=timeout,
            remote_python=remote_python, ssh_options=ssh_options, on_row=on_row,
        )  # fmt: skip
    if remote_python is not None or ssh_options:
        flag = "--remote-python" if remote_python is not None else "--ssh-option"
        raise EdgekitError(
            f"{flag} applies to remote devices only (--device ssh://[user@]host[:port] or a "
            "device name from edgekit.toml)"
        )
    devices = parse_devices(device)
    with WorkerPool() as pool:
        # The first child starts up while this process reads manifests and checks data.
        pool.prestart(preload=_likely_runtime(paths))
        plan = _plan(
            paths, runtime=runtime, devices=devices, threads=threads, batch=batch,
            warmup=warmup, runs=runs, min_time=min_time, data=data, budgets=budgets,
            baseline=baseline, max_regression=max_regression, timeout=timeout,
        )  # fmt: skip
        # Rounds interleave in time: every row once, then every row again, ...
        measured: list[list[dict]] = [[] for _ in plan.jobs]
        rows = []
        for r in range(repeat):
            for i, (target, job) in enumerate(plan.jobs):
                if r and measured[i][0].get("status") != "ok":
                    continue  # failed or skipped: once is enough
                job.evaluate = r == 0
                result = pool.run(job, timeout=timeout)
                if "usage_error" in result:
                    raise EdgekitError(result["usage_error"])
                measured[i].append(result)
                if r == repeat - 1 or result.get("status") != "ok":
                    row = _row(target, job, combine_rounds(measured[i], batch=job.batch))
                    rows.append((i, row))
                    if on_row is not None:
                        on_row(row, len(rows) - 1, len(plan.jobs))
        rows = [row for _, row in sorted(rows, key=lambda item: item[0])]

    from edgekit.envinfo import environment

    return _finish(BenchResult(environment=environment(), rows=rows), plan, max_regression)


def _finish(result: BenchResult, plan: _Plan, max_regression: float) -> BenchResult:
    """Budgets and the baseline, checked here on the rows (measured here or on a device)."""
    result.budgets = check_budgets(plan.budgets, result.rows)
    if plan.baseline is not None:
        result.comparison = compare(plan.baseline, result.rows, max_regression=max_regression)
    return result


def _run_remote(
    paths, device, *, runtime, threads, batch, warmup, runs, min_time, repeat, data, budgets,
    baseline, max_regression, timeout, remote_python, ssh_options, on_row,
) -> BenchResult:  # fmt: skip
    """Check everything here, measure on ``device``, then apply the gates here."""
    from edgekit.devices import bench_remote, parse_ssh_option

    options = [o if isinstance(o, tuple) else parse_ssh_option(o) for o in ssh_options]
    if remote_python is not None and not str(remote_python).strip():
        raise EdgekitError("--remote-python needs a path (or a command name such as python3)")
    plan = _plan(
        paths, runtime=runtime, devices=[device.name], threads=threads, batch=batch,
        warmup=warmup, runs=runs, min_time=min_time, data=data, budgets=budgets,
        baseline=baseline, max_regression=max_regression, timeout=timeout,
    )  # fmt: skip
    targets = _unique_targets(plan)
    flags = [
        "--runtime", ",".join(dict.fromkeys(t.runtime for t in targets)),
        "--threads", ",".join(map(str, _positive("--threads", threads))),
        "--batch", ",".join(map(str, _positive("--batch", batch))),
        "--warmup", str(warmup), "--runs", str(runs), "--min-time", repr(float(min_time)),
        "--repeat", str(repeat), "--timeout", repr(float(timeout)),
    ]  # fmt: skip
    # The device enforces --timeout per measurement; this bounds the whole run on top.
    total = len(plan.jobs) * repeat * (timeout + 30.0) + 120.0
    environment, raw_rows = bench_remote(
        device, targets, flags=flags, data=data, python=remote_python, ssh_options=options,
        timeout=total,
    )  # fmt: skip
    rows = [
        BenchRow.from_json(r, where=f"{device.label}: results[{i}]") for i, r in enumerate(raw_rows)
    ]
    for i, row in enumerate(rows):
        if on_row is not None:
            on_row(row, i, len(rows))
    return _finish(BenchResult(environment=environment, rows=rows), plan, max_regression)


def _unique_targets(plan: _Plan) -> list[Target]:
    seen: dict[int, Target] = {}
    for target, _ in plan.jobs:
        seen.setdefault(id(target), target)
    return list(seen.values())


def write_outputs(
    result: BenchResult,
    *,
    json_path: str | os.PathLike | None = None,
    markdown_path: str | os.PathLike | None = None,
    step_summary: bool = True,
) -> list[Path]:
    """Write the JSON and markdown files atomically; append to ``$GITHUB_STEP_SUMMARY``."""
    from edgekit.fileio import atomic_write_json, atomic_write_text

    written = []
    for path, write in (
        (json_path, lambda p: atomic_write_json(p, result.to_json())),
        (markdown_path, lambda p: atomic_write_text(p, result.markdown())),
    ):
        if path is None:
            continue
        try:
            written.append(write(Path(path)))
        except OSError as err:
            raise EdgekitError(f"cannot write {path}: {err.strerror or err}") from err
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary and summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(result.markdown() + "\n")
        except OSError as err:
            raise EdgekitError(
                f"cannot append to $GITHUB_STEP_SUMMARY ({summary}): {err.strerror or err}"
            ) from err
    return written
