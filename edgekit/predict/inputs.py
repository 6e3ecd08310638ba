"""Reading ``predict``'s input: raw features from a ``.npz`` (``x``) or a ``.csv``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.formats.csv_table import read_csv_table, select_columns
from edgekit.predict.info import ArtifactInfo


def read_inputs(
    path: str | os.PathLike, info: ArtifactInfo, *, input_shape: list[int]
) -> np.ndarray:
    """The samples of ``path`` in the model's input shape (``input_shape``, batch first).

    A ``.npz`` holds them as ``x`` (or ``x_test``). A ``.csv`` has a header row; its feature
    columns are those ``info.features`` names, else every numeric column but the label
    (:func:`edgekit.formats.csv_table.select_columns`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    want = [d for d in input_shape[1:]]
    n_features = int(np.prod(want)) if want and all(d > 0 for d in want) else None
    if suffix == ".csv":
        table = read_csv_table(path, what="predict")
        columns = select_columns(
            table, features=info.features, target=info.target, n_features=n_features
        )
        x = np.asarray(table.floats(columns.features), dtype=np.float32)
    elif suffix == ".npz":
        from edgekit.formats.npz import load_npz

        arrays = load_npz(path)
        key = next((k for k in ("x", "x_test") if k in arrays), None)
        if key is None:
            raise EdgekitError(
                f"{path}: no array 'x' (or 'x_test'); it has {', '.join(arrays) or 'none'}"
            )
        x = arrays[key]
        if x.dtype.kind not in "iufb" or x.ndim < 1 or len(x) == 0:
            raise EdgekitError(
                f"{path}: '{key}' must be a non-empty numeric array of shape [samples, "
                f"features...], got {x.dtype.name} {list(x.shape)}"
            )
        x = x.astype(np.float32)
        if x.ndim == 1:
            x = x.reshape(-1, 1)
        with np.errstate(invalid="ignore"):
            if not np.all(np.isfinite(x)):
                raise EdgekitError(f"{path}: '{key}' contains NaN or inf")
    else:
        raise EdgekitError(
            f"{path}: unknown input type {suffix or '(no suffix)'!r}; predict reads .npz or .csv"
        )
    if x.ndim == 2 and len(want) > 1 and n_features == x.shape[1]:
        x = x.reshape(len(x), *want)  # flat columns in the model's sample shape (8x8 images)
    return x
