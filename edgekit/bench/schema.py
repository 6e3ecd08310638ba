"""The bench result schema (``edgekit.bench/1``): one row per measurement, and its JSON.

A row holds the contract's fields in the contract's order, plus some additions:
``accuracy_drop`` (reference accuracy minus this artifact's, in percentage points), ``runs``
(how many calls were timed), ``rounds`` (in how many processes, ``bench --repeat``), ``path``
(the artifact as given) and ``samples_ms`` (up to 2000 raw per-call latencies, evenly spaced
in time, one equal segment per round) that ``compare`` and ``report`` use, and ``unstable``
(``true`` when the latency spread is too large to trust one number: p95/p50 above 2 or
std/mean above 0.5; computed from ``latency_ms``, so a file read back is judged the same way).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.fileio import load_json

BENCH_SCHEMA = "edgekit.bench/1"
STATUSES = ("ok", "error", "skipped")
_NUMBERS = ("size_bytes", "init_ms", "first_ms", "throughput_per_s", "peak_rss_mb",
            "max_abs_diff", "accuracy_drop", "runs", "arena_bytes",
            "instructions_per_inference", "cycles_per_inference", "clock_hz")  # fmt: skip
# Fields only some runtimes and devices measure: in a row's JSON only when set.
OPTIONAL_FIELDS = ("arena_bytes", "instructions_per_inference", "instructions",
                   "cycles_per_inference", "cycles", "cycles_source", "emulated", "clock_hz",
                   "latency_source")  # fmt: skip
_LATENCY_METRICS = ("min_ms", "mean_ms", "std_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
MAX_TAIL_RATIO = 2.0  # p95 / p50 above this: unstable
MAX_CV = 0.5  # std / mean of the calls up to p99 above this: unstable


def spread_is_large(
    latency_ms: dict[str, float] | None, samples_ms: list[float] | None = None
) -> bool:
    """Whether a latency distribution is too spread out to trust its median alone: p95/p50
    above :data:`MAX_TAIL_RATIO`, or std/mean above :data:`MAX_CV` over the calls up to p99
    (``samples_ms``; without them, the whole distribution's). The slowest 1% is left out of
    std/mean: one call the scheduler preempted for 0.1 ms among thousands of 5 µs calls made
    std/mean 0.55 and every row "unstable"."""
    lat = latency_ms or {}
    p50, p95, mean, std = (lat.get(k) for k in ("p50", "p95", "mean", "std"))
    tail = p50 is not None and p95 is not None and p50 > 0 and p95 / p50 > MAX_TAIL_RATIO
    p99 = lat.get("p99")
    if samples_ms and p99 is not None:
        kept = [v for v in samples_ms if v <= p99]
        mean = sum(kept) / len(kept)
        std = (sum((v - mean) ** 2 for v in kept) / len(kept)) ** 0.5
    cv = mean is not None and std is not None and mean > 0 and std / mean > MAX_CV
    return bool(tail or cv)


@dataclass
class BenchRow:
    """One (artifact, runtime, device, threads, batch) measurement."""

    artifact: str
    format: str
    variant: str
    runtime: str
    device: str
    threads: int
    batch: int
    status: str = "ok"
    error: str | None = None
    size_bytes: int = 0
    init_ms: float | None = None
    first_ms: float | None = None
    latency_ms: dict[str, float] | None = None
    throughput_per_s: float | None = None
    peak_rss_mb: float | None = None
    metrics: dict[str, float] | None = None
    max_abs_diff: float | None = None
    accuracy_drop: float | None = None
    runs: int = 0
    rounds: int = 1
    # --runtime tflm: the smallest arena the tflite-micro interpreter accepts (bytes)
    arena_bytes: int | None = None
    # --device qemu:CORE: exact instructions per inference (the mean over the traced
    # samples, rounded), their {min, mean, max, samples}, and the clock the latency
    # fields are derived at (emulated: true)
    instructions_per_inference: int | None = None
    instructions: dict[str, float] | None = None
    # the same traced inferences in Cortex-M4 cycles, from the processor manual's instruction
    # timings (an estimate from an exact trace: zero wait states; cycles_source says how)
    cycles_per_inference: int | None = None
    cycles: dict[str, float] | None = None
    cycles_source: str | None = None
    emulated: bool | None = None
    clock_hz: int | None = None
    # where latency_ms comes from when it is not a measurement on the row's device:
    # "host" (tflm: this machine's CPU), or how an emulated figure was derived
    latency_source: str | None = None
    path: str = ""
    samples_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def key(self) -> tuple:
        """What identifies a measurement across runs (``compare`` matches on it)."""
        return (self.artifact, self.variant, self.runtime, self.device, self.threads, self.batch)

    @property
    def label(self) -> str:
        return (
            f"{self.artifact} [{self.runtime}, {self.device}, threads={self.threads}, "
            f"batch={self.batch}]"
        )

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def unstable(self) -> bool:
        """A measured row whose latency spread is large (see :func:`spread_is_large`)."""
        return self.ok and spread_is_large(self.latency_ms, self.samples_ms)

    def value(self, metric: str) -> float | None:
        """A budget metric of this row (``p95_ms``, ``size_kb``, ``accuracy``, ...)."""
        if metric in _LATENCY_METRICS:
            return (self.latency_ms or {}).get(metric[: -len("_ms")])
        if metric == "size_kb":
            return self.size_bytes / 1024.0
        if metric in ("accuracy", "mae", "rmse"):
            return (self.metrics or {}).get(metric)
        if metric == "arena_kb":
            return None if self.arena_bytes is None else self.arena_bytes / 1024.0
        return getattr(self, metric, None)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in OPTIONAL_FIELDS:
            if out[key] is None:
                del out[key]
        samples = out.pop("samples_ms")
        out["unstable"] = self.unstable
        out["samples_ms"] = samples  # the long list last
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any], *, where: str = "result") -> BenchRow:
        """A row from a bench JSON file; a malformed row is a one-line user error."""
        if not isinstance(obj, dict):
            raise EdgekitError(f"{where}: expected an object")
        for key in ("artifact", "runtime", "device", "threads", "batch"):
            if key not in obj:
                raise EdgekitError(f"{where}: missing field {key!r}")
        for key in ("threads", "batch", "rounds"):
            if key in obj and (
                not isinstance(obj[key], int) or isinstance(obj[key], bool) or obj[key] < 1
            ):
                raise EdgekitError(f"{where}: {key!r} must be an integer >= 1")
        for key in ("latency_ms", "metrics", "instructions", "cycles"):
            value = obj.get(key)
            if value is not None and (
                not isinstance(value, dict) or not all(_finite(v) for v in value.values())
            ):
                raise EdgekitError(f"{where}: {key!r} must map names to numbers")
        if any(v < 0 for v in (obj.get("latency_ms") or {}).values()):
            raise EdgekitError(f"{where}: 'latency_ms' holds a negative latency")
        if not isinstance(obj.get("samples_ms") or [], list):
            raise EdgekitError(f"{where}: 'samples_ms' must be a list of numbers")
        for key in _NUMBERS:
            if obj.get(key) is not None and not _finite(obj[key]):
                raise EdgekitError(f"{where}: {key!r} must be a number")
        if obj.get("emulated") is not None and not isinstance(obj["emulated"], bool):
            raise EdgekitError(f"{where}: 'emulated' must be true or false")
        for key in ("artifact", "format", "variant", "runtime", "device", "status", "error",
                    "latency_source", "cycles_source"):  # fmt: skip
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise EdgekitError(f"{where}: {key!r} must be a string")
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in obj.items() if k in names}
        kwargs["format"] = str(obj.get("format") or "")
        kwargs["variant"] = str(obj.get("variant") or obj["artifact"])
        kwargs["samples_ms"] = [
            float(v) for v in (obj.get("samples_ms") or []) if _finite(v) and v >= 0
        ]
        row = cls(**kwargs)
        if row.status not in STATUSES:
            raise EdgekitError(
                f"{where}: status {row.status!r} is not one of {', '.join(STATUSES)}"
            )
        return row


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass
class BenchFile:
    """A bench JSON file read back: its environment and rows."""

    path: Path
    environment: dict[str, Any]
    rows: list[BenchRow]


def load_bench(path: str | os.PathLike) -> BenchFile:
    """Read a bench JSON file (``edgekit.bench/1``); every problem is a one-line user error."""
    path = Path(path)
    obj = load_json(path, what="bench JSON file")
    if not isinstance(obj, dict) or obj.get("schema") != BENCH_SCHEMA:
        raise EdgekitError(f"{path}: not an edgekit bench file (schema {BENCH_SCHEMA} expected)")
    results = obj.get("results")
    if not isinstance(results, list):
        raise EdgekitError(f"{path}: 'results' must be a list")
    rows = []
    for i, item in enumerate(results):
        rows.append(BenchRow.from_json(item, where=f"{path}: results[{i}]"))
    env = obj.get("environment")
    return BenchFile(path=path, environment=env if isinstance(env, dict) else {}, rows=rows)
