"""Dataset files: CSV (header row, numeric features, one target column) and NPZ."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from edgekit.data.dataset import Dataset, build_dataset
from edgekit.errors import EdgekitError
from edgekit.fileio import sha256_file
from edgekit.formats.csv_table import sniff_delimiter
from edgekit.formats.npz import load_npz


def load_csv(path: Path, *, target: str | None = None, task: str = "auto") -> Dataset:
    """Read a CSV: header row, numeric feature columns, the label in ``target`` (default: last)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh, delimiter=sniff_delimiter(fh)))
    except UnicodeDecodeError as err:
        raise EdgekitError(f"{path}: not a UTF-8 text CSV file") from err
    except csv.Error as err:
        raise EdgekitError(f"{path}: malformed CSV ({err})") from err
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise EdgekitError(f"{path}: the CSV file is empty")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if len(header) < 2:
        raise EdgekitError(
            f"{path}: needs a header row with at least one feature and a target column "
            f"(found {len(header)} column: {header[0][:40]!r}; delimiters read: , ; tab |)"
        )
    if not body:
        raise EdgekitError(f"{path}: the CSV file has a header but no data rows")
    if target is None:
        t_idx = len(header) - 1
    elif target in header:
        t_idx = header.index(target)
    else:
        raise EdgekitError(f"{path}: no column named {target!r}; columns are {', '.join(header)}")
    features = [i for i in range(len(header)) if i != t_idx]
    x = np.empty((len(body), len(features)), dtype=np.float64)
    y_text: list[str] = []
    for r, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise EdgekitError(
                f"{path}: line {r} has {len(row)} fields, the header has {len(header)}"
            )
        for j, i in enumerate(features):
            cell = row[i].strip()
            if not cell:
                raise EdgekitError(f"{path}: line {r}, column {header[i]!r} is empty")
            try:
                value = float(cell)
            except ValueError:
                raise EdgekitError(
                    f"{path}: line {r}, column {header[i]!r}: {cell!r} is not a number "
                    "(feature columns must be numeric)"
                ) from None
            if not math.isfinite(value):
                raise EdgekitError(f"{path}: line {r}, column {header[i]!r} is {cell}")
            x[r - 2, j] = value
        label = row[t_idx].strip()
        if not label:
            raise EdgekitError(f"{path}: line {r}, target column {header[t_idx]!r} is empty")
        y_text.append(label)
    y = _numeric_or_text(y_text)
    ds = build_dataset(
        name=path.stem,
        source=str(path),
        sha256=sha256_file(path),
        x=x,
        y=y,
        task=task,
        where=str(path),
    )
    ds.meta["features"] = [header[i] for i in features]
    ds.meta["target"] = header[t_idx]
    return ds


def _numeric_or_text(values: list[str]) -> np.ndarray:
    try:
        nums = np.array([float(v) for v in values])
    except ValueError:
        return np.array(values)
    if np.all(np.isfinite(nums)) and np.all(nums == np.round(nums)):
        return nums.astype(np.int64)
    return nums


def load_npz_dataset(path: Path, *, target: str | None = None, task: str = "auto") -> Dataset:
    """Read ``x``,``y`` or ``x_train``,``y_train``,``x_test``,``y_test`` (its own test split)."""
    arrays = load_npz(path)
    keys = set(arrays)
    if {"x_train", "y_train", "x_test", "y_test"} <= keys:
        x, y = arrays["x_train"], arrays["y_train"]
        x_test, y_test = arrays["x_test"], arrays["y_test"]
    elif {"x", "y"} <= keys:
        x, y, x_test, y_test = arrays["x"], arrays["y"], None, None
    else:
        raise EdgekitError(
            f"{path}: expected arrays x and y, or x_train, y_train, x_test and y_test; "
            f"found {', '.join(sorted(keys)) or 'none'}"
        )
    for key, arr in (("x", x), ("y", y), ("x_test", x_test), ("y_test", y_test)):
        if arr is not None and arr.dtype.kind == "c":
            what = "features" if key.startswith("x") else "targets"
            raise EdgekitError(
                f"{path}: {key!r} holds complex numbers ({arr.dtype}); edgekit does not "
                f"support complex {what}"
            )
    return build_dataset(
        name=path.stem,
        source=str(path),
        sha256=sha256_file(path),
        x=x,
        y=y,
        task=task,
        x_test=x_test,
        y_test=y_test,
        where=str(path),
    )
