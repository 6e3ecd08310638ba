"""One measurement, in the current process: load, time, evaluate.

This is what the child process of :mod:`edgekit.bench.worker` runs. The timing loop holds
nothing but ``perf_counter_ns()`` around the runtime call (``runner.bind(feed)``, which is
``runner.call(feed)`` without Python's call overhead): inputs are checked, quantized and (for
TFLite) resized beforehand by ``runner.prepare``, the garbage collector is paused, and the
bookkeeping happens outside the timed interval. A runner with ``time_native`` (the ``c``
runtime) runs the same loop natively, ``clock_gettime`` around each call in C; one with
``build`` (compiling) builds before the ``init_ms`` clock starts.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
import time
from typing import Any

import numpy as np

from edgekit.bench.job import LIMIT_LINE, Job
from edgekit.bench.stats import summarize, thin, throughput
from edgekit.errors import EdgekitError, MissingExtraError
from edgekit.runtime import RuntimeUnavailable, open_runner

# The module each runtime loads; imported before the init clock starts, so ``init_ms`` is the
# model's load + allocate and not Python's import of the runtime.
_BACKENDS = {
    "tflite": "ai_edge_litert.interpreter",
    "onnxruntime": "onnxruntime",
    "keras": "tensorflow",
}
MAX_SAMPLES = 100_000
EVAL_BATCH_BYTES = 64 << 20  # activations per evaluation call (accuracy on --data), at most
# --memory-limit auto: what a measurement may add to the worker's memory once its runtime is
# imported and its test data read: a floor, and a multiple of the model's and the data's size.
AUTO_FLOOR_BYTES = 384 << 20
AUTO_PER_MODEL_BYTE = 3
AUTO_PER_DATA_BYTE = 2
GPU_FLOOR_BYTES = 4096 << 20  # --device gpu: the limit is never below this


class UsageError(EdgekitError):
    """The job's input does not fit the model (bench stops with exit 2, not an error row)."""


def preload(runtime: str) -> None:
    """Import a runtime's module ahead of its job (a hint; failures are left to the job)."""
    module = _BACKENDS.get(runtime)
    if module and module != "tensorflow":
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def _describe(err: BaseException) -> str:
    first_line = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first_line}" if first_line else type(err).__name__


def _ms(ns: int) -> float:
    return ns / 1e6


def peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)


def infer_task(outputs: np.ndarray, y: np.ndarray | None) -> str:
    """Task from the output width: 1 column -> binary (0/1 labels) or regression."""
    width = int(np.prod(outputs.shape[1:])) if outputs.ndim > 1 else 1
    if width > 1:
        return "multiclass"
    if (
        y is not None
        and y.size
        and np.issubdtype(y.dtype, np.integer)
        and set(np.unique(y)) <= {0, 1}
    ):
        return "binary"
    return "regression"


def time_calls(run, *, runs: int, min_time: float, max_time: float) -> list[int]:
    """Per-call nanoseconds: at least ``runs`` calls and ``min_time`` s, at most the caps."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    start = clock()
    soft = start + int(min_time * 1e9)
    hard = start + int(max_time * 1e9)
    n = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            t0 = clock()
            run()
            t1 = clock()
            append(t1 - t0)
            n += 1
            if (n >= runs and t1 >= soft) or n >= MAX_SAMPLES or t1 >= hard:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def _timing_batch(runner, x: np.ndarray | None, batch: int, seed: int) -> np.ndarray:
    """``batch`` rows of the test data (repeated if it has fewer), or seeded noise."""
    if x is not None and len(x):
        reps = -(-batch // len(x))
        return np.concatenate([x] * reps)[:batch] if reps > 1 else x[:batch]
    shape = [batch, *[d if d > 0 else 1 for d in runner.input.shape[1:]]]
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _load_csv(job: Job) -> tuple[np.ndarray, np.ndarray | None]:
    """A ``.csv``'s feature columns (float32) and label column, as the parent chose them."""
    from edgekit.formats.csv_table import label_values, read_csv_table

    assert job.data is not None and job.columns is not None
    try:
        table = read_csv_table(job.data)
        x = np.asarray(table.floats(job.columns), dtype=np.float32)
        y = None
        if job.label is not None:
            y = np.asarray(label_values(table, job.label, job.label_names))
    except EdgekitError as err:  # changed since the parent read it
        raise UsageError(str(err)) from err
    return x, y


