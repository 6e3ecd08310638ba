"""Test data for bench: a ``.npz`` checked from its headers alone, before anything runs.

The parent process reads only the array headers (:func:`edgekit.formats.npz.npz_headers`):
names, shapes and dtypes. The values are loaded and checked in the measuring child.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.formats.npz import NUMERIC_KINDS, dtype_name, npz_headers


@dataclass
class TestData:
    """A validated ``.npz`` of test data and the keys of its arrays."""

    path: Path
    x_key: str
    y_key: str | None
    reference_key: str | None
    n: int
    feature_shape: tuple[int, ...]


def load_test_data(path: str | os.PathLike, *, what: str = "--data") -> TestData:
    """Check a test-data ``.npz``: ``x`` (or ``x_test``), optional ``y``/``reference``."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise EdgekitError(f"{path}: not a valid .npz file (not a zip archive)")
    arrays = npz_headers(path)
    if any(descr[1:2] == "O" for _, descr in arrays.values()):
        raise EdgekitError(f"{path}: holds pickled objects, which edgekit refuses to load")
    x_key = next((k for k in ("x", "x_test") if k in arrays), None)
    if x_key is None:
        raise EdgekitError(
            f"{what} {path}: no array 'x' (or 'x_test'); it has {', '.join(arrays) or 'none'}"
        )
    x_shape, x_descr = arrays[x_key]
    if len(x_shape) < 2 or x_shape[0] == 0 or x_descr[1:2] not in tuple(NUMERIC_KINDS):
        raise EdgekitError(
            f"{what} {path}: '{x_key}' must be a non-empty numeric array of shape "
            f"[samples, features...], got {dtype_name(x_descr)} {list(x_shape)}"
        )
    y_key = next((k for k in ("y", "y_test") if k in arrays), None)
    ref_key = "reference" if "reference" in arrays else None
    for key in (y_key, ref_key):
        if key is None:
            continue
        shape, descr = arrays[key]
        if not shape or shape[0] != x_shape[0] or descr[1:2] not in tuple(NUMERIC_KINDS):
            raise EdgekitError(
                f"{what} {path}: '{key}' must be numeric with one entry per sample of "
                f"'{x_key}' ({x_shape[0]}), got {dtype_name(descr)} {list(shape)}"
            )
    return TestData(
        path=path,
        x_key=x_key,
        y_key=y_key,
        reference_key=ref_key,
        n=x_shape[0],
        feature_shape=x_shape[1:],
    )


def check_features(data: TestData, input_shape: list[int] | None, *, artifact: str) -> None:
    """Refuse test data whose feature shape the manifest says the model does not take.

    ``input_shape`` is the model's, batch first (``-1`` for any size); None: not known.
    """
    if not input_shape:
        return
    want = input_shape[1:]
    have = data.feature_shape
    if len(want) != len(have) or any(w not in (-1, h) for w, h in zip(want, have, strict=False)):
        raise EdgekitError(
            f"{data.path}: '{data.x_key}' has samples of shape {list(have)}, "
            f"{artifact} takes [batch, {', '.join(map(str, want))}]"
        )
