"""Training: a model spec, recipes, the trainer and the run directory it writes.

>>> import edgekit
>>> run = edgekit.train(dataset="digits", hidden=[64], epochs=20)   # doctest: +SKIP
>>> run.path, run.metrics["test"]["accuracy"]                          # doctest: +SKIP
"""

from __future__ import annotations

from edgekit.trainer.config import TrainConfig, load_recipe
from edgekit.trainer.run import Run, open_run

__all__ = ["Run", "TrainConfig", "load_recipe", "open_run", "train"]


def train(recipe: str | None = None, **overrides) -> Run:
    """Train a model and write its run directory; see :class:`TrainConfig` for the options."""
    from edgekit.trainer.fit import train_from_config

    config = load_recipe(recipe) if recipe else TrainConfig()
    return train_from_config(config.override(**overrides))
