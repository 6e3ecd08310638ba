"""Task metrics shared by export validation and bench: accuracy, MAE/RMSE, agreement."""

from __future__ import annotations

import numpy as np


def predictions(outputs: np.ndarray, task: str) -> np.ndarray:
    """Class indices for classification outputs (argmax, or p > 0.5 for one sigmoid unit)."""
    outputs = np.asarray(outputs)
    if task == "binary" or outputs.shape[-1] == 1:
        return (outputs.reshape(len(outputs), -1)[:, 0] > 0.5).astype(np.int64)
    return np.argmax(outputs, axis=-1).astype(np.int64)


def check_labels(y: np.ndarray, outputs: np.ndarray, task: str) -> None:
    """Refuse labels the task cannot score: a classifier's must be class indices of its
    outputs (0..n-1; 0 or 1 for binary), a regression's finite numbers of one per sample."""
    from edgekit.errors import EdgekitError

    values = np.asarray(y)
    if values.dtype.kind not in "iufb" or values.ndim != 1 or len(values) != len(outputs):
        raise EdgekitError(
            f"test labels must be one number per sample ({len(outputs)}), got "
            f"{values.dtype.name} {list(values.shape)}"
        )
    if not np.all(np.isfinite(values.astype(np.float64))):
        raise EdgekitError("test labels contain NaN or inf")
    if task == "regression":
        return
    classes = 2 if task == "binary" else int(np.prod(np.shape(outputs)[1:]) or 1)
    whole = np.all(values == np.round(values))
    if not whole or values.min() < 0 or values.max() >= classes:
        bad = next(v for v in values.tolist() if v != round(v) or not 0 <= v < classes)
        raise EdgekitError(
            f"test labels must be class indices 0..{classes - 1} for this {task} model; "
            f"found {bad!r}"
        )


def task_metrics(outputs: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """``{"accuracy": f}`` for classification, ``{"mae": f, "rmse": f}`` for regression.
    Labels it cannot score are refused (:func:`check_labels`)."""
    check_labels(y, outputs, task)
    if task == "regression":
        err = np.asarray(outputs, np.float64).reshape(len(y)) - np.asarray(y, np.float64)
        return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2)))}
    return {"accuracy": float(np.mean(predictions(outputs, task) == np.asarray(y)))}


def top1_agreement(outputs: np.ndarray, reference: np.ndarray, task: str) -> float | None:
    """Fraction of samples whose predicted class matches the reference's (None for regression)."""
    if task == "regression":
        return None
    return float(np.mean(predictions(outputs, task) == predictions(reference, task)))


def max_abs_diff(outputs: np.ndarray, reference: np.ndarray) -> float:
    a = np.asarray(outputs, np.float64).reshape(len(reference), -1)
    b = np.asarray(reference, np.float64).reshape(len(reference), -1)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def accuracy_drop(reference_metrics: dict[str, float], metrics: dict[str, float]) -> float | None:
    """Reference accuracy minus artifact accuracy, in percentage points (None for regression)."""
    if "accuracy" not in metrics or "accuracy" not in reference_metrics:
        return None
    return round(100.0 * (reference_metrics["accuracy"] - metrics["accuracy"]), 6)
