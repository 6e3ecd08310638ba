"""``edgekit inspect``: tensors, ops, parameters, MACs and quantization of real artifacts."""

from __future__ import annotations

import json

import pytest

from edgekit.errors import EdgekitError
from edgekit.inspect import inspect_artifact
from tests.bench.benchhelpers import CLASSES, FEATURES, HIDDEN, cli

# digits MLP: 64 -> 16 -> 10
PARAMS = FEATURES * HIDDEN + HIDDEN + HIDDEN * CLASSES + CLASSES
MACS = FEATURES * HIDDEN + HIDDEN * CLASSES


@pytest.mark.parametrize(
    ("name", "fmt", "quantization", "weights", "io"),
    [
        ("model.float32.tflite", "tflite", "none (float32)", "float32", "float32"),
        ("model.int8.tflite", "tflite", "full integer: int8 weights and int8 activations",
         "int8", "int8"),
        ("model.float32.onnx", "onnx", "none (float32)", "float32", "float32"),
    ],
)  # fmt: skip
def test_inspect_dense_model(export_dir, name, fmt, quantization, weights, io):
    info = inspect_artifact(export_dir / name)
    assert (info.file, info.format, info.quantization) == (name, fmt, quantization)
    assert info.bytes == (export_dir / name).stat().st_size and len(info.sha256) == 64
    assert (info.params, info.macs) == (PARAMS, MACS)
    assert [(layer.inputs, layer.units, layer.weights_dtype) for layer in info.layers] == [
        (FEATURES, HIDDEN, weights),
        (HIDDEN, CLASSES, weights),
    ]
    (inp,) = info.inputs
    (out,) = info.outputs
    assert (inp["shape"], inp["dtype"]) == ([-1, 8, 8], io)
    assert (out["shape"], out["dtype"]) == ([-1, CLASSES], io)
    if io == "int8":
        assert set(inp["quantization"]) == {"scale", "zero_point"}
        assert out["quantization"] == {"scale": 1 / 256, "zero_point": -128}  # softmax output
    else:
        assert inp["quantization"] is None


def test_tflite_ops_and_manifest_agree(export_dir):
    info = inspect_artifact(export_dir / "model.int8.tflite")
    assert info.op_counts["FULLY_CONNECTED"] == 2 and info.ops[-1] == "SOFTMAX"
    entry = next(
        a
        for a in json.loads((export_dir / "manifest.json").read_text())["artifacts"]
        if a["file"] == "model.int8.tflite"
    )
    assert info.inputs[0]["quantization"] == entry["inputs"][0]["quantization"]


def test_onnx_reader_matches_the_onnx_package(export_dir):
    onnx = pytest.importorskip("onnx")
    path = export_dir / "model.float32.onnx"
    model = onnx.load(str(path))
    info = inspect_artifact(path)
    assert info.ops == [n.op_type for n in model.graph.node]
    assert [i["name"] for i in info.inputs] == [i.name for i in model.graph.input]
    assert [o["name"] for o in info.outputs] == [o.name for o in model.graph.output]
    assert info.details["opsets"] == ", ".join(
        f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import
    )
    assert info.details["initializers"] == len(model.graph.initializer)


def test_quantized_onnx_variants(export_dir, tmp_path):
    """ORT's dynamic (MatMulInteger) and static (QDQ) graphs keep their dense layers."""
    pytest.importorskip("onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = export_dir / "model.float32.onnx"
    dyn = tmp_path / "model.dynamic.onnx"
    quantize_dynamic(str(src), str(dyn), weight_type=QuantType.QInt8)
    info = inspect_artifact(dyn)
    assert info.quantization == "dynamic: int8 weights, activations quantized at run time"
    assert (info.params, info.macs) == (PARAMS, MACS)
    assert {layer.op for layer in info.layers} == {"MatMulInteger"}


def test_keras_model(export_dir):
    info = inspect_artifact(export_dir.parent / "model.keras")
    assert (info.format, info.params, info.macs) == ("keras", PARAMS, MACS)
    assert info.op_counts["Dense"] == 2


def test_cli_text_and_json(export_dir):
    code, out, err = cli("inspect", str(export_dir / "model.int8.tflite"))
    assert code == 0, err
    assert f"parameters: {PARAMS:,} (dense layers), MACs per sample: {MACS:,}" in out
    assert "quantization: full integer: int8 weights and int8 activations" in out
    code, out, err = cli("inspect", str(export_dir / "model.float32.onnx"), "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert (obj["params"], obj["macs"], obj["format"]) == (PARAMS, MACS, "onnx")
    assert obj["op_counts"]["MatMul"] == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.tflite", b"\x89PNG\r\n\x1a\n" + bytes(64), "not a TensorFlow Lite flatbuffer"),
        ("x.tflite", "truncate", "cannot read the TFLite model (The model is not a valid "
                                 "Flatbuffer buffer)"),
        ("x.onnx", b"\xff\xff\xff\xff" * 8, "not a valid ONNX model"),
        ("x.onnx", "truncate", "not a valid ONNX model"),
        ("x.onnx", b"hello world", "not a valid ONNX model"),
    ],
)  # fmt: skip
def test_corrupt_files_exit_2(export_dir, tmp_path, name, content, message):
    src = export_dir / ("model.float32.tflite" if name.endswith("tflite") else "model.float32.onnx")
    data = src.read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2] if content == "truncate" else content)
    code, out, err = cli("inspect", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"edgekit: error: {path}: {message}")
    assert err.count("\n") == 1


def test_unknown_and_missing_files(tmp_path):
    with pytest.raises(EdgekitError, match=r"no such file$"):
        inspect_artifact(tmp_path / "nope.onnx")
    (tmp_path / "m.pb").write_bytes(b"x")
    with pytest.raises(EdgekitError) as err:
        inspect_artifact(tmp_path / "m.pb")
    assert str(err.value) == (
        f"{tmp_path / 'm.pb'}: unknown artifact type '.pb'; edgekit inspects .tflite, .onnx "
        "and .keras files"
    )
