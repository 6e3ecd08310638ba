"""``edgekit diagnose``: where a quantized artifact loses accuracy, layer by layer.

>>> from edgekit.diagnose import diagnose
>>> d = diagnose("runs/latest/export")                                 # doctest: +SKIP
>>> d.results[0].worst.sentence                                        # doctest: +SKIP
'dense_0: one channel spans 181x the others; per-tensor int8 leaves the other 15 channels ...'
>>> d.save_plot()                                                      # doctest: +SKIP

Each quantized artifact runs with every intermediate tensor kept; each tensor is matched to
the Keras layer that produced it and compared with the float model (see
:mod:`edgekit.diagnose.api`). Needs the ``train`` extra (the Keras model is the reference).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

if TYPE_CHECKING:
    from edgekit.diagnose.api import diagnose
    from edgekit.diagnose.layer import LayerReport
    from edgekit.diagnose.result import ArtifactDiagnosis, Diagnosis

__all__ = ["ArtifactDiagnosis", "Diagnosis", "LayerReport", "diagnose"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "diagnose": "api",
        "Diagnosis": "result",
        "ArtifactDiagnosis": "result",
        "LayerReport": "layer",
    },
)
