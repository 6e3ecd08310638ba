"""Resolve a ``--dataset`` value (a built-in name or a file path) to a :class:`Dataset`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekit.data.dataset import Dataset, build_dataset
from edgekit.data.files import load_csv, load_npz_dataset
from edgekit.data.mnist import load_mnist
from edgekit.errors import EdgekitError


def _array_sha256(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for arr in arrays:
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def _sklearn(loader: str, name: str, *, task: str, images: bool = False) -> Dataset:
    from edgekit._lazy import require

    datasets = require("sklearn.datasets")
    bunch = getattr(datasets, loader)()
    names = [str(n) for n in bunch.target_names]
    x = bunch.images if images else bunch.data
    return build_dataset(
        name=name,
        source=f"sklearn.datasets.{loader}",
        sha256=_array_sha256(x, bunch.target),
        x=x,
        y=bunch.target,
        task=task,
        label_names=names,
    )


def _digits(task: str, target: str | None) -> Dataset:
    """8x8 images of digits, 0..16 per pixel (flattened inside the model)."""
    return _sklearn("load_digits", "digits", task=task, images=True)


def _breast_cancer(task: str, target: str | None) -> Dataset:
    return _sklearn("load_breast_cancer", "breast_cancer", task=task)


def _synthetic(task: str, target: str | None) -> Dataset:
    """The seeds' binary task: ``make_classification(n_samples=1000, n_features=20, random_state=42)``."""
    from edgekit._lazy import require

    datasets = require("sklearn.datasets")
    x, y = datasets.make_classification(n_samples=1000, n_features=20, random_state=42)
    return build_dataset(
        name="synthetic",
        source="sklearn.datasets.make_classification(n_samples=1000, n_features=20, random_state=42)",
        sha256=_array_sha256(x, y),
        x=x,
        y=y,
        task=task,
    )


def _mnist(task: str, target: str | None) -> Dataset:
    return load_mnist(task=task)


BUILTIN_DATASETS: dict[str, Callable[[str, str | None], Dataset]] = {
    "digits": _digits,
    "breast_cancer": _breast_cancer,
    "synthetic": _synthetic,
    "mnist": _mnist,
}

_FILE_READERS = {".csv": load_csv, ".npz": load_npz_dataset}


def load_dataset(spec: str, *, target: str | None = None, task: str = "auto") -> Dataset:
    """Load a built-in dataset by name, or a ``.csv``/``.npz`` file by path."""
    if spec in BUILTIN_DATASETS:
        if target is not None:
            raise EdgekitError(f"--target applies to CSV files only, not to the built-in {spec!r}")
        return BUILTIN_DATASETS[spec](task, target)
    path = Path(spec)
    reader = _FILE_READERS.get(path.suffix.lower())
    if reader is None:
        if path.suffix:
            raise EdgekitError(
                f"{spec}: unsupported dataset file type {path.suffix!r}; use .csv or .npz"
            )
        raise EdgekitError(
            f"unknown dataset {spec!r}; choose from {', '.join(BUILTIN_DATASETS)}, "
            "or pass a .csv or .npz file"
        )
    if not path.is_file():
        raise EdgekitError(f"{spec}: no such file")
    if target is not None and reader is not load_csv:
        raise EdgekitError("--target applies to CSV files only")
    return reader(path, target=target, task=task)
