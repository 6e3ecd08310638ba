"""Task metrics shared by export validation and bench: accuracy, MAE/RMSE, agreement."""

from __future__ import annotations

import numpy as np


def predictions(outputs: np.ndarray, task: str) -> np.ndarray:
    """Class indices for classification outputs (argmax, or p > 0.5 for one sigmoid unit)."""
    outputs = np.asarray(outputs)
    if task == "binary" or outputs.shape[-1] == 1:
        return (outputs.reshape(len(outputs), -1)[:, 0] > 0.5).astype(np.int64)
    return np.argmax(outputs, axis=-1).astype(np.int64)


def task_metrics(outputs: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """``{"accuracy": f}`` for classification, ``{"mae": f, "rmse": f}`` for regression."""
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
