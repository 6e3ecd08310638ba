"""Which Keras layer produced each tensor of an artifact, and the one tensor per layer to judge.

Converters name tensors after the layers they come from: TFLite fuses names with ``;``
(``edgekit_mlp_1/dense_0_1/MatMul;edgekit_mlp_1/dense_0_1/Relu``), ONNX keeps the TensorFlow
op path (``PartitionedCall/edgekit_mlp_1/dense_0_1/Relu:0_QuantizeLinear_Output``); TensorFlow
adds ``_<n>`` to each layer's scope. A tensor whose name names no layer (a ``LOGISTIC`` output,
a quantize step) belongs to the layer of the tensor it was computed from, except after an op
that computes a new layer (a matmul): that starts a later layer of matching shape, the one
whose float output it is closest to (a converter folds a ``Rescaling`` into the matmul). The
graph input belongs to the input layer, or, in an artifact built without its leading
``Normalization`` (an integer model takes normalized features), to that layer: when no tensor
names it, the values decide (a float converter may instead fold it into the next layer).
"""

from __future__ import annotations

import re

import numpy as np

from edgekit.diagnose.chain import FloatChain
from edgekit.diagnose.graph import Capture, Tensor

_SCOPE_SUFFIX = re.compile(r"(.+)_\d+")
# Ops that compute a layer of their own, rather than finish the one they read.
_LAYER_OPS = frozenset(
    {
        "FULLY_CONNECTED", "BATCH_MATMUL", "CONV_2D", "DEPTHWISE_CONV_2D",
        "MatMul", "MatMulInteger", "Gemm", "Conv", "QLinearMatMul", "QLinearConv",
    }
)  # fmt: skip


def _layer_of_part(part: str, positions: dict[str, int]) -> int | None:
    part = part.split(":")[0]
    scoped = _SCOPE_SUFFIX.fullmatch(part)
    if scoped and scoped.group(1) in positions:  # "dense_1_1" is layer "dense_1"
        return positions[scoped.group(1)]
    return positions.get(part)


def layer_in_name(name: str, positions: dict[str, int]) -> int | None:
    """The position of the (latest) layer named in a tensor or node name, if any."""
    found: int | None = None
    for segment in name.split(";"):
        for part in reversed(segment.split("/")):
            position = _layer_of_part(part, positions)
            if position is not None:
                found = position if found is None else max(found, position)
                break
    return found


def _next_layer(tensor: Tensor, chain: FloatChain, after: int, reference: list[np.ndarray]) -> int:
    shape = tuple(int(d) for d in tensor.values.shape[1:])
    later = [p for p in range(after + 1, len(chain.layers)) if chain.shape(p) == shape]
    if len(later) < 2 or len(tensor.values) != len(reference[0]):
        return later[0] if later else after
    real = tensor.real()

    def distance(position: int) -> float:
        want = reference[position]
        return float(np.mean((real - want) ** 2) / (np.var(want) + 1e-12))

    return min(later, key=distance)


def _takes_normalized(
    capture: Capture, owner: dict[str, int], norm: int, reference: list[np.ndarray]
) -> bool:
    """Whether the tensors ahead of layer ``norm`` hold its output (normalized features)
    rather than the raw input: the last of them of its shape is closer to which?"""
    samples, want = len(reference[0]), reference[norm].shape
    ahead = [
        t for t in capture.tensors
        if owner[t.name] < norm and t.values.size == np.prod(want) and len(t.values) == samples
    ]  # fmt: skip
    if not ahead:
        return False
    real = ahead[-1].real()
    raw = reference[owner[ahead[-1].name]].reshape(want)
    return bool(np.mean((real - reference[norm]) ** 2) < np.mean((real - raw) ** 2))


def assign(capture: Capture, chain: FloatChain, reference: list[np.ndarray]) -> dict[str, int]:
    """``{tensor name: layer position}`` for every tensor of ``capture``; ``reference`` holds
    the float outputs of every layer (:meth:`FloatChain.outputs`)."""
    positions = {name: i for i, name in enumerate(chain.names)}
    last = len(chain.layers) - 1
    owner: dict[str, int] = {}
    for tensor in capture.tensors:
        if tensor.is_input:
            position: int | None = 0
        elif tensor.is_output:
            position = last
        else:
            position = layer_in_name(tensor.name, positions)
            if position is None and tensor.node:
                position = layer_in_name(tensor.node, positions)
        if position is None:
            before = max((owner.get(name, 0) for name in tensor.inputs), default=0)
            computes = tensor.op in _LAYER_OPS
            position = _next_layer(tensor, chain, before, reference) if computes else before
        owner[tensor.name] = position
    norm = chain.leading_normalization()
    if (
        norm is not None
        and norm not in owner.values()
        and _takes_normalized(capture, owner, norm, reference)
    ):  # built without it: what comes before it is its output
        owner = {name: max(position, norm) for name, position in owner.items()}
    return owner


def weight_types(capture: Capture, chain: FloatChain) -> dict[int, str]:
    """``{layer position: "int8" | "float16" | "float32"}``: the type of the weights that
    name each layer (a converter may leave small layers' weights float)."""
    positions = {name: i for i, name in enumerate(chain.names)}
    found: dict[int, set[str]] = {}
    for name, dtype in capture.constants.items():
        position = layer_in_name(name, positions)
        if position is not None:
            found.setdefault(position, set()).add(dtype)
    types = {}
    for position, dtypes in found.items():
        if dtypes & {"int8", "uint8"}:
            types[position] = "int8"
        elif "float16" in dtypes:
            types[position] = "float16"
        else:
            types[position] = "float32"
    return types


def choose(
    capture: Capture, chain: FloatChain, reference: list[np.ndarray], *, static: bool
) -> dict[int, Tensor]:
    """``{layer position: the tensor that holds its output}``.

    The last tensor of each layer whose shape is the layer's output: for statically quantized
    artifacts the last integer one (its scale is what the layer was quantized with), else the
    last float one. The input layer is left out when its tensor is the raw float input.
    """
    owner = assign(capture, chain, reference)
    samples = len(capture.tensors[0].values)
    chosen: dict[int, Tensor] = {}
    for tensor in capture.tensors:
        position = owner[tensor.name]
        if tensor.values.shape != (samples, *chain.shape(position)):
            continue
        is_float = tensor.values.dtype.kind == "f"
        held = chosen.get(position)
        if static:  # an integer tensor, or a float one while no integer one was found
            take = tensor.quantized or (is_float and (held is None or not held.quantized))
        else:
            take = is_float
        if take:
            chosen[position] = tensor
    if 0 in chosen and not chosen[0].quantized:
        del chosen[0]
    return dict(sorted(chosen.items()))
