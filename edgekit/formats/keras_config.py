"""What a Keras model config declares, sized without Keras: its layers and their weights.

A ``.keras`` (or ``.h5``) file's config tells Keras which layers to build and with what input
shape (each layer's ``build_config``); Keras allocates every layer's weights when it builds
it, before it reads a single weight from the file. :func:`declared` computes those weights
from the config alone, so that a config declaring far more than its file holds is refused
before Keras allocates anything.

Every layer class that Keras 3 ships is either sized here (weights from its config and its
build shape, as Keras computes them: a ``kernel_size`` of 3 is 3x3 in ``Conv2D``), or known to
have no weights. A layer with weights but no build shape (Keras would then build it with
whatever shape the graph hands it, which the config does not bound), code layers and lookup
layers that would read a file are reported in ``unsized``: the caller refuses the file rather
than count them as nothing. Any other class that could be a layer is ``unknown``: refused too
if Keras itself could build it (:func:`unknown_keras_layer`, once Keras is imported). Objects
that are not layers (initializers, dtype policies, ops of the functional API, ...) hold no
weights.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Shape = list[int]

# Layers that Keras 3 builds no weights for (or a seed generator's two integers at most).
WEIGHTLESS = frozenset({
    "Activation", "ActivityRegularization", "Add", "AlphaDropout", "Average", "AugMix",
    "AutoContrast", "CategoryEncoding", "CenterCrop", "Concatenate",
    "ContrastLimitedAdaptiveHistogramEqualization", "Cropping1D", "Cropping2D", "Cropping3D",
    "CutMix", "Discretization", "Dot", "Dropout", "ELU", "Equalization", "Flatten",
    "GaussianDropout", "GaussianNoise", "Hashing", "HashedCrossing", "Identity", "InputLayer",
    "IntegerLookup", "LeakyReLU", "Masking", "MaxNumBoundingBoxes", "Maximum", "Minimum",
    "MixUp", "Multiply", "Permute", "RandAugment", "RandomBrightness",
    "RandomColorDegeneration", "RandomColorJitter", "RandomContrast", "RandomCrop",
    "RandomElasticTransform", "RandomErasing", "RandomFlip", "RandomGaussianBlur",
    "RandomGrayscale", "RandomHue", "RandomInvert", "RandomPerspective", "RandomPosterization",
    "RandomRotation", "RandomSaturation", "RandomSharpness", "RandomShear",
    "RandomTranslation", "RandomZoom", "ReLU", "RepeatVector", "Rescaling", "Reshape",
    "Resizing", "Softmax", "Solarization", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "StringLookup", "Subtract", "TextVectorization", "UnitNormalization",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D",
    "ZeroPadding3D", "MelSpectrogram", "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D", "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D",
    "AdaptiveMaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "AvgPool1D", "AvgPool2D", "AvgPool3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D",
    "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "GlobalMaxPooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "Layer", "Functional", "Sequential",
    "Model", "Pipeline", "Wrapper", "Bidirectional", "TimeDistributed", "RNN",
})  # fmt: skip
# Containers and wrappers: their weights are those of the layers inside, counted on their own.
CONTAINERS = frozenset({"Functional", "Sequential", "Model", "Pipeline", "InputLayer"})
WRAPPERS = frozenset({"Bidirectional", "TimeDistributed", "RNN", "Wrapper",
                      "SpectralNormalization"})  # fmt: skip
SAFE_MODE_REFUSED = frozenset({"Lambda", "TFSMLayer"})
# Layers whose weights come from code, not from their config.
CODE_LAYERS = frozenset({"JaxLayer", "FlaxLayer", "TorchModuleWrapper"})
# Layers whose weights do not depend on their input's shape.
SHAPE_FREE = frozenset({"Embedding", "ReversibleEmbedding", "Attention", "SpectralNormalization"})
# Layers that may name a file on this machine (their vocabulary), which Keras would read.
VOCABULARY_LAYERS = frozenset({"IntegerLookup", "StringLookup", "TextVectorization"})
MAX_MEL_MATRIX = 1 << 24  # MelSpectrogram's filter bank, built on every call
# Modules of objects that are not layers (Keras resolves a class from its module and name).
_NOT_LAYER_MODULES = (
    "keras.src.ops", "keras.ops", "keras.initializers", "keras.src.initializers",
    "keras.regularizers", "keras.src.regularizers", "keras.constraints", "keras.src.constraints",
    "keras.optimizers", "keras.src.optimizers", "keras.losses", "keras.src.losses",
    "keras.metrics", "keras.src.metrics", "keras.dtype_policies", "keras.src.dtype_policies",
    "keras.quantizers", "keras.src.quantizers", "keras.activations", "keras.src.activations",
    "keras.random", "keras.src.random", "builtins",
)  # fmt: skip
_NOT_LAYERS_IN_KERAS = frozenset({
    "DTypePolicy", "FloatDTypePolicy", "QuantizedDTypePolicy", "QuantizedFloat8DTypePolicy",
    "DTypePolicyMap", "Initializer", "Regularizer", "Constraint", "Loss", "Metric", "Optimizer",
    "Quantizer", "InputSpec", "Operation", "Variable", "SeedGenerator",
})  # fmt: skip


@dataclass
class Declared:
    """What a config declares: ``layers``; ``weights`` (elements); ``min_bytes``, the fewest
    bytes a file could store them in (half a byte per int4 weight, one per int8, two per
    float16, four per float32); ``max_bytes``, the most Keras allocates for them; ``refused``,
    the first safe-mode-refused class (``Lambda``, ``TFSMLayer``); ``unsized``, one line per
    layer whose weights cannot be sized from the config (the file must be refused);
    ``unknown``, classes the tables do not know (a custom layer Keras cannot find allocates
    nothing; one it can is refused once Keras is imported: :func:`unknown_keras_layer`)."""

    layers: int = 0
    weights: int = 0
    min_bytes: float = 0.0
    max_bytes: int = 0
    refused: str | None = None
    unsized: list[str] = field(default_factory=list)
    unknown: list[Unknown] = field(default_factory=list)


@dataclass
class Unknown:
    """A class the tables here do not know, that could be a layer: what Keras would resolve
    it from (see :func:`sizable_by_keras`)."""

    where: str
    class_name: str
    module: str | None
    registered_name: str | None


def declared(config: Any) -> Declared:
    """Walk a Keras model config (``config.json``, or an ``.h5``'s ``model_config``)."""
    out = Declared()
    stack: list[tuple[Any, Shape | None]] = [(config, None)]
    while stack:
        obj, inherited = stack.pop()
        if isinstance(obj, list):
            stack.extend((v, inherited) for v in obj)
            continue
        if not isinstance(obj, dict):
            continue
        cls, conf = obj.get("class_name"), obj.get("config")
        children = inherited  # the shape nested layers inherit: a wrapper's own, else none
        if isinstance(cls, str) and isinstance(conf, dict):
            children = None
            own = build_shapes(obj.get("build_config"))
            shapes = own or ([inherited] if inherited is not None else [])
            _visit(out, obj, cls, conf, shapes)
            if cls in WRAPPERS and shapes:
                children = shapes[0]
                if cls == "TimeDistributed" and len(children) > 2:
                    children = [children[0], *children[2:]]  # the inner layer sees no time axis
            if cls == "StackedRNNCells":
                continue  # its cells are sized in _visit, each on the one before's output
        for key, value in obj.items():
            if key not in ("build_config", "inbound_nodes"):
                stack.append((value, children))
    return out


def _visit(out: Declared, obj: dict, cls: str, conf: dict, shapes: list[Shape]) -> None:
    raw = conf.get("name")
    name = raw if isinstance(raw, str) else "?"
    where = f"layer {name[:40]!r} ({cls[:40]})"
    if cls in SAFE_MODE_REFUSED:
        out.refused = out.refused or cls
        out.layers += 1
        return
    if cls in VOCABULARY_LAYERS and isinstance(conf.get("vocabulary"), str):
        out.unsized.append(
            f"{where} reads its vocabulary from a file ({conf['vocabulary'][:60]!r})"
        )
    if cls == "MelSpectrogram":
        bins = (_num(conf.get("fft_length")) // 2 + 1) * _num(conf.get("num_mel_bins"))
        if bins > MAX_MEL_MATRIX:
            out.unsized.append(f"{where} builds a {bins:,}-entry filter bank on every call")
    sizer = SIZERS.get(cls)
    if sizer is not None:
        out.layers += 1
        if not shapes and cls in SHAPE_FREE:
            shapes = [[1]]
        if not shapes:
            out.unsized.append(f"{where} has no build_config, so its weights cannot be sized")
            return
        count = sizer(conf, shapes)
        if count is None:
            out.unsized.append(f"{where}: its weights cannot be sized from its config")
            return
        low, high = _dtype_bytes(conf.get("dtype"))
        out.weights += count
        out.min_bytes += count * low
        out.max_bytes += count * high
        return
    if cls in WEIGHTLESS:
        out.layers += cls not in CONTAINERS
        return
    if cls in CODE_LAYERS:
        out.layers += 1
        out.unsized.append(f"{where} runs code whose weights cannot be sized from its config")
        return
    module, registered = obj.get("module"), obj.get("registered_name")
    if _is_layer(module, cls):
        out.layers += 1
        out.unknown.append(
            Unknown(
                where=where,
                class_name=cls,
                module=module if isinstance(module, str) else None,
                registered_name=registered if isinstance(registered, str) else None,
            )
        )


def unknown_keras_layer(unknown: list[Unknown], keras: Any) -> str | None:
    """The first of ``unknown`` that Keras would build although its weights cannot be sized
    here (a class of Keras's own, outside ``keras.layers``), as a line for the refusal; None
    when there is none. Classes registered in this process (``register_keras_serializable``)
    are the user's own code and are let through; classes Keras cannot find build nothing (Keras
    refuses them, and the loader names them)."""
    import importlib

    for item in unknown:
        key = item.registered_name or item.class_name
        if keras.saving.get_registered_object(key) is not None:
            continue
        module = item.module or ""
        if not (module == "keras" or module.startswith("keras.")):
            continue
        try:
            found = getattr(importlib.import_module(module), item.class_name, None)
        except Exception:  # ImportError, or whatever importing a bad module name raises
            continue
        if isinstance(found, type):
            return f"{item.where} is a Keras class whose weights edgekit cannot size"
    return None


def _is_layer(module: Any, cls: str) -> bool:
    """Whether an unknown class could be a layer (Keras finds it by module and name)."""
    if cls.startswith("__"):  # __keras_tensor__, __tuple__, __numpy__, ...: data
        return False
    if isinstance(module, str):
        if module.startswith(_NOT_LAYER_MODULES):
            return False
        if module == "keras" and cls in _NOT_LAYERS_IN_KERAS:
            return False
    return True


def build_shapes(build: Any) -> list[Shape]:
    """Every input shape of a ``build_config`` (``input_shape``, or ``shapes_dict``'s)."""
    if not isinstance(build, dict):
        return []
    found: list[Shape] = []
    stack = [build.get("input_shape"), build.get("shapes_dict")]
    seen = 0
    while stack and seen < 256:
        value = stack.pop()
        seen += 1
        dims = _dims(value)
        if dims is not None:
            found.append(dims)
        elif isinstance(value, dict):
            stack.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            stack.extend(reversed(value))
    return found


def _num(value: Any) -> int:
    """A config number as a non-negative int (0 for anything else)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float):
        if not math.isfinite(value):
            return 1 << 64
        value = int(value)
    return max(value, 0)


def _dims(value: Any) -> Shape | None:
    """A shape (list of ints or nulls) as ints, a null as 1; None when it is not one."""
    if not isinstance(value, list) or not value or len(value) > 64:
        return None
    if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
               for v in value):  # fmt: skip
        return None
    return [1 if v is None else _num(v) for v in value]


def _dtype_bytes(dtype: Any) -> tuple[float, int]:
    """(fewest, most) bytes per weight under a layer's dtype policy."""
    if isinstance(dtype, dict):
        inner = dtype.get("config")
        dtype = inner.get("name") if isinstance(inner, dict) else None
    name = dtype.lower() if isinstance(dtype, str) else "float32"
    if "int4" in name:
        return 0.5, 4  # packed kernels, float scales and biases
    if "int8" in name or "float8" in name:
        return 1.0, 4
    if name.startswith("mixed"):
        return 4.0, 4  # float32 variables, half-precision compute
    if "complex128" in name:
        return 16.0, 16
    if "float64" in name or "complex64" in name:
        return 8.0, 8
    if "float16" in name:  # float16, bfloat16
        return 2.0, 2
    return 4.0, 4


# --- per-class sizes: what Keras 3 builds, from the config and the build shape -------------


def _last(shapes: list[Shape]) -> int:
    return shapes[0][-1] if shapes[0] else 0


def _features(shape: Shape) -> int:
    return math.prod(shape[1:]) if len(shape) > 1 else (shape[0] if shape else 0)


def _axes(conf: dict, shape: Shape, default: int | list = -1) -> int | None:
    """The number of elements along a normalization layer's ``axis`` (None: invalid axes)."""
    axis = conf.get("axis", default)
    axes = axis if isinstance(axis, list) else [axis]
    if axis is None:
        return _features(shape)
    rank = len(shape)
    picked = set()
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, int) or not -rank <= a < rank:
            return None
        picked.add(a % rank)
    return math.prod(shape[a] for a in picked)


def _bias(conf: dict, n: int) -> int:
    return n if conf.get("use_bias", True) is not False else 0


def _lora(conf: dict, n_in: int, n_out: int) -> int:
    return _num(conf.get("lora_rank")) * (n_in + n_out)


def _dense(conf: dict, shapes: list[Shape]) -> int:
    n_in, units = _last(shapes), _num(conf.get("units"))
    scale = units if conf.get("quantization_config") or "int" in str(conf.get("dtype")) else 0
    return n_in * units + _bias(conf, units) + _lora(conf, n_in, units) + scale


def _kernel_size(conf: dict, rank: int) -> int:
    kernel = conf.get("kernel_size")
    if isinstance(kernel, list):
        return math.prod(_num(v) for v in kernel) if kernel else 0
    return _num(kernel) ** rank  # an int: the same size along every spatial axis


def _channels(conf: dict, shape: Shape) -> int:
    first = conf.get("data_format") == "channels_first" and len(shape) > 1
    return shape[1] if first else shape[-1]


def _rank(cls: str) -> int:
    digit = re.search(r"([123])D", cls)
    return int(digit.group(1)) if digit else 3


def _conv(conf: dict, shapes: list[Shape], cls: str) -> int:
    n_in, filters = _channels(conf, shapes[0]), _num(conf.get("filters"))
    k = _kernel_size(conf, _rank(cls))
    groups = _num(conf.get("groups")) or 1
    per_group = n_in // groups if n_in % groups == 0 else n_in
    return k * per_group * filters + _bias(conf, filters)


def _conv_transpose(conf: dict, shapes: list[Shape], cls: str) -> int:
    n_in, filters = _channels(conf, shapes[0]), _num(conf.get("filters"))
    return _kernel_size(conf, _rank(cls)) * n_in * filters + _bias(conf, filters)


def _depthwise(conf: dict, shapes: list[Shape], cls: str) -> int:
    n_in, dm = _channels(conf, shapes[0]), _num(conf.get("depth_multiplier", 1))
    return _kernel_size(conf, _rank(cls)) * n_in * dm + _bias(conf, n_in * dm)


def _separable(conf: dict, shapes: list[Shape], cls: str) -> int:
    n_in, dm = _channels(conf, shapes[0]), _num(conf.get("depth_multiplier", 1))
    filters = _num(conf.get("filters"))
    depthwise = _kernel_size(conf, _rank(cls)) * n_in * dm
    return depthwise + n_in * dm * filters + _bias(conf, filters)


def _conv_lstm(conf: dict, shapes: list[Shape], cls: str) -> int:
    n_in, filters = _channels(conf, shapes[0]), _num(conf.get("filters"))
    k = _kernel_size(conf, _rank(cls))
    return k * n_in * 4 * filters + k * filters * 4 * filters + _bias(conf, 4 * filters)


def _rnn(gates: int, biases: int) -> Callable[[dict, list[Shape]], int]:
    def size(conf: dict, shapes: list[Shape]) -> int:
        return _rnn_cell(conf, _last(shapes), gates, biases)

    return size


def _rnn_cell(conf: dict, n_in: int, gates: int, biases: int) -> int:
    units = _num(conf.get("units"))
    if gates == 3 and conf.get("reset_after", True) is False:
        biases = 1
    return gates * units * (n_in + units) + _bias(conf, biases * gates * units)


_CELLS = {"LSTMCell": (4, 1), "GRUCell": (3, 2), "SimpleRNNCell": (1, 1)}


def _stacked_cells(conf: dict, shapes: list[Shape]) -> int | None:
    """``StackedRNNCells``: each cell takes the previous cell's output."""
    cells = conf.get("cells")
    if not isinstance(cells, list):
        return None
    n_in, total = _last(shapes), 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("class_name") not in _CELLS:
            return None
        cell_conf = cell.get("config")
        if not isinstance(cell_conf, dict):
            return None
        gates, biases = _CELLS[cell["class_name"]]
        total += _rnn_cell(cell_conf, n_in, gates, biases)
        n_in = _num(cell_conf.get("units"))
    return total


def _embedding(conf: dict, shapes: list[Shape]) -> int:
    rows, width = _num(conf.get("input_dim")), _num(conf.get("output_dim"))
    return rows * width + _lora(conf, rows, width)


def _reversible_embedding(conf: dict, shapes: list[Shape]) -> int:
    reverse = 0 if conf.get("tie_weights", True) is not False else _embedding(conf, shapes)
    return _embedding(conf, shapes) + reverse


def _per_axis(factor: int, default: int | list = -1) -> Callable[[dict, list[Shape]], int | None]:
    def size(conf: dict, shapes: list[Shape]) -> int | None:
        n = _axes(conf, shapes[0], default)
        return None if n is None else factor * n

    return size


def _prelu(conf: dict, shapes: list[Shape]) -> int | None:
    shape = list(shapes[0][1:])
    shared = conf.get("shared_axes")
    for axis in shared if isinstance(shared, list) else [shared] if shared is not None else []:
        if isinstance(axis, bool) or not isinstance(axis, int) or not 1 <= axis <= len(shape):
            return None
        shape[axis - 1] = 1
    return math.prod(shape)


def _attention_dims(conf: dict, shapes: list[Shape]) -> tuple[int, int, int]:
    """The feature sizes of query, key and value (MultiHeadAttention, GroupQueryAttention)."""
    query = shapes[0]
    value = shapes[1] if len(shapes) > 1 else query
    key = shapes[2] if len(shapes) > 2 else value
    return query[-1], key[-1], value[-1]


def _attention_output(conf: dict, query_dim: int) -> int:
    out = conf.get("output_shape")
    if out is None:
        return query_dim
    dims = _dims(out) if isinstance(out, list) else [_num(out)]
    return math.prod(dims) if dims else query_dim


def _mha(conf: dict, shapes: list[Shape]) -> int:
    q, k, v = _attention_dims(conf, shapes)
    heads, key_dim = _num(conf.get("num_heads")), _num(conf.get("key_dim"))
    value_dim = _num(conf.get("value_dim")) if conf.get("value_dim") is not None else key_dim
    out = _attention_output(conf, q)
    total = heads * key_dim * (q + 1) + heads * key_dim * (k + 1) + heads * value_dim * (v + 1)
    total += heads * value_dim * out + out
    if conf.get("use_gate"):
        total += heads * value_dim * (q + 1)
    return total


def _gqa(conf: dict, shapes: list[Shape]) -> int:
    q, k, v = _attention_dims(conf, shapes)
    head = _num(conf.get("head_dim"))
    hq, hkv = _num(conf.get("num_query_heads")), _num(conf.get("num_key_value_heads"))
    total = hq * head * (q + 1) + hkv * head * (k + 1) + hkv * head * (v + 1) + hq * head * q + q
    if conf.get("use_gate"):
        total += hq * head * (q + 1)
    return total


_EINSUM = (
    (re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)"), False),
    (re.compile(r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)"), True),
    (re.compile(r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0"), False),
)


def _einsum(conf: dict, shapes: list[Shape]) -> int | None:
    """``EinsumDense``: its kernel and bias shapes, derived from the equation as Keras does."""
    equation, out = conf.get("equation"), conf.get("output_shape")
    if not isinstance(equation, str) or len(equation) > 64:
        return None
    given = [_num(out)] if isinstance(out, (int, float)) else out
    if not isinstance(given, list) or len(given) > 64:
        return None
    input_shape = shapes[0]
    text = equation.replace("...", "0")
    found = [(m, left) for m, left in ((p.match(text), left) for p, left in _EINSUM) if m]
    if not found:
        return None
    match, left = found[0]
    in_spec, w_spec, out_spec = match.groups()
    elided = len(input_shape) - len(in_spec)
    full = [input_shape[0], *(None if d is None else _num(d) for d in given)]
    if elided > 0 and left:
        for i in range(1, elided):
            full.insert(1, input_shape[i])
    elif elided > 0:
        full.extend(input_shape[len(input_shape) - elided :])
    if left:
        in_map = {d: i + elided - len(input_shape) for i, d in enumerate(in_spec)}
        out_map = {d: i + elided for i, d in enumerate(out_spec)}
    else:
        in_map = {d: i for i, d in enumerate(in_spec)}
        out_map = {d: i for i, d in enumerate(out_spec)}
    kernel: list[int] = []
    try:
        for d in w_spec:
            size = full[out_map[d]] if d in out_map else input_shape[in_map[d]]
            kernel.append(1 if size is None else size)
        bias = 0
        axes = conf.get("bias_axes")
        if isinstance(axes, str) and axes:
            offset = elided if left else 0
            bias = math.prod((full[i + offset] or 1) for i, d in enumerate(out_spec) if d in axes)
    except (KeyError, IndexError):
        return None  # Keras refuses such an equation too
    count = math.prod(kernel) + bias
    rank = _num(conf.get("lora_rank"))
    if rank and kernel:
        count += rank * (math.prod(kernel[:-1]) + kernel[-1])
    return count


def _spectral(conf: dict, shapes: list[Shape]) -> int:
    """``SpectralNormalization``: a vector as wide as the wrapped layer's output (the wrapped
    layer's own weights are counted on their own)."""
    inner = conf.get("layer")
    inner_conf = inner.get("config") if isinstance(inner, dict) else None
    if not isinstance(inner_conf, dict):
        return 0
    return max(_num(inner_conf.get(k)) for k in ("units", "filters", "output_dim"))


def _stft(conf: dict, shapes: list[Shape]) -> int:
    frame = _num(conf.get("frame_length"))
    fft = _num(conf.get("fft_length")) or (1 << max(frame - 1, 0).bit_length())
    return 2 * frame * (max(fft, frame) // 2 + 1) * max(_channels(conf, shapes[0]), 1)


def _additive_attention(conf: dict, shapes: list[Shape]) -> int:
    return _last(shapes) if conf.get("use_scale", True) is not False else 0


def _with_cls(fn: Callable[[dict, list[Shape], str], int], cls: str):
    return lambda conf, shapes: fn(conf, shapes, cls)


Sizer = Callable[[dict, list[Shape]], "int | None"]
SIZERS: dict[str, Sizer] = {
    "Dense": _dense,
    "EinsumDense": _einsum,
    "Embedding": _embedding,
    "ReversibleEmbedding": _reversible_embedding,
    "BatchNormalization": _per_axis(4),
    "LayerNormalization": _per_axis(2),
    "RMSNormalization": _per_axis(1),
    "GroupNormalization": _per_axis(2),
    "Normalization": lambda conf, shapes: (lambda n: None if n is None else 2 * n + 1)(
        _axes(conf, shapes[0])
    ),
    "PReLU": _prelu,
    "MultiHeadAttention": _mha,
    "GroupQueryAttention": _gqa,
    "Attention": lambda conf, shapes: 2,
    "AdditiveAttention": _additive_attention,
    "LSTM": _rnn(4, 1),
    "LSTMCell": _rnn(4, 1),
    "GRU": _rnn(3, 2),
    "GRUCell": _rnn(3, 2),
    "SimpleRNN": _rnn(1, 1),
    "SimpleRNNCell": _rnn(1, 1),
    "StackedRNNCells": _stacked_cells,
    "SpectralNormalization": _spectral,
    "STFTSpectrogram": _stft,
}
for _rank_ in ("1", "2", "3"):
    for _name in (f"Conv{_rank_}D", f"Convolution{_rank_}D"):
        SIZERS[_name] = _with_cls(_conv, _name)
        SIZERS[f"{_name}Transpose"] = _with_cls(_conv_transpose, _name)
    SIZERS[f"ConvLSTM{_rank_}D"] = _with_cls(_conv_lstm, f"ConvLSTM{_rank_}D")
for _rank_ in ("1", "2"):
    SIZERS[f"DepthwiseConv{_rank_}D"] = _with_cls(_depthwise, f"DepthwiseConv{_rank_}D")
    for _name in (f"SeparableConv{_rank_}D", f"SeparableConvolution{_rank_}D"):
        SIZERS[_name] = _with_cls(_separable, _name)
