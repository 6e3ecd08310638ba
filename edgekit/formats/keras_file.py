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
import math
import zipfile
from pathlib import Path
from typing import Any, NoReturn

from edgekit._lazy import require
from edgekit.errors import EdgekitError
from edgekit.formats.keras_config import Declared, declared, unknown_keras_layer

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
SAVED_MODEL_FILE = "saved_model.pb"
LAMBDA_REFUSED = (
    "refused: the model contains a Lambda layer, whose Python code edgekit will not run (safe mode)"
)
TFSM_REFUSED = (
    "refused: the model contains a TFSMLayer, which loads an external SavedModel that "
    "edgekit will not load from a .keras file (safe mode); export the SavedModel directory "
    "itself"
)


# Layers the exporters (TFLite, ONNX and edgekit's C generator) are built and tested for;
# here, below every stage, so that loading a model can name them too.
SUPPORTED_LAYERS = (
    "InputLayer",
    "Flatten",
    "Reshape",
    "Permute",
    "Normalization",
    "BatchNormalization",
    "LayerNormalization",
    "Rescaling",
    "Dense",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "PReLU",
    "Softmax",
    # several inputs: merged (validated output by output; bench and the C take one input)
    "Concatenate",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    # integer inputs (token ids): an embedding pooled over its sequence
    "Embedding",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    # training-only: identities at inference, dropped by the converters
    "Dropout",
    "AlphaDropout",
    "GaussianNoise",
    "GaussianDropout",
    "ActivityRegularization",
    "Identity",
    "SavedModelCall",  # a SavedModel of several inputs, wrapped (edgekit.formats.saved_model)
    "TFSMLayer",  # a SavedModel, wrapped
)


def subclassed_model(kind: str) -> str:
    """The refusal of a subclassed model (a ``keras.Model`` class with its own ``call``)."""
    return (
        f"{kind} is a subclassed model with its own call(); edgekit exports Sequential and "
        "Functional models of the supported layers: "
        + ", ".join(SUPPORTED_LAYERS)
        + " (a SavedModel of it, model.export(DIR), exports too)"
    )


def custom_layer(layer: str, kind: str) -> str:
    return (
        f"layer {layer!r} ({kind}) is a custom layer, which edgekit does not export; "
        f"supported layers: {', '.join(SUPPORTED_LAYERS)}"
    )


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
        size = path.stat().st_size
        return _load(path, weights_bytes=size, file_bytes=size, found=None)
    raise EdgekitError(
        f"{path}: unknown model file type {suffix or '(no suffix)'!r}; edgekit reads .keras, "
        ".h5 and SavedModel directories"
    )


def load_keras_model(path: str | Path) -> Any:
    """Load a ``.keras`` model in safe mode (a ``Lambda`` layer's code is never run)."""
    path = Path(path)
    is_keras_file(path)
    _, weights_bytes, found = _check_keras(path)
    return _load(path, weights_bytes=weights_bytes, file_bytes=path.stat().st_size, found=found)


def is_keras_file(path: Path) -> None:
    """A ``.keras`` file Keras 3 can read, or a one-line :class:`EdgekitError` saying why not."""
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


def _load(path: Path, *, weights_bytes: int, file_bytes: int, found: Declared | None) -> Any:
    """Keras's ``load_model`` in safe mode, with at most :func:`load_allowance` more memory;
    ``found``: what :func:`_check_keras` found in its config (None: an ``.h5``)."""
    from edgekit.isolation import is_out_of_memory, memory_allowance

    keras = require("keras")  # imported first: TensorFlow's own memory is not the model's
    unsizable = unknown_keras_layer(found.unknown, keras) if found is not None else None
    if unsizable is not None:
        raise EdgekitError(f"{path}: refused: in its config, {unsizable}; {_CHECKED_FIRST}")
    allowance = load_allowance(weights_bytes, file_bytes)
    try:
        with memory_allowance(allowance):
            return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as err:
        if is_out_of_memory(err):
            raise memory_refusal(path, allowance) from err
        custom = _unknown_class(path, keras)
        if custom is not None:  # what Keras says ("... could not be deserialized") is its own
            layer, kind = custom
            refusal = subclassed_model(kind) if layer is None else custom_layer(layer, kind)
            raise EdgekitError(
                f"{path}: {refusal}; Keras cannot load it without its Python class"
                f"{_keras_reason(err, kind)}"
            ) from err
        _refuse_load(path, err)