def _load_data(job: Job) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    if not job.data:
        return None, None, None
    if job.columns is not None:
        x, y = _load_csv(job)
        return x, y, None
    from edgekit.formats.npz import load_npz

    try:
        arrays = load_npz(job.data)
    except EdgekitError as err:  # the parent read only the headers; the arrays are bad
        raise UsageError(str(err)) from err
    x = arrays[job.x_key]
    y = arrays.get(job.y_key) if job.y_key else None
    ref = arrays.get(job.reference_key) if job.reference_key else None
    # What the parent cannot see in the headers: the values (the model takes float32).
    if x.dtype.kind not in "iufb":
        raise UsageError(f"{job.data}: '{job.x_key}' must hold real numbers, got {x.dtype.name}")
    with np.errstate(over="ignore"):
        finite = np.all(np.isfinite(x.astype(np.float32, copy=False)))
    if not finite:
        raise UsageError(f"{job.data}: '{job.x_key}' contains NaN or inf")
    if y is not None:
        if y.ndim != 1:
            raise UsageError(
                f"{job.data}: '{job.y_key}' must hold one label or target per sample, "
                f"got shape {list(y.shape)}"
            )
        if not np.all(np.isfinite(y)):
            raise UsageError(f"{job.data}: '{job.y_key}' contains NaN or inf")
    return x, y, ref


def _as_input_shape(x: np.ndarray, shape: list[int]) -> np.ndarray:
    """Flat features (a CSV's columns) in the model's sample shape, when the counts agree."""
    want = [d for d in shape[1:]]
    if (
        x.ndim == 2
        and len(want) > 1
        and all(d > 0 for d in want)
        and int(np.prod(want)) == x.shape[1]
    ):
        return x.reshape(len(x), *want)
    return x


def _check_sha256(job: Job) -> None:
    """The file must still be the one the parent checked against the manifest."""
    from edgekit.fileio import sha256_file

    try:
        digest = sha256_file(job.path)
    except OSError as err:
        raise UsageError(f"{job.path}: cannot read it ({err.strerror or err})") from err
    if digest != job.sha256:
        raise UsageError(
            f"{job.path}: the file changed since export (its sha256 is not the one its "
            "manifest records); restore it or export again"
        )


def auto_allowance(job: Job, x: np.ndarray | None) -> int:
    """``--memory-limit auto``: the bytes a measurement may add (see :data:`AUTO_FLOOR_BYTES`)."""
    from edgekit.formats.sizes import artifact_bytes

    try:
        model = artifact_bytes(job.path)
    except (OSError, EdgekitError):
        model = 0  # the runner names what is wrong with the file
    data = int(x.nbytes) if x is not None else 0
    return AUTO_FLOOR_BYTES + AUTO_PER_MODEL_BYTE * model + AUTO_PER_DATA_BYTE * data


def _limit_memory(job: Job, x: np.ndarray | None, auto: bool) -> None:
    """Put the worker under its limit for good (``auto``: its memory now plus
    :func:`auto_allowance`) and say on stderr which limit is in force."""
    from edgekit.isolation import limit_private_memory, private_bytes

    if auto:
        allowance = auto_allowance(job, x)
        if job.device == "gpu":  # CUDA's own host memory: never less than the old 4 GiB default
            allowance = max(allowance, GPU_FLOOR_BYTES - (private_bytes() or 0))
        limit_private_memory(allowance)
    limit = _data_limit()
    if limit is not None:
        print(f"{LIMIT_LINE}{limit >> 20} MiB", file=sys.stderr, flush=True)


