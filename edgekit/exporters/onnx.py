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
from edgekit.exporters.preprocess import InputAffines
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

    from edgekit.exporters.multi import input_names, is_multi, output_names
    from edgekit.exporters.source import infer_task

    if is_multi(model):  # several inputs or outputs: the Keras names, kept
        in_names, out_names = input_names(model), output_names(model)
    else:  # the names the README promises for every model, a user's too (Keras would
        # name them input_layer and dense_2)
        in_names = ["features"]
        out_names = [
            {"multiclass": "probabilities", "binary": "probability"}.get(
                infer_task(model), "prediction"
            )
        ]
    specs = [
        tf.TensorSpec(
            [None, *t.shape[1:]], tf.float32 if "float" in str(t.dtype) else t.dtype, name=n
        )
        for t, n in zip(model.inputs, in_names, strict=True)
    ]
    if len(specs) == 1:
        concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(specs[0])
    else:
        concrete = tf.function(lambda *xs: model(list(xs), training=False)).get_concrete_function(
            *specs
        )
    frozen = convert_variables_to_constants_v2(concrete)
    try:
        proto, _ = tf2onnx.convert.from_function(
            tf.function(frozen), input_signature=specs, opset=min(opset, TF2ONNX_MAX_OPSET)
        )
        _replace_erfc(proto)  # before the version converter, which has no schema for Erfc
        if opset > TF2ONNX_MAX_OPSET:
            from onnx import version_converter

            proto = version_converter.convert_version(proto, opset)
    except Exception as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise EdgekitError(f"ONNX conversion failed: {first}") from err
    _tidy(proto, in_names=in_names, out_names=out_names)
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


def _tidy(proto, *, in_names: list[str], out_names: list[str]) -> None:
    """The graph's inputs (as traced, named ``in_names``), outputs renamed ``out_names`` in
    order, batch dims named ``batch``."""
    graph = proto.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != len(in_names):
        raise EdgekitError(
            f"ONNX conversion left {len(inputs)} graph inputs ({', '.join(i.name for i in inputs)}); "
            f"expected {len(in_names)}"
        )
    if len(graph.output) != len(out_names):
        raise EdgekitError(
            f"ONNX conversion produced {len(graph.output)} outputs; expected {len(out_names)}"
        )
    for output, new in zip(graph.output, out_names, strict=True):
        old = output.name
        if old == new:
            continue
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = new
        output.name = new
    for value in (*inputs, *graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    proto.producer_name = "edgekit"


class _Reader:
    """ONNX Runtime calibration reader over raw input samples."""

    def __init__(self, names: list[str], parts: list[np.ndarray], batch: int = 1) -> None:
        n = len(parts[0])
        self._items = iter(
            [
                {name: p[i : i + batch] for name, p in zip(names, parts, strict=True)}
                for i in range(0, n, batch)
            ]
        )

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
    affine: InputAffines | None = None,
) -> Path:
    """ONNX Runtime quantization: ``dynamic`` (int8 weights) or ``static`` (QDQ, per-channel).

    ``affine``: ``src`` is a core model (its inputs' normalizations taken out, see
    :mod:`edgekit.exporters.preprocess`); static quantization calibrates on normalized inputs
    and each normalization is prepended in float, so the artifact takes raw features.
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
                graph = onnx.load(str(src)).graph
                initializers = {init.name for init in graph.initializer}
                names = [i.name for i in graph.input if i.name not in initializers]
                parts = calibration if isinstance(calibration, list) else [calibration]
                parts = [
                    np.asarray(p, np.float32) if np.asarray(p).dtype.kind == "f" else np.asarray(p)
                    for p in parts
                ]
                if affine is not None:
                    parts = affine.apply(parts)
                reader = _Reader(names, parts)
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


def prepend_float_input(model_bytes: bytes, affines: InputAffines) -> bytes:
    """The graph with ``x * scale + offset`` (float ``Mul``, ``Add``) ahead of everything that
    reads each input that has an affine map (``affines``, in the graph's input order, which is
    the model's): the artifact takes raw features, quantized after normalization."""
    onnx = require("onnx")
    from onnx import helper, numpy_helper

    proto = onnx.load_from_string(model_bytes)
    graph = proto.graph
    initializers = {init.name for init in graph.initializer}
    names = [i.name for i in graph.input if i.name not in initializers]
    if len(names) != len(affines):
        raise EdgekitError(f"the ONNX graph has {len(names)} inputs; the model has {len(affines)}")
    ahead = []
    for name, affine in zip(names, affines, strict=True):
        if affine is None:
            continue
        normalized = f"{name}.edgekit.normalized"
        for node in graph.node:
            for i, value in enumerate(node.input):
                if value == name:
                    node.input[i] = normalized
        graph.initializer.extend(
            [
                numpy_helper.from_array(
                    np.asarray(affine.scale, np.float32), f"{name}.edgekit.scale"
                ),
                numpy_helper.from_array(
                    np.asarray(affine.offset, np.float32), f"{name}.edgekit.offset"
                ),
            ]
        )
        # One input keeps the node names it always had; several get theirs prefixed.
        prefix = "" if len(names) == 1 else f"{name}/"
        ahead += [
            helper.make_node(
                "Mul",
                [name, f"{name}.edgekit.scale"],
                [f"{name}.edgekit.scaled"],
                name=f"{prefix}input_scale",
            ),
            helper.make_node(
                "Add",
                [f"{name}.edgekit.scaled", f"{name}.edgekit.offset"],
                [normalized],
                name=f"{prefix}input_offset",
            ),
        ]
    nodes = ahead + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()
