"""``edgekit estimate``: MACs, parameters, flash, RAM and latency of a model on a target.

Everything is computed from the model file and the target catalog; nothing runs.

* **MACs and parameters**, per layer and in total: a FULLY_CONNECTED layer of ``units``
  outputs from ``n_in`` features costs ``units * n_in`` multiply-accumulates per sample and
  holds ``units * n_in + units`` parameters (weights and bias). CONV_2D and
  DEPTHWISE_CONV_2D are counted per output element. Elementwise ops with constant operands
  (the normalization's SUB/MUL) count their constants as parameters and cost no MACs.
* **Flash**: the model file's bytes (TFLite Micro reads the flatbuffer in place). The
  inference runtime's own code is not included.
* **RAM**: the tensor arena. Every non-constant tensor lives from the op that writes it to
  the last op that reads it, in execution order; temporaries an op needs (the hybrid int8
  kernels' quantized-input, accumulator and row-sum buffers) live for that op only. The
  arena is planned like TFLite Micro's greedy planner with 16-byte alignment
  (:mod:`edgekit.formats.arena`); ``peak_activation_bytes`` is the largest sum of
  simultaneously live tensors. Runtime bookkeeping and the stack are not included.
* **Latency**: ``MACs x cycles_per_mac`` (int8 or float figure, by what each layer
  computes in) ``+ ops x op_overhead_cycles``, divided by the clock.

For ``.onnx`` files the layers come from :mod:`edgekit.formats.onnx_layers`, and the arena is
approximated from the dense layers' widths (input and output of the widest layer).

The estimators are :mod:`edgekit.estimate.tflite` and :mod:`edgekit.estimate.onnx`, one per
file type; :mod:`edgekit.estimate.result` holds what they return. A model its runtime would
refuse (a custom or unknown operator, an operator version or opset the runtime lacks, negative
or inconsistent shapes, a cyclic graph) is refused first, in one line
(:mod:`edgekit.estimate.validate`): an estimate of it would not be true. Every number of the
target catalog is finite and within :data:`edgekit.estimate.catalog.LIMITS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.estimate.catalog import Target, get_target, load_catalog
from edgekit.estimate.onnx import estimate_onnx
from edgekit.estimate.result import Estimate
from edgekit.estimate.tflite import estimate_tflite

ESTIMATORS: dict[str, Callable[[Path, Target, str | None], Estimate]] = {
    ".tflite": estimate_tflite,
    ".onnx": estimate_onnx,
}


def estimate(
    path: str | os.PathLike,
    *,
    target: str | Target,
    catalog: list[str | Path] | None = None,
    runtime: str | None = None,
) -> Estimate:
    """Estimate ``path`` (``.tflite`` or ``.onnx``) on ``target`` (a catalog name).

    ``catalog`` adds target files to the built-in and user catalogs. ``runtime`` picks which
    of the target's runtimes the totals are for (``tflm``: TensorFlow Lite Micro with
    CMSIS-NN, ``c``: edgekit's generated C; default: the first the catalog lists); the others
    are estimated too (``Estimate.runtimes``). Example:
    ``estimate("model.int8.tflite", target="cortex-m4").latency_ms``.
    """
    path = Path(path)
    if isinstance(target, str):
        target = get_target(target, catalog=load_catalog(catalog))
    if not path.exists():
        raise EdgekitError(f"{path}: no such file")
    if path.is_dir():
        raise EdgekitError(f"{path}: is a directory; estimate takes one .tflite or .onnx file")
    suffix = path.suffix.lower()
    estimator = ESTIMATORS.get(suffix)
    if estimator is None:
        raise EdgekitError(
            f"{path}: unknown model type {suffix or '(no suffix)'!r}; "
            "edgekit estimates .tflite and .onnx files"
        )
    return estimator(path, target, runtime)
