"""What the runtimes would refuse, refused before anything is estimated.

An estimate of a model its runtime cannot load is a number that is not true, so
``edgekit estimate`` first checks what LiteRT (``.tflite``) or onnxruntime (``.onnx``) checks
on load, each refusal one line naming the operator or tensor and the problem:

* ``.tflite`` (:func:`check_tflite_model`, after the structural checks of
  :func:`edgekit.formats.tflite_graph.check_tflite`): custom operators (LiteRT has no kernel
  for them and edgekit no cost), builtin codes the schema does not know, operator versions
  LiteRT does not provide (asked of LiteRT itself: its interpreter is built, without
  delegates, and never allocated), negative dimensions (LiteRT's size computation overflows
  on them), a ``shape_signature`` that disagrees with the shape or is dynamic beyond the
  batch, tensors with no elements between operators, and multiply-accumulate layers whose
  declared output is not what their input and weights make (LiteRT resizes such outputs
  when it runs, so the declared size would be wrong).
* ``.onnx`` (:func:`check_onnx_graph`): no default opset, opsets newer than onnxruntime
  knows, operators of domains it does not know or that do not exist at the model's opset
  (asked of onnxruntime's operator schemas), names defined twice, inputs nothing defines,
  cycles, and negative dimensions (only a -1 batch is taken as unknown).
"""

from __future__ import annotations

import math
import mmap
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from edgekit._lazy import require
from edgekit.errors import EdgekitError
from edgekit.formats.onnx_wire import OnnxGraph
from edgekit.formats.tflite_graph import TFLiteGraph, shape_text, tensor_label

CUSTOM = 32
MAC_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL", "CONV_2D", "DEPTHWISE_CONV_2D")


# --- .tflite --------------------------------------------------------------------------------


def check_tflite_model(path: Path, g: TFLiteGraph) -> None:
    """Refuse what LiteRT refuses in ``path`` (``g``: its main subgraph, read already)."""
    schema = require("ai_edge_litert.schema_py_generated")
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        try:
            model = schema.Model.GetRootAs(data, 0)
            used = _check_flatbuffer(path, model, schema)
        except EdgekitError:
            raise
        except Exception as err:  # read_tflite checked the tables; this is a backstop
            raise EdgekitError(
                f"{path}: not a valid TensorFlow Lite model (truncated or corrupt flatbuffer)"
            ) from err
    _check_with_litert(path, used)
    _check_graph(path, g)


def _check_flatbuffer(path: Path, model, schema) -> dict[tuple[str, int], str]:
    """Operator codes and tensor shapes, in every subgraph; returns the builtin operators
    used, ``(name, version)`` -> the first operator using it (for LiteRT's messages)."""
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for c in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(c)
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        custom = code.CustomCode()
        custom_name = custom.decode("utf-8", "replace") if isinstance(custom, bytes) else custom
        codes.append((builtin, int(code.Version()), custom_name))
    used: dict[tuple[str, int], str] = {}
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        where = "" if s == 0 else f" of subgraph {s}"
        for k in range(sub.OperatorsLength()):
            builtin, version, custom = codes[sub.Operators(k).OpcodeIndex()]
            if builtin == CUSTOM:
                raise EdgekitError(
                    f"{path}: refused: operator {k}{where} is the custom operator "
                    f"{custom or '(unnamed)'!r}; LiteRT has no kernel for it unless an "
                    "application registers one, and edgekit cannot count its cost"
                )
            if builtin not in names:
                raise EdgekitError(
                    f"{path}: refused: operator {k}{where} has builtin code {builtin}, which "
                    "LiteRT does not know (a model from a newer converter?)"
                )
            used.setdefault((names[builtin], version), f"operator {k}{where}")
        for i in range(sub.TensorsLength()):
            t = sub.Tensors(i)
            label = f"tensor {i}{where} ({tensor_label(t.Name(), i)})"
            shape = [int(t.Shape(j)) for j in range(t.ShapeLength())]
            if any(d < 0 for d in shape):
                raise EdgekitError(
                    f"{path}: refused: {label} has shape {shape_text(shape)}, with a negative "
                    "dimension (LiteRT refuses it: its size overflows)"
                )
            if t.ShapeSignatureIsNone():
                continue
            signature = [int(t.ShapeSignature(j)) for j in range(t.ShapeSignatureLength())]
            agree = len(signature) == len(shape) and all(
                d == -1 or d == n for d, n in zip(signature, shape, strict=True)
            )
            if not agree:
                raise EdgekitError(
                    f"{path}: refused: {label} has shape_signature {shape_text(signature)}, which "
                    f"does not match its shape {shape_text(shape)} (-1 marks an unknown dimension)"
                )
            if s == 0 and -1 in signature[1:]:
                raise EdgekitError(
                    f"{path}: cannot estimate: {label} has shape_signature "
                    f"{shape_text(signature)}, unknown beyond the batch; edgekit estimates fixed "
                    "shapes (only the first dimension may be -1)"
                )
    return used


