"""``edgekit.train(...)``: the Python call behind ``edgekit train``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from edgekit.trainer.config import TrainConfig, load_recipe

if TYPE_CHECKING:
    from edgekit.formats.run_dir import Run


def train(
    recipe: str | os.PathLike | None = None,
    *,
    name: str | None = None,
    dataset: str | os.PathLike | None = None,
    target: str | None = None,
    task: str | None = None,
    hidden: list[int] | None = None,
    activation: str | None = None,
    dropout: float | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    optimizer: str | None = None,
    val_split: float | None = None,
    test_split: float | None = None,
    early_stopping: int | None = None,
    seed: int | None = None,
    distribute: str | None = None,
    out: str | os.PathLike | None = None,
    force: bool | None = None,
) -> Run:
    """Train a model and write its run directory (``edgekit train``); returns the :class:`Run`.

    Options left at None keep the recipe's value, or :class:`TrainConfig`'s default (the
    ``digits_mlp`` recipe)::

        run = edgekit.train(dataset="breast_cancer", hidden=[32], epochs=20, out="runs/bc")
    """
    options = {key: value for key, value in locals().items() if key != "recipe"}
    from edgekit.trainer.fit import train_from_config

    config = load_recipe(os.fspath(recipe)) if recipe else TrainConfig()
    return train_from_config(config.override(**options))
