"""TFLite conversions that only ``--quantize auto`` tries, beyond :func:`to_tflite`'s variants.

- :func:`to_int16_tflite`: int16 activations and int8 weights with int16 inputs and outputs,
  so the whole graph is integer (the ``int16x8`` variant has float inputs instead);
- :func:`layer_errors` and :func:`to_tflite_with_float_layers`: TFLite's
  ``QuantizationDebugger`` measures each op's quantization error, and the model is converted
  with the worst ops left in float (its ``denylisted_nodes``), int8 everywhere else.

Every function takes a SavedModel directory (:func:`~edgekit.exporters.tflite.saved_model_for`)
and calibration inputs exactly as that model takes them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from edgekit._lazy import require
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_bytes

T = TypeVar("T")
WEIGHTED_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")  # what may be left in float


def to_int16_tflite(saved_model: Path, path: Path, *, calibration: np.ndarray) -> Path:
    """int16 activations, int8 weights, int16 input and output tensors."""
    tf = require("tensorflow")
    converter = _converter(saved_model, calibration)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
    ]
    converter.inference_input_type = tf.int16
    converter.inference_output_type = tf.int16
    return atomic_write_bytes(path, _convert("int16x8", converter.convert))


def layer_errors(saved_model: Path, calibration: np.ndarray) -> list[tuple[str, float]]:
    """``(node, error)`` for each quantized layer (``WEIGHTED_OPS``), worst first; ``node`` is
    the op's output tensor name and ``error`` its RMSE in units of its quantization scale (over
    0.7 is suspect, the TFLite debugger's guide says), each op fed the same dequantized input."""
    tf = require("tensorflow")
    converter = _int8_converter(saved_model, calibration)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=_samples(calibration)
    )
    _convert("int8 debug", debugger.run)
    text = io.StringIO()
    debugger.layer_statistics_dump(text)
    text.seek(0)
    errors = [
        (row["tensor_name"], float(np.sqrt(float(row["mean_squared_error"])) / float(row["scale"])))
        for row in csv.DictReader(text)
        if row["op_name"] in WEIGHTED_OPS and float(row["scale"]) > 0
    ]
    return sorted(errors, key=lambda item: -item[1])


def to_tflite_with_float_layers(
    saved_model: Path, path: Path, *, calibration: np.ndarray, nodes: list[str]
) -> Path:
    """int8 with int8 inputs and outputs, except the ops writing ``nodes``, left in float
    (with DEQUANTIZE ahead and QUANTIZE after)."""
    tf = require("tensorflow")
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=list(nodes), fully_quantize=True
    )
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=_int8_converter(saved_model, calibration),
        debug_dataset=_samples(calibration),
        debug_options=options,
    )
    return atomic_write_bytes(path, _convert("int8 with float layers",
                                             debugger.get_nondebug_quantized_model))  # fmt: skip


def _converter(saved_model: Path, calibration: np.ndarray):
    tf = require("tensorflow")
    if len(calibration) == 0:
        raise EdgekitError("quantization needs calibration data")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _samples(calibration)
    return converter


def _int8_converter(saved_model: Path, calibration: np.ndarray):
    tf = require("tensorflow")
    converter = _converter(saved_model, calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter


def _samples(calibration: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    samples = np.asarray(calibration, np.float32)

    def representative() -> Iterator[list[np.ndarray]]:
        for i in range(len(samples)):
            yield [samples[i : i + 1]]

    return representative


def _convert(what: str, convert: Callable[[], T]) -> T:
    """Run a conversion step; a failure becomes one line naming the conversion."""
    try:
        return convert()
    except Exception as err:  # ConverterError and friends carry the MLIR diagnostics
        lines = [ln.strip() for ln in str(err).splitlines() if "error" in ln.lower()]
        reason = lines[0] if lines else (str(err).splitlines() or [type(err).__name__])[0]
        raise EdgekitError(f"TFLite conversion ({what}) failed: {reason}") from err
