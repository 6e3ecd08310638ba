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
    check_keras_file(path)
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
    except Exception as err:
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
_RNN_GATES = {"LSTM": 4, "ConvLSTM1D": 4, "ConvLSTM2D": 4, "ConvLSTM3D": 4, "GRU": 3,
              "SimpleRNN": 1}  # fmt: skip


def check_keras_file(path: Path) -> dict[str, Any]:
    """Check a ``.keras`` zip before Keras reads it; returns its parsed ``config.json``.

    Refused, each in one line: members that unpack to far more than the archive holds
    (:func:`~edgekit.formats.sizes.check_zip_sizes`), a ``config.json`` over
    :data:`MAX_CONFIG_BYTES` or with absurdly many JSON containers or layers, a config whose
    layers declare more than :data:`MAX_PARAMS` weights or more than its weights file could
    hold, a weights file whose arrays declare more than it could hold, and the layers safe
    mode refuses (``Lambda``, ``TFSMLayer``), named as such.
    """
    from edgekit.formats.sizes import check_zip_sizes, human_bytes

    try:
        with zipfile.ZipFile(path) as zf:
            check_zip_sizes(path, zf, what="a .keras file")
            names = set(zf.namelist())
            if "config.json" not in names:
                return {}  # Keras names what is missing
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
                    scan_npz(Path(f"{path}:{weights}"), inner)
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
    layers, params, refused = declared_weights(config)
    if refused == "Lambda":
        raise EdgekitError(f"{path}: {LAMBDA_REFUSED}")
    if refused == "TFSMLayer":
        raise EdgekitError(f"{path}: {TFSM_REFUSED}")
    if layers > MAX_LAYERS:
        raise EdgekitError(
            f"{path}: refused: its config declares {layers:,} layers (edgekit loads at most "
            f"{MAX_LAYERS:,})"
        )
    if params > MAX_PARAMS:
        raise EdgekitError(
            f"{path}: refused: its config declares {_count(params)} weights (edgekit loads "
            f"at most {MAX_PARAMS:,})"
        )
    if params > 2 * weights_bytes + (64 << 10):  # int4 packs two weights in a byte
        where = (
            f"its {weights} holds {weights_bytes:,} bytes" if weights else "it has no weights file"
        )
        raise EdgekitError(
            f"{path}: refused: its config declares {_count(params)} weights, but {where}"
        )
    return config


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
    """(layers, weights, refused class) a Keras model config declares, without Keras.

    Every layer's weights follow from its config and its ``build_config`` input shape
    (what Keras builds it with); a layer inside a wrapper (``Bidirectional``) takes the
    wrapper's, and a layer without either is sized by the largest shape anywhere in the
    config (an over-estimate, for hand-made configs only). ``refused``: ``Lambda`` or
    ``TFSMLayer`` when the config holds one (safe mode refuses them).
    """
    largest = _largest_dim(config)
    layers = params = 0
    refused = None
    stack: list[tuple[Any, list | None]] = [(config, None)]
    seen = 0
    while stack:
        obj, inherited = stack.pop()
        seen += 1
        if isinstance(obj, list):
            stack.extend((v, inherited) for v in obj)
            continue
        if not isinstance(obj, dict):
            continue
        cls, conf = obj.get("class_name"), obj.get("config")
        shape = inherited
        if isinstance(cls, str) and isinstance(conf, dict):
            if cls in ("Lambda", "TFSMLayer") and refused is None:
                refused = cls
            own = _build_shape(obj.get("build_config"))
            shape = own if own is not None else inherited
            if own is not None or "layers" not in conf:
                layers += "name" in conf and "trainable" in conf
            params += _layer_params(cls, conf, shape, largest)
        stack.extend((v, shape) for v in obj.values())
    return layers, params, refused


def _num(value: Any) -> int:
    """A config number as a non-negative int (0 for anything else)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float):
        if not math.isfinite(value):
            return 1 << 64
        value = int(value)
    return max(value, 0)


def _dims(value: Any) -> list[int] | None:
    """A shape (list of ints or nulls) as ints, a null as 1; None when it is not one."""
    if not isinstance(value, list) or not value or len(value) > 64:
        return None
    if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
               for v in value):  # fmt: skip
        return None
    return [1 if v is None else _num(v) for v in value]


def _build_shape(build: Any) -> list[int] | None:
    """The (first) input shape of a ``build_config``."""
    if not isinstance(build, dict):
        return None
    shape = build.get("input_shape")
    for _ in range(4):  # several inputs: a list (or dict) of shapes
        if isinstance(shape, dict):
            shape = next(iter(shape.values()), None)
        dims = _dims(shape)
        if dims is not None:
            return dims
        if not isinstance(shape, list) or not shape:
            return None
        shape = shape[0]
    return None


def _largest_dim(config: Any) -> int:
    """The largest number of features any shape in the config has (batch excluded)."""
    best = 1
    stack = [config]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list):
            dims = _dims(obj)
            if dims is not None:
                best = max(best, math.prod(dims[1:]) if len(dims) > 1 else dims[0])
            else:
                stack.extend(obj)
    return best


def _layer_params(cls: str, conf: dict[str, Any], shape: list[int] | None, largest: int) -> int:
    """Weights a layer of class ``cls`` builds for an input of ``shape`` (None: unknown)."""
    n_in = shape[-1] if shape else largest
    features = math.prod(shape[1:]) if shape and len(shape) > 1 else largest
    base = cls[:-4] if cls.endswith("Cell") else cls
    units, filters = _num(conf.get("units")), _num(conf.get("filters"))
    kernel = conf.get("kernel_size")
    k = math.prod(_num(v) for v in kernel) if isinstance(kernel, list) else max(_num(kernel), 1)
    if base in ("Dense", "QuantizedDense"):
        return units * (n_in + 1)
    if base == "EinsumDense":
        out = _dims(conf.get("output_shape")) or [_num(conf.get("output_shape")) or 1]
        return (n_in + 1) * math.prod(out)
    if base.startswith("DepthwiseConv"):
        return n_in * _num(conf.get("depth_multiplier") or 1) * (k + 1)
    if base.startswith("SeparableConv"):
        dm = _num(conf.get("depth_multiplier") or 1)
        return n_in * dm * k + n_in * dm * filters + filters
    if base.startswith("Conv") and "LSTM" not in base:
        return filters * (k * n_in + 1)
    if base in _RNN_GATES:
        gates = _RNN_GATES[base]
        return gates * units * (n_in * (k if "Conv" in base else 1) + units + 2)
    if base == "Embedding":
        return _num(conf.get("input_dim")) * _num(conf.get("output_dim"))
    if base in ("BatchNormalization", "LayerNormalization", "GroupNormalization"):
        return 4 * n_in
    if base in ("Normalization", "PReLU"):
        return 3 * features
    if base == "MultiHeadAttention":
        heads, key = _num(conf.get("num_heads")), _num(conf.get("key_dim"))
        value = _num(conf.get("value_dim")) or key
        return heads * (2 * key + 2 * value) * (n_in + 1)
    return 0
