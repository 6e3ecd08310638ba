"""Atomic file and directory writes, the output-path policy, and safe readers.

Every artifact edgekit writes goes to a temporary name in the same directory and is then
renamed, so an interrupted run never leaves a half-written file behind. The same module holds
the one output-path policy every writer follows:

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
import ctypes
import errno
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
    try:
        path = Path(tempfile.mkdtemp(prefix=_temp_prefix(name), suffix=".tmp", dir=parent))
    except OSError as err:
        raise WriteError(parent, _reason(err)) from err
    try:
        yield path
    finally:
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
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(item.real.name), suffix=".tmp", dir=parent)
    item.tmp = Path(tmp)
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


# --- what edgekit wrote: the directories --force may replace --------------------------------

RUN_FILES = frozenset({"run.json", "model.keras", "history.csv", "training.png"})
RUN_DATA_FILES = frozenset({"test.npz", "calibration.npz"})
EXPORT_FILES = frozenset({"manifest.json", "test.npz", "diagnose.png"})
REPORT_FILES = frozenset({"report.md", "report.html", "latency.png", "tradeoff.png"})


def _schema(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    schema = data.get("schema") if isinstance(data, dict) else None
    return schema if isinstance(schema, str) else None


def _c_array_names(tflite: str) -> list[str]:
    """The ``--c-array`` pair written beside a ``.tflite`` (``model.int8.tflite`` ->
    ``model_int8_data.h/.c``)."""
    stem = tflite[: -len(".tflite")] if tflite.endswith(".tflite") else Path(tflite).stem
    ident = re.sub(r"\W", "_", stem)
    ident = "m_" + ident if ident[:1].isdigit() else ident
    return [f"{ident}_data.h", f"{ident}_data.c"]


def _manifest_files(manifest: dict[str, Any]) -> set[str]:
    """Every file an export manifest owns: artifacts (and their external data, C arrays),
    the C source files, the validation data."""
    names: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, str) and value:
            names.add(value)

    artifacts = manifest.get("artifacts")
    for entry in artifacts if isinstance(artifacts, list) else []:
        if not isinstance(entry, dict):
            continue
        add(entry.get("file"))
        if isinstance(entry.get("file"), str) and entry.get("format") == "tflite":
            names.update(_c_array_names(entry["file"]))
        for key in ("c_array", "external_data", "files"):
            extra = entry.get(key)
            for name in extra if isinstance(extra, list) else [extra]:
                add(name)
    c_source = manifest.get("c_source")
    if isinstance(c_source, dict) and isinstance(c_source.get("files"), list):
        for name in c_source["files"]:
            add(name)
    validation = manifest.get("validation")
    if isinstance(validation, dict):
        add(validation.get("data"))
    return names


def _foreign_in(directory: Path, allowed: set[str], dirs: dict[str, Any]) -> Path | None:
    """The first entry of ``directory`` that is neither an allowed file, an allowed
    subdirectory (checked by its rule in ``dirs``; ``"*"``: any other) nor an edgekit
    temporary name."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return directory
    for entry in entries:
        path = Path(entry.path)
        if is_temporary_name(entry.name):
            continue
        if entry.is_symlink():
            return path
        if entry.is_dir():
            rule = dirs.get(entry.name, dirs.get("*"))
            found = rule(path) if rule is not None else path
            if found is not None:
                return found
        elif not (entry.is_file() and entry.name in allowed):
            return path
    return None


def _foreign_in_report(directory: Path) -> Path | None:
    return _foreign_in(directory, set(REPORT_FILES), {})


def _foreign_in_export(directory: Path) -> Path | None:
    manifest = directory / "manifest.json"
    if _schema(manifest) != "edgekit.export/1":
        return directory / "manifest.json" if manifest.exists() else _first_entry(directory)
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return manifest
    listed = {n for n in _manifest_files(data) if "/" not in n and "\\" not in n}
    return _foreign_in(directory, set(EXPORT_FILES) | listed, {"report": _foreign_in_report})


def _foreign_in_run_data(directory: Path) -> Path | None:
    return _foreign_in(directory, set(RUN_DATA_FILES), {})


def _foreign_in_run_export(directory: Path) -> Path | None:
    """A subdirectory of a run: an export (``export/`` or another ``--out``) or nothing."""
    if _schema(directory / "manifest.json") == "edgekit.export/1":
        return _foreign_in_export(directory)
    return _first_entry(directory) if directory.name == "export" else directory


def _foreign_in_run(directory: Path) -> Path | None:
    rules = {"data": _foreign_in_run_data, ".scratch": _first_entry, "*": _foreign_in_run_export}
    return _foreign_in(directory, set(RUN_FILES), rules)


def _first_entry(directory: Path) -> Path | None:
    try:
        names = sorted(n for n in os.listdir(directory) if not is_temporary_name(n))
    except OSError:
        return directory
    return directory / names[0] if names else None


