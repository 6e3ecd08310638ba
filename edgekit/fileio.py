"""Atomic file writes, the output-path policy for files, interrupts, and safe readers.

Every artifact edgekit writes goes to a temporary name in the same directory and is then
renamed, so an interrupted run never leaves a half-written file behind. Output directories
(what ``--force`` may replace, atomic claims) are :mod:`edgekit.outdirs`. The policy every
writer follows:

* an output that is one of the command's inputs, or a directory that contains one, is refused
  (``protect=``), with one line and nothing written;
* an output that is a symlink is written through: the file it points to is replaced, the link
  stays; a character device, FIFO or socket (``/dev/stdout``) is opened and written as it is;
* ``--force`` replaces only an empty directory or one edgekit wrote (:func:`foreign_entry`
  says what edgekit wrote), never the working directory or a directory above it, never the
  home directory or ``/``;
* output directories are claimed atomically (a rename that never replaces,
  ``renameat2(RENAME_NOREPLACE)``, else ``mkdir`` as the claim), so a second writer to the
  same path fails with one line instead of replacing the first one's work;
* every ``OSError`` while writing (no space, read-only, permission) is a :class:`WriteError`
  naming the path and the problem;
* temporary names embed the writer's pid and host, so the next writer in the same directory
  removes what a killed one left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

# Set by the CLI's SIGINT/SIGTERM handlers (``request_interrupt``). A library can swallow the
# KeyboardInterrupt they raise, or turn it into an error of its own (TensorFlow does, in its
# C++ code); the commit points below check this flag, so an interrupted command never
# completes a file or a directory, and ``main()`` reports the interrupt whatever came out.
_interrupted = False

PathLike = str | os.PathLike


def request_interrupt() -> None:
    global _interrupted
    _interrupted = True


def clear_interrupt() -> None:
    global _interrupted
    _interrupted = False


def interrupt_requested() -> bool:
    return _interrupted


_deferring = 0


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """While the body runs, the CLI's signal handlers only set the flag (they raise
    nowhere): for making a temporary file or directory and recording it where the cleanup
    finds it, with no moment between the two at which an interrupt could leave it behind.
    The caller raises the interrupt (:func:`check_interrupt`) once its cleanup covers it."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1


def interrupts_are_deferred() -> bool:
    return _deferring > 0


def check_interrupt() -> None:
    """Raise KeyboardInterrupt if an interrupt was requested (even one swallowed since)."""
    if _interrupted:
        raise KeyboardInterrupt


class WriteError(EdgekitError):
    """An output could not be written (``path``: as the user named it; ``reason``: why)."""

    def __init__(self, path: PathLike, reason: str):
        super().__init__(f"cannot write {os.fspath(path)}: {reason}")
        self.path = Path(path)
        self.reason = reason