def _data_limit() -> int | None:
    """This process's ``RLIMIT_DATA`` in bytes (None: none, or not known here)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft = resource.getrlimit(resource.RLIMIT_DATA)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def _activations_fit(job: Job, runner, x: np.ndarray | None) -> str | None:
    """A ``.tflite``'s activations at the job's batch against the memory limit: why they do
    not fit (None: they do, or nothing is known); the evaluation batch shrinks to fit."""
    from edgekit.formats.sizes import human_bytes
    from edgekit.formats.tflite_graph import activation_bytes
    from edgekit.isolation import private_bytes

    limit, now = _data_limit(), private_bytes()
    if job.runtime != "tflite" or limit is None or now is None:
        return None
    room = limit - now
    need = activation_bytes(job.path, batch=job.batch)
    if need > room:
        return (
            f"its activations need {human_bytes(need)} at once at batch {job.batch}, more "
            f"than the memory limit of {limit >> 20} MiB leaves free ({human_bytes(max(room, 0))}"
            "); raise it with --memory-limit, or use a smaller --batch"
        )
    if x is not None and job.evaluate and job.eval_batch > job.batch:
        # Evaluation is not timed: a call's activations need not take all the room there is.
        budget = min(room, EVAL_BATCH_BYTES)
        while (
            job.eval_batch > job.batch and activation_bytes(job.path, batch=job.eval_batch) > budget
        ):
            job.eval_batch = max(job.batch, job.eval_batch // 2)
    return None


def measure(job: Job, *, auto_limit: bool = False) -> dict[str, Any]:
    """Measure one job; returns the measured fields of a bench row (``status`` and all).

    ``auto_limit`` (``--memory-limit auto``): once the runtime is imported and the data read,
    the worker may add at most :func:`auto_allowance` to its memory.
    """
    if job.device.startswith("qemu:"):
        return _measure_emulated(job)
    result = _measure(job, auto_limit)
    if result.get("status") == "error" and job.runtime in ("tflite", "tflm"):
        result["error"] = _maybe_memory(str(result.get("error") or ""))
    return result


def _maybe_memory(error: str) -> str:
    """LiteRT loses the reason of a failed allocation; under a memory limit, say so."""
    from edgekit.isolation import is_out_of_memory, litert_note, litert_silent

    limit = _data_limit()
    if limit is None or is_out_of_memory(error) or not litert_silent(error):
        return error
    return f"{error}; {litert_note(limit)} (raise it with --memory-limit)"


def _measure(job: Job, auto_limit: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "ok", "error": None}
    backend = _BACKENDS.get(job.runtime)
    if backend:
        try:
            if backend == "tensorflow":
                from edgekit._lazy import require

                require(backend)
            else:
                importlib.import_module(backend)
        except (ImportError, MissingExtraError) as err:
            if "cannot allocate memory" in str(err).lower():  # under the worker's memory limit
                raise MemoryError(str(err)) from err
            package = backend.split(".")[0].replace("_", "-")
            # edgekit's extra by path: the package index's "edgekit" is an unrelated project
            extra = "'.[train]' in edgekit's source tree" if backend == "tensorflow" else package
            return {
                "status": "skipped",
                "error": f"the {job.runtime} runtime needs {package}, which is not installed "
                f"here (pip install {extra})",
            }
    x, y, ref = _load_data(job)
    if job.sha256 is not None:
        _check_sha256(job)

    clock = time.perf_counter_ns
    runner = open_runner(job.path, runtime=job.runtime, threads=job.threads, device=job.device)
    build = getattr(runner, "build", None)  # compiled runtimes (c): ahead of time, not init_ms
    try:
        if build is not None:
            build()
        _limit_memory(job, x, auto_limit)
        t0 = clock()
        runner.__enter__()
    except RuntimeUnavailable as err:
        runner.close()
        return {"status": "skipped", "error": str(err)}
    except EdgekitError as err:
        runner.close()
        return {"status": "error", "error": str(err)}
    except Exception as err:  # a runtime's own exception types
        runner.close()
        return {"status": "error", "error": _describe(err)}
    load_ns = clock() - t0
    if getattr(runner, "size_bytes", None) is not None:
        out["size_bytes"] = runner.size_bytes
    arena = getattr(runner, "arena_bytes", None)
    if arena is not None:  # tflm: measured in build()
        out["arena_bytes"] = arena
    if job.runtime == "tflm":
        out["latency_source"] = "host"  # TFLM's kernels on this machine, not a device figure
    try:
        if x is not None:
            x = _as_input_shape(x, runner.input.shape)
            try:
                x = runner.check_features(x)
            except EdgekitError as err:
                want = ", ".join(str(d) for d in runner.input.shape[1:])
                raise UsageError(
                    f"{job.data}: '{job.x_key}' has samples of shape {list(x.shape[1:])}, "
                    f"{os.path.basename(job.path)} takes [batch, {want}]"
                ) from err
        too_big = _activations_fit(job, runner, x)
        if too_big is not None:
            return {"status": "error", "error": f"{os.path.basename(job.path)}: {too_big}"}
        x_time = _timing_batch(runner, x, job.batch, job.seed)
        t0 = clock()
        feed = runner.prepare(x_time)
        out["init_ms"] = _ms(load_ns + clock() - t0)

        t0 = clock()
        raw = runner.call(feed)
        out["first_ms"] = _ms(clock() - t0)
        first = runner.finish(raw)
        if len(first) != job.batch:
            raise EdgekitError(f"the model returned {len(first)} rows for a batch of {job.batch}")
        native = getattr(runner, "time_native", None)
        if native is not None:  # the c runtime times its own calls, in C
            ns = native(
                feed, warmup=job.warmup, runs=job.runs, min_time=job.min_time,
                max_time=job.max_time, max_samples=MAX_SAMPLES,
            )  # fmt: skip
        else:
            run = runner.bind(feed)  # == runner.call(feed), minus Python call overhead
            for _ in range(job.warmup):
                run()
            ns = time_calls(run, runs=job.runs, min_time=job.min_time, max_time=job.max_time)
        samples = np.asarray(ns, dtype=np.float64) / 1e6
        lat = summarize(samples)
        out["latency_ms"] = lat
        out["throughput_per_s"] = throughput(lat, job.batch)
        out["runs"] = int(samples.size)
        out["samples_ms"] = [round(float(v), 6) for v in thin(samples)]
        out["peak_rss_mb"] = peak_rss_mb()

        if x is not None and job.evaluate:
            outputs = runner.infer_batched(x, batch=job.eval_batch)
            out.update(_quality(job, outputs, y, ref))
    except UsageError:
        raise
    except RuntimeUnavailable as err:
        return {"status": "skipped", "error": str(err)}
    except EdgekitError as err:
        return {"status": "error", "error": str(err)}
    except Exception as err:  # the runtime failed while running: an error row, not a crash
        return {"status": "error", "error": _describe(err)}
    finally:
        runner.close()
    return out


def _measure_emulated(job: Job) -> dict[str, Any]:
    """The generated C on an emulated core (``--device qemu:CORE``): outputs checked against
    the host's C on the whole test set, exact instruction counts, latency derived from them
    at the catalog clock (``emulated: true``)."""
    from edgekit.devices.qemu import (
        TRACE_SAMPLES,
        catalog_clock_hz,
        run_on_qemu,
        summarize_counts,
        tools_missing,
    )

    if job.runtime != "c":
        return {"status": "skipped", "error": f"{job.device} runs the generated C only"}
    if job.threads != 1 or job.batch != 1:
        return {
            "status": "skipped",
            "error": f"{job.device} runs one sample per call on one thread; threads=1 and "
            "batch=1 only",
        }
    missing = tools_missing()
    if missing:
        return {"status": "skipped", "error": missing}
    x, y, ref = _load_data(job)
    from edgekit.runtime.c import CRunner

    host = CRunner(job.path, threads=1, device="cpu")
    try:
        host.build()  # checks the C against the manifest's sha256 and compiles it for here
        host.__enter__()
        if x is None:  # no test data: seeded noise, for the counts
            x = _timing_batch(host, None, TRACE_SAMPLES, job.seed)
        x = host.check_features(_as_input_shape(x, host.input.shape))
        expected = host.infer_batched(x, batch=job.eval_batch)
        variant = getattr(host, "variant", "")
    except RuntimeUnavailable as err:
        return {"status": "skipped", "error": str(err)}
    except EdgekitError as err:
        return {"status": "error", "error": str(err)}
    finally:
        host.close()
    flat = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
    try:
        run = run_on_qemu(job.path, flat, device=job.device, timeout=job.max_time)
    except RuntimeUnavailable as err:
        return {"status": "skipped", "error": str(err)}
    except EdgekitError as err:
        return {"status": "error", "error": str(err)}
    outputs = run.outputs.reshape(expected.shape)
    # int8: the same integer code, so bit for bit; float: libm may differ in the last bits
    if variant == "int8":
        differ = np.any(outputs.view(np.uint32) != expected.view(np.uint32), axis=tuple(
            range(1, outputs.ndim)))  # fmt: skip
    else:
        differ = np.any(np.abs(outputs - expected) > 1e-6, axis=tuple(range(1, outputs.ndim)))
    if np.any(differ):
        worst = float(np.max(np.abs(outputs - expected)))
        return {
            "status": "error",
            "error": f"on {job.device} the C's outputs differ from this host's on "
            f"{int(np.sum(differ))} of {len(x)} samples (max |diff| {worst:.3g})",
        }
    clock_hz, _ = catalog_clock_hz(job.device)
    counts = run.instructions
    samples = np.asarray(counts, dtype=np.float64) / clock_hz * 1e3
    lat = summarize(samples)
    out: dict[str, Any] = {
        "status": "ok",
        "error": None,
        "size_bytes": run.flash_bytes or 0,
        "latency_ms": lat,
        "throughput_per_s": throughput(lat, 1),
        "runs": len(counts),
        "samples_ms": [round(float(v), 6) for v in thin(samples)],
        "instructions_per_inference": round(sum(counts) / len(counts)),
        "instructions": summarize_counts(counts),
        "emulated": True,
        "clock_hz": clock_hz,
        "latency_source": f"emulated: instructions per inference at the catalog clock "
        f"({clock_hz / 1e6:g} MHz), one instruction per cycle, no wait states",
    }
    if run.cycles:  # a board with a cycle model (the Cortex-M4's)
        from edgekit.devices.m4_timing import SOURCE

        out["cycles_per_inference"] = round(sum(run.cycles) / len(run.cycles))
        out["cycles"] = summarize_counts(run.cycles)
        out["cycles_source"] = SOURCE
    if job.evaluate:
        out.update(_quality(job, outputs, y, ref))
    return out


def _quality(job, outputs, y, ref) -> dict[str, Any]:
    """The task, the metrics and accuracy drop (with labels) and the max |diff| against the
    reference outputs, of one measured row's ``outputs``."""
    task = job.task or infer_task(outputs, y)
    out: dict[str, Any] = {"task": task}
    if y is not None:
        from edgekit.metrics import accuracy_drop, task_metrics

        out["metrics"] = task_metrics(outputs, y, task)
        if ref is not None and len(ref) == len(y):
            out["accuracy_drop"] = accuracy_drop(task_metrics(ref, y, task), out["metrics"])
    if ref is not None and ref.size == outputs.size and len(ref) == len(outputs):
        from edgekit.metrics import max_abs_diff

        out["max_abs_diff"] = max_abs_diff(outputs, ref)
    return out
