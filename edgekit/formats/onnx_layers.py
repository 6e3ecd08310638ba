"""Dense layers, parameters, MACs and the quantization scheme of an ONNX graph."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgekit.formats.layers import LayerInfo
from edgekit.formats.onnx_wire import OnnxGraph, OnnxNode, OnnxTensor, OnnxValue, read_onnx

DENSE_OPS = ("MatMul", "Gemm", "MatMulInteger", "QLinearMatMul")
# Ops a weight or a bias passes through on its way to (or from) a matrix multiply.
_PASS = ("DequantizeLinear", "QuantizeLinear", "Cast", "Identity", "Mul")


def _value(v: OnnxValue) -> dict[str, Any]:
    shape = [d if isinstance(d, int) and d >= 0 else -1 for d in v.shape]
    if shape:
        shape[0] = -1
    return {"name": v.name, "shape": shape, "dtype": v.dtype, "quantization": None}


class _Graph:
    def __init__(self, g: OnnxGraph) -> None:
        self.g = g
        self.producer = {o: n for n in g.nodes for o in n.outputs}
        self.consumers: dict[str, list[OnnxNode]] = {}
        for n in g.nodes:
            for i in n.inputs:
                self.consumers.setdefault(i, []).append(n)

    def constant(self, name: str, depth: int = 3) -> OnnxTensor | None:
        """The initializer behind ``name``, through DequantizeLinear/Cast/Identity."""
        if name in self.g.initializers:
            return self.g.initializers[name]
        node = self.producer.get(name)
        if node is None or depth == 0:
            return None
        if node.op_type == "Constant":
            return next(iter(node.tensors.values()), None)
        if node.op_type in ("DequantizeLinear", "Cast", "Identity") and node.inputs:
            return self.constant(node.inputs[0], depth - 1)
        if node.op_type == "Transpose" and node.inputs:
            t = self.constant(node.inputs[0], depth - 1)
            return OnnxTensor(t.name, t.dims[::-1], t.dtype) if t else None
        return None

    def bias(self, output: str, units: int, depth: int = 4) -> int:
        """Size of a bias added to ``output`` (through casts and rescaling)."""
        for node in self.consumers.get(output, []):
            if node.op_type == "Add":
                for other in node.inputs:
                    if other == output:
                        continue
                    t = self.constant(other)
                    if t is not None and math.prod(t.dims) == units:
                        return units
            elif node.op_type in _PASS and depth > 0 and node.outputs:
                found = self.bias(node.outputs[0], units, depth - 1)
                if found:
                    return found
        return 0


def _layer(graph: _Graph, node: OnnxNode) -> LayerInfo | None:
    index = 3 if node.op_type == "QLinearMatMul" else 1
    if len(node.inputs) <= index:
        return None
    w = graph.constant(node.inputs[index])
    if w is None or len(w.dims) < 2:
        return None  # a product of two activations, not a layer
    n_in, units = w.dims[-2], w.dims[-1]
    if node.op_type == "Gemm" and node.ints.get("transB", 0):
        n_in, units = units, n_in
    if node.op_type == "Gemm" and len(node.inputs) > 2 and node.inputs[2]:
        c = graph.constant(node.inputs[2])
        bias = math.prod(c.dims) if c is not None else 0
    else:
        bias = graph.bias(node.outputs[0], units) if node.outputs else 0
    return LayerInfo(
        op=node.op_type,
        name=node.name or w.name,
        inputs=n_in,
        units=units,
        params=n_in * units + bias,
        macs=n_in * units,
        weights_dtype=w.dtype,
    )


def _scheme(graph: OnnxGraph, layers: list[LayerInfo]) -> str:
    ops = {n.op_type for n in graph.nodes}
    if ops & {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}:
        return "dynamic: int8 weights, activations quantized at run time"
    if "QLinearMatMul" in ops:
        return "static (QOperator): int8 weights and activations"
    if ops & {"QuantizeLinear", "DequantizeLinear"}:
        return "static (QDQ): int8 weights and activations"
    weights = {layer.weights_dtype for layer in layers}
    if weights == {"float16"}:
        return "float16"
    return "none (float32)" if weights <= {"float32"} else f"weights {'/'.join(sorted(weights))}"


def inspect_onnx(path: Path, g: OnnxGraph | None = None) -> dict[str, Any]:
    """The layers, quantization and details of the ONNX model at ``path`` (``g``: its graph,
    if read already)."""
    g = read_onnx(path) if g is None else g
    graph = _Graph(g)
    layers = [
        layer for n in g.nodes if n.op_type in DENSE_OPS if (layer := _layer(graph, n)) is not None
    ]
    return {
        "format": "onnx",
        "inputs": [_value(v) for v in g.inputs],
        "outputs": [_value(v) for v in g.outputs],
        "ops": [n.op_type for n in g.nodes],
        "layers": layers,
        "quantization": _scheme(g, layers),
        "details": {
            "opsets": ", ".join(f"{d} {v}" for d, v in g.opsets.items()),
            "producer": g.producer or "unknown",
            "ir_version": g.ir_version,
            "initializers": len(g.initializers),
        },
    }
