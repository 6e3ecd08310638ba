"""Datasets: a registry of built-in names and file readers, all returning :class:`Dataset`.

>>> from edgekit.data import load_dataset
>>> ds = load_dataset("digits")          # or "breast_cancer", "synthetic", "mnist",
>>> ds.x.shape, ds.labels                  # "path/to/file.csv", "path/to/file.npz"
((1797, 64), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

if TYPE_CHECKING:
    from edgekit.data.dataset import TASKS, Dataset, Splits, split_dataset
    from edgekit.data.registry import BUILTIN_DATASETS, load_dataset

__all__ = ["BUILTIN_DATASETS", "TASKS", "Dataset", "Splits", "load_dataset", "split_dataset"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "TASKS": "dataset",
        "Dataset": "dataset",
        "Splits": "dataset",
        "split_dataset": "dataset",
        "BUILTIN_DATASETS": "registry",
        "load_dataset": "registry",
    },
)
