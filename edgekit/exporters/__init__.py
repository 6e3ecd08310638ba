"""Export: a run's ``model.keras`` -> validated TFLite/ONNX artifacts + ``manifest.json``.

>>> import edgekit
>>> result = edgekit.export("runs/latest", quantize=["float32", "int8"], onnx=True)  # doctest: +SKIP
>>> result.passed, result.manifest_path                                             # doctest: +SKIP

One module per format (``tflite.py``, ``onnx.py``, ``c_array.py``), one registry of variants
(``variants.py``), validation in ``validate.py``; the manifest's schema is
:mod:`edgekit.formats.manifest`. This package imports nothing until a name is used, and no
TensorFlow until an export actually runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

if TYPE_CHECKING:
    from edgekit.exporters.api import ExportResult, export

__all__ = ["ExportResult", "export"]
__getattr__, __dir__ = lazy_exports(__name__, {"ExportResult": "api", "export": "api"})
