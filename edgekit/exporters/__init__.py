"""Export: a run's ``model.keras`` -> validated TFLite/ONNX artifacts + ``manifest.json``.

>>> import edgekit
>>> result = edgekit.export("runs/latest", quantize=["float32", "int8"], onnx=True)  # doctest: +SKIP
>>> result.passed, result.manifest_path                                             # doctest: +SKIP

One module per format (``tflite.py``, ``onnx.py``, ``c_array.py``), one registry of variants
(``variants.py``), validation in ``validate.py`` and the manifest in ``manifest.py``. This
package imports no TensorFlow until an export actually runs.
"""

from __future__ import annotations

from edgekit.exporters.api import ExportResult, export

__all__ = ["ExportResult", "export"]
