"""Run each measurement in a child process, with a time limit.

A crash (a corrupt flatbuffer can abort or segfault a runtime), a hang or a stray exception in
the child becomes a result with ``status: error`` and a one-line reason; the parent goes on.
Children are started from an argument list (no shell) and get their job on stdin. Every
child the pool starts is tracked until it has exited, so an interrupted bench (Ctrl-C,
SIGTERM) leaves none behind, even one interrupted while it was being started.

:class:`WorkerPool` can start the first child before the parent has finished its own start-up
(the child imports numpy while the parent reads manifests); later children start only once the
previous one has exited, so no measurement shares the CPU with another child's start-up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import edgekit
from edgekit.bench.job import Job

# What signal.getsignal returns for a handler installed from Python (SIG_DFL, SIG_IGN are ints).
Handler = Callable[[int, FrameType | None], Any] | int


def worker_command() -> list[str]:
    return [sys.executable, "-m", "edgekit.bench.worker"]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child must import this same edgekit: from a source tree that is not installed, put
    # the tree on its path (an installed edgekit is found in site-packages anyway).
    root = Path(edgekit.__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file():
        env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    return env


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _result(returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    if returncode < 0:
        return {"status": "error", "error": f"killed by signal {_signal_name(-returncode)}"}
    if returncode != 0:
        reason = _last_line(stderr) or "no message"
        return {"status": "error", "error": f"the worker exited with code {returncode}: {reason}"}
    try:
        result = json.loads(stdout)
        if not isinstance(result, dict):
            raise ValueError("not an object")
    except ValueError:
        return {"status": "error", "error": "the worker returned no result"}
    return result


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM during the block, then deliver them to their handlers.

    ``subprocess.Popen`` interrupted between its fork and its return would leave a child
    running that nobody tracks; starting children inside this block closes that window.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread handles signals
        return
    pending: list[tuple[int, FrameType | None]] = []
    saved: dict[int, Handler] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is not None:  # None: installed outside Python; left alone
            saved[sig] = handler
            signal.signal(sig, lambda signum, frame: pending.append((signum, frame)))
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        for signum, frame in pending:
            handler = saved[signum]
            if callable(handler):
                handler(signum, frame)  # e.g. KeyboardInterrupt, raised here
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


class WorkerPool:
    """Starts measuring children; holds at most one idle, pre-started child.

    >>> with WorkerPool() as pool:                            # doctest: +SKIP
    ...     pool.prestart()
    ...     result = pool.run(job, timeout=300)
    """

    def __init__(self, command: list[str] | None = None) -> None:
        self.command = command or worker_command()
        self._spare: subprocess.Popen | None = None
        self._live: set[subprocess.Popen] = set()  # started and not yet reaped

    def _spawn(self, preload: str | None = None) -> subprocess.Popen:
        extra = ["--preload", preload] if preload and self.command == worker_command() else []
        with _signals_held():
            proc = subprocess.Popen(
                [*self.command, *extra],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_child_env(),
            )
            self._live.add(proc)
        return proc

    def prestart(self, preload: str | None = None) -> None:
        """Start the next child now, so that its start-up overlaps the caller's work.

        ``preload`` names the runtime the next job probably uses; the child imports it early.
        """
        if self._spare is None:
            self._spare = self._spawn(preload)

    def run(self, job: Job, *, timeout: float) -> dict[str, Any]:
        """Measure ``job`` in a child; never raises for what happens inside the child."""
        proc, self._spare = self._spare or self._spawn(), None
        try:
            stdout, stderr = proc.communicate(json.dumps(job.to_json()), timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return {
                "status": "error",
                "error": f"timed out after {timeout:g} s (the child process was killed)",
            }
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
        finally:
            self._live.discard(proc)
        return _result(proc.returncode, stdout, stderr)

    def close(self) -> None:
        """Kill and reap every child still running (the idle spare, or an interrupted one)."""
        self._spare = None
        while self._live:
            proc = self._live.pop()
            if proc.poll() is None:
                proc.kill()
            proc.communicate()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
