"""The in-memory dataset, task inference, label encoding and seeded stratified splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgekit.errors import EdgekitError

TASKS = ("binary", "multiclass", "regression")
# Integer-valued targets with at most this many distinct values are classes under --task auto.
MAX_AUTO_CLASSES = 100


@dataclass
class Dataset:
    """Features and targets of one dataset, labels encoded for its task.

    ``y`` holds class indices (``int64``, into ``labels``) for classification and floats for
    regression. ``x_test``/``y_test`` are set when the dataset has its own test split (MNIST).
    """

    name: str
    source: str
    sha256: str
    task: str
    x: np.ndarray
    y: np.ndarray
    labels: list[str] | None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> list[int]:
        return [int(d) for d in self.x.shape[1:]]

    @property
    def n_classes(self) -> int:
        return len(self.labels) if self.labels else 0


@dataclass
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _is_integral(values: np.ndarray) -> bool:
    if values.dtype.kind in "iub":
        return True
    if values.dtype.kind == "f":
        return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    return False


def _label_text(value) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def build_dataset(
    *,
    name: str,
    source: str,
    sha256: str,
    x: np.ndarray,
    y: np.ndarray,
    task: str = "auto",
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    label_names: list[str] | None = None,
    where: str | None = None,
) -> Dataset:
    """Check features and targets, infer the task, and encode labels.

    ``label_names`` names integer classes ``0..K-1`` (e.g. scikit-learn's ``target_names``);
    ``where`` is what error messages name (default: ``name``; the path for files).
    """
    where = where or name
    if task not in ("auto", *TASKS):
        raise EdgekitError(f"unknown task {task!r}; choose from auto, {', '.join(TASKS)}")
    x = _check_features(where, x, "x")
    if x_test is not None:
        x_test = _check_features(where, x_test, "x_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise EdgekitError(
                f"{where}: x_test has feature shape {list(x_test.shape[1:])}, "
                f"but x has {list(x.shape[1:])}"
            )
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x):
        raise EdgekitError(
            f"{where}: targets must be one value per sample: got shape {list(y.shape)} "
            f"for {len(x)} samples"
        )
    if y_test is not None:
        y_test = np.asarray(y_test)
        if x_test is None or y_test.ndim != 1 or len(y_test) != len(x_test):
            raise EdgekitError(f"{where}: y_test must have one value per row of x_test")
    all_y = y if y_test is None else np.concatenate([y, y_test])
    if all_y.dtype.kind == "f" and not np.all(np.isfinite(all_y)):
        raise EdgekitError(f"{where}: the targets contain NaN or inf")

    if task == "auto":
        if all_y.dtype.kind in "USO" or (
            _is_integral(all_y) and len(np.unique(all_y)) <= MAX_AUTO_CLASSES
        ):
            task = "binary" if len(np.unique(all_y)) <= 2 else "multiclass"
        else:
            task = "regression"

    if task == "regression":
        if all_y.dtype.kind not in "iufb":
            raise EdgekitError(f"{where}: regression needs numeric targets")
        labels = None
        y_enc = y.astype(np.float32)
        yt_enc = None if y_test is None else y_test.astype(np.float32)
    else:
        classes = np.unique(all_y)
        if len(classes) < 2:
            raise EdgekitError(
                f"{where}: the target has a single class ({_label_text(classes[0])!r}); "
                "classification needs at least two"
            )
        if task == "binary" and len(classes) != 2:
            raise EdgekitError(
                f"{where}: --task binary needs exactly two classes, found {len(classes)}"
            )
        if label_names is not None and _is_integral(classes) and len(label_names) == len(classes):
            labels = [str(n) for n in label_names]
        else:
            labels = [_label_text(c) for c in classes]
        y_enc = np.searchsorted(classes, y).astype(np.int64)
        yt_enc = None if y_test is None else np.searchsorted(classes, y_test).astype(np.int64)
    return Dataset(
        name=name,
        source=source,
        sha256=sha256,
        task=task,
        x=x,
        y=y_enc,
        labels=labels,
        x_test=x_test,
        y_test=yt_enc,
    )


def _check_features(name: str, x: np.ndarray, key: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise EdgekitError(
            f"{name}: {key} must have samples along its first axis and at least one feature; "
            f"got shape {list(x.shape)}"
        )
    if x.dtype.kind not in "iufb":
        raise EdgekitError(f"{name}: {key} must be numeric, got dtype {x.dtype}")
    integral = x.dtype.kind in "iub"  # integers are always finite
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused just below
        x = x.astype(np.float32)
    if not integral and not np.all(np.isfinite(x)):
        raise EdgekitError(f"{name}: {key} contains NaN or inf")
    return x


def _check_fraction(flag: str, value: float) -> float:
    if not 0.0 < value < 1.0:
        raise EdgekitError(f"{flag} must be between 0 and 1 (exclusive), got {value}")
    return value


def split_dataset(ds: Dataset, *, val_split: float, test_split: float, seed: int) -> Splits:
    """Seeded splits, stratified for classification; a dataset's own test split is kept."""
    from edgekit._lazy import require

    model_selection = require("sklearn.model_selection")
    _check_fraction("--val-split", val_split)
    _check_fraction("--test-split", test_split)

    def cut(x, y, frac, what):
        stratify = y if ds.task != "regression" else None
        try:
            return model_selection.train_test_split(
                x, y, test_size=frac, random_state=seed, stratify=stratify
            )
        except ValueError as err:
            raise EdgekitError(
                f"{ds.name}: cannot split off a {what} set of {frac:g} from {len(x)} samples "
                f"({err})"
            ) from err

    if ds.x_test is not None and ds.y_test is not None:
        x_rest, y_rest, x_test, y_test = ds.x, ds.y, ds.x_test, ds.y_test
    else:
        x_rest, x_test, y_rest, y_test = cut(ds.x, ds.y, test_split, "test")
    x_train, x_val, y_train, y_val = cut(x_rest, y_rest, val_split, "validation")
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test)
