"""The ONNX estimator: the dense layers' MACs and parameters, and an approximate arena.

The layers come from :mod:`edgekit.formats.onnx_layers`. The arena is approximated from the
dense layers' widths: each layer's input lives while that layer and the one before it run,
and the last layer's output at the end (1 byte per value with static int8 activations,
else 4).
"""

from __future__ import annotations

import math
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.estimate.catalog import Target
from edgekit.estimate.result import Estimate, LayerEstimate, overall_compute
from edgekit.estimate.validate import check_onnx_graph
from edgekit.formats.arena import Buffer, greedy_plan, peak_live
from edgekit.formats.layers import LayerInfo
from edgekit.formats.onnx_layers import inspect_onnx
from edgekit.formats.onnx_wire import read_onnx
from edgekit.formats.sizes import artifact_bytes


def estimate_onnx(path: Path, target: Target, runtime: str | None = None) -> Estimate:
    """Estimate an ``.onnx`` file on ``target``.

    The target's runtime cost models price TFLite ops, not ONNX ones: latency here is the
    catalog's ``MACs x cycles_per_mac + ops x op_overhead_cycles`` and the arena the
    activations alone. ``runtime`` must still name one of the target's runtimes, if given.
    """
    target.runtime(runtime)
    try:
        g = read_onnx(path)
        check_onnx_graph(path, g)  # what onnxruntime would refuse (unknown ops, cycles, dims)
        parts = inspect_onnx(path, g)
    except EdgekitError:
        raise
    except Exception as err:  # the protobuf decoder fails anywhere on a corrupt file
        raise EdgekitError(f"{path}: cannot read the ONNX model ({err})") from err
    scheme: str = parts["quantization"]
    dense: list[LayerInfo] = parts["layers"]
    item = 1 if scheme.startswith("static") else 4  # bytes per activation value
    layers = []
    buffers = []
    for i, info in enumerate(dense):
        if info.inputs <= 0 or info.units <= 0:
            raise EdgekitError(
                f"{path}: cannot estimate: layer {info.name!r} has {info.inputs} inputs and "
                f"{info.units} units"
            )
        compute = "int8" if info.weights_dtype in ("int8", "uint8") else "float32"
        buffers.append(Buffer(("in", i), info.inputs * item, max(i - 1, 0), i))
        layers.append(
            LayerEstimate(
                index=i,
                op=info.op,
                name=info.name,
                output_shape=[1, info.units],
                compute=compute,
                macs=info.macs,
                params=info.params,
                cycles=info.macs * target.cycles_per_mac(compute),
            )
        )
    if layers:
        last = len(layers) - 1
        buffers.append(Buffer("out", dense[-1].units * item, last, last))
    else:  # no dense layer: the graph's inputs and outputs, at least
        for k, value in enumerate([*parts["inputs"], *parts["outputs"]]):
            if any(int(d) < 0 for d in value["shape"][1:]):
                raise EdgekitError(
                    f"{path}: cannot estimate: it has no dense layer and its "
                    f"{'input' if k < len(parts['inputs']) else 'output'} "
                    f"{value['name'][:40]!r} has unknown dimensions beyond the batch "
                    f"({value['shape']}), so its size is unknown"
                )
            n = math.prod(int(d) for d in value["shape"][1:])
            buffers.append(Buffer(("io", k), n * 4, 0, 0))
    return Estimate(
        artifact=path.name,
        format="onnx",
        target=target,
        compute=overall_compute({la.compute for la in layers}),
        layers=layers,
        flash_bytes=artifact_bytes(path),  # with its external data files
        arena_bytes=greedy_plan(buffers),
        activation_bytes=greedy_plan(buffers),
        peak_activation_bytes=peak_live(buffers),
        scratch_bytes=0,
        ops=len(parts["ops"]),
        notes=[
            f"ONNX quantization: {scheme}",
            "no runtime cost model for ONNX: latency from cycles per MAC, RAM the activations only",
        ]
        if target.runtimes
        else [f"ONNX quantization: {scheme}"],
        ram_method="approximated from the dense layers' input and output widths (ONNX)",
    )
