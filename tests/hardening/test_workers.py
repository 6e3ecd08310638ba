"""Bench workers: a memory limit on each, and none outlives its parent (issue 13, 4 and 11).

Every measuring child runs under ``RLIMIT_DATA`` (``--memory-limit``; by default ``auto``: what
the worker holds once its runtime is loaded, plus an allowance); one that needs more is an
error row that says so. A child dies with its parent even when the parent is killed outright:
``PR_SET_PDEATHSIG`` on Linux, and the worker watches its stdin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgekit.bench import run_bench
from edgekit.bench.isolate import (
    DEFAULT_MEMORY_LIMIT_MB,
    WorkerPool,
    check_memory_limit,
    memory_error,
    worker_command,
)
from edgekit.bench.job import Job
from edgekit.bench.worker import ORPHANED
from edgekit.errors import EdgekitError
from tests.conftest import cli

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RLIMIT_DATA and PR_SET_PDEATHSIG: Linux"
)
QUICK = dict(warmup=1, runs=5, min_time=0.0)
FAST = ["--warmup", "1", "--runs", "5", "--min-time", "0"]
JOB = Job(path="x.tflite", runtime="tflite")


def child(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


@pytest.mark.parametrize(("value", "limit"), [(0, None), (None, None), (64, 64), (4096, 4096),
                                              (100_000, 100_000), ("auto", "auto")])  # fmt: skip
def test_memory_limit_values(value, limit):
    assert check_memory_limit(value) == limit


@pytest.mark.parametrize("value", [-1, 1, 63, 2**40, True, 1.5, "4096", "Auto"])
def test_bad_memory_limits(value):
    with pytest.raises(EdgekitError) as err:
        check_memory_limit(value)
    assert (
        str(err.value) == f"--memory-limit takes auto, or MiB >= 64 (0 for no limit), got {value}"
    )


@pytest.mark.parametrize("limit", [64, 256, 1000, 4096])
def test_the_child_runs_under_the_limit(limit):
    report = child("""
        import json, resource, sys
        sys.stdin.readline()
        print(json.dumps({"status": "ok", "error": None,
                          "limit": resource.getrlimit(resource.RLIMIT_DATA)}))
    """)
    with WorkerPool(report, memory_limit_mb=limit) as pool:
        result = pool.run(JOB, timeout=30)
    assert result["limit"] == [limit << 20, limit << 20]  # soft and hard: it cannot raise it


def test_no_limit_when_asked():
    report = child("""
        import json, resource, sys
        sys.stdin.readline()
        print(json.dumps({"status": "ok", "limit": resource.getrlimit(resource.RLIMIT_DATA)}))
    """)
    with WorkerPool(report, memory_limit_mb=0) as pool:
        assert pool.run(JOB, timeout=30)["limit"] == list(
            __import__("resource").getrlimit(__import__("resource").RLIMIT_DATA)
        )


ALLOCATIONS = {
    "bytes": "b'x' * (1 << 30)",
    "bytearray": "bytearray(1 << 30)",
    "numpy": "__import__('numpy').ones(1 << 28)",
    "list": "list(range(1 << 27))",
    "caught-and-reported": None,
}


@pytest.mark.parametrize("how", ALLOCATIONS)
@pytest.mark.parametrize("limit", [128, 256])
def test_running_out_of_the_limit_is_an_error_row(how, limit):
    if ALLOCATIONS[how] is None:  # a worker that caught MemoryError and reported it
        code = """
            import json, sys
            sys.stdin.readline()
            try:
                bytearray(1 << 31)
            except MemoryError as err:
                print(json.dumps({"status": "error", "error": "MemoryError: " + str(err)}))
        """
    else:
        code = f"import sys; sys.stdin.readline(); {ALLOCATIONS[how]}"
    with WorkerPool(child(code), memory_limit_mb=limit) as pool:
        result = pool.run(JOB, timeout=60)
    assert result == {"status": "error", "error": memory_error(limit)}
    assert memory_error(limit) == (
        f"worker exceeded the memory limit of {limit} MiB (raise it with --memory-limit)"
    )


def test_other_failures_keep_their_message():
    fail = child("import sys; sys.stdin.readline(); sys.exit('boom: not memory')")
    with WorkerPool(fail, memory_limit_mb=128) as pool:
        assert pool.run(JOB, timeout=30)["error"] == (
            "the worker exited with code 1: boom: not memory"
        )


def test_a_real_measurement_over_the_limit(export_dir):
    """A batch of 4 million digits (1 GiB of input) in a worker limited to 256 MiB: the ONNX
    model runs out of it; the .tflite's activations at that batch are refused before."""
    result = run_bench([export_dir / "model.float32.onnx", export_dir / "model.float32.tflite"],
                       batch=[4_000_000], memory_limit_mb=256, **QUICK)  # fmt: skip
    onnx, tflite = result.rows
    assert (onnx.status, onnx.error) == ("error", memory_error(256))
    assert tflite.status == "error"
    assert tflite.error.startswith(
        "model.float32.tflite: its activations need 2.1 GiB at once at batch 4000000, more "
        "than the memory limit of 256 MiB leaves free ("
    )
    assert tflite.error.endswith("); raise it with --memory-limit, or use a smaller --batch")
    assert not result.passed


