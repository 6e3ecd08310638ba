"""Atomic file and directory writes, and safe readers for user-supplied files.

Every artifact edgekit writes goes to a temporary name in the same directory and is then
renamed, so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

# Set by the CLI's SIGINT/SIGTERM handlers (``request_interrupt``). A library can swallow the
# KeyboardInterrupt they raise, or turn it into an error of its own (TensorFlow does, in its
# C++ code); the commit points below check this flag, so an interrupted command never
# completes a file or a directory, and ``main()`` reports the interrupt whatever came out.
_interrupted = False


def request_interrupt() -> None:
    global _interrupted
    _interrupted = True


def clear_interrupt() -> None:
    global _interrupted
    _interrupted = False


def interrupt_requested() -> bool:
    return _interrupted


def check_interrupt() -> None:
    """Raise KeyboardInterrupt if an interrupt was requested (even one swallowed since)."""
    if _interrupted:
        raise KeyboardInterrupt


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        check_interrupt()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Build a directory under a temporary name beside ``final``, then move it into place.

    An existing ``final`` is refused unless ``force``; with ``force`` it is replaced only once
    the new directory is complete. If the body raises (or the process is interrupted), the
    temporary directory is removed and ``final`` is untouched.
    """
    final = Path(final)
    if final.exists() and not force:
        raise EdgekitError(f"{final} already exists; pass --force to overwrite it")
    parent = final.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as err:
        # mkdir(exist_ok=True) on a file raises FileExistsError, whose "File exists" misleads
        reason = "not a directory" if isinstance(err, FileExistsError) else err.strerror or err
        raise EdgekitError(f"cannot write to {parent}: {reason}") from err
    try:
        yield tmp
        check_interrupt()
        if final.exists() or final.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=parent))
            os.rmdir(old)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def scratch_tempdir(path: str | os.PathLike) -> Iterator[Path]:
    """Make ``path`` the default temporary directory while the body runs (libraries that
    call ``tempfile.mkdtemp()``, as Keras's saving does, then leave nothing in ``$TMPDIR`` when
    interrupted: ``path`` lives inside a directory edgekit removes), then remove it."""
    path = Path(path)
    path.mkdir()
    saved = tempfile.tempdir
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(path, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def point_symlink(link: str | os.PathLike, target: str | os.PathLike) -> None:
    """Atomically make ``link`` a relative symlink to ``target`` (replacing any old link)."""
    link = Path(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(Path(target).resolve(), link.parent.resolve())
    tmp = link.parent / f".{link.name}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(rel, tmp)
    os.replace(tmp, link)


def load_json(path: str | os.PathLike, *, what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EdgekitError(f"{path}: not a valid {what} ({err})") from err
