"""Run each measurement in a child process, with a time limit and a memory limit.

A crash (a corrupt flatbuffer can abort or segfault a runtime), a hang, running out of its
memory limit or a stray exception in the child becomes a result with ``status: error`` and a
one-line reason; the parent goes on. Children are started from an argument list (no shell)
and get their job as one JSON line on stdin, which stays open while they measure. Every
child the pool starts is tracked until it has exited, so an interrupted bench (Ctrl-C,
SIGTERM) leaves none behind, even one interrupted while it was being started; and a child
dies with its parent even when the parent is killed outright (SIGKILL): on Linux through
``prctl(PR_SET_PDEATHSIG)``, everywhere through the worker watching its stdin for the end of
file that the parent's death brings.

The memory limit (``--memory-limit``) is ``RLIMIT_DATA``: the child's private writable memory
(heap, anonymous mappings), not the address space it reserves. By default (``auto``) each
worker sets it itself, once its runtime is imported and its test data read: what it holds
then plus a floor and a multiple of the model's and the data's size
(:func:`edgekit.bench.measure.auto_allowance`: 384 MiB for a small model), so that a tiny
hostile model whose graph builds a huge tensor at run time is an error row, not gigabytes.
A number is the limit in MiB from the child's start, for all it does.

``RLIMIT_AS`` cannot be used: TensorFlow's import fails under 1 GiB of address space (and reads
as "not installed"), glibc reserves 64 MiB of address space per runtime thread (onnxruntime with 16 threads: 1.4 GB of address space for 150 MB of data),
and CUDA reserves address space the size of the GPU's memory. Measured peaks of
``VmData`` on the digits model: LiteRT 96 MB, onnxruntime 111 MB (146 MB with 16 threads),
the C runtime 95 MB, Keras on TensorFlow 480 MB.

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
from types import FrameType
from typing import Any

from edgekit.bench.job import LIMIT_LINE, Job
from edgekit.errors import EdgekitError
from edgekit.isolation import child_env, child_setup, is_out_of_memory

# What signal.getsignal returns for a handler installed from Python (SIG_DFL, SIG_IGN are ints).
Handler = Callable[[int, FrameType | None], Any] | int

AUTO = "auto"
MemoryLimit = int | str | None  # MiB, AUTO, or None (0) for no limit
DEFAULT_MEMORY_LIMIT_MB: MemoryLimit = AUTO


def check_memory_limit(limit_mb: MemoryLimit) -> MemoryLimit:
    """``--memory-limit``: ``auto``, MiB >= 64, or 0 / None for no limit; returns the limit
    (``auto``, MiB) or None."""
    if limit_mb is None or limit_mb == 0:
        return None
    if limit_mb == AUTO:
        return AUTO
    if not isinstance(limit_mb, int) or isinstance(limit_mb, bool) or not 64 <= limit_mb < 2**40:
        raise EdgekitError(
            f"--memory-limit takes auto, or MiB >= 64 (0 for no limit), got {limit_mb}"
        )
    return limit_mb


def memory_error(limit_mb: int | None) -> str:
    if limit_mb is None:  # auto, and the worker died before it said which
        return "worker exceeded its memory limit (raise it with --memory-limit)"
    return f"worker exceeded the memory limit of {limit_mb} MiB (raise it with --memory-limit)"


def worker_command() -> list[str]:
    return [sys.executable, "-m", "edgekit.bench.worker"]


def _exchange(
    proc: subprocess.Popen, line: str | None, *, timeout: float | None
) -> tuple[str, str]:
    """Send ``line`` to the child, keep its stdin open until it exits; (stdout, stderr).

    Unlike ``communicate``, stdin is closed only once the child has exited (or on the way
    out): the child takes the end of its stdin for its parent's death.
    """
    if line is not None and proc.stdin is not None:
        try:
            proc.stdin.write(line)
            proc.stdin.flush()
        except OSError:  # it exited before reading its job; its exit status says why
            pass
    chunks: dict[str, list[str]] = {"out": [], "err": []}
    readers = [
        threading.Thread(target=lambda s=stream, k=key: chunks[k].append(s.read()), daemon=True)
        for key, stream in (("out", proc.stdout), ("err", proc.stderr))
        if stream is not None and not stream.closed
    ]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout)
    except BaseException:  # the time limit, or an interrupt: the child goes
        proc.kill()
        proc.wait()
        raise
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        for reader in readers:
            reader.join(timeout=10)  # a grandchild (a compiler) may hold the pipe a while
    return "".join(chunks["out"]), "".join(chunks["err"])


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _result(
    returncode: int, stdout: str, stderr: str, limit_mb: MemoryLimit = None
) -> dict[str, Any]:
    result = _raw_result(returncode, stdout, stderr)
    if limit_mb is not None and result.get("status") == "error":
        # A MemoryError caught in the child, or a child that died of one (or of C++'s
        # std::bad_alloc, an abort) with the limit in place.
        died = returncode != 0 and is_out_of_memory(stderr[-4000:])
        if died or is_out_of_memory(str(result.get("error") or "")):
            result = {**result, "error": memory_error(_limit_in_force(limit_mb, stderr))}
    return result


def _limit_in_force(limit_mb: MemoryLimit, stderr: str) -> int | None:
    """The limit the worker ran under: the one given, or what an ``auto`` worker said."""
    if isinstance(limit_mb, int):
        return limit_mb
    for line in reversed(stderr.splitlines()):
        if line.startswith(LIMIT_LINE):
            with contextlib.suppress(ValueError, IndexError):
                return int(line[len(LIMIT_LINE) :].split()[0])
    return None


def _raw_result(returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
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

    def __init__(
        self,
        command: list[str] | None = None,
        *,
        memory_limit_mb: MemoryLimit = DEFAULT_MEMORY_LIMIT_MB,
    ) -> None:
        self.command = command or worker_command()
        self.memory_limit_mb = check_memory_limit(memory_limit_mb)
        self._spare: subprocess.Popen | None = None
        self._live: set[subprocess.Popen] = set()  # started and not yet reaped

    def _spawn(self, preload: str | None = None) -> subprocess.Popen:
        extra = ["--preload", preload] if preload and self.command == worker_command() else []
        posix = os.name == "posix"
        limit = self.memory_limit_mb << 20 if isinstance(self.memory_limit_mb, int) else None
        with _signals_held():
            proc = subprocess.Popen(
                [*self.command, *extra],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=child_env(),
                preexec_fn=child_setup(limit) if posix else None,
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
            auto = {"auto_memory_limit": True} if self.memory_limit_mb == AUTO else {}
            line = json.dumps({**job.to_json(), "watch_stdin": True, **auto}) + "\n"
            stdout, stderr = _exchange(proc, line, timeout=timeout)
        except subprocess.TimeoutExpired:  # _exchange killed it
            return {
                "status": "error",
                "error": f"timed out after {timeout:g} s (the child process was killed)",
            }
        finally:
            self._live.discard(proc)
        return _result(proc.returncode, stdout, stderr, self.memory_limit_mb)

    def close(self) -> None:
        """Kill and reap every child still running (the idle spare, or an interrupted one)."""
        self._spare = None
        while self._live:
            proc = self._live.pop()
            if proc.poll() is None:
                proc.kill()
            _exchange(proc, None, timeout=None)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
