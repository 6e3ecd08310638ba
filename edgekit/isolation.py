"""Bounding what handling an untrusted file may cost: memory, in this process or a child.

A hostile model can be tiny on disk and still make a runtime allocate gigabytes: a config that
declares huge layers, a graph whose ``ConstantOfShape`` or ``FILL`` builds a huge tensor at
run time. Declared sizes are checked before anything is loaded wherever they can be; this is
the backstop for what cannot be sized beforehand.

:func:`memory_allowance` lets the process hold at most what it holds now plus an allowance
while a block runs: ``RLIMIT_DATA``'s soft limit (private writable memory: heap and anonymous
mappings; not shared libraries, file mappings or reserved address space, so TensorFlow's and
CUDA's reservations do not count) is lowered for the block and restored after it. An
allocation past it fails in the allocating code: Python raises ``MemoryError``, TensorFlow
``ResourceExhaustedError`` ("OOM when allocating tensor"), onnxruntime and LiteRT their own
errors; :func:`is_out_of_memory` recognises them all, so that callers turn them into one line.

:func:`run_child` runs ``python -m MODULE ARGS`` in a child process that dies with its parent
(the measuring workers of ``bench`` and ``inspect``'s Keras loader use it): a crash, an abort
or running out of memory there costs only the child, and comes back as one line.

Linux only (``/proc/self/status``); elsewhere the block runs without a limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

MIB = 1 << 20
_PR_SET_PDEATHSIG = 1
# What an allocation that failed says, in Python, TensorFlow, onnxruntime, LiteRT, C++, libc.
_OUT_OF_MEMORY = (
    "memoryerror",
    "bad_alloc",
    "cannot allocate memory",
    "out of memory",
    "oom when allocating",
    "failed to allocate",
    "resourceexhausted",
    "unable to allocate",
    "allocation failed",
)


def litert_silent(message: str) -> bool:
    """Whether a LiteRT error may be a failed allocation: LiteRT then gives no reason ("()",
    a bare RuntimeError), or says that its XNNPACK delegate failed to reshape."""
    if "failed to reshape runtime" in message:
        return True
    return message.rstrip(")").endswith(("(", "RuntimeError"))


def litert_note(limit_bytes: int) -> str:
    """What to add to a LiteRT error that gives no reason, under a memory limit."""
    return (
        "LiteRT gives no reason when an allocation fails: the model may need more than the "
        f"{limit_bytes >> 20} MiB of memory it may use here"
    )


def private_bytes() -> int | None:
    """This process's private writable memory now (``VmData``); None where not known."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) << 10
    except (OSError, ValueError, IndexError):
        return None
    return None


def is_out_of_memory(err: BaseException | str) -> bool:
    """Whether an exception (or its text) says that an allocation failed."""
    if isinstance(err, MemoryError):
        return True
    text = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    text = text.lower()
    return any(s in text for s in _OUT_OF_MEMORY)


@contextlib.contextmanager
def memory_allowance(extra_bytes: int) -> Iterator[int | None]:
    """Within the block the process may hold at most its private memory now + ``extra_bytes``.

    Yields that limit in bytes (None where it cannot be set: not Linux, or no ``resource``).
    A limit already lower (a measuring worker's, an enclosing block's) is kept. The previous
    soft limit is restored after the block, also when it raises.
    """
    now = private_bytes()
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        now = None
    if now is None:
        yield None
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = now + max(int(extra_bytes), 0)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY and soft <= limit:
        yield soft  # a lower limit is already in place
        return
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def limit_private_memory(extra_bytes: int) -> int | None:
    """For good: this process may hold at most its private memory now + ``extra_bytes``
    (soft and hard ``RLIMIT_DATA``, so nothing it runs can raise it). Returns the limit in
    bytes, or None where it cannot be set. A lower limit already in place is kept."""
    now = private_bytes()
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    if now is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = now + max(int(extra_bytes), 0)
    for current in (soft, hard):
        if current != resource.RLIM_INFINITY:
            limit = min(limit, current)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    return limit


# --- child processes -------------------------------------------------------------------------


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (Linux), looked up here in the parent, not after a fork."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def child_setup(limit_bytes: int | None) -> Callable[[], None]:
    """What runs in a child between fork and exec: ``RLIMIT_DATA`` at ``limit_bytes`` (soft
    and hard; None: no limit) and death with its parent (``PR_SET_PDEATHSIG``)."""
    parent = os.getpid()
    prctl = _prctl()

    def setup() -> None:
        if limit_bytes is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_DATA, (limit_bytes, limit_bytes))
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the death signal was set
                os._exit(1)

    return setup


def child_env() -> dict[str, str]:
    """The environment of a child that must import this same edgekit (quietly)."""
    env = dict(os.environ)
    # From a source tree that is not installed, put the tree on the child's path (an installed
    # edgekit is found in site-packages anyway).
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file():
        env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    return env


CHILD_ERROR = "edgekit-child-error: "  # how a child's last stderr line hands back a user error


def child_main(work: Callable[[], Any]) -> int:
    """The body of a child run by :func:`run_child`: ``work()``'s result as JSON on stdout,
    or a user error's message on stderr (after :data:`CHILD_ERROR`) and exit status 2."""
    result_fd = os.dup(1)
    os.dup2(2, 1)  # what libraries print (C or Python) goes to stderr: stdout holds the result
    sys.stdout = sys.stderr
    try:
        result = work()
    except EdgekitError as err:
        message = " ".join(str(err).split())
        print(f"{CHILD_ERROR}{message}", file=sys.stderr, flush=True)
        return 2
    with os.fdopen(result_fd, "w", encoding="utf-8") as out:
        json.dump(result, out)
    return 0


def run_child(module: str, args: list[str], *, what: str, timeout: float | None = None) -> Any:
    """``python -m module args`` in a child (see :func:`child_main`); its JSON result.

    A user error in the child is raised here as it was; a crash, a signal or running out of
    memory is one :class:`EdgekitError` that starts with ``what`` (the file, usually).
    """
    with subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        preexec_fn=child_setup(None) if os.name == "posix" else None,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise EdgekitError(f"{what}: gave up after {timeout:g} s") from None
        except BaseException:  # an interrupt: the child goes too
            proc.kill()
            proc.communicate()
            raise
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(CHILD_ERROR):
            raise EdgekitError(line[len(CHILD_ERROR) :])
    if proc.returncode == 0:
        try:
            return json.loads(stdout)
        except ValueError:
            pass
    if is_out_of_memory("\n".join(lines[-20:])):
        raise EdgekitError(f"{what}: ran out of memory (the child process reading it died)")
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise EdgekitError(f"{what}: the child process reading it was killed by {name}")
    reason = (lines[-1][:200] if lines else "") or "no message"
    raise EdgekitError(f"{what}: the child process reading it failed ({reason})")