def _keras_reason(err: BaseException, kind: str) -> str:
    """Keras's own first sentence, when it names the class (`` (Could not locate class
    'MyModel')``), else nothing."""
    first = _one_line(err, limit=1000).split(". ")[0].rstrip(".")
    return f" ({first})" if kind in first and len(first) <= 120 else ""


def _top_config(path: Path) -> Any:
    """The model config a ``.keras`` (``config.json``) or ``.h5`` (``model_config``) holds."""
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as zf:
                return json.loads(zf.read("config.json").decode("utf-8"))
        import h5py

        with h5py.File(path, "r") as h5:
            raw = h5.attrs.get("model_config")
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
    except Exception:  # unreadable: Keras's own error says why
        return None


def _unknown_class(path: Path, keras: Any) -> tuple[str | None, str] | None:
    """``(None, class)`` when the model itself is of a class Keras does not know (a
    subclassed model saved without its code), ``(layer name, class)`` for such a layer."""
    config = _top_config(path)
    if not isinstance(config, dict):
        return None

    def unknown(obj: dict[str, Any]) -> str | None:
        cls, registered = obj.get("class_name"), obj.get("registered_name")
        if not isinstance(cls, str):
            return None
        key = registered if isinstance(registered, str) else cls
        custom = ">" in key or (isinstance(registered, str) and registered != cls)
        if not custom and (hasattr(keras.layers, cls) or hasattr(keras.models, cls) or
                           cls in ("Functional", "Model")):  # fmt: skip
            return None
        if keras.saving.get_registered_object(key) is not None:
            return None
        return cls.split(">")[-1]

    top = unknown(config)
    if top is not None:
        return None, top
    stack = [config]
    while stack:
        obj = stack.pop()
        inner = obj.get("config")
        for layer in (inner.get("layers") if isinstance(inner, dict) else None) or []:
            if not isinstance(layer, dict):
                continue
            kind = unknown(layer)
            if kind is not None:
                conf = layer.get("config")
                name = conf.get("name") if isinstance(conf, dict) else None
                return (name if isinstance(name, str) else kind), kind
            stack.append(layer)
    return None


def _refuse_load(path: Path, err: Exception) -> NoReturn:
    """Keras's failure to load ``path`` as a one-line :class:`EdgekitError`."""
    if isinstance(err, ValueError):
        text = str(err)
        if "TFSMLayer" in text:
            raise EdgekitError(f"{path}: {TFSM_REFUSED}") from err
        if "Lambda" in text:
            raise EdgekitError(f"{path}: {LAMBDA_REFUSED}") from err
        if "safe_mode" in text:
            raise EdgekitError(
                f"{path}: refused by Keras's safe mode, which edgekit keeps on ({_one_line(err)})"
            ) from err
        raise EdgekitError(f"{path}: cannot load the model ({_one_line(err)})") from err
    raise EdgekitError(
        f"{path}: cannot load the model ({type(err).__name__}: {_one_line(err)})"
    ) from err


def memory_refusal(path: Path, allowance: int) -> EdgekitError:
    """The refusal of a model whose loading needed more than its ``allowance`` of memory."""
    from edgekit.formats.sizes import human_bytes

    return EdgekitError(
        f"{path}: refused: loading it needed more than the {human_bytes(allowance)} of memory "
        "edgekit allows a model of its size (its layers allocate far more than its file holds)"
    )


