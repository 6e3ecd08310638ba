"""TensorFlow Lite export: float32, float16, dynamic-range, full-integer int8 and 16x8.

Builtin ops only: the converter is never allowed Flex (SELECT_TF_OPS) ops, so a model that
would need them is refused with the converter's reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit._lazy import require
from edgekit.errors import EdgekitError
from edgekit.exporters.preprocess import InputAffines
from edgekit.fileio import atomic_write_bytes

TFLITE_VARIANTS = ("float32", "float16", "dynamic", "int8", "int16x8")
CALIBRATED = ("int8", "int16x8")
IO_TYPES = ("int8", "uint8", "float")


def saved_model_for(model, directory: str | Path, *, batch: int | None = None) -> Path:
    """Write ``model``'s inference function (``training=False``) as a SavedModel.

    This is what ``TFLiteConverter.from_keras_model`` does internally for Keras 3 models, on
    every call; converting several variants from one SavedModel does that work once.
    ``batch``: trace with that fixed batch size (``--mcu``: 1), so the converter folds the
    batch-size arithmetic (SHAPE, STRIDED_SLICE, PACK) into constants. A model with several
    inputs or outputs returns its outputs by their Keras names, which the ``.tflite``
    signature keeps (as ONNX keeps them).
    """
    import functools

    tf = require("tensorflow")
    keras = require("keras")
    archive = keras.export.ExportArchive()
    archive.track(model)
    signature = [
        tf.TensorSpec(
            t.shape if batch is None else (batch, *t.shape[1:]), dtype=t.dtype, name=t.name
        )
        for t in model.inputs
    ]

    from edgekit.exporters.multi import is_multi, output_names

    names = output_names(model)

    def several(*inputs):  # outputs keyed by the Keras output names: the signature's keys
        outputs = model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
        outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
        return dict(zip(names, outputs, strict=True))

    serve = several if is_multi(model) else functools.partial(model.__call__, training=False)
    archive.add_endpoint("serve", serve, signature)
    archive.write_out(str(directory), verbose=False)
    return Path(directory)


def to_tflite(
    model,
    path: str | Path,
    *,
    variant: str = "float32",
    calibration: np.ndarray | list[np.ndarray] | None = None,
    io_type: str = "int8",
    affine: InputAffines | None = None,
    input_names: list[str] | None = None,
) -> Path:
    """Convert a Keras model (or a SavedModel directory from :func:`saved_model_for`) to
    a ``.tflite`` file.

    ``calibration`` (raw training inputs) is required for ``int8`` and ``int16x8``;
    ``io_type`` sets the input/output type of the ``int8`` variant (``int8``, ``uint8`` or
    ``float``). Example: ``to_tflite(model, "m.int8.tflite", variant="int8", calibration=x)``.

    ``affine`` is the normalization taken out of each of ``model``'s inputs (a core model,
    see :mod:`edgekit.exporters.preprocess`): calibration inputs are normalized with it, and
    float inputs get it prepended in float (:mod:`edgekit.exporters.tflite_input`); integer
    inputs keep the core's quantization, which the manifest folds per feature.
    """
    tf = require("tensorflow")
    if variant not in TFLITE_VARIANTS:
        raise EdgekitError(f"unknown variant {variant!r}; choose from {', '.join(TFLITE_VARIANTS)}")
    if io_type not in IO_TYPES:
        raise EdgekitError(f"unknown --io-type {io_type!r}; choose from float, int8, uint8")
    if isinstance(model, (str, Path)):
        converter = tf.lite.TFLiteConverter.from_saved_model(str(model))
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant in CALIBRATED:
        if calibration is None or len(calibration) == 0:
            raise EdgekitError(f"the {variant} variant needs calibration data")
        if isinstance(calibration, list):  # several inputs: by name, as the signature has them
            names = input_names or [f"input_{i}" for i in range(len(calibration))]
            parts = [np.asarray(c) for c in calibration]
            if affine is not None:
                parts = affine.apply(parts)

            def representative():
                for i in range(len(parts[0])):
                    yield {n: p[i : i + 1] for n, p in zip(names, parts, strict=True)}

        else:
            samples = np.asarray(calibration)
            if samples.dtype.kind == "f" or affine is not None:
                samples = samples.astype(np.float32)
            if affine is not None:
                samples = affine.apply(samples)

            def representative():
                for i in range(len(samples)):
                    yield [samples[i : i + 1]]

        converter.representative_dataset = representative
    prepend = affine is not None and variant in CALIBRATED
    if variant == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}[io_type]
        prepend = prepend and io_type == "float"
        converter.inference_input_type = tf.int8 if prepend else io
        converter.inference_output_type = io
    elif variant == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        if prepend:
            converter.inference_input_type = tf.int16
            converter.inference_output_type = tf.float32
    try:
        flatbuffer = converter.convert()
    except Exception as err:  # ConverterError and friends carry the MLIR diagnostics
        lines = [ln.strip() for ln in str(err).splitlines() if "error" in ln.lower()]
        reason = lines[0] if lines else (str(err).splitlines() or [type(err).__name__])[0]
        raise EdgekitError(
            f"TFLite conversion ({variant}) failed: {reason}; edgekit exports builtin ops only"
        ) from err
    if prepend and affine is not None:
        from edgekit.exporters.tflite_input import prepend_float_input

        flatbuffer = prepend_float_input(flatbuffer, affine, names=input_names)
    return atomic_write_bytes(path, flatbuffer)


def tflite_ops(path: str | Path) -> list[str]:
    """Builtin op names used by a ``.tflite`` file, in execution order (no delegates)."""
    interpreter_mod = require("ai_edge_litert.interpreter")
    interpreter = interpreter_mod.Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=interpreter_mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    return [op["op_name"] for op in interpreter._get_ops_details()]
