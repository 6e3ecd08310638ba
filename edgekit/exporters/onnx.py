"""ONNX export through frozen graphs, and ONNX Runtime quantization (dynamic, static QDQ).

``tf2onnx.convert.from_keras`` fails on Keras 3 models, and both ``model.export(format=
"onnx")`` and ``tf2onnx.convert.from_function`` leave a ``Normalization`` layer's constants as
extra graph inputs. Freezing the concrete function's variables to constants first gives a graph
with exactly one input. Tensor names are then cleaned (``features`` in, the Keras output
layer's name out) and the batch dimension is named ``batch``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgekit._lazy import require
from edgekit.errors import EdgekitError
from edgekit.exporters.preprocess import InputAffine
from edgekit.fileio import atomic_write_bytes

ONNX_QUANT_MODES = ("dynamic", "static")
MIN_OPSET = 13
TF2ONNX_MAX_OPSET = 18  # tf2onnx 1.17 writes up to 18; newer opsets go through onnx's converter


def max_opset() -> int:
    """The newest opset the installed ``onnx`` package defines (its version converter
    upgrades tf2onnx's graphs to it)."""
    onnx = require("onnx")
    return int(onnx.defs.onnx_opset_version())


def check_opset(opset: int) -> int:
    top = max_opset()
    if not MIN_OPSET <= opset <= top:
        raise EdgekitError(
            f"--opset must be between {MIN_OPSET} and {top} (the installed onnx), got {opset}"
        )
    return opset


def to_onnx(model, path: str | Path, *, opset: int = 17) -> Path:
    """Convert a Keras model to ``.onnx`` with one input and a dynamic batch dimension."""
    check_opset(opset)
    tf = require("tensorflow")
    tf2onnx = require("tf2onnx")
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    from edgekit.exporters.source import infer_task

    # The names the README promises for every model, a user's too: features in, and out
    # what the task gives (Keras would name them input_layer and dense_2).
    in_name = "features"
    out_name = {"multiclass": "probabilities", "binary": "probability"}.get(
        infer_task(model), "prediction"
    )
    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name=in_name)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete)
    try:
        proto, _ = tf2onnx.convert.from_function(
            tf.function(frozen), input_signature=[spec], opset=min(opset, TF2ONNX_MAX_OPSET)
        )
        if opset > TF2ONNX_MAX_OPSET:
            from onnx import version_converter

            proto = version_converter.convert_version(proto, opset)
    except Exception as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise EdgekitError(f"ONNX conversion failed: {first}") from err
    _tidy(proto, out_name=out_name)
    _replace_erfc(proto)
    return atomic_write_bytes(path, proto.SerializeToString())


