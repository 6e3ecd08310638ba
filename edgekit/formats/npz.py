"""``.npz`` files: headers read without loading an array, and loading without pickles.

:func:`npz_headers` needs no numpy (the light bench parent checks test data with it);
:func:`load_npz` imports numpy when called.
"""

from __future__ import annotations

import ast
import os
import zipfile
from pathlib import Path

from edgekit.errors import EdgekitError

NUMERIC_KINDS = "fiuc"


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{name: (shape, dtype descr)}`` of an ``.npz``, from the ``.npy`` headers alone.

    The parent process checks test data this way: no array is loaded (the measuring child
    loads them, pickles refused), and the parent never needs to import numpy.
    """
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                with zf.open(info) as fh:
                    magic = fh.read(8)
                    if magic[:6] != b"\x93NUMPY":
                        raise ValueError(f"{info.filename} is not a .npy array")
                    size = 2 if magic[6] == 1 else 4
                    length = int.from_bytes(fh.read(size), "little")
                    header = ast.literal_eval(fh.read(length).decode("latin1"))
                descr = header["descr"]
                out[key] = (
                    tuple(int(d) for d in header["shape"]),
                    descr if isinstance(descr, str) else "|V",
                )
    except (
        zipfile.BadZipFile, OSError, ValueError, SyntaxError, KeyError, TypeError,
        NotImplementedError, EOFError, RuntimeError,
    ) as err:  # fmt: skip
        raise EdgekitError(f"{path}: not a valid .npz file ({err})") from err
    return out


def dtype_name(descr: str) -> str:
    """``<f8`` -> ``float64``: a numpy dtype's name from its ``.npy`` description."""
    kind, size = descr[1:2], descr[2:]
    bits = {"f": "float", "i": "int", "u": "uint", "c": "complex"}
    if kind in bits and size.isdigit():
        return f"{bits[kind]}{int(size) * 8}"
    return {"b": "bool", "U": "str", "S": "bytes", "O": "object"}.get(kind, descr)


def load_npz(path: str | os.PathLike) -> dict:
    """Read a ``.npz`` file without pickles; every failure is a one-line user error."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):  # np.load would take any other bytes for a pickle
        raise EdgekitError(f"{path}: not a valid .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise EdgekitError(
                f"{path}: holds pickled objects, which edgekit refuses to load"
            ) from err
        raise EdgekitError(f"{path}: not a valid .npz file ({err})") from err
    except Exception as err:  # zipfile.BadZipFile, OSError, EOFError, ...
        raise EdgekitError(f"{path}: not a valid .npz file ({type(err).__name__}: {err})") from err
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):  # np.load hands back a non-.npy member's bytes
            raise EdgekitError(f"{path}: not a valid .npz file ({key!r} is not a .npy array)")
    return arrays