_NO_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)' version '(-?\d+)'")


def _check_with_litert(path: Path, used: dict[tuple[str, int], str]) -> None:
    """The builtin operators and versions ``used``, as LiteRT resolves them."""
    refused = _litert_refuses(tuple(sorted(used)))
    if refused is None:
        return
    match = _NO_OP.search(refused)
    if match:
        name, version = match.group(1), int(match.group(2))
        where = used.get((name, version), "an operator")
        raise EdgekitError(
            f"{path}: refused: {where} is {name} version {version}, which LiteRT does not "
            "provide (a model from a newer converter?)"
        )
    raise EdgekitError(f"{path}: refused: LiteRT cannot load its operators ({refused})")


@lru_cache(maxsize=256)
def _litert_refuses(ops: tuple[tuple[str, int], ...]) -> str | None:
    """LiteRT's first line on a model of just these operator codes (None: it resolves them).

    The model is edgekit's own: the codes and an empty subgraph, so nothing but the
    operator registration is tried.
    """
    import flatbuffers

    schema = require("ai_edge_litert.schema_py_generated")
    interpreter = require("ai_edge_litert.interpreter")
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = []
    for name, version in ops:
        code = schema.OperatorCodeT()
        code.builtinCode = getattr(schema.BuiltinOperator, name)
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
        code.version = version
        model.operatorCodes.append(code)
    sub = schema.SubGraphT()
    sub.tensors, sub.operators, sub.inputs, sub.outputs = [], [], [], []
    model.subgraphs = [sub]
    model.buffers = [schema.BufferT()]
    builder = flatbuffers.Builder(256)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    try:
        interpreter.Interpreter(
            model_content=bytes(builder.Output()),
            experimental_op_resolver_type=(
                interpreter.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            ),
        )
    except (ValueError, RuntimeError) as err:
        return (str(err).strip().splitlines() or [type(err).__name__])[0]
    return None


def _check_graph(path: Path, g: TFLiteGraph) -> None:
    """Activations with elements, and MAC layers whose output their input and weights make."""
    used = {i for op in g.ops for i in (*op.inputs, *op.outputs) if i >= 0}
    for i in sorted(used):
        t = g.tensors[i]
        if not t.is_constant and t.size == 0:
            raise EdgekitError(
                f"{path}: cannot estimate: tensor {i} ({tensor_label(t.name, i)}) has no elements "
                f"(shape {shape_text(list(t.shape))}); LiteRT resizes it when it runs, so its "
                "declared size is not the one it needs"
            )
    for op in g.ops:
        if op.name in MAC_OPS:
            _check_mac_op(path, g, op)


def _weights(g: TFLiteGraph, op) -> Any:
    """The constant weights of a MAC op (through a DEQUANTIZE), or None (two activations)."""
    if len(op.inputs) < 2 or op.inputs[1] < 0:
        return None
    t = g.tensors[op.inputs[1]]
    if t.is_constant:
        return t
    src = g.producer(op.inputs[1])
    if src is not None and src.name == "DEQUANTIZE" and src.inputs and src.inputs[0] >= 0:
        w = g.tensors[src.inputs[0]]
        return w if w.is_constant else None
    return None


