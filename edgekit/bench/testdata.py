"""Test data for bench: a ``.npz`` or ``.csv``, checked before anything runs.

For a ``.npz`` the parent process reads only the array headers
(:func:`edgekit.formats.npz.npz_headers`): names, shapes and dtypes; the values are loaded
and checked in the measuring child. A ``.csv`` (:mod:`edgekit.formats.csv_table`) is read
and checked here, and its columns are chosen per artifact (:func:`csv_for_target`): the
features the manifest records, or every numeric column but the label.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.formats.csv_table import CsvTable, label_values, read_csv_table, select_columns
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
    # a .csv: its table, and the feature and label columns chosen for one artifact
    table: CsvTable | None = None
    columns: list[str] | None = None
    label: str | None = None


def _load_csv(path: Path, what: str) -> TestData:
    table = read_csv_table(path, what=what)
    return TestData(path=path, x_key="x", y_key=None, reference_key=None, n=len(table.rows),
                    feature_shape=(), table=table)  # fmt: skip


def csv_for_target(
    data: TestData,
    *,
    features: Sequence[str] | None,
    target: str | None,
    labels: Sequence[str] | None,
    input_shape: list[int] | None,
) -> TestData:
    """``data`` (a ``.csv``) with the columns of one artifact chosen and checked."""
    assert data.table is not None
    want = [d for d in (input_shape or [])[1:] if d > 0]
    n_features = 1
    for d in want:
        n_features *= d
    cols = select_columns(
        data.table, features=features, target=target, n_features=n_features if want else None
    )
    data.table.floats(cols.features)  # every feature cell a number: exit 2 now, not later
    if cols.label is not None:
        label_values(data.table, cols.label, labels)
    shape = tuple(want) if want else (len(cols.features),)
    return replace(data, columns=cols.features, label=cols.label, feature_shape=shape)


def load_test_data(path: str | os.PathLike, *, what: str = "--data") -> TestData:
    """Check test data: a ``.npz`` with ``x`` (or ``x_test``) and optional
    ``y``/``reference``, or a ``.csv`` (its columns are chosen per artifact)."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        return _load_csv(path, what)
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
