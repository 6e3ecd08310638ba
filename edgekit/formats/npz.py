"""``.npz`` files: headers read without loading an array, and loading without pickles.

:func:`npz_headers` needs no numpy (the light bench parent checks test data with it);
:func:`load_npz` imports numpy when called.
"""

from __future__ import annotations

import ast
import math
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

from edgekit.errors import EdgekitError

NUMERIC_KINDS = "fiuc"
MAX_HEADER_BYTES = 10000  # numpy's own cap (``max_header_size``): longer headers need trust
_NPY_MAGIC = b"\x93NUMPY"
_MAX_RANK = 64
_ITEMSIZE = {"b": 1, "i": 0, "u": 0, "f": 0, "c": 0, "S": 1, "U": 4, "V": 1, "m": 0, "M": 0}


class _Bad(ValueError):
    """A member that is not a readable ``.npy`` array (the message says why)."""


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{name: (shape, dtype descr)}`` of an ``.npz``, from the ``.npy`` headers alone.

    The parent process checks test data this way: no array is loaded (the measuring child
    loads them, pickles refused), and the parent never needs to import numpy. Reading is
    bounded: the archive's declared sizes are checked (:func:`check_zip_sizes`), a header
    longer than numpy's 10000-byte cap is refused before it is read, and every array must
    fit in its member (a header that declares 10^12 elements in a small member is refused).
    """
    try:
        with zipfile.ZipFile(path) as zf:
            return scan_npz(path, zf)
    except EdgekitError:
        raise
    except (
        zipfile.BadZipFile, OSError, ValueError, SyntaxError, KeyError, TypeError,
        NotImplementedError, EOFError, RuntimeError, MemoryError, RecursionError,
    ) as err:  # fmt: skip
        raise EdgekitError(f"{path}: not a valid .npz file ({err})") from err


def scan_npz(
    path: Path,
    zf: zipfile.ZipFile,
    *,
    itemsize: Callable[[object], int | None] | None = None,
    size: int | None = None,
) -> dict[str, tuple[tuple[int, ...], str]]:
    """:func:`npz_headers` of an open archive (a ``.keras``'s weights are one, inside).

    ``itemsize``: bytes per element of a descr (None: unknown, not checked); the default
    knows the simple descrs without numpy, :func:`load_npz` passes numpy's, for all.
    ``size``: the archive's bytes when it is not a file of its own (inside a ``.keras``).
    """
    from edgekit.formats.sizes import check_zip_sizes

    check_zip_sizes(path, zf, what="an .npz", size=size)
    out = {}
    for info in zf.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        try:
            with zf.open(info) as fh:
                shape, descr, offset = _read_header(fh)
            size = (itemsize or _itemsize)(descr)
        except _Bad as err:
            raise EdgekitError(f"{path}: not a valid .npz file ({info.filename}: {err})") from None
        if size is not None:
            need = math.prod(shape) * size
            have = info.file_size - offset
            if need > have:
                raise EdgekitError(
                    f"{path}: not a valid .npz file ({info.filename}: its header declares "
                    f"{_dims(shape)} x {size} bytes = {need:,} bytes, the member holds "
                    f"{max(have, 0):,})"
                )
        out[key] = (shape, descr if isinstance(descr, str) else "|V")
    return out


def _dims(shape: tuple[int, ...]) -> str:
    text = "x".join(map(str, shape)) or "1"
    return text if len(text) <= 60 else text[:57] + "..."


def _read_header(fh) -> tuple[tuple[int, ...], object, int]:
    """(shape, descr, offset of the data) of one ``.npy`` stream, reading only its header."""
    magic = fh.read(8)
    if len(magic) < 8 or magic[:6] != _NPY_MAGIC:
        raise _Bad("not a .npy array")
    major = magic[6]
    if major not in (1, 2, 3):
        raise _Bad(f"unknown .npy format version {major}.{magic[7]}")
    size = 2 if major == 1 else 4
    length = int.from_bytes(fh.read(size), "little")
    if length > MAX_HEADER_BYTES:
        raise _Bad(f"its .npy header is {length:,} bytes; numpy reads at most {MAX_HEADER_BYTES:,}")
    raw = fh.read(length)
    if len(raw) != length:
        raise _Bad("truncated .npy header")
    text = raw.decode("utf-8" if major == 3 else "latin1")
    try:
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as err:
        raise _Bad(f"unreadable .npy header ({type(err).__name__})") from None
    if not isinstance(header, dict) or not {"descr", "shape", "fortran_order"} <= set(header):
        raise _Bad("the .npy header is not a dict with descr, shape and fortran_order")
    shape = header["shape"]
    if (
        not isinstance(shape, tuple)
        or len(shape) > _MAX_RANK
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise _Bad(f"bad shape in the .npy header: {str(shape)[:60]}")
    if not isinstance(header["fortran_order"], bool):
        raise _Bad("bad fortran_order in the .npy header")
    return shape, header["descr"], 8 + size + length


def _itemsize(descr: object) -> int | None:
    """Bytes per element of a simple descr (``<f8``: 8, ``<U5``: 20); None: not known here
    (structured dtypes: numpy checks those, as it reads; object arrays are refused)."""
    if not isinstance(descr, str) or len(descr) < 2:
        return None
    body = descr[1:] if descr[0] in "<>|=" else descr
    kind, digits = body[:1], body[1:]
    if kind not in _ITEMSIZE or not digits.isdigit():
        return None
    unit = _ITEMSIZE[kind]
    return int(digits) * (unit or 1) if kind in "SUV" else int(digits)


def dtype_name(descr: str) -> str:
    """``<f8`` -> ``float64``: a numpy dtype's name from its ``.npy`` description."""
    kind, size = descr[1:2], descr[2:]
    bits = {"f": "float", "i": "int", "u": "uint", "c": "complex"}
    if kind in bits and size.isdigit():
        return f"{bits[kind]}{int(size) * 8}"
    return {"b": "bool", "U": "str", "S": "bytes", "O": "object"}.get(kind, descr)


def load_npz(path: str | os.PathLike) -> dict:
    """Read a ``.npz`` file without pickles; every failure is a one-line user error.

    The headers are checked first, as :func:`npz_headers` does (bounded: nothing is read
    or allocated beyond what the archive holds), then numpy loads the arrays.
    """
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):  # np.load would take any other bytes for a pickle
        raise EdgekitError(f"{path}: not a valid .npz file (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as zf:
            headers = scan_npz(path, zf, itemsize=_numpy_itemsize)
    except EdgekitError:
        raise
    except Exception as err:  # zipfile.BadZipFile, OSError, EOFError, ...
        raise EdgekitError(f"{path}: not a valid .npz file ({_first_line(err)})") from err
    if any(isinstance(d, str) and d[1:2] == "O" for _, d in headers.values()):
        raise EdgekitError(f"{path}: holds pickled objects, which edgekit refuses to load")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise EdgekitError(
                f"{path}: holds pickled objects, which edgekit refuses to load"
            ) from err
        raise EdgekitError(f"{path}: not a valid .npz file ({_first_line(err)})") from err
    except Exception as err:  # zipfile.BadZipFile, OSError, EOFError, ...
        raise EdgekitError(
            f"{path}: not a valid .npz file ({type(err).__name__}: {_first_line(err)})"
        ) from err
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):  # np.load hands back a non-.npy member's bytes
            raise EdgekitError(f"{path}: not a valid .npz file ({key!r} is not a .npy array)")
    return arrays


def _numpy_itemsize(descr: object) -> int | None:
    """numpy's own reading of a descr (structured ones too); None for object arrays."""
    import numpy as np

    try:
        dtype = np.lib.format.descr_to_dtype(descr)  # type: ignore[arg-type]
    except Exception as err:  # any malformed descr: numpy's own exception types
        raise _Bad(f"bad dtype in the .npy header ({_first_line(err)})") from err
    return None if dtype.hasobject else dtype.itemsize


def _first_line(err: BaseException) -> str:
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return text if len(text) <= 200 else text[:197] + "..."
