"""Inspect a ``.keras`` model (needs the ``train`` extra: TensorFlow/Keras)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.formats.layers import LayerInfo


def _shape(tensor) -> list[int]:
    return [-1, *[int(d) if d is not None else -1 for d in tensor.shape[1:]]]


def inspect_keras(path: Path) -> dict[str, Any]:
    from edgekit.formats.keras_file import load_keras_model

    model = load_keras_model(path)  # safe mode: no Lambda code runs
    layers = []
    for layer in model.layers:
        if type(layer).__name__ != "Dense":
            continue
        kernel = layer.kernel
        n_in, units = int(kernel.shape[0]), int(kernel.shape[1])
        layers.append(
            LayerInfo(
                op="Dense",
                name=layer.name,
                inputs=n_in,
                units=units,
                params=int(layer.count_params()),
                macs=n_in * units,
                weights_dtype=str(kernel.dtype),
            )
        )

    def tensor(t) -> dict[str, Any]:
        return {"name": t.name, "shape": _shape(t), "dtype": str(t.dtype), "quantization": None}

    return {
        "format": "keras",
        "inputs": [tensor(t) for t in model.inputs],
        "outputs": [tensor(t) for t in model.outputs],
        "ops": [type(layer).__name__ for layer in model.layers],
        "layers": layers,
        "quantization": "none (float32)",
        "details": {"model": model.name, "all_params": int(model.count_params())},
    }