def _one_line(err: BaseException, limit: int = 300) -> str:
    """An exception's message on one line: Keras puts its reason after a generic first
    line ("A total of 1 objects could not be loaded..."), so every line is kept, joined."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = " ".join(lines) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_saved_model(path: Path) -> Any:
    from edgekit.formats.saved_model import load_saved_model

    return load_saved_model(path)


# --- bounded reading: what a .keras declares, checked before Keras builds anything ----------

MAX_PARAMS = 100_000_000  # 400 MB of float32 weights: far beyond any edge model
MAX_CONFIG_BYTES = 8 << 20
MAX_CONFIG_CONTAINERS = 500_000  # JSON objects and arrays: each costs memory once parsed
MAX_LAYERS = 10_000
WEIGHTS_FILES = ("model.weights.h5", "model.weights.npz")
# What loading may add to the process's memory: a floor (Keras's own structures, measured
# 44 MiB for a tiny model) and a multiple of the weights (measured: 5.7x for a 100 MB model,
# the variables, their initial values and the arrays read back), counted at most at
# LOAD_MAX_EXPANSION times the file's size on disk (weights that compress 100:1 are zeros).
LOAD_FLOOR_BYTES = 256 << 20
LOAD_PER_WEIGHT_BYTE = 6
LOAD_MAX_EXPANSION = 4


def check_keras_file(path: Path) -> dict[str, Any]:
    """Check a ``.keras`` zip before Keras reads it; returns its parsed ``config.json``.

    Refused, each in one line: members that unpack to far more than the archive holds
    (:func:`~edgekit.formats.sizes.check_zip_sizes`), a ``config.json`` over
    :data:`MAX_CONFIG_BYTES` or with absurdly many JSON containers or layers, a config whose
    layers declare more than :data:`MAX_PARAMS` weights or more than its weights file could
    hold (:func:`edgekit.formats.keras_config.declared`), a layer whose weights cannot be
    sized from the config (no build shape, a class edgekit does not know, a vocabulary read
    from a file), a weights file whose arrays declare more than it could hold, and the layers
    safe mode refuses (``Lambda``, ``TFSMLayer``), named as such.
    """
    return _check_keras(path)[0]


_CHECKED_FIRST = "edgekit loads only models whose weights it can check against the file first"


def _check_keras(path: Path) -> tuple[dict[str, Any], int, Declared | None]:
    """:func:`check_keras_file`: (the config, the bytes its weights file unpacks to, what the
    config declares; None without a config)."""
    from edgekit.formats.sizes import check_zip_sizes, human_bytes

    try:
        with zipfile.ZipFile(path) as zf:
            check_zip_sizes(path, zf, what="a .keras file")
            names = set(zf.namelist())
            if "config.json" not in names:
                return {}, 0, None  # Keras names what is missing
            info = zf.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise EdgekitError(
                    f"{path}: refused: its config.json is {human_bytes(info.file_size)} "
                    f"(edgekit reads at most {human_bytes(MAX_CONFIG_BYTES)})"
                )
            raw = zf.read(info)
            weights = next((n for n in WEIGHTS_FILES if n in names), None)
            weights_bytes = zf.getinfo(weights).file_size if weights else 0
            if weights == "model.weights.h5":
                _check_h5(path, zf, weights, weights_bytes)
            elif weights == "model.weights.npz":
                from edgekit.formats.npz import scan_npz

                with zf.open(weights) as fh, zipfile.ZipFile(fh) as inner:
                    scan_npz(Path(f"{path}:{weights}"), inner, size=weights_bytes)
    except EdgekitError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError, KeyError) as err:  # fmt: skip
        raise EdgekitError(f"{path}: not a .keras model file ({_one_line(err)})") from err
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > MAX_CONFIG_CONTAINERS:
        raise EdgekitError(
            f"{path}: refused: its config.json holds {containers:,} JSON objects and arrays "
            f"(edgekit reads at most {MAX_CONFIG_CONTAINERS:,})"
        )
    try:
        config = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as err:
        raise EdgekitError(
            f"{path}: not a .keras model file (its config.json is not valid JSON: {_one_line(err)})"
        ) from None
    if not isinstance(config, dict):
        raise EdgekitError(f"{path}: not a .keras model file (its config.json is not an object)")
    found = declared(config)
    if found.refused == "Lambda":
        raise EdgekitError(f"{path}: {LAMBDA_REFUSED}")
    if found.refused == "TFSMLayer":
        raise EdgekitError(f"{path}: {TFSM_REFUSED}")
    if found.layers > MAX_LAYERS:
        raise EdgekitError(
            f"{path}: refused: its config declares {found.layers:,} layers (edgekit loads at "
            f"most {MAX_LAYERS:,})"
        )
    if found.unsized:
        raise EdgekitError(f"{path}: refused: in its config, {found.unsized[0]}; {_CHECKED_FIRST}")
    params = found.weights
    if params > MAX_PARAMS:
        raise EdgekitError(
            f"{path}: refused: its config declares {_count(params)} weights (edgekit loads "
            f"at most {MAX_PARAMS:,})"
        )
    if found.min_bytes > weights_bytes + (64 << 10):  # at their dtypes' sizes (int4: 1/2 byte)
        where = (
            f"its {weights} holds {weights_bytes:,} bytes" if weights else "it has no weights file"
        )
        raise EdgekitError(
            f"{path}: refused: its config declares {_count(params)} weights, but {where}"
        )
    return config, weights_bytes, found


def load_allowance(weights_bytes: int, file_bytes: int) -> int:
    """The memory loading a model may add (see :data:`LOAD_FLOOR_BYTES`)."""
    counted = min(weights_bytes, LOAD_MAX_EXPANSION * file_bytes)
    return LOAD_FLOOR_BYTES + LOAD_PER_WEIGHT_BYTE * counted


def _count(n: int) -> str:
    text = f"{n:,}"
    return text if len(text) <= 40 else f"~{float(n):.3g}"


def _check_h5(path: Path, zf: zipfile.ZipFile, name: str, size: int) -> None:
    """The arrays of ``model.weights.h5`` may not declare far more bytes than it holds."""
    from edgekit.formats.sizes import human_bytes, zip_limit

    try:
        import h5py
    except ImportError:  # Keras needs h5py: without it there is nothing to load either
        return
    total = 0
    objects = 0

    def visit(_name: str, obj: Any) -> None:
        nonlocal total, objects
        objects += 1
        if objects > 4 * MAX_LAYERS * 8:
            raise EdgekitError(f"{path}: refused: its {name} holds over {objects:,} objects")
        if isinstance(obj, h5py.Dataset):
            total += math.prod(int(d) for d in (obj.shape or ())) * int(obj.dtype.itemsize)

    with zf.open(name) as fh:
        try:
            with h5py.File(fh, "r") as h5:
                h5.visititems(visit)
        except EdgekitError:
            raise
        except Exception as err:  # h5py raises OSError, KeyError, ValueError, ... on corruption
            raise EdgekitError(
                f"{path}: not a .keras model file (its {name} is unreadable: {_one_line(err)})"
            ) from err
    if total > zip_limit(size):
        raise EdgekitError(
            f"{path}: refused: the arrays in its {name} declare {human_bytes(total)} in "
            f"{human_bytes(size)} (more than {zip_limit(size) // max(size, 1)}x)"
        )


def declared_weights(config: dict[str, Any]) -> tuple[int, int, str | None]:
    """(layers, weights, refused class) a Keras model config declares, without Keras
    (:func:`edgekit.formats.keras_config.declared`)."""
    found = declared(config)
    return found.layers, found.weights, found.refused