def foreign_entry(directory: PathLike) -> Path | None:
    """The first file or directory in ``directory`` that edgekit did not write there, or None
    when ``--force`` may replace it.

    The rule: an empty directory; a run directory (``run.json`` of schema
    ``edgekit.run/1``) holding only ``run.json``, ``model.keras``, ``history.csv``,
    ``training.png``, ``data/{test,calibration}.npz`` and export directories (``export/``,
    or any other that passes the next rule); an export directory (``manifest.json`` of schema ``edgekit.export/1``) holding only
    ``manifest.json``, ``test.npz``, ``diagnose.png``, the files its manifest lists (artifacts,
    their ``--c-array`` pairs, the C source files, the validation data) and a ``report/`` of
    ``edgekit report``'s files. Symlinks inside are never edgekit's; edgekit's own temporary
    names are ignored.
    """
    directory = Path(directory)
    if _schema(directory / "run.json") == "edgekit.run/1":
        return _foreign_in_run(directory)
    if (directory / "manifest.json").is_file():
        return _foreign_in_export(directory)
    return _first_entry(directory)


def _home() -> Path | None:
    home = os.environ.get("HOME") or os.path.expanduser("~")
    return _real(home) if home and home != "~" else None


def check_output_dir(
    final: PathLike, *, force: bool = False, protect: Iterable[PathLike] = ()
) -> Path:
    """Check an output directory before any work: not an input nor a directory holding one;
    an existing one only with ``force`` and only when :func:`foreign_entry` finds nothing
    (an empty one, or one edgekit wrote); never the working directory, a directory above it,
    the home directory or ``/``.
    Returns the directory that will be written (a symlink's target, if ``final`` is one)."""
    check_not_input(final, protect)
    real = _real(final)
    shown = os.fspath(final)
    if not (real.exists() or real.is_symlink()):
        return real
    if not real.is_dir():
        raise EdgekitError(f"cannot write {shown}: it exists and is not a directory")
    with contextlib.suppress(OSError):
        cwd = _real(os.getcwd())
        if real == cwd:
            raise EdgekitError(f"cannot replace {shown}: it is the working directory")
        if real in cwd.parents:
            raise EdgekitError(f"cannot replace {shown}: it contains the working directory")
    home = _home()
    if home is not None and (real == home or real in home.parents):
        which = "is" if real == home else "contains"
        raise EdgekitError(f"cannot replace {shown}: it {which} the home directory")
    if real == Path(real.anchor):
        raise EdgekitError(f"cannot replace {shown}: it is the root directory")
    if not force:
        raise EdgekitError(f"{shown} already exists; pass --force to overwrite it")
    found = foreign_entry(real)
    if found is not None:
        what = os.path.relpath(found, real) if found != real else "files"
        raise EdgekitError(
            f"cannot replace {shown}: it holds {what}, which edgekit did not write "
            "(--force replaces only an empty directory or one edgekit wrote)"
        )
    return real


# --- claiming directories -----------------------------------------------------------------

_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; False when this system cannot (no such call, or a
    file system without the flag), raises OSError otherwise."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.renameat2
    except (OSError, AttributeError):
        return False
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    call.restype = ctypes.c_int
    if call(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(dst))


def rename_no_replace(src: PathLike, dst: PathLike) -> None:
    """Move directory ``src`` to ``dst``, which must not exist (FileExistsError otherwise,
    even for an empty ``dst``, which a plain rename would replace)."""
    src, dst = Path(src), Path(dst)
    if _renameat2(src, dst, _RENAME_NOREPLACE):
        return
    os.mkdir(dst)  # the claim: fails if dst exists
    try:
        os.rename(src, dst)  # replaces the empty directory just made
    except BaseException:
        with contextlib.suppress(OSError):
            os.rmdir(dst)
        raise


def _exchange(tmp: Path, final: Path) -> None:
    """Swap the new directory ``tmp`` with the existing ``final``: afterwards ``final`` holds
    the new one, ``tmp`` the old one. FileNotFoundError when ``final`` has gone."""
    if _renameat2(tmp, final, _RENAME_EXCHANGE):
        return
    old = Path(tempfile.mkdtemp(prefix=_temp_prefix(final.name), suffix=".old", dir=final.parent))
    os.rmdir(old)
    os.rename(final, old)
    try:
        rename_no_replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            rename_no_replace(old, final)
        raise
    os.rename(old, tmp)


@dataclass
class DirectoryClaim:
    """A directory being built: ``tmp`` now, ``final`` once the claim completes (``final``
    may change before then for a ``unique`` claim whose name was taken meanwhile)."""

    tmp: Path
    final: Path


def _unique_names(final: Path) -> Iterator[Path]:
    yield final
    n = 2
    while True:
        yield final.with_name(f"{final.name}-{n}")
        n += 1


def _written_path(err: OSError, tmp: Path, final: Path) -> Path | None:
    """The output path an OSError from the body was about: a file inside ``tmp`` (named as
    it will be inside ``final``), or any path of a write error (no space, read-only file
    system, quota); None for other errors (reading an input, say)."""
    name = err.filename
    path = Path(os.fsdecode(name)) if isinstance(name, (str, bytes, os.PathLike)) else None
    if path is not None:
        with contextlib.suppress(ValueError):
            return final / path.resolve().relative_to(tmp.resolve())
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG):
        return path or final
    return None


