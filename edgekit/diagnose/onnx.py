"""Every intermediate tensor of an ``.onnx``: each node output added as a graph output.

As onnxruntime's ``qdq_loss_debug`` does, the graph gets every activation as an extra output
and runs with graph optimizations off, so no QDQ pair is fused away and each tensor is what
the QDQ model defines. One sample per run (batch 1): dynamic quantization picks its scales per
run, as on a device.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit._lazy import require
from edgekit.diagnose.graph import Capture, Tensor, stack
from edgekit.errors import EdgekitError


def _constant(initializers: dict, name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    proto = initializers.get(name)
    return None if proto is None else numpy_helper.to_array(proto)


def _qdq_params(node, initializers: dict) -> tuple[float | None, int | None]:
    """Scale and zero point of a ``QuantizeLinear`` output (None when per axis or not fixed)."""
    if node.op_type != "QuantizeLinear":
        return None, None
    scale = _constant(initializers, node.input[1])
    zero = _constant(initializers, node.input[2]) if len(node.input) > 2 else np.zeros(1)
    if scale is None or zero is None or scale.size != 1 or zero.size != 1:
        return None, None
    return float(scale.ravel()[0]), int(zero.ravel()[0])


def capture_onnx(path: str | Path, feed: np.ndarray) -> Capture:
    """Run ``path`` on each row of ``feed`` and keep every activation tensor."""
    onnx = require("onnx")
    ort = require("onnxruntime")
    from onnx import helper

    try:
        model = onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError and friends
        raise EdgekitError(f"{path}: cannot read the ONNX model ({err})") from err
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise EdgekitError(f"{path}: diagnose runs models with one input and one output")
    first, last = inputs[0], graph.output[0].name
    order: list[tuple[str, object | None, list[str]]] = [(first, None, [])]
    activations = {first}
    for node in graph.node:
        reads = [name for name in node.input if name in activations]
        if not reads:
            continue
        for name in node.output:
            if name:
                activations.add(name)
                order.append((name, node, reads))
    outputs = [name for name, _, _ in order[1:]]
    for name in outputs:
        if name != last:
            graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )
    rows: dict[str, list[np.ndarray]] = {name: [] for name in [first, *outputs]}
    for sample in feed:
        batch = np.ascontiguousarray(sample[None])
        rows[first].append(batch)
        for name, value in zip(outputs, session.run(outputs, {first: batch}), strict=True):
            rows[name].append(np.asarray(value))
    tensors = []
    for name, node, reads in order:
        scale, zero_point = _qdq_params(node, initializers) if node is not None else (None, None)
        tensors.append(
            Tensor(
                name=name,
                op=getattr(node, "op_type", ""),
                inputs=reads,
                values=stack(rows[name]),
                node=getattr(node, "name", ""),
                scale=scale,
                zero_point=zero_point,
                is_input=name == first,
                is_output=name == last,
            )
        )
    constants = {
        init.name: np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).name
        for init in graph.initializer
    }
    return Capture(tensors, constants)
