"""Inspect a ``.keras`` model (needs the ``train`` extra: TensorFlow/Keras).

The model is untrusted input, so it is loaded in a child process (``python -m
edgekit.inspect.keras MODEL``), never in the process that asked: there Keras's safe mode runs
no code and :func:`edgekit.formats.keras_file.load_keras_model` bounds what loading may
allocate; a crash or an abort there is one line here. The file's declared sizes are checked
here first, so a hostile file is refused without starting anything.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgekit.formats.layers import LayerInfo


def _shape(tensor) -> list[int]:
    return [-1, *[int(d) if d is not None else -1 for d in tensor.shape[1:]]]


CHILD_TIMEOUT = 600.0


def inspect_keras(path: Path) -> dict[str, Any]:
    """What :func:`edgekit.inspect.inspect_artifact` reports of a ``.keras`` model, read in a
    child process."""
    from edgekit.formats.keras_file import check_keras_file, is_keras_file
    from edgekit.isolation import run_child

    is_keras_file(path)
    check_keras_file(path)  # declared sizes, here and cheaply, before a child starts
    parts = run_child(__name__, [str(path)], what=str(path), timeout=CHILD_TIMEOUT)
    parts["layers"] = [LayerInfo(**layer) for layer in parts["layers"]]
    return parts


def _inspect_here(path: Path) -> dict[str, Any]:
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


def _child(path: Path) -> dict[str, Any]:
    parts = _inspect_here(path)
    parts["layers"] = [asdict(layer) for layer in parts["layers"]]
    return parts


if __name__ == "__main__":
    from edgekit.isolation import child_main

    sys.exit(child_main(lambda: _child(Path(sys.argv[1]))))