@contextlib.contextmanager
def claim_directory(
    final: PathLike,
    *,
    force: bool = False,
    protect: Iterable[PathLike] = (),
    unique: bool = False,
) -> Iterator[DirectoryClaim]:
    """Build a directory under a hidden temporary name beside ``final``, then claim ``final``.

    ``final`` is checked first (:func:`check_output_dir`); it is claimed by a rename that
    never replaces, so when another writer made it meanwhile this one fails ("appeared or
    changed while this command ran") and nothing is replaced, or with ``unique`` takes the
    next free name (``NAME-2``, ``NAME-3``, ...). With ``force``, an existing ``final`` is
    swapped out only once the new directory is complete, only if it is still the same
    directory and still one ``--force`` may replace. If the body raises (or the process is
    interrupted) the temporary directory is removed and ``final`` is untouched. ``OSError``
    while writing becomes one :class:`WriteError` line.
    """
    final = Path(final)
    protect = list(protect)
    real = check_output_dir(final, force=force, protect=protect)
    existed = _identity(real)
    parent = real.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(parent)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(real.name), suffix=".tmp", dir=parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as err:
        # mkdir(exist_ok=True) on a file raises FileExistsError, whose "File exists" misleads
        reason = "not a directory" if isinstance(err, FileExistsError) else _reason(err)
        raise EdgekitError(f"cannot write to {final.parent}: {reason}") from err
    claim = DirectoryClaim(tmp=tmp, final=final)
    try:
        try:
            yield claim
        except OSError as err:
            where = _written_path(err, tmp, final)
            if where is None:
                raise
            raise WriteError(where, _reason(err)) from err
        except WriteError as err:
            with contextlib.suppress(ValueError):
                inside = err.path.resolve().relative_to(tmp.resolve())
                raise WriteError(final / inside, err.reason) from err
            raise
        check_interrupt()
        _commit_directory(claim, real, existed=existed, force=force, protect=protect,
                          unique=unique)  # fmt: skip
    finally:
        if claim.tmp.exists():
            shutil.rmtree(claim.tmp, ignore_errors=True)


def _identity(path: Path) -> tuple[int, int] | None:
    """Which directory ``path`` is now (device, inode), None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _commit_directory(
    claim: DirectoryClaim,
    real: Path,
    *,
    existed: tuple[int, int] | None,
    force: bool,
    protect: list,
    unique: bool,
) -> None:
    shown = claim.final
    changed = EdgekitError(
        f"cannot write {shown}: it appeared or changed while this command ran (another "
        "edgekit writing there?); nothing was replaced"
    )
    try:
        now = _identity(real)
        if existed is not None and now is not None:
            if now != existed:
                raise changed
            check_output_dir(shown, force=force, protect=protect)  # still replaceable?
            try:
                _exchange(claim.tmp, real)
                return  # claim.tmp now holds the old directory; the caller removes it
            except FileNotFoundError:
                pass  # it went away meanwhile: claim the name as a fresh one
        names = _unique_names(real) if unique else iter([real])
        for target in names:
            try:
                rename_no_replace(claim.tmp, target)
            except FileExistsError:
                if unique:
                    continue
                raise changed from None
            if target != real:
                claim.final = shown.with_name(target.name)
            return
    except OSError as err:
        raise WriteError(shown, _reason(err)) from err


@contextlib.contextmanager
def atomic_directory(
    final: PathLike, *, force: bool = False, protect: Iterable[PathLike] = ()
) -> Iterator[Path]:
    """Build a directory under a temporary name beside ``final``, then move it into place
    (:func:`claim_directory`); yields the temporary directory.

    ``protect`` lists the command's inputs: ``final`` may not be one of them nor hold one.
    """
    with claim_directory(final, force=force, protect=protect) as claim:
        yield claim.tmp


@contextlib.contextmanager
def scratch_tempdir(path: PathLike) -> Iterator[Path]:
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


def point_symlink(link: PathLike, target: PathLike) -> None:
    """Atomically make ``link`` a relative symlink to ``target`` (replacing an old link, a
    dangling one included). A ``link`` that is a real file or directory is never replaced:
    that is an :class:`EdgekitError`, as is an ``OSError``."""
    link = Path(link)
    if link.exists() and not link.is_symlink():
        kind = "directory" if link.is_dir() else "file"
        raise EdgekitError(f"{link} is a {kind}, not a symlink; left as it is")
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(link.parent)
        rel = os.path.relpath(Path(target).resolve(), link.parent.resolve())
        for _ in range(100):
            tmp = link.parent / f"{_temp_prefix(link.name)}{os.urandom(4).hex()}.tmp"
            try:
                os.symlink(rel, tmp)
                break
            except FileExistsError:
                continue
        try:
            os.replace(tmp, link)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as err:
        raise WriteError(link, _reason(err)) from err


def load_json(path: PathLike, *, what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EdgekitError(f"{path}: not a valid {what} ({err})") from err