def _conv_out(size: int, kernel: int, stride: int, dilation: int, padding: int) -> int:
    """TFLite's output size of one spatial dimension (padding 0: SAME, 1: VALID)."""
    if padding == 0:
        return -(-size // stride)
    return -(-(size - (kernel - 1) * dilation) // stride)


def _check_mac_op(path: Path, g: TFLiteGraph, op) -> None:
    w = _weights(g, op)
    if w is None or not op.outputs or op.inputs[0] < 0 or len(w.shape) < 2:
        return  # a product of two activations: no layer is counted
    x, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    label = f"operator {op.index} ({op.name})"
    expected: int | None = None
    if op.name == "FULLY_CONNECTED":
        units, n_in = w.shape[0], math.prod(w.shape[1:])
        if n_in == 0 or x.size % n_in:
            raise EdgekitError(
                f"{path}: refused: {label} reads input {shape_text(list(x.shape))} with weights "
                f"{shape_text(list(w.shape))}: its {x.size:,} values are no whole number of rows "
                f"of {n_in:,} (LiteRT refuses it)"
            )
        expected = x.size // n_in * units
    elif op.name == "BATCH_MATMUL":
        adj = bool(op.options.get("adj_y"))
        n_in, units = (w.shape[-1], w.shape[-2]) if adj else (w.shape[-2], w.shape[-1])
        if n_in and x.size % n_in == 0:
            expected = x.size // n_in * units
    elif (
        len(x.shape) == 4 and len(w.shape) == 4
    ):  # CONV_2D [o, kh, kw, i], DEPTHWISE [1, kh, kw, o]
        opts = op.options
        stride = (int(opts.get("stride_h", 1) or 1), int(opts.get("stride_w", 1) or 1))
        dilation = (
            int(opts.get("dilation_h_factor", 1) or 1),
            int(opts.get("dilation_w_factor", 1) or 1),
        )
        padding = int(opts.get("padding", 0))
        kh, kw = w.shape[1], w.shape[2]
        h = _conv_out(x.shape[1], kh, stride[0], dilation[0], padding)
        wd = _conv_out(x.shape[2], kw, stride[1], dilation[1], padding)
        channels = w.shape[0] if op.name == "CONV_2D" else w.shape[3]
        expected = x.shape[0] * max(h, 0) * max(wd, 0) * channels
    if expected is not None and expected != out.size:
        raise EdgekitError(
            f"{path}: refused: {label} declares output {shape_text(list(out.shape))} "
            f"({out.size:,} values), but input {shape_text(list(x.shape))} and weights "
            f"{shape_text(list(w.shape))} make {expected:,} (LiteRT would resize it when it runs)"
        )


# --- .onnx ----------------------------------------------------------------------------------


def check_onnx_graph(path: Path, g: OnnxGraph) -> None:
    """Refuse what onnxruntime refuses in ``g`` (read from ``path``)."""
    _check_opsets(path, g)
    _check_dataflow(path, g)
    for side, values in (("input", g.inputs), ("output", g.outputs)):
        for v in values:
            bad = [d for k, d in enumerate(v.shape) if isinstance(d, int) and d < 0 and
                   not (k == 0 and d == -1)]  # fmt: skip
            if bad:
                shape = [d if isinstance(d, int) else str(d) for d in v.shape]
                raise EdgekitError(
                    f"{path}: refused: graph {side} {v.name[:40]!r} has shape {shape}, with "
                    "a negative dimension (an unknown one has no value, or -1 for the batch)"
                )


@lru_cache(maxsize=1)
def _onnx_schemas() -> dict[tuple[str, str], list[tuple[int, bool]]]:
    """onnxruntime's operator schemas: (domain, op) -> [(since_version, deprecated)]."""
    state = require("onnxruntime.capi.onnxruntime_pybind11_state")
    found: dict[tuple[str, str], list[tuple[int, bool]]] = {}
    for s in state.get_all_operator_schema():
        domain = s.domain or "ai.onnx"
        found.setdefault((domain, s.name), []).append((int(s.since_version), bool(s.deprecated)))
    for versions in found.values():
        versions.sort()
    return found


def _check_opsets(path: Path, g: OnnxGraph) -> None:
    schemas = _onnx_schemas()
    newest: dict[str, int] = {}
    for (domain, _), versions in schemas.items():
        newest[domain] = max(newest.get(domain, 0), versions[-1][0])
    if "ai.onnx" not in g.opsets:
        raise EdgekitError(
            f"{path}: refused: it imports no default (ai.onnx) opset; onnxruntime requires one"
        )
    for domain, version in g.opsets.items():
        if domain in newest and not 1 <= version <= newest[domain]:
            raise EdgekitError(
                f"{path}: refused: it imports opset {version} of {domain}; onnxruntime knows "
                f"1 to {newest[domain]}"
            )
    for k, node in enumerate(g.nodes):
        domain = node.domain or "ai.onnx"
        label = f"node {k} ({node.name[:40]!r}, {node.op_type[:40]!r})"
        if domain not in g.opsets:
            raise EdgekitError(
                f"{path}: refused: {label} is of domain {domain!r}, which the model imports "
                "no opset of"
            )
        if domain not in newest:
            raise EdgekitError(
                f"{path}: refused: {label} is of domain {domain!r}, which onnxruntime does "
                "not know (a custom operator?)"
            )
        opset = g.opsets[domain]
        versions = [v for v in schemas.get((domain, node.op_type), []) if v[0] <= opset]
        if not versions:
            raise EdgekitError(
                f"{path}: refused: {label} is no operator of {domain} opset {opset} that "
                "onnxruntime knows"
            )
        if versions[-1][1]:
            raise EdgekitError(
                f"{path}: refused: {label} is deprecated in {domain} opset {opset}; "
                "onnxruntime refuses it"
            )


def _check_dataflow(path: Path, g: OnnxGraph) -> None:
    """Each name defined once, every input defined, and no cycle (onnxruntime sorts the
    nodes itself, so their order in the file may be any)."""
    defined: dict[str, str] = {v.name: "a graph input" for v in g.inputs}
    for name in g.initializers:
        defined.setdefault(name, "an initializer")
    producer: dict[str, int] = {}
    for k, node in enumerate(g.nodes):
        for out in node.outputs:
            if not out:
                continue
            if out in defined or out in producer:
                raise EdgekitError(
                    f"{path}: refused: node {k} ({node.name[:40]!r}) defines {out[:40]!r}, "
                    "which is defined already"
                )
            producer[out] = k
    for k, node in enumerate(g.nodes):
        for name in node.inputs:
            if name and name not in defined and name not in producer:
                raise EdgekitError(
                    f"{path}: refused: node {k} ({node.name[:40]!r}) reads {name[:40]!r}, "
                    "which no graph input, initializer or node defines"
                )
    for v in g.outputs:
        if v.name not in defined and v.name not in producer:
            raise EdgekitError(
                f"{path}: refused: graph output {v.name[:40]!r} is defined by no node"
            )
    # Kahn's algorithm over node -> node edges
    deps = [{producer[i] for i in node.inputs if i in producer} for node in g.nodes]
    users: dict[int, list[int]] = {}
    for k, d in enumerate(deps):
        for p in d:
            users.setdefault(p, []).append(k)
    waiting = [len(d) for d in deps]
    ready = [k for k, n in enumerate(waiting) if n == 0]
    done = 0
    while ready:
        k = ready.pop()
        done += 1
        for u in users.get(k, []):
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append(u)
    if done < len(g.nodes):
        k = next(k for k, n in enumerate(waiting) if n)
        node = g.nodes[k]
        raise EdgekitError(
            f"{path}: refused: its graph has a cycle (through node {k}, {node.name[:40]!r}); "
            "onnxruntime requires an acyclic graph"
        )
