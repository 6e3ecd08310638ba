"""Loading users' model files safely: ``.keras``, ``.h5`` and TensorFlow SavedModel directories.

Every load runs in Keras's safe mode (a ``Lambda`` layer's Python code is never run), and every
failure is a one-line user error:

- ``.keras``: the Keras 3 zip format. A Keras 2 (``tf_keras``) ``.keras`` file, which Keras 3
  cannot read, is recognised from its ``metadata.json`` and named as such, with the way out.
- ``.h5`` / ``.hdf5``: the legacy HDF5 format, written by Keras 3 and by ``tf_keras`` alike.
- a SavedModel directory (``saved_model.pb`` inside, from ``model.export(...)`` or
  ``tf_keras``'s ``model.save(dir)``): wrapped in a Keras model around a ``TFSMLayer`` on its
  serving signature, so that exporters and runners treat it like any other model. A SavedModel
  holds a TensorFlow graph and no Python code.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from edgekit._lazy import require
from edgekit.errors import EdgekitError

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
SAVED_MODEL_FILE = "saved_model.pb"


def is_saved_model(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / SAVED_MODEL_FILE).is_file()


def load_model_file(path: str | Path) -> Any:
    """Load a ``.keras``, ``.h5``/``.hdf5`` file or a SavedModel directory (see above)."""
    path = Path(path)
    if is_saved_model(path):
        return _load_saved_model(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return load_keras_model(path)
    if suffix in (".h5", ".hdf5"):
        return _load(path)
    raise EdgekitError(
        f"{path}: unknown model file type {suffix or '(no suffix)'!r}; edgekit reads .keras, "
        ".h5 and SavedModel directories"
    )


def load_keras_model(path: str | Path) -> Any:
    """Load a ``.keras`` model in safe mode (a ``Lambda`` layer's code is never run)."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise EdgekitError(f"{path}: not a .keras model file (corrupt or of another format)")
    version = _keras_version(path)
    if version is not None and version.startswith(("1.", "2.")):
        raise EdgekitError(
            f"{path}: a Keras {version} (tf_keras) .keras file, which Keras 3 cannot read; "
            "re-save it with tf_keras as .h5 (model.save('model.h5')) and export that"
        )
    return _load(path)


def _keras_version(path: Path) -> str | None:
    """``keras_version`` from a ``.keras`` zip's ``metadata.json`` (None when absent)."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("metadata.json")
            if info.file_size > 1 << 16:
                return None
            meta = json.loads(zf.read(info).decode("utf-8"))
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        return None
    version = meta.get("keras_version") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


def _load(path: Path) -> Any:
    keras = require("keras")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except ValueError as err:
        text = str(err)
        if "Lambda" in text or "safe_mode" in text:
            raise EdgekitError(
                f"{path}: refused: the model contains a Lambda layer, whose Python code "
                "edgekit will not run (safe mode)"
            ) from err
        raise EdgekitError(f"{path}: cannot load the model ({text.splitlines()[0]})") from err
    except Exception as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise EdgekitError(
            f"{path}: cannot load the model ({type(err).__name__}: {first})"
        ) from err


def _load_saved_model(path: Path) -> Any:
    """A Keras model that calls the SavedModel's serving signature (one input, one output)."""
    tf = require("tensorflow")
    keras = require("keras")
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as err:  # a corrupt graph: TensorFlow's own error types
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise EdgekitError(f"{path}: cannot load the SavedModel ({first})") from err
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    endpoint = next((n for n in ("serving_default", "serve") if n in signatures), None)
    if endpoint is None:
        raise EdgekitError(
            f"{path}: the SavedModel has no serving signature (serving_default or serve); "
            f"it has {', '.join(signatures) or 'none'}"
        )
    _, kwargs = signatures[endpoint].structured_input_signature
    specs = list(kwargs.values())
    if len(specs) != 1:
        raise EdgekitError(
            f"{path}: the SavedModel's {endpoint} signature takes {len(specs)} inputs; "
            "edgekit exports SavedModels with one input"
        )
    spec = specs[0]
    inputs = keras.Input(shape=tuple(spec.shape[1:]), name="features", dtype=spec.dtype.name)
    layer = keras.layers.TFSMLayer(str(path), call_endpoint=endpoint, name="saved_model")
    outputs = layer(inputs)
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise EdgekitError(
                f"{path}: the SavedModel's {endpoint} signature has {len(outputs)} outputs; "
                "edgekit exports SavedModels with one output"
            )
        outputs = next(iter(outputs.values()))
    return keras.Model(inputs, outputs, name=path.name)
