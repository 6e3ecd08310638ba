"""``edgekit inspect``: what is inside an artifact, without running it.

>>> from edgekit.inspect import inspect_artifact
>>> info = inspect_artifact("model.int8.tflite")                 # doctest: +SKIP
>>> info.params, info.macs, info.quantization                     # doctest: +SKIP
(2410, 2368, 'full integer: int8 weights and activations')

Inputs and outputs (name, shape, dtype, quantization), the ops in execution order, the dense
layers (FULLY_CONNECTED, MatMul, Gemm, MatMulInteger) with their parameters and MACs per
sample, and the quantization scheme. ``.tflite`` and ``.onnx`` need only the core install
(ONNX files are decoded by :mod:`edgekit.formats.onnx_wire`, not the ``onnx`` package); ``.keras``
needs the ``train`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

if TYPE_CHECKING:
    from edgekit.formats.layers import LayerInfo
    from edgekit.inspect.artifact import ArtifactInfo, inspect_artifact

__all__ = ["ArtifactInfo", "LayerInfo", "inspect_artifact"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ArtifactInfo": "artifact",
        "inspect_artifact": "artifact",
        "LayerInfo": "edgekit.formats.layers",
    },
)
