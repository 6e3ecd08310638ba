"""``edgekit estimate``: what a model costs on a microcontroller or edge board, estimated.

>>> from edgekit.estimate import estimate
>>> e = estimate("model.int8.tflite", target="cortex-m4")           # doctest: +SKIP
>>> e.macs, e.params, e.ram_bytes, e.flash_bytes, e.fits            # doctest: +SKIP
(2368, 2410, 112, 6712, True)
>>> print(e.text())                                                  # doctest: +SKIP

Works from the model file alone (``.tflite`` through the flatbuffer schema that ships with
``ai_edge_litert``, ``.onnx`` through edgekit's own decoder, both in :mod:`edgekit.formats`), so
it needs only the core install. Targets come from a catalog (:mod:`edgekit.estimate.catalog`)
in which every number names its source. See :mod:`edgekit.estimate.api` for the method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

if TYPE_CHECKING:
    from edgekit.estimate.api import estimate
    from edgekit.estimate.catalog import (
        Target,
        get_target,
        list_targets,
        load_catalog,
        targets_table,
    )
    from edgekit.estimate.result import Estimate, LayerEstimate

__all__ = [
    "Estimate",
    "LayerEstimate",
    "Target",
    "estimate",
    "get_target",
    "list_targets",
    "load_catalog",
    "targets_table",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Estimate": "result",
        "LayerEstimate": "result",
        "estimate": "api",
        "list_targets": "catalog",
        "targets_table": "catalog",
        "Target": "catalog",
        "get_target": "catalog",
        "load_catalog": "catalog",
    },
)
