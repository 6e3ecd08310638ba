"""Prediction: run any artifact on raw features and name what it predicts.

>>> from edgekit.predict import predict
>>> result = predict("runs/latest/export/model.int8.tflite", "new_samples.csv")  # doctest: +SKIP
>>> result.rows[0].label, result.rows[0].scores                                  # doctest: +SKIP
('3', [0.0, 0.0, 0.0039, 0.9922, ...])
>>> result.write("predictions.csv")                                              # doctest: +SKIP

The runner quantizes inputs with the manifest's (per-feature) parameters itself, so the input
holds the features exactly as in the dataset. Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

if TYPE_CHECKING:
    from edgekit.predict.api import PREDICT_SCHEMA, Prediction, Predictions, predict
    from edgekit.predict.info import ArtifactInfo, artifact_info
    from edgekit.predict.inputs import read_inputs

__all__ = [
    "PREDICT_SCHEMA",
    "ArtifactInfo",
    "Prediction",
    "Predictions",
    "artifact_info",
    "predict",
    "read_inputs",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "PREDICT_SCHEMA": "api",
        "Prediction": "api",
        "Predictions": "api",
        "predict": "api",
        "ArtifactInfo": "info",
        "artifact_info": "info",
        "read_inputs": "inputs",
    },
)