def test_the_cli_flag(export_dir):
    code, out, _ = cli("bench", str(export_dir / "model.float32.onnx"), "--batch", "4000000",
                         "--memory-limit", "200", *FAST)  # fmt: skip
    assert code == 1
    assert "worker exceeded the memory limit of 200 MiB (raise it with --memory-limit)" in out
    code, out, _ = cli("bench", "--help")
    assert "--memory-limit" in out and "RLIMIT_DATA" in out and "--allow-failed" in out
    assert "auto|MIB" in out and "[default: auto]" in out


@pytest.mark.parametrize("runtime", ["tflite", "onnxruntime", "keras"])
@pytest.mark.parametrize("limit", [DEFAULT_MEMORY_LIMIT_MB, 4096, 1024])
def test_the_runtimes_start_under_the_limit(export_dir, runtime, limit):
    """TensorFlow, onnxruntime and LiteRT reserve large address ranges; RLIMIT_DATA counts
    what they write (measured: at most 480 MB, for TensorFlow)."""
    result = run_bench([export_dir], runtime=runtime, threads=[1, 2], memory_limit_mb=limit,
                       **QUICK)  # fmt: skip
    assert result.rows and all(r.status == "ok" for r in result.rows), [
        r.error for r in result.rows
    ]
    assert all(r.peak_rss_mb < (limit if isinstance(limit, int) else 1024) for r in result.rows)


# --- workers die with their parent ------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


PARENT = """
import json, sys, time
from edgekit.bench.isolate import WorkerPool
from edgekit.bench.job import Job
command = json.loads(sys.argv[1]) or None
pool = WorkerPool(command)
proc = pool._spawn()
print(proc.pid, flush=True)
pool._spare = proc
pool.run(Job(**json.loads(sys.argv[2])), timeout=300)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
@pytest.mark.parametrize("worker", ["sleeper", "real-worker"])
def test_a_killed_parent_takes_its_worker_along(export_dir, tmp_path, sig, worker):
    job = Job(path=str(export_dir / "model.int8.tflite"), runtime="tflite", warmup=10**9,
              runs=1, min_time=0.0, max_time=600)  # fmt: skip
    command = (
        child("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
              "time.sleep(300)") if worker == "sleeper" else []
    )  # fmt: skip
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, json.dumps(command), json.dumps(job.to_json())],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    try:
        pid = int(parent.stdout.readline())
        time.sleep(1.0 if worker == "real-worker" else 0.3)  # measuring (or sleeping)
        assert _alive(pid)
        parent.send_signal(sig)
        parent.wait(timeout=30)
        assert _wait_gone(pid), "the worker outlived its parent"
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.parametrize("close", ["stdin", "nothing"])
def test_the_worker_watches_its_stdin(export_dir, close):
    """Without the death signal (a worker started by hand): the end of stdin ends it."""
    job = Job(path=str(export_dir / "model.int8.tflite"), runtime="tflite", warmup=10**9,
              runs=1, min_time=0.0, max_time=600)  # fmt: skip
    proc = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        proc.stdin.write(json.dumps({**job.to_json(), "watch_stdin": True}) + "\n")
        proc.stdin.flush()
        time.sleep(1.0)
        assert proc.poll() is None  # measuring
        if close == "stdin":
            proc.stdin.close()
            assert proc.wait(timeout=10) == ORPHANED
            assert proc.stdout.read() == ""  # no result for nobody
        else:
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
    finally:
        proc.kill()
        proc.wait()


def test_a_spare_worker_exits_when_its_stdin_closes():
    proc = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0
    proc.stdout.close()


@pytest.mark.parametrize("layout", ["one-line", "pretty"])
def test_a_job_given_by_hand_on_stdin_still_runs(export_dir, layout):
    """``python -m edgekit.bench.worker < job.json``: stdin ends after the job, which is not
    a dead parent (no ``watch_stdin``), in one line or over several."""
    job = Job(path=str(export_dir / "model.int8.tflite"), runtime="tflite", runs=3,
              min_time=0.0, warmup=1)  # fmt: skip
    text = json.dumps(job.to_json(), indent=2 if layout == "pretty" else None)
    proc = subprocess.run(worker_command(), input=text, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert json.loads(proc.stdout)["status"] == "ok"
