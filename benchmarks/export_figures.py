"""Export figures on the MNIST recipe model: sizes, accuracy drops, parity, export time.

Exports every variant of a trained MNIST run (`--run`, default: trains
models/mnist_mlp.toml first) and measures, in one run:
- int8 .tflite size vs float32 (target <= 30%) and its accuracy drop (target <= 0.5 pp);
- float32 .tflite and .onnx max |diff| vs Keras on the 10,000 test images (target <= 1e-5);
- `edgekit export --quantize all --onnx --onnx-quantize dynamic,static` wall time vs the same
  conversions called directly in one plain script (target <= 1.3x), alternating, repeated.

    python benchmarks/export_figures.py [--run DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import mnist_run, spread, table, write_result

REPO = Path(__file__).resolve().parents[1]


def raw_conversions(model_path: Path, calibration, out: Path) -> float:
    """The same eight conversions with the converters called directly, no validation."""
    import keras
    import numpy as np
    import tensorflow as tf
    import tf2onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    start = time.perf_counter()
    model = keras.models.load_model(model_path, compile=False)
    calib = calibration[:200].astype(np.float32)

    def rep():
        for i in range(len(calib)):
            yield [calib[i : i + 1]]

    for variant in ("float32", "float16", "dynamic", "int8", "int16x8"):
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if variant != "float32":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "float16":
            conv.target_spec.supported_types = [tf.float16]
        if variant in ("int8", "int16x8"):
            conv.representative_dataset = rep
        if variant == "int8":
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = conv.inference_output_type = tf.int8
        if variant == "int16x8":
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
        (out / f"m.{variant}.tflite").write_bytes(conv.convert())
    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name="features")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(fn)
    tf2onnx.convert.from_function(
        tf.function(frozen), input_signature=[spec], opset=17, output_path=str(out / "m.onnx")
    )
    quantize_dynamic(str(out / "m.onnx"), str(out / "m.dyn.onnx"), weight_type=QuantType.QInt8)

    class Reader:
        def __init__(self):
            self.it = iter([{"features": calib[i : i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    quantize_static(
        str(out / "m.onnx"),
        str(out / "m.static.onnx"),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    return time.perf_counter() - start


def edgekit_export(run: Path, out: Path):
    import edgekit

    start = time.perf_counter()
    result = edgekit.export(
        run, quantize=["all"], onnx=True, onnx_quantize=["dynamic", "static"], out=out, force=True
    )
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained MNIST run directory")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import logging

    import numpy as np

    from edgekit._lazy import silenced

    logging.disable(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="edgekit-export-bench-"))
    os.chdir(work)
    run = mnist_run(args.run, work)
    calibration = np.load(run / "data" / "calibration.npz")["x"]
    raw_times, ours_times, result = [], [], None
    for i in range(args.repeats):
        for which in ("raw", "edgekit") if i % 2 == 0 else ("edgekit", "raw"):
            target = work / f"{which}{i}"
            if which == "raw":
                target.mkdir()
                with silenced():
                    raw_times.append(raw_conversions(run / "model.keras", calibration, target))
            else:
                seconds, result = edgekit_export(run, target)
                ours_times.append(seconds)
            shutil.rmtree(target, ignore_errors=True) if which == "raw" else None
            print(
                f"  repeat {i + 1} {which}: "
                f"{(raw_times if which == 'raw' else ours_times)[-1]:.2f} s",
                flush=True,
            )
    arts = {a["variant"]: a for a in result.artifacts}
    f32 = arts["float32"]["bytes"]
    print(result.table())
    raw_s, ours_s = spread(raw_times), spread(ours_times)
    ratio = ours_s["median"] / raw_s["median"]
    int8 = arts["int8"]
    figures = {
        "int8_size_ratio": int8["bytes"] / f32,
        "int8_accuracy_drop_pp": int8["validation"]["accuracy_drop"],
        "float32_tflite_max_abs_diff": arts["float32"]["validation"]["max_abs_diff"],
        "float32_onnx_max_abs_diff": arts["onnx-float32"]["validation"]["max_abs_diff"],
        "test_samples": result.manifest["validation"]["samples"],
        "export_seconds": ours_s,
        "raw_conversion_seconds": raw_s,
        "export_time_ratio": ratio,
        "artifacts": [
            {k: a[k] for k in ("variant", "file", "bytes")} | {"validation": a["validation"]}
            for a in result.artifacts
        ],
    }
    rows = [
        ["int8 size / float32 size", f"{100 * figures['int8_size_ratio']:.1f}%", "<= 30%"],
        ["int8 accuracy drop", f"{figures['int8_accuracy_drop_pp']:+.2f} pp", "<= 0.5 pp"],
        ["float32 .tflite max |diff|", f"{figures['float32_tflite_max_abs_diff']:.2e}", "<= 1e-5"],
        ["float32 .onnx max |diff|", f"{figures['float32_onnx_max_abs_diff']:.2e}", "<= 1e-5"],
        [
            "export wall / raw conversions",
            f"{ours_s['median']:.1f} s / {raw_s['median']:.1f} s = {ratio:.2f}x",
            "<= 1.3x",
        ],
    ]
    print(table(["figure", f"measured ({figures['test_samples']} test images)", "target"], rows))
    write_result("export_figures", figures)


if __name__ == "__main__":
    main()
