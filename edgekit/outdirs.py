"""Output directories: what ``--force`` may replace, and claiming a directory atomically.

``--force`` replaces only an empty directory or one edgekit wrote (:func:`foreign_entry` says
what edgekit wrote), never the working directory or a directory above it, never the home
directory or ``/``, never an input or a directory holding one. A directory is built under a
hidden temporary name and claimed with a rename that never replaces
(``renameat2(RENAME_NOREPLACE)``, else ``mkdir`` as the claim), so a second writer to the
same path fails with one line instead of replacing the first one's work. File writes and the
temporary names are :mod:`edgekit.fileio`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.fileio import (
    PathLike,
    WriteError,
    _real,
    _reason,
    _temp_prefix,
    _umask,
    check_interrupt,
    check_not_input,
    interrupts_deferred,
    is_temporary_name,
    remove_stale_temporaries,
)

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


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _manifest_files(manifest: dict[str, Any]) -> dict[str, str | None]:
    """Every file an export manifest owns, with the sha256 it records for it (None where it
    records none): artifacts (and their C arrays), the C source files, the validation data.

    A name is edgekit's only as the manifest proves it: a file it lists with a sha256 (an
    artifact, a C array, a C source file), or a name edgekit's own naming gives (an
    artifact's ``<stem>_data.h/.c`` pair, :data:`EXPORT_FILES`). A hand-made manifest that
    lists someone's ``thesis.tex`` without its hash does not make ``--force`` delete it."""
    names: dict[str, str | None] = {}

    def digest_of(value: Any) -> str | None:
        return value if isinstance(value, str) and _SHA256.fullmatch(value) else None

    artifacts = manifest.get("artifacts")
    for entry in artifacts if isinstance(artifacts, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            continue
        names[entry["file"]] = digest_of(entry.get("sha256"))
        arrays = entry.get("c_array_sha256")
        arrays = arrays if isinstance(arrays, dict) else {}
        if entry.get("format") == "tflite":
            for name in _c_array_names(entry["file"]):
                names[name] = digest_of(arrays.get(name)) if name in arrays else ""
        listed = entry.get("c_array")
        for name in listed if isinstance(listed, list) else []:
            if isinstance(name, str) and name not in names:
                names[name] = digest_of(arrays.get(name))
    c_source = manifest.get("c_source")
    if isinstance(c_source, dict) and isinstance(c_source.get("files"), list):
        recorded = c_source.get("sha256")
        digests: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
        for name in c_source["files"]:
            if isinstance(name, str):
                names[name] = digest_of(digests.get(name))
    return names


def _changed(path: Path, digest: str | None) -> bool:
    """Whether ``path`` is not the file the manifest records: no record of it (``None``), or
    different bytes. ``""``: a name edgekit's naming gives, taken without a hash."""
    if digest == "":
        return False
    if digest is None:
        return True
    from edgekit.fileio import sha256_file

    try:
        return sha256_file(path) != digest
    except OSError:
        return True


def _foreign_in(
    directory: Path,
    allowed: set[str] | dict[str, str | None],
    dirs: dict[str, Any],
) -> Path | None:
    """The first entry of ``directory`` that is neither an allowed file (with its recorded
    sha256, where ``allowed`` maps names to one), an allowed subdirectory (checked by its
    rule in ``dirs``; ``"*"``: any other) nor an edgekit temporary name."""
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
        elif not (entry.is_file() and entry.name in allowed) or (
            isinstance(allowed, dict) and _changed(path, allowed[entry.name])
        ):
            return path
    return None


def _listed(path: Path) -> bool:
    """Whether ``path`` is a file its directory's export manifest lists (so, found foreign,
    it changed since the export)."""
    manifest = path.parent / "manifest.json"
    if path == manifest or _schema(manifest) != "edgekit.export/1" or not path.is_file():
        return False
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and _manifest_files(data).get(path.name) is not None


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
    if not isinstance(data, dict):
        return manifest
    allowed: dict[str, str | None] = {name: "" for name in EXPORT_FILES}
    allowed.update(
        (n, d) for n, d in _manifest_files(data).items() if "/" not in n and "\\" not in n
    )
    return _foreign_in(directory, allowed, {"report": _foreign_in_report})


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
        why = "changed since edgekit wrote it" if _listed(found) else "edgekit did not write"
        raise EdgekitError(
            f"cannot replace {shown}: it holds {what}, which {why} "
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
    claim: DirectoryClaim | None = None
    made = _missing_ancestors(parent)  # removed again, if still empty, when this fails
    committed = False
    try:
        with interrupts_deferred():  # made and recorded for the cleanup below, in one step
            try:
                parent.mkdir(parents=True, exist_ok=True)
                remove_stale_temporaries(parent)
                tmp = Path(
                    tempfile.mkdtemp(prefix=_temp_prefix(real.name), suffix=".tmp", dir=parent)
                )
                claim = DirectoryClaim(tmp=tmp, final=final)
                os.chmod(tmp, 0o777 & ~_umask())
            except OSError as err:
                # mkdir(exist_ok=True) on a file raises FileExistsError: "File exists" misleads
                reason = "not a directory" if isinstance(err, FileExistsError) else _reason(err)
                raise EdgekitError(f"cannot write to {final.parent}: {reason}") from err
        check_interrupt()  # one that came while the directory was made: removed below
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
        committed = True
    finally:
        if claim is not None and claim.tmp.exists():
            shutil.rmtree(claim.tmp, ignore_errors=True)
        if not committed:
            for directory in made:  # deepest first; a directory someone filled meanwhile stays
                with contextlib.suppress(OSError):
                    directory.rmdir()


def _missing_ancestors(path: Path) -> list[Path]:
    """``path`` and its parents that do not exist yet, deepest first."""
    missing = []
    for directory in [path, *path.parents]:
        if directory.exists() or directory.is_symlink():
            break
        missing.append(directory)
    return missing


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