def sha256_file(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- temporary names and what a killed writer left ------------------------------------------

# ``.<name>.ek<pid>h<host>.<random>.tmp`` (or ``.old``): the pid and a tag of the host say whose
# it is, so a later writer removes it once that process is gone (and never one of another
# machine's, on a shared file system).
_TEMP_NAME = re.compile(r"^\..*\.ek(?P<pid>\d+)h(?P<host>[0-9a-f]{8})\.[A-Za-z0-9_]+\.(?:tmp|old)$")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _temp_prefix(name: str) -> str:
    return f".{name[:100]}.ek{os.getpid()}h{_host_tag()}."


def is_temporary_name(name: str) -> bool:
    """Whether ``name`` is one of edgekit's temporary names (of a live process or not)."""
    return _TEMP_NAME.match(name) is not None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, someone else's
        return True
    return True


def remove_stale_temporaries(directory: PathLike) -> list[Path]:
    """Remove the temporary files and directories in ``directory`` that an edgekit process of
    this host, now dead (killed, say), left behind; returns what was removed."""
    removed: list[Path] = []
    host, me = _host_tag(), os.getpid()
    try:
        entries = list(os.scandir(os.fspath(directory)))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or match["host"] != host:
            continue
        pid = int(match["pid"])
        if pid == me or _pid_alive(pid):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(path)
    return removed


@contextlib.contextmanager
def temporary_directory(parent: PathLike | None = None, *, name: str = "edgekit") -> Iterator[Path]:
    """A scratch directory (default in ``$TMPDIR``) removed afterwards; one a killed process
    left is removed by the next call (unlike :class:`tempfile.TemporaryDirectory`)."""
    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    remove_stale_temporaries(parent)
    path: Path | None = None
    try:
        with interrupts_deferred():
            try:
                path = Path(tempfile.mkdtemp(prefix=_temp_prefix(name), suffix=".tmp", dir=parent))
            except OSError as err:
                raise WriteError(parent, _reason(err)) from err
        check_interrupt()  # one that came meanwhile: the directory is removed below
        yield path
    finally:
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


# --- output files -----------------------------------------------------------------------------


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def _real(path: PathLike) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def _same(a: Path, b: Path) -> bool:
    """Whether two paths (already resolved) name the same file or directory."""
    if a == b:
        return True
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_not_input(path: PathLike, protect: Iterable[PathLike]) -> None:
    """Refuse ``path`` when it is one of ``protect`` (the command's inputs) or a directory
    that holds one, through symlinks and hard links."""
    real = _real(path)
    for item in protect:
        if item is None:
            continue
        other = _real(item)
        if _same(real, other):
            shown = os.fspath(item)
            which = "an input" if shown == os.fspath(path) else f"{shown}, an input"
            raise EdgekitError(f"cannot write {os.fspath(path)}: it is {which} of this command")
        if real in other.parents:
            raise EdgekitError(
                f"cannot write {os.fspath(path)}: it contains {os.fspath(item)}, "
                "an input of this command"
            )


# Names of a process's own open files: what they lead to is the shell's redirection.
_STDIO_ALIASES = ("/dev/stdout", "/dev/stderr", "/dev/stdin", "/dev/fd/", "/proc/")


def _direct(path: Path) -> bool:
    """Outputs written in place, without a temporary file and a rename: devices, FIFOs and
    sockets (``/dev/null``, a named pipe, ``/dev/stdout`` on a terminal or a pipe), and
    ``/dev/stdout``-like names of a file a shell redirected (replacing that file would leave
    the shell writing to a deleted one)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    if not stat.S_ISREG(mode):
        return True
    absolute = os.path.abspath(path)
    return absolute in _STDIO_ALIASES[:3] or absolute.startswith(_STDIO_ALIASES[3:])


def check_output(path: PathLike, *, protect: Iterable[PathLike] = ()) -> Path:
    """Check an output file before anything is computed: not an input, not a directory.
    Returns the file that writing ``path`` will replace (the symlink's target, if any)."""
    check_not_input(path, protect)
    real = _real(path)
    if real.is_dir():
        raise WriteError(path, "is a directory")
    return real


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _mode_for(real: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(real).st_mode)
    except OSError:
        return 0o666 & ~_umask()  # mkstemp makes 0600; give the usual file mode


@dataclass
class _Staged:
    path: Path  # as the caller named it
    real: Path  # what is replaced (the symlink's target)
    data: bytes
    direct: bool = False  # written in place (a device, a FIFO)
    tmp: Path | None = None


def _stage(item: _Staged) -> None:
    if item.direct:
        return
    parent = item.real.parent
    remove_stale_temporaries(parent)
    with interrupts_deferred():  # the name recorded (for the cleanup) as the file is made
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(item.real.name), suffix=".tmp", dir=parent)
        item.tmp = Path(tmp)
    check_interrupt()
    try:
        _write_all(fd, item.data)
    finally:
        os.close(fd)
    os.chmod(tmp, _mode_for(item.real))


def _commit(item: _Staged) -> None:
    if item.direct:
        fd = os.open(item.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOCTTY", 0))
        try:
            _write_all(fd, item.data)
        finally:
            os.close(fd)
    elif item.tmp is not None:
        os.replace(item.tmp, item.real)
        item.tmp = None


def atomic_write_files(
    items: Sequence[tuple[PathLike, bytes]], *, protect: Iterable[PathLike] = ()
) -> list[Path]:
    """Write several files all or (nearly) nothing: every one to a temporary name first, then
    each renamed into place. Symlinks are written through, devices written in place; an
    output that is an input (or names the same file as another output) is refused before
    anything is written; any ``OSError`` is a :class:`WriteError` and leaves no temporary
    file. Returns the paths as given."""
    protect = list(protect)
    staged: list[_Staged] = []
    for path, data in items:
        real = check_output(path, protect=protect)
        for other in staged:
            if _same(real, other.real):
                raise WriteError(path, f"it is the same file as {other.path}, also written here")
        staged.append(_Staged(Path(path), real, data, direct=_direct(Path(path))))
    current = staged[0] if staged else None
    try:
        for current in staged:
            _stage(current)
        check_interrupt()
        for current in staged:
            _commit(current)
    except OSError as err:
        assert current is not None
        raise WriteError(current.path, _reason(err)) from err
    finally:
        for item in staged:
            if item.tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(item.tmp)
    return [item.path for item in staged]


def atomic_write_bytes(path: PathLike, data: bytes, *, protect: Iterable[PathLike] = ()) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename (see
    :func:`atomic_write_files`)."""
    return atomic_write_files([(path, data)], protect=protect)[0]


def atomic_write_text(path: PathLike, text: str, *, protect: Iterable[PathLike] = ()) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), protect=protect)


def atomic_write_json(path: PathLike, obj: Any, *, protect: Iterable[PathLike] = ()) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    return atomic_write_text(path, text, protect=protect)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_json(path: PathLike, *, what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EdgekitError(f"{path}: not a valid {what} ({err})") from err
