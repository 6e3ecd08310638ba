"""Training: a model spec, recipes and the trainer that writes a run directory.

>>> import edgekit
>>> run = edgekit.train(dataset="digits", hidden=[64], epochs=20)   # doctest: +SKIP
>>> run.path, run.metrics["test"]["accuracy"]                          # doctest: +SKIP

The run directory's format (``run.json``, :class:`~edgekit.formats.run_dir.Run`) lives in
:mod:`edgekit.formats.run_dir`. Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

if TYPE_CHECKING:
    from edgekit.formats.run_dir import Run, open_run
    from edgekit.trainer.api import train
    from edgekit.trainer.config import TrainConfig, load_recipe

__all__ = ["Run", "TrainConfig", "load_recipe", "open_run", "train"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "train": "api",
        "TrainConfig": "config",
        "load_recipe": "config",
        "Run": "edgekit.formats.run_dir",
        "open_run": "edgekit.formats.run_dir",
    },
)
