"""SIGINT and SIGTERM during train, export and bench: exit 130, ``edgekit: interrupted``, no
traceback, nothing half-written, no stray worker process, and the same command then succeeds.

The commands run as real processes, signalled at a point the test observes: training's fit
(the runtime is loaded) or its write (the run's temporary directory has appeared), export's
build (its temporary directory has appeared), bench's measurement (a worker is running). Bench
is signalled alone (``kill``) and with its process group (Ctrl-C in a terminal).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from edgekit.bench import isolate
from edgekit.bench.isolate import WorkerPool
from edgekit.bench.job import Job
from tests.hardening.conftest import bench_workers, leftovers

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")

# ``python -m edgekit``, with Ctrl-C's default handler restored: a shell that starts jobs in
# the background (CI runners do) leaves SIGINT ignored, and Python keeps it so.
EDGEKIT = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'edgekit'; runpy.run_module('edgekit', run_name='__main__')"
)
FAST = ["--warmup", "1", "--runs", "5", "--min-time", "0"]


def start(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", EDGEKIT, *args],
        cwd=cwd,
        env={**os.environ, "TMPDIR": str(cwd / "tmp"), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def wait_for(proc: subprocess.Popen, what: str, ready: Callable[[], bool], timeout=120.0):
    """Poll until ``ready()``; fail if the process ends first (it was not interrupted)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"ended (exit {proc.returncode}) before {what}:\n{out}\n{err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} after {timeout:g} s")
        time.sleep(0.005)


