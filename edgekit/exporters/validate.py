"""Validation of every exported artifact in its own runtime against the Keras model.

Float32 artifacts must match the Keras outputs within ``atol``. Every other variant is judged
by its accuracy drop in percentage points (``max_accuracy_drop``); for regression, by the
increase of its MAE over the Keras model's, in percent of the target's standard deviation.
Without labels the drop is measured against the Keras model's own predictions. Without any
test data only float parity is checked, on seeded random inputs: no accuracy is judged on
noise, so the other variants are recorded as not validated. A failed validation is a failed
export.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import metrics as m
from edgekit.runtime import open_runner


@dataclass
class Reference:
    """What artifacts are compared with: inputs, labels (if known) and Keras outputs."""

    task: str
    x: Any  # an array, or a list of arrays (one per input) for a model with several inputs
    y: np.ndarray | None
    outputs: Any  # an array, or a list of arrays for a model with several outputs
    synthetic: bool = False  # x is seeded random noise: there was no test data
    input_names: list[str] | None = None  # the model's, when it has several inputs
    output_names: list[str] | None = None  # the model's, when it has several inputs or outputs

    @property
    def multi(self) -> bool:
        """Several inputs or outputs (validated through :mod:`edgekit.exporters.multi`)."""
        return isinstance(self.x, list) or isinstance(self.outputs, list)

    @property
    def n(self) -> int:
        return len(self.x[0]) if isinstance(self.x, list) else len(self.x)

    @property
    def description(self) -> str:
        """What the artifacts were validated on, in words (the manifest and the table)."""
        if self.synthetic:
            return f"{self.n} seeded random inputs (no test data): float parity only"
        if self.y is None:
            return f"{self.n} test samples without labels: agreement with the Keras model"
        return f"{self.n} labelled test samples"

    @property
    def metrics(self) -> dict[str, float]:
        if self.y is None or isinstance(self.outputs, list):
            return {}
        return m.task_metrics(self.outputs, self.y, self.task)


# Samples per call while validating: up to MAX_BATCH, fewer for a wide model, so that one
# call's activations stay near BATCH_BYTES. A feedforward model holds at least one weight per
# activation value of a sample, so its file's size bounds a sample's activations.
MAX_BATCH = 1024
BATCH_BYTES = 64 << 20


def validation_batch(path: Path) -> int:
    from edgekit.formats.sizes import artifact_bytes

    return int(max(1, min(MAX_BATCH, BATCH_BYTES // max(1, artifact_bytes(path)))))


def validate(
    path: Path,
    ref: Reference,
    *,
    exact: bool,
    atol: float,
    max_accuracy_drop: float,
    input_quantization: list[dict[str, Any] | None] | None = None,
) -> tuple[dict[str, Any], list[dict], list[dict]]:
    """Run ``path`` on the reference inputs; returns (validation, inputs, outputs).

    ``input_quantization`` is, for each input in the model's order, what the manifest will
    record for it when it is not the file's own (per-feature parameters; None for an input
    that keeps its own), so the artifact is validated as a device runs it.
    """
    if ref.multi:
        from edgekit.exporters.multi import validate_multi

        return validate_multi(
            path, ref, exact=exact, atol=atol, max_accuracy_drop=max_accuracy_drop,
            input_quantization=input_quantization,
        )  # fmt: skip
    with open_runner(
        path, input_quantization=input_quantization[0] if input_quantization else None
    ) as runner:
        outputs = runner.infer_batched(ref.x, batch=validation_batch(path))
        inputs = [t.to_json() for t in runner.inputs]
        outs = [t.to_json() for t in runner.outputs]
    return (
        judge(outputs, ref, exact=exact, atol=atol, max_accuracy_drop=max_accuracy_drop),
        inputs,
        outs,
    )


def float_tolerance(atol: float, reference: Any) -> tuple[float, str]:
    """The |diff| a float32 artifact may have: ``atol``, scaled by the largest |output| where
    that is above 1 (float32 keeps about 7 digits: a regressor predicting 400 differs from
    Keras by 1e-4 in its last bits); and the criterion as the manifest states it."""
    ref = np.abs(np.asarray(reference, np.float64))
    scale = float(ref.max()) if ref.size and np.isfinite(ref).all() else 1.0
    if scale <= 1.0:
        return atol, f"max_abs_diff <= {atol:g}"
    return atol * scale, f"max_abs_diff <= {atol:g} x {scale:.4g} (the largest |output|)"


def judge(
    outputs: np.ndarray, ref: Reference, *, exact: bool, atol: float, max_accuracy_drop: float
) -> dict[str, Any]:
    """The validation of one output against the Keras model's (``ref.outputs``)."""
    diff = m.max_abs_diff(outputs, ref.outputs)
    result: dict[str, Any] = {
        "max_abs_diff": diff,
        "top1_agreement": m.top1_agreement(outputs, ref.outputs, ref.task),
        "metrics": m.task_metrics(outputs, ref.y, ref.task) if ref.y is not None else {},
        "accuracy_drop": None,
    }
    if ref.y is not None:
        result["accuracy_drop"] = m.accuracy_drop(ref.metrics, result["metrics"])
    if exact:
        allowed, result["criterion"] = float_tolerance(atol, ref.outputs)
        result["passed"] = bool(diff <= allowed)
        return result
    if ref.synthetic:
        result["accuracy_drop"] = None
        result["criterion"] = "not validated: no test data (pass --data FILE)"
        result["passed"] = None
        return result
    if ref.task == "regression":
        worse = _mae_increase_pct(outputs, ref)
        result["mae_increase_pct"] = round(worse, 6)
        result["criterion"] = f"mae_increase_pct <= {max_accuracy_drop:g}"
        result["passed"] = bool(worse <= max_accuracy_drop)
        return result
    drop = result["accuracy_drop"]
    if drop is None:  # no labels: agreement with the Keras model's own predictions
        drop = round(100.0 * (1.0 - result["top1_agreement"]), 6)
        result["accuracy_drop"] = drop
    result["criterion"] = f"accuracy_drop <= {max_accuracy_drop:g}"
    result["passed"] = bool(drop <= max_accuracy_drop)
    return result


def _mae_increase_pct(outputs: np.ndarray, ref: Reference) -> float:
    """How much worse the artifact's MAE is than Keras's, in % of the target's std.

    The regression analogue of an accuracy drop in percentage points. Without labels, the
    artifact's mean error against the Keras outputs, in % of their std.
    """
    out = np.asarray(outputs, np.float64).ravel()
    keras_out = np.asarray(ref.outputs, np.float64).ravel()
    if ref.y is not None:
        y = np.asarray(ref.y, np.float64).ravel()
        spread = float(np.std(y)) or 1.0
        return 100.0 * (np.mean(np.abs(out - y)) - np.mean(np.abs(keras_out - y))) / spread
    spread = float(np.std(keras_out)) or 1.0
    return 100.0 * float(np.mean(np.abs(out - keras_out))) / spread
