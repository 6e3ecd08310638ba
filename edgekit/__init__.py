"""edgekit: train small Keras models, export them for devices, benchmark them honestly.

The public API mirrors the CLI, one call per command::

    import edgekit
    run = edgekit.train(dataset="digits", epochs=20)       # edgekit train
    result = edgekit.export(run, quantize=["int8"])         # edgekit export --quantize int8
    result.passed, result.manifest_path

``edgekit.train`` and ``edgekit.export`` are :func:`edgekit.trainer.api.train` and
:func:`edgekit.exporters.api.export` themselves, loaded on first use: importing edgekit imports
nothing heavy, and TensorFlow only inside the functions that need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports
from edgekit._version import __version__

if TYPE_CHECKING:
    from edgekit.exporters.api import export
    from edgekit.trainer.api import train

__all__ = ["__version__", "export", "train"]
__getattr__, __dir__ = lazy_exports(
    __name__, {"train": "edgekit.trainer.api", "export": "edgekit.exporters.api"}
)