def _replace_erfc(proto) -> None:
    """``Erfc(x)`` as ``1 - Erf(x)``: tf2onnx writes exact gelu with ``Erfc``, which is no
    ONNX operator (onnxruntime refuses the graph); ``Erf`` is one since opset 9."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    nodes = []
    one = None
    for node in graph.node:
        if node.op_type != "Erfc" or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        if one is None:
            one = "edgekit.one"
            graph.initializer.append(numpy_helper.from_array(np.ones((), np.float32), one))
        erf = f"{node.output[0]}.edgekit.erf"
        nodes.append(helper.make_node("Erf", [node.input[0]], [erf], name=f"{node.name}/Erf"))
        nodes.append(helper.make_node("Sub", [one, erf], [node.output[0]], name=node.name))
    if one is not None:
        del graph.node[:]
        graph.node.extend(nodes)


def _tidy(proto, *, out_name: str) -> None:
    """One graph input, one output named ``out_name``, batch dim named ``batch``.

    The input keeps the name of the ``TensorSpec`` it was traced with."""
    graph = proto.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise EdgekitError(
            f"ONNX conversion left {len(inputs)} graph inputs ({', '.join(i.name for i in inputs)}); "
            "expected exactly one"
        )
    if len(graph.output) != 1:
        raise EdgekitError(f"ONNX conversion produced {len(graph.output)} outputs; expected one")
    old = graph.output[0].name
    if old != out_name:
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = out_name
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = out_name
        graph.output[0].name = out_name
    for value in (inputs[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    proto.producer_name = "edgekit"


class _Reader:
    """ONNX Runtime calibration reader over raw input samples."""

    def __init__(self, name: str, samples: np.ndarray, batch: int = 1) -> None:
        self._items = iter([{name: samples[i : i + batch]} for i in range(0, len(samples), batch)])

    def get_next(self):
        return next(self._items, None)

    def rewind(self):  # pragma: no cover - not used by MinMax calibration
        pass


def quantize_onnx(
    src: str | Path,
    path: str | Path,
    *,
    mode: str,
    calibration: np.ndarray | None = None,
    affine: InputAffine | None = None,
) -> Path:
    """ONNX Runtime quantization: ``dynamic`` (int8 weights) or ``static`` (QDQ, per-channel).

    ``affine``: ``src`` is a core model (its input normalization taken out, see
    :mod:`edgekit.exporters.preprocess`); static quantization calibrates on normalized inputs
    and the normalization is prepended in float, so the artifact takes raw features.
    """
    if mode not in ONNX_QUANT_MODES:
        raise EdgekitError(
            f"unknown ONNX quantization {mode!r}; choose from {', '.join(ONNX_QUANT_MODES)}"
        )
    quant = require("onnxruntime.quantization")
    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        out = Path(tmp) / "quantized.onnx"
        try:
            if mode == "dynamic":
                quant.quantize_dynamic(str(src), str(out), weight_type=quant.QuantType.QInt8)
            else:
                if calibration is None or len(calibration) == 0:
                    raise EdgekitError("the onnx-static variant needs calibration data")
                onnx = require("onnx")
                name = onnx.load(str(src)).graph.input[0].name
                samples = np.asarray(calibration, np.float32)
                if affine is not None:
                    samples = affine.apply(samples)
                reader = _Reader(name, samples)
                quant.quantize_static(
                    str(src),
                    str(out),
                    reader,
                    quant_format=quant.QuantFormat.QDQ,
                    per_channel=True,
                    # 7-bit weights: x86 CPUs without VNNI multiply u8/s8 pairs with 16-bit
                    # saturation (pmaddubsw), which cost a model 8 % of its target's std in MAE
                    # on one machine and nothing on another; reduced weights cannot saturate.
                    reduce_range=True,
                    activation_type=quant.QuantType.QInt8,
                    weight_type=quant.QuantType.QInt8,
                )
        except EdgekitError:
            raise
        except Exception as err:
            first = (str(err).splitlines() or [type(err).__name__])[0]
            raise EdgekitError(f"ONNX {mode} quantization failed: {first}") from err
        if affine is not None:
            return atomic_write_bytes(path, prepend_float_input(out.read_bytes(), affine))
        return atomic_write_bytes(path, out.read_bytes())


def prepend_float_input(model_bytes: bytes, affine: InputAffine) -> bytes:
    """The graph with ``x * scale + offset`` (float ``Mul``, ``Add``) ahead of everything that
    reads its input: the artifact takes raw features, quantized after normalization."""
    onnx = require("onnx")
    from onnx import helper, numpy_helper

    proto = onnx.load_from_string(model_bytes)
    graph = proto.graph
    name = graph.input[0].name
    normalized = f"{name}.edgekit.normalized"
    for node in graph.node:
        for i, value in enumerate(node.input):
            if value == name:
                node.input[i] = normalized
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.asarray(affine.scale, np.float32), f"{name}.edgekit.scale"),
            numpy_helper.from_array(
                np.asarray(affine.offset, np.float32), f"{name}.edgekit.offset"
            ),
        ]
    )
    ahead = [
        helper.make_node(
            "Mul", [name, f"{name}.edgekit.scale"], [f"{name}.edgekit.scaled"], name="input_scale"
        ),
        helper.make_node(
            "Add",
            [f"{name}.edgekit.scaled", f"{name}.edgekit.offset"],
            [normalized],
            name="input_offset",
        ),
    ]
    nodes = ahead + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()
