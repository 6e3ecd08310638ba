"""Hostile files for the memory tests (issue 13): tiny on disk, huge once a runtime runs them.

* :func:`onnx_allocating`: an ONNX model whose ``ConstantOfShape`` / ``Expand`` / ``Tile``
  builds a tensor of ``n`` floats at run time from a shape constant (a few hundred bytes).
* :func:`tflite_filling`: a ``.tflite`` whose ``FILL`` builds ``n x batch`` floats at run
  time (its declared tensor shapes are all small).
* :func:`tflite_wide`: a ``.tflite`` whose activations are 4 MB per sample (fine at batch 1).
* :func:`compressed_npz`: an ``.npz`` under 1 MB whose zeros unpack to tens of MB (within the
  32:1 the zip check allows), i.e. millions of samples.
* :func:`peak_mb`: a CLI command's exit code, peak memory (its own and its children's) and
  stderr, run in a fresh process.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from tests.conftest import REPO

MB = 1 << 20
LIMIT_MB = 500  # what a hostile file under 1 MB may add to a command's peak memory


def save_tiny_keras(path: Path) -> Path:
    """A 4 -> 6 -> 3 functional model (layers ``hidden``, ``out``), saved unfitted."""
    import keras

    inputs = keras.Input((4,), name="features")
    hidden = keras.layers.Dense(6, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(hidden)
    model = keras.Model(inputs, outputs)
    for layer in model.layers[1:]:
        kernel, bias = layer.get_weights()
        layer.set_weights([np.full_like(kernel, 0.1), np.zeros_like(bias)])
    model.save(path)
    return path


def onnx_allocating(path: Path, n: int, op: str = "ConstantOfShape") -> Path:
    """``out = features[:, :3] + mean(op(n))``: one input [batch, 8], one output [batch, 3]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3])
    inits = [
        numpy_helper.from_array(np.array([n], np.int64), "shape"),
        numpy_helper.from_array(np.array([0, 0], np.int64), "starts"),
        numpy_helper.from_array(np.array([1 << 30, 3], np.int64), "ends"),
        numpy_helper.from_array(np.array([1.0], np.float32), "one"),
    ]
    if op == "ConstantOfShape":
        value = numpy_helper.from_array(np.array([1.0], np.float32))
        big = helper.make_node("ConstantOfShape", ["shape"], ["big"], value=value)
    else:  # Expand, Tile: the one-element "one" to n elements
        big = helper.make_node(op, ["one", "shape"], ["big"])
    nodes = [
        big,
        helper.make_node("ReduceMean", ["big"], ["m"], keepdims=0),
        helper.make_node("Slice", ["features", "starts", "ends"], ["s"]),
        helper.make_node("Add", ["s", "m"], ["out"]),
    ]
    graph = helper.make_graph(nodes, "hostile", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _convert(fn, path: Path) -> Path:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    path.write_bytes(converter.convert())
    return path


def tflite_filling(path: Path, n: int) -> Path:
    """``features[:, :3] + mean(fill([batch * n], 1.0))``: a dynamic tensor, sized at run time."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="features")])
    def fn(x):
        big = tf.fill(tf.reshape(tf.shape(x)[0] * n, [1]), 1.0)
        return x[:, :3] + tf.reduce_mean(big)

    return _convert(fn, path)


def tflite_wide(path: Path) -> Path:
    """[batch, 8] -> [batch, 1000] -> tiled to [batch, 10^6] (4 MB a sample) -> [batch, 3]."""
    import tensorflow as tf

    w = np.full((8, 1000), 0.01, np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="features")])
    def fn(x):
        h = tf.reshape(tf.tile(tf.matmul(x, tf.constant(w)), [1, 1000]), [-1, 1000, 1000])
        return tf.reduce_mean(h, axis=2)[:, :3]

    return _convert(fn, path)


def compressed_npz(path: Path, samples: int, features: int = 8) -> Path:
    """``x`` (zeros, float32) and ``y`` (zeros, int64), deflated, plus 900 KB of noise so the
    file is just under 1 MB and may unpack to 32x that."""
    from numpy.lib import format as npy

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, shape, dtype in (("x.npy", (samples, features), np.float32),
                                   ("y.npy", (samples,), np.int64)):  # fmt: skip
            with zf.open(name, "w", force_zip64=True) as fh:
                header = {"descr": npy.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                          "shape": shape}  # fmt: skip
                npy.write_array_header_1_0(fh, header)
                left = int(np.prod(shape)) * np.dtype(dtype).itemsize
                chunk = bytes(MB)
                while left > 0:
                    fh.write(chunk[: min(left, MB)])
                    left -= MB
        noise = io.BytesIO()
        np.save(noise, np.random.default_rng(0).integers(0, 255, 900_000, dtype=np.uint8))
        zf.writestr(zipfile.ZipInfo("noise.npy"), noise.getvalue())
    assert path.stat().st_size < MB
    return path


PEAK = """
import json, resource, sys
from edgekit.cli import main
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
own = next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # workers, inspect's child
print(json.dumps({"code": code, "peak_mb": max(own, kids) / 1024}))
"""


def peak_mb(*argv: str, cwd: Path) -> tuple[int, float, str]:
    """(exit code, peak resident memory in MB of the command and its children, stderr)."""
    proc = subprocess.run([sys.executable, "-c", PEAK, *argv], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env={"PYTHONPATH": str(REPO),
                                                     "PATH": "/usr/bin:/bin",
                                                     "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])
    return result["code"], result["peak_mb"], proc.stderr
