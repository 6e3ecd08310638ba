"""MNIST by name: ``$EDGEKIT_DATA_DIR/mnist.npz``, else Keras's own loader and cache.

``--dataset path/to/mnist.npz`` needs nothing from here: any ``.npz`` in Keras's layout
(``x_train``, ``y_train``, ``x_test``, ``y_test``) is read by the NPZ reader, keeping MNIST's
own 10,000-image test split.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgekit.data.dataset import Dataset
from edgekit.data.files import load_npz_dataset
from edgekit.errors import EdgekitError

KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


def load_mnist(*, task: str = "auto") -> Dataset:
    data_dir = os.environ.get("EDGEKIT_DATA_DIR")
    if data_dir:
        path = Path(data_dir) / "mnist.npz"
        if path.is_file():
            return _named(load_npz_dataset(path, task=task))
    return _named(_from_keras(task))


def _named(ds: Dataset) -> Dataset:
    ds.name = "mnist"
    return ds


def _from_keras(task: str) -> Dataset:
    """Keras's loader: the hash-checked copy in ``~/.keras/datasets``, downloaded if absent."""
    from edgekit._lazy import require

    keras = require("keras")
    try:
        path = keras.utils.get_file(
            "mnist.npz",
            origin=KERAS_ORIGIN,
            file_hash="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        )
    except Exception as err:  # network errors come in many types (URLError, OSError, ...)
        raise EdgekitError(
            "MNIST is not available offline: pass --dataset path/to/mnist.npz, "
            f"or put mnist.npz in $EDGEKIT_DATA_DIR (Keras's download failed: {type(err).__name__})"
        ) from err
    return load_npz_dataset(Path(path), task=task)