def loaded(proc: subprocess.Popen, library: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return library in Path(f"/proc/{proc.pid}/maps").read_text()
        except OSError:
            return False

    return ready


def interrupt(proc: subprocess.Popen, sig: int, *, group: bool = False) -> str:
    """Send ``sig``; the process must exit 130 saying it was interrupted. Returns stderr."""
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert err.rstrip().splitlines()[-1] == "edgekit: interrupted"
    assert "Traceback" not in err
    return err


def assert_clean(cwd: Path, expected: set[str]) -> None:
    """Nothing but ``expected`` in ``cwd``, no temporary leftovers, TMPDIR without dirs."""
    assert {p.name for p in cwd.iterdir()} == expected | {"tmp"}
    assert leftovers(cwd) == []
    assert [p.name for p in (cwd / "tmp").iterdir() if p.is_dir()] == []


@pytest.fixture
def workdir(tmp_path) -> Path:
    (tmp_path / "tmp").mkdir()
    return tmp_path


# --- train --------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigint_during_training_then_a_rerun(workdir):
    args = ["train", "--dataset", "synthetic", "--hidden", "128,128", "--epochs", "2000",
            "--out", "run"]  # fmt: skip
    proc = start(args, workdir)
    wait_for(proc, "TensorFlow loaded", loaded(proc, "libtensorflow"))
    time.sleep(3)  # into fit(): 2000 epochs take minutes
    interrupt(proc, signal.SIGINT)
    assert_clean(workdir, set())

    args[args.index("2000")] = "1"
    rerun = subprocess.run([sys.executable, "-m", "edgekit", *args], cwd=workdir,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert (workdir / "run" / "model.keras").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_while_the_run_directory_is_written(workdir, sig):
    args = ["train", "--dataset", "synthetic", "--hidden", "4", "--epochs", "1", "--out", "run"]
    proc = start(args, workdir)
    wait_for(proc, "the run's temporary directory", lambda: any(workdir.glob(".run.*.tmp")))
    interrupt(proc, sig)
    assert_clean(workdir, set())


# --- export -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_export_then_a_rerun(workdir, digits_run, sig):
    args = ["export", str(digits_run.path), "--quantize", "all", "--onnx", "--onnx-quantize",
            "all", "--c-array", "--out", "export"]  # fmt: skip
    proc = start(args, workdir)
    wait_for(proc, "the export's temporary directory", lambda: any(workdir.glob(".export.*.tmp")))
    time.sleep(0.5)  # a few artifacts in
    interrupt(proc, sig)
    assert_clean(workdir, set())
    if sig == signal.SIGINT:
        return  # the re-run once is enough (each takes a full export)

    rerun = subprocess.run([sys.executable, "-m", "edgekit", *args], cwd=workdir,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert len(json.loads((workdir / "export" / "manifest.json").read_text())["artifacts"]) == 8


# --- bench --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("group", [False, True], ids=["kill", "ctrl-c"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_bench_leaves_no_worker(workdir, small_export_dir, sig, group):
    tag = f"EDGEKIT_TEST_TAG={uuid.uuid4().hex}"
    env = dict([tag.split("=", 1)])
    export = str(small_export_dir)
    # --warmup 10**8: the measurement runs until signalled
    args = ["bench", export, "--warmup", "100000000", "--timeout", "100", "--json", "b.json"]
    proc = start(args, workdir, env)
    wait_for(proc, "a measuring worker", lambda: bench_workers(tag))
    time.sleep(0.5)
    interrupt(proc, sig, group=group)
    assert bench_workers(tag) == []
    assert_clean(workdir, set())

    rerun = subprocess.run(
        [sys.executable, "-m", "edgekit", "bench", export, *FAST, "--json", "b.json"],
        cwd=workdir, capture_output=True, text=True, timeout=300, env={**os.environ, **env},
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert len(json.loads((workdir / "b.json").read_text())["results"]) == 3
    assert bench_workers(tag) == []


def test_a_worker_started_as_the_signal_lands_is_not_left_behind(monkeypatch):
    """Interrupted inside ``Popen`` (after its fork, before it returns), a child was running
    untracked and outlived the bench. Found by signalling bench's process group."""
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        signal.raise_signal(signal.SIGINT)  # Ctrl-C, before Popen returns
        return proc

    monkeypatch.setattr(isolate.subprocess, "Popen", popen)
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    try:
        with pytest.raises(KeyboardInterrupt), WorkerPool(sleeper) as pool:
            pool.run(Job(path="x.tflite", runtime="tflite"), timeout=100)
        assert len(started) == 1
        assert started[0].poll() is not None, "the child is still running"
    finally:
        for proc in started:
            proc.kill()
            proc.wait()


# --- interrupts that a library swallows or turns into another error -----------------------


def _interrupted_export(monkeypatch, tmp_path, then):
    """``edgekit export`` whose work is interrupted by a signal, after which ``then(exc)``
    runs inside the library (swallow it, or raise something else), then writes ``out``."""
    import edgekit.exporters
    from edgekit.outdirs import atomic_directory

    def export(*args, **kwargs):
        try:
            signal.raise_signal(kwargs.pop("sig", signal.SIGINT))
        except KeyboardInterrupt as exc:
            then(exc)
        with atomic_directory(tmp_path / "out") as tmp:
            (tmp / "model.tflite").write_bytes(b"TFL3")

    monkeypatch.setattr(edgekit.exporters, "export", export)


def _swallow(exc):
    pass


def _convert(exc):
    raise TypeError("Expected string, but got 10 of type 'int'.")  # TensorFlow's, in fact


@pytest.mark.parametrize("then", [_swallow, _convert], ids=["swallowed", "turned-into-TypeError"])
def test_an_interrupt_a_library_mishandles_still_interrupts(monkeypatch, tmp_path, then):
    """Under load, SIGINT during export's SavedModel step came out of TensorFlow as a
    TypeError (a traceback, exit 1) or not at all (exit 0, the export completed)."""
    from tests.conftest import cli

    _interrupted_export(monkeypatch, tmp_path, then)
    code, out, err = cli("export", "x.keras")
    assert (code, out, err.strip()) == (130, "", "edgekit: interrupted")  # (click adds a \n)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # main() restored it


def test_an_interrupted_command_leaves_no_interrupt_behind(monkeypatch, tmp_path):
    """main() remembered the interrupt after it returned: the next atomic write in the same
    process (CI: a later test) raised KeyboardInterrupt and stopped the whole pytest run."""
    from edgekit.fileio import atomic_write_text, interrupt_requested
    from tests.conftest import cli

    _interrupted_export(monkeypatch, tmp_path, _swallow)
    assert cli("export", "x.keras")[0] == 130
    assert not interrupt_requested()
    atomic_write_text(tmp_path / "after.txt", "ok")
    assert (tmp_path / "after.txt").read_text() == "ok"


def test_an_interrupt_inside_a_constructor_prints_no_traceback_at_exit(tmp_path):
    """A half-built object's failing ``__del__`` (TensorFlow's ApiDefMap) printed "Exception
    ignored in ... Traceback" after "edgekit: interrupted"."""
    child = (
        "import signal, sys, edgekit.exporters\n"
        "class HalfBuilt:\n"
        "    def __init__(self):\n"
        "        signal.raise_signal(signal.SIGTERM)\n"
        "        self.handle = 1\n"
        "    def __del__(self):\n"
        "        self.handle\n"
        "edgekit.exporters.export = lambda *a, **k: HalfBuilt()\n"
        "from edgekit.cli import main\n"
        "main(['export', 'x.keras'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)  # fmt: skip
    assert (proc.returncode, proc.stderr.strip()) == (130, "edgekit: interrupted")


def test_an_interrupt_the_moment_a_temporary_is_made_leaves_nothing(tmp_path, monkeypatch):
    """The signal handler runs between any two bytecodes: one that came just after a
    temporary directory or file was made, before the cleanup knew it, left it behind
    (seen once under load: a `.run.*.tmp` after SIGINT)."""
    import tempfile

    from edgekit import fileio, outdirs
    from edgekit.cli.entry import _on_signal

    def then_signal(make):
        def made(*args, **kwargs):
            result = make(*args, **kwargs)
            _on_signal(signal.SIGINT, None)  # as if the signal came the moment it appeared
            return result

        return made

    monkeypatch.setattr(tempfile, "mkdtemp", then_signal(tempfile.mkdtemp))
    monkeypatch.setattr(tempfile, "mkstemp", then_signal(tempfile.mkstemp))
    try:
        with pytest.raises(KeyboardInterrupt), outdirs.atomic_directory(tmp_path / "out"):
            pytest.fail("the body ran")
        with pytest.raises(KeyboardInterrupt), fileio.temporary_directory(tmp_path):
            pytest.fail("the body ran")
        with pytest.raises(KeyboardInterrupt):
            fileio.atomic_write_files([(tmp_path / "f.txt", b"x")])
    finally:
        fileio.clear_interrupt()
    assert list(tmp_path.iterdir()) == []
