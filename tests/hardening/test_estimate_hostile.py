"""Numbers that must be true and errors that must be one line: bench's artifact sizes,
``edgekit estimate`` on models LiteRT or onnxruntime would refuse, target catalogs with
absurd numbers, and a matrix of other hostile estimate inputs.

Every refusal is one line on stderr with exit code 2 (``cli`` runs the CLI in-process).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from tests.conftest import cli


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


def onnx_matmul(path: Path, *, n_in: int = 16, units: int = 512, external: bool = True,
                edit=None) -> Path:  # fmt: skip
    """``x @ w + b``, ``n_in -> units``, its weights in ``w.bin`` beside it when ``external``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.full((n_in, units), 0.5, np.float32), "w")
    b = numpy_helper.from_array(np.zeros(units, np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
         helper.make_node("Add", ["h", "b"], ["y"], name="add")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", units])],
        [w, b],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if edit is not None:
        edit(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, location="w.bin",
                        size_threshold=0, all_tensors_to_one_file=True)  # fmt: skip
    else:
        onnx.save_model(model, str(path), save_as_external_data=False)
    return path


# --- 1. bench's size of an ONNX artifact counts its external data ---------------------------


def test_bench_targets_count_onnx_external_data(tmp_path):
    from edgekit.bench.targets import resolve_targets
    from edgekit.formats.sizes import artifact_bytes

    path = onnx_matmul(tmp_path / "export" / "m.onnx")
    weights = (tmp_path / "export" / "w.bin").stat().st_size
    assert weights == (16 * 512 + 512) * 4
    total = path.stat().st_size + weights
    assert artifact_bytes(path) == total
    for given in (path, path.parent):  # a bare file, and a directory without a manifest
        (target,) = resolve_targets([given], runtimes={"onnxruntime"})
        assert target.size_bytes == total > 30_000


def test_bench_size_budget_sees_external_data(tmp_path):
    path = onnx_matmul(tmp_path / "m.onnx")
    total = path.stat().st_size + (tmp_path / "w.bin").stat().st_size
    report = tmp_path / "bench.json"
    code, out, err = cli("bench", str(path), "--runs", "2", "--json", str(report),
                         "--budget", "size_kb<=1")  # fmt: skip
    assert code == 1, (out, err)
    assert "budget violations" in out and f"{total / 1024:.2f}" in out, out
    (row,) = json.loads(report.read_text())["results"]
    assert row["status"] == "ok" and row["size_bytes"] == total > 34_816


def test_bench_reports_onnx_with_missing_external_data_as_an_error_row(tmp_path):
    """Counting its size does not stop bench: the isolated child reports why it cannot load."""
    path = onnx_matmul(tmp_path / "m.onnx")
    (tmp_path / "w.bin").unlink()
    report = tmp_path / "bench.json"
    code, out, err = cli("bench", str(path), "--runs", "2", "--json", str(report))
    why = f"{path}: tensor 'w' keeps its data in 'w.bin', which is missing"
    assert code == 1 and f"error: m.onnx [onnxruntime, cpu, threads=1, batch=1]: {why}" in out
    (row,) = json.loads(report.read_text())["results"]
    assert (row["status"], row["error"]) == ("error", why)
    assert err.endswith("edgekit: error: 1 measurement(s) failed\n")


# --- 2. estimate refuses what LiteRT and onnxruntime refuse ---------------------------------


@pytest.fixture(scope="module")
def tflite_models(tmp_path_factory) -> dict[str, Path]:
    """A 4 -> 6 -> 3 MLP (fixed weights) as float32 and int8 ``.tflite``."""
    import keras

    from edgekit.exporters.tflite import to_tflite

    inputs = keras.Input((4,), name="features")
    hidden = keras.layers.Dense(6, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(hidden)
    model = keras.Model(inputs, outputs)
    for layer in model.layers[1:]:
        kernel, bias = layer.get_weights()
        layer.set_weights([np.full_like(kernel, 0.1), np.full_like(bias, 0.01)])
    base = tmp_path_factory.mktemp("mlp")
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    return {
        v: to_tflite(model, base / f"mlp.{v}.tflite", variant=v, calibration=x)
        for v in ("float32", "int8")
    }


def repack(src: Path, dst: Path, edit) -> Path:
    """``src`` unpacked with LiteRT's schema, edited, packed again as ``dst``."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(src.read_bytes()), 0)
    edit(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst


def _fc(model, k: int = 0):
    """The ``k``-th FULLY_CONNECTED operator and its operator code."""
    sub = model.subgraphs[0]
    found = [op for op in sub.operators if model.operatorCodes[op.opcodeIndex].builtinCode == 9]
    return found[k], model.operatorCodes[found[k].opcodeIndex]


def _custom(model):
    code = _fc(model)[1]
    code.builtinCode = code.deprecatedBuiltinCode = 32
    code.customCode = "MyOp"


def _version(v: int):
    def edit(model):
        _fc(model)[1].version = v

    return edit


def _builtin(model):
    code = _fc(model)[1]
    code.builtinCode, code.deprecatedBuiltinCode = 250, 127


def _tensor_index(model, which: str) -> int:
    sub, op = model.subgraphs[0], _fc(model)[0]
    return int({"input": sub.inputs[0], "hidden": op.outputs[0], "fc-input": op.inputs[0]}[which])


def _shape(which: str, shape: list[int] | None = None, signature: list[int] | None = None):
    def edit(model):
        t = model.subgraphs[0].tensors[_tensor_index(model, which)]
        t.name = which
        if shape is not None:
            t.shape = np.asarray(shape, dtype=np.int32)
        t.shapeSignature = None if signature is None else np.asarray(signature, dtype=np.int32)

    return edit


# (edit, what estimate says after "{path}: ", whether LiteRT itself refuses the file)
HIDDEN = "tensor {hidden} ('hidden')"  # its index is the model's, filled in by the test
FC0 = "operator 0 (FULLY_CONNECTED)"
HOSTILE_TFLITE = {
    "custom-op": (_custom, "refused: operator 0 is the custom operator 'MyOp'; LiteRT has no "
                  "kernel for it unless an application registers one, and edgekit cannot "
                  "count its cost", True),
    "version-99": (_version(99), "refused: operator 0 is FULLY_CONNECTED version 99, which "
                   "LiteRT does not provide (a model from a newer converter?)", True),
    "version-0": (_version(0), "refused: operator 0 is FULLY_CONNECTED version 0, which LiteRT "
                  "does not provide (a model from a newer converter?)", True),
    "builtin-250": (_builtin, "refused: operator 0 has builtin code 250, which LiteRT does not "
                    "know (a model from a newer converter?)", True),
    "negative-dim": (_shape("hidden", [1, -6]), f"refused: {HIDDEN} has shape [1, -6], with a "
                     "negative dimension (LiteRT refuses it: its size overflows)", True),
    "negative-batch": (_shape("input", [-1, 4], [-1, 4]), "refused: tensor {input} "
                       "('input') has shape [-1, 4], with a negative "
                       "dimension (LiteRT refuses it: its size overflows)", True),
    "int-min-dim": (_shape("hidden", [1, -(2**31)]), f"refused: {HIDDEN} has shape "
                    "[1, -2147483648], with a negative dimension (LiteRT refuses it: its size "
                    "overflows)", True),
    "signature-negative": (_shape("hidden", None, [-1, -6]), f"refused: {HIDDEN} has "
                           "shape_signature [-1, -6], which does not match its shape [1, 6] "
                           "(-1 marks an unknown dimension)", False),
    "signature-rank": (_shape("hidden", None, [-1, 6, 1]), f"refused: {HIDDEN} has "
                       "shape_signature [-1, 6, 1], which does not match its shape [1, 6] (-1 "
                       "marks an unknown dimension)", False),
    "signature-dynamic": (_shape("hidden", None, [-1, -1]), f"cannot estimate: {HIDDEN} has "
                          "shape_signature [-1, -1], unknown beyond the batch; edgekit "
                          "estimates fixed shapes (only the first dimension may be -1)", False),
    "empty-activation": (_shape("hidden", [1, 0], [-1, 0]), f"cannot estimate: {HIDDEN} has no "
                         "elements (shape [1, 0]); LiteRT resizes it when it runs, so its "
                         "declared size is not the one it needs", False),
    "wrong-output": (_shape("hidden", [1, 7], [-1, 7]), f"refused: {FC0} declares output "
                     "[1, 7] (7 values), but input [1, 4] and weights [6, 4] make 6 (LiteRT "
                     "would resize it when it runs)", False),
    "wrong-input": (_shape("fc-input", [1, 5], [-1, 5]), f"refused: {FC0} reads input [1, 5] "
                    "with weights [6, 4]: its 5 values are no whole number of rows of 4 "
                    "(LiteRT refuses it)", True),
    # products LiteRT computes in size_t: 2**64 wraps to 0, and edgekit's Python ints do not
    "shape-wraps-to-0": (_shape("hidden", [65536, 65536, 65536, 65536]), "not a valid "
                         "TensorFlow Lite model (tensor {hidden} ('hidden') has shape [65536, 65536, 65536, 65536], whose size "
                         "overflows 64 bits)", True),
}  # fmt: skip


def litert_refuses(path: Path) -> bool:
    from ai_edge_litert.interpreter import Interpreter

    try:
        Interpreter(model_path=str(path)).allocate_tensors()
    except (RuntimeError, ValueError):
        return True
    return False


@pytest.mark.parametrize("case", sorted(HOSTILE_TFLITE))
def test_estimate_refuses_what_litert_refuses(tmp_path, tflite_models, case):
    from ai_edge_litert import schema_py_generated as schema

    from edgekit.estimate import estimate

    edit, message, refused_by_litert = HOSTILE_TFLITE[case]
    src = tflite_models["float32"]
    model = schema.ModelT.InitFromPackedBuf(bytearray(src.read_bytes()), 0)
    message = message.format(**{k: _tensor_index(model, k) for k in ("input", "hidden")})
    path = repack(src, tmp_path / f"{case}.tflite", edit)
    with pytest.raises(EdgekitError) as info:
        estimate(path, target="cortex-m4")
    assert one_line(info.value) == f"{path}: {message}"
    assert litert_refuses(path) is refused_by_litert
    code, out, err = cli("estimate", str(path), "--target", "cortex-m4", "--json")
    assert (code, out, err) == (2, "", f"edgekit: error: {path}: {message}\n")


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_real_models_still_estimate_with_their_dynamic_batch(tflite_models, variant):
    from edgekit.estimate import estimate
    from edgekit.formats.tflite_graph import read_tflite

    path = tflite_models[variant]
    g = read_tflite(path)
    assert g.tensors[g.inputs[0]].dynamic_batch  # shape_signature [-1, 4]
    assert not litert_refuses(path)
    e = estimate(path, target="cortex-m4")
    assert (e.macs, e.params) == (4 * 6 + 6 * 3, 4 * 6 + 6 + 6 * 3 + 3)
    assert e.fits and e.ram_bytes > 0
    assert "batch dimension taken as 1 (one sample per inference)" in e.notes


def test_convolutions_of_every_padding_stride_and_dilation_still_estimate(tmp_path):
    """The MAC layers' output check knows TFLite's SAME/VALID arithmetic."""
    import keras

    from edgekit.estimate import estimate
    from edgekit.exporters.tflite import to_tflite

    keras.utils.set_random_seed(0)
    inputs = keras.Input((15, 13, 3), name="img")
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c1")(inputs)
    h = keras.layers.Conv2D(5, (3, 2), padding="valid", name="c2")(h)
    h = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw1")(h)
    h = keras.layers.DepthwiseConv2D(2, strides=(2, 1), padding="valid", name="dw2")(h)
    outputs = keras.layers.Dense(3, name="d")(keras.layers.Flatten(name="f")(h))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(8, 15, 13, 3)).astype(np.float32)
    # c1: 8x7x4 outputs x 27; c2: 6x6x5 x 24; dw1: 6x6x10 x 9; dw2: 3x5x10 x 4; d: 150 x 3
    macs = 8 * 7 * 4 * 27 + 6 * 6 * 5 * 24 + 6 * 6 * 10 * 9 + 3 * 5 * 10 * 4 + 150 * 3
    for variant in ("float32", "int8"):
        path = to_tflite(model, tmp_path / f"conv.{variant}.tflite", variant=variant,
                         calibration=x)  # fmt: skip
        e = estimate(path, target="cortex-m4")
        assert e.macs == macs, variant
        assert not litert_refuses(path)


def _node(k: int, **fields):
    def edit(model):
        for key, value in fields.items():
            setattr(model.graph.node[k], key, value)

    return edit


def _opset(domain: str | None, version: int | None = None):
    def edit(model):
        from onnx import helper

        if domain is None:
            del model.opset_import[:]
        elif domain == "":
            model.opset_import[0].version = version
        else:
            model.opset_import.append(helper.make_opsetid(domain, version))

    return edit


def _both(*edits):
    def edit(model):
        for e in edits:
            e(model)

    return edit


def _dim(side: str, k: int, value: int):
    def edit(model):
        values = model.graph.input if side == "input" else model.graph.output
        values[0].type.tensor_type.shape.dim[k].dim_value = value

    return edit


def _rewire(k: int, inputs: list[str] | None = None, outputs: list[str] | None = None):
    def edit(model):
        node = model.graph.node[k]
        if inputs is not None:
            del node.input[:]
            node.input.extend(inputs)
        if outputs is not None:
            del node.output[:]
            node.output.extend(outputs)

    return edit


ADD = "node 1 ('add', 'FooBar')"
HOSTILE_ONNX = {
    "unknown-op": (_node(1, op_type="FooBar"), f"refused: {ADD} is no operator of ai.onnx "
                   "opset 17 that onnxruntime knows", True),
    "op-newer-than-opset": (_node(1, op_type="Gelu"), "refused: node 1 ('add', 'Gelu') is no "
                            "operator of ai.onnx opset 17 that onnxruntime knows", True),
    "unknown-domain": (_both(_node(1, domain="com.example"), _opset("com.example", 1)),
                       "refused: node 1 ('add', 'Add') is of domain 'com.example', which "
                       "onnxruntime does not know (a custom operator?)", True),
    "domain-not-imported": (_node(1, domain="com.example"), "refused: node 1 ('add', 'Add') "
                            "is of domain 'com.example', which the model imports no opset of",
                            True),
    "opset-99": (_opset("", 99), "refused: it imports opset 99 of ai.onnx; onnxruntime knows 1 "
                 "to {newest}", True),
    "no-default-opset": (_opset(None), "refused: it imports no default (ai.onnx) opset; "
                         "onnxruntime requires one", True),
    "negative-input-dim": (_dim("input", 1, -16), "refused: graph input 'x' has shape ['n', "
                           "-16], with a negative dimension (an unknown one has no value, or "
                           "-1 for the batch)", False),
    "negative-output-dim": (_dim("output", 1, -512), "refused: graph output 'y' has shape "
                            "['n', -512], with a negative dimension (an unknown one has no "
                            "value, or -1 for the batch)", False),
    "negative-batch": (_dim("input", 0, -2), "refused: graph input 'x' has shape [-2, 16], "
                       "with a negative dimension (an unknown one has no value, or -1 for the "
                       "batch)", False),
    "cycle": (_rewire(0, inputs=["y", "w"]), "refused: its graph has a cycle (through node 0, "
              "'mm'); onnxruntime requires an acyclic graph", True),
    "self-loop": (_rewire(1, inputs=["y", "b"]), "refused: its graph has a cycle (through node "
                  "1, 'add'); onnxruntime requires an acyclic graph", True),
    "undefined-input": (_rewire(1, inputs=["nowhere", "b"]), "refused: node 1 ('add') reads "
                        "'nowhere', which no graph input, initializer or node defines", True),
    "defined-twice": (_rewire(1, outputs=["h"]), "refused: node 1 ('add') defines 'h', which is "
                      "defined already", True),
}  # fmt: skip


def ort_refuses(path: Path) -> bool:
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # onnxruntime's own exception types (Fail, InvalidGraph, ...)
        return True
    return False


@pytest.mark.parametrize("case", sorted(HOSTILE_ONNX))
def test_estimate_refuses_what_onnxruntime_refuses(tmp_path, case):
    from edgekit.estimate import estimate
    from edgekit.estimate.validate import _onnx_schemas

    edit, message, refused_by_ort = HOSTILE_ONNX[case]
    newest = max(v[-1][0] for (d, _), v in _onnx_schemas().items() if d == "ai.onnx")
    message = message.format(newest=newest)
    path = onnx_matmul(tmp_path / "m.onnx", external=False, edit=edit)
    with pytest.raises(EdgekitError) as info:
        estimate(path, target="cortex-m4")
    assert one_line(info.value) == f"{path}: {message}"
    assert ort_refuses(path) is refused_by_ort
    code, out, err = cli("estimate", str(path), "--target", "cortex-m4")
    assert (code, out, err) == (2, "", f"edgekit: error: {path}: {message}\n")


@pytest.mark.parametrize("case", ["tflite:version-99", "tflite:custom-op", "onnx:unknown-op"])
def test_runtime_refusals_print_one_line_from_a_real_process(tmp_path, tflite_models, case):
    """LiteRT and onnxruntime are asked in-process: nothing of theirs reaches stderr."""
    from tests.conftest import run_cli

    kind, name = case.split(":")
    if kind == "tflite":
        edit, message, _ = HOSTILE_TFLITE[name]
        path = repack(tflite_models["float32"], tmp_path / "m.tflite", edit)
    else:
        edit, message, _ = HOSTILE_ONNX[name]
        path = onnx_matmul(tmp_path / "m.onnx", external=False, edit=edit)
    done = run_cli("estimate", str(path), "--target", "cortex-m4", timeout=120)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"edgekit: error: {path}: {message}\n"


ACCEPTED_ONNX = {
    "plain": (None, 16 * 512 + 512),
    "batch-minus-1": (_dim("input", 0, -1), 16 * 512 + 512),
    "com.microsoft": (_both(_node(1, op_type="Gelu", domain="com.microsoft"),
                            _opset("com.microsoft", 1), _rewire(1, ["h"])), 16 * 512),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ACCEPTED_ONNX))
def test_onnx_models_onnxruntime_loads_still_estimate(tmp_path, case):
    from edgekit.estimate import estimate

    edit, params = ACCEPTED_ONNX[case]
    path = onnx_matmul(tmp_path / "m.onnx", external=False, edit=edit)
    assert not ort_refuses(path)
    e = estimate(path, target="cortex-m4")
    assert (e.macs, e.params) == (16 * 512, params)


@pytest.mark.parametrize("width", [8, "k"])
def test_onnx_without_dense_layers_needs_known_widths(tmp_path, width):
    import onnx
    from onnx import TensorProto, helper

    from edgekit.estimate import estimate

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", width])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "relu.onnx"
    onnx.save_model(model, str(path))
    if width == 8:  # input and output, 8 float32 values each, both live
        assert estimate(path, target="cortex-m4").ram_bytes == 2 * 8 * 4
        return
    with pytest.raises(EdgekitError) as info:
        estimate(path, target="cortex-m4")
    assert one_line(info.value) == (
        f"{path}: cannot estimate: it has no dense layer and its input 'x' has unknown "
        "dimensions beyond the batch ([-1, -1]), so its size is unknown"
    )


# --- 3. every number of a target catalog is finite, positive and plausible ------------------

CATALOG = (
    "[targets.x]\ndescription = 'a test part'\nclock_hz = 64_000_000\nram_bytes = 262_144\n"
    "flash_bytes = 1_048_576\ncycles_per_mac_int8 = 1.0\ncycles_per_mac_float = 4.0\n"
    "op_overhead_cycles = 10\nsource = 'assumption: a test'\n"
)
RUNTIME = (
    "[targets.x.runtimes.r]\nflash_bytes = 1000\nop_overhead = 10\narena_base = 100\n"
    "source = 'assumption: a test'\n[targets.x.runtimes.r.ops]\n'*' = [5, 2, 1]\n"
)
BYTES = "a whole number from 1 to 1,125,899,906,842,624 bytes"
HZ = "a finite number from 1,000 to 100,000,000,000 Hz"
BAD_NUMBERS = {
    "ram-1e308": ("ram_bytes", "1e308", f"ram_bytes must be {BYTES}, got 1e+308"),
    "ram-half": ("ram_bytes", "0.5", f"ram_bytes must be {BYTES}, got 0.5"),
    "ram-zero": ("ram_bytes", "0", f"ram_bytes must be {BYTES}, got 0"),
    "ram-inf": ("ram_bytes", "inf", f"ram_bytes must be {BYTES}, got inf"),
    "flash-1e300": ("flash_bytes", "1e300", f"flash_bytes must be {BYTES}, got 1e+300"),
    "clock-denormal": ("clock_hz", "1e-320", f"clock_hz must be {HZ}, got 1e-320"),
    "clock-1e308": ("clock_hz", "1e308", f"clock_hz must be {HZ}, got 1e+308"),
    "clock-nan": ("clock_hz", "nan", f"clock_hz must be {HZ}, got nan"),
    "clock-negative": ("clock_hz", "-64e6", f"clock_hz must be {HZ}, got -64000000.0"),
    "clock-string": ("clock_hz", "'64 MHz'", f"clock_hz must be {HZ}, got '64 MHz'"),
    "clock-bool": ("clock_hz", "true", f"clock_hz must be {HZ}, got True"),
    "clock-table": ("clock_hz", "{ mhz = 64 }", f"clock_hz must be {HZ}, got {{'mhz': 64}}"),
    "cycles-1e308": ("cycles_per_mac_int8", "1e308", "cycles_per_mac_int8 must be a finite "
                     "number from 1e-06 to 1,000,000, got 1e+308"),
    "cycles-zero": ("cycles_per_mac_float", "0", "cycles_per_mac_float must be a finite "
                    "number from 1e-06 to 1,000,000, got 0"),
    "overhead-1e308": ("op_overhead_cycles", "1e308", "op_overhead_cycles must be a finite "
                       "number from 0 to 1,000,000,000, got 1e+308"),
    "description": ("description", "5", "description must be a string, got 5"),
}  # fmt: skip
BAD_RUNTIME = {
    "op-overhead": ("op_overhead = 10", "op_overhead = 1e300", "op_overhead must be a finite "
                    "number from 0 to 1,000,000,000 instructions, got 1e+300"),
    "runtime-flash": ("flash_bytes = 1000", "flash_bytes = 1.5", "flash_bytes must be a whole "
                      "number from 0 to 1,125,899,906,842,624 bytes, got 1.5"),
    "op-cost": ("[5, 2, 1]", "[5, 1e308, 1]", "ops.* must be a finite number from 0 to "
                "1,000,000,000 instructions, got 1e+308"),
    "op-cost-negative": ("[5, 2, 1]", "[5, 2, -1]", "ops.* must be a finite number from 0 to "
                         "1,000,000,000 instructions, got -1"),
    "arena": ("arena_base = 100", "arena_base = -1e-300", "arena_base must be a finite number "
              "from 0 to 1,125,899,906,842,624 bytes, got -1e-300"),
}  # fmt: skip


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    """``tmp_path`` as the working directory (where ``edgekit.toml`` is read), and no user
    catalog of the developer's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


@pytest.mark.parametrize("case", sorted(BAD_NUMBERS))
def test_a_catalog_number_out_of_range_is_refused_in_one_line(in_tmp, tflite_models, case):
    key, value, message = BAD_NUMBERS[case]
    lines = [f"{key} = {value}" if line.startswith(f"{key} =") else line
             for line in CATALOG.splitlines()]  # fmt: skip
    (in_tmp / "edgekit.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for argv in (["estimate", str(tflite_models["int8"]), "--target", "x", "--json"],
                 ["estimate", "--list-targets", "--json"]):  # fmt: skip
        code, out, err = cli(*argv)
        assert (code, out) == (2, "")
        assert err == f"edgekit: error: {in_tmp / 'edgekit.toml'}: target 'x': {message}\n"


@pytest.mark.parametrize("case", sorted(BAD_RUNTIME))
def test_a_catalog_runtime_number_out_of_range_is_refused(in_tmp, tflite_models, case):
    old, new, message = BAD_RUNTIME[case]
    (in_tmp / "edgekit.toml").write_text(CATALOG + RUNTIME.replace(old, new), encoding="utf-8")
    code, out, err = cli("estimate", str(tflite_models["int8"]), "--target", "x")
    assert (code, out) == (2, "")
    where = f"{in_tmp / 'edgekit.toml'}: target 'x' runtime 'r'"
    assert err == f"edgekit: error: {where}: {message}\n"


def test_the_limits_hold_for_targets_built_in_python(tflite_models):
    from edgekit.estimate import estimate
    from edgekit.estimate.catalog import Target

    with pytest.raises(EdgekitError) as info:
        Target("t", "made in Python", 1e-320, 1, 1, 1.0, 1.0)
    assert one_line(info.value) == f"target 't': clock_hz must be {HZ}, got 1e-320"
    extreme = Target("t", "slowest part allowed", 1e3, 1, 1, 1e6, 1e6, op_overhead_cycles=1e9)
    e = estimate(tflite_models["float32"], target=extreme)
    assert not e.fits and e.latency_ms == pytest.approx(1000 * (42 * 1e6 + 3 * 1e9) / 1e3)


def strict_json(text: str):
    def refuse(name: str):
        raise AssertionError(f"{name} in the JSON output")

    return json.loads(text, parse_constant=refuse)


def test_estimate_json_never_holds_infinity_or_nan(in_tmp, tflite_models):
    from edgekit.estimate.result import json_text

    (in_tmp / "edgekit.toml").write_text(CATALOG + RUNTIME, encoding="utf-8")
    for variant in ("float32", "int8"):  # the extremes the limits allow, all finite
        for target in ("x", "cortex-m4", "rpi4"):
            code, out, err = cli("estimate", str(tflite_models[variant]), "--target", target,
                                 "--json")  # fmt: skip
            assert code == 0, err
            assert strict_json(out)["totals"]["latency_ms"] > 0
    code, out, err = cli("estimate", "--list-targets", "--json")
    assert code == 0 and len(strict_json(out)["targets"]) == 8
    with pytest.raises(EdgekitError) as info:  # the backstop
        json_text({"latency_ms": float("inf")}, what="the estimate")
    assert one_line(info.value).startswith(  # then json's own words, which vary by version
        "cannot write the estimate as JSON: it holds a number that is not finite (Out of "
        "range float values are not JSON compliant"
    )


# --- 4. a matrix of other hostile estimate inputs: one line, exit 2, never a traceback ------


def _no_subgraph(model):
    model.subgraphs = []


def _first_constant(model) -> int:
    for t in model.subgraphs[0].tensors:
        buf = model.buffers[t.buffer]
        if buf.data is not None and len(buf.data) > 16:
            return int(t.buffer)
    raise AssertionError("no constant")


def _buffer_past_eof(model):
    buf = model.buffers[_first_constant(model)]
    buf.data, buf.offset, buf.size = None, 10**9, 64


def _external_tensor(dims: list[int], **external: str):
    """Initializer ``w`` as ``dims``, its data in ``w.bin`` (600 bytes) with ``external``."""

    def edit(model):
        t = model.graph.initializer[0]
        t.ClearField("raw_data")
        del t.dims[:]
        t.dims.extend(dims)
        t.data_location = 1  # EXTERNAL
        for key, value in {"location": "w.bin", **external}.items():
            entry = t.external_data.add()
            entry.key, entry.value = key, value

    return edit


def hostile_file(tmp_path: Path, tflite_models: dict[str, Path], case: str) -> tuple[Path, str]:
    """The file of ``case`` and what estimate says about it after ``{path}: ``."""
    src = tflite_models["float32"]
    data = src.read_bytes()
    if case == "empty.tflite":
        (path := tmp_path / case).write_bytes(b"")
        return path, "not a TensorFlow Lite flatbuffer"
    if case == "empty.onnx":
        (path := tmp_path / case).write_bytes(b"")
        return path, "not a valid ONNX model (no graph)"
    if case.startswith("truncated-"):
        (path := tmp_path / "t.tflite").write_bytes(data[: int(case.split("-")[1])])
        return path, "not a valid TensorFlow Lite model (truncated or corrupt flatbuffer)"
    if case == "header-only.tflite":
        (path := tmp_path / case).write_bytes(data[:8])
        return path, "not a valid TensorFlow Lite model (truncated or corrupt flatbuffer)"
    if case == "no-subgraph":
        path = repack(src, tmp_path / "n.tflite", _no_subgraph)
        return path, "the TensorFlow Lite model has no subgraph"
    if case == "buffer-past-eof":
        from ai_edge_litert import schema_py_generated as schema

        k = _first_constant(schema.ModelT.InitFromPackedBuf(bytearray(data), 0))
        path = repack(src, tmp_path / "b.tflite", _buffer_past_eof)
        size = path.stat().st_size
        return path, (f"not a valid TensorFlow Lite model (buffer {k} lies at bytes "
                      f"1,000,000,000..1,000,000,064, outside the file of {size:,})")  # fmt: skip
    if case == "truncated.onnx":
        full = onnx_matmul(tmp_path / "full" / "m.onnx", external=False).read_bytes()
        (path := tmp_path / "m.onnx").write_bytes(full[: len(full) // 2])
        return path, "not a valid ONNX model (truncated field)"
    (tmp_path / "w.bin").write_bytes(bytes(600))
    if case == "onnx-1e9-weights-absent":  # 4 GB declared, 600 bytes there: no length given
        edit = _external_tensor([10**9, 1])
        why = ("not a valid ONNX model (tensor 'w''s data ends at byte 4,000,000,000 of "
               "'w.bin', which has 600)")  # fmt: skip
    elif case == "onnx-offset-past-data":
        edit = _external_tensor([16, 8], offset="100")
        why = ("not a valid ONNX model (tensor 'w''s data ends at byte 612 of 'w.bin', which "
               "has 600)")  # fmt: skip
    elif case == "onnx-offset-negative":
        edit = _external_tensor([16, 8], offset="-5")
        why = ("not a valid ONNX model (tensor 'w''s external data offset is '-5', not a whole "
               "number of bytes)")  # fmt: skip
    else:
        assert case == "onnx-length-text", case
        edit = _external_tensor([16, 8], length="lots")
        why = ("not a valid ONNX model (tensor 'w''s external data length is 'lots', not a "
               "whole number of bytes)")  # fmt: skip
    return onnx_matmul(tmp_path / "m.onnx", n_in=16, units=8, external=False, edit=edit), why


HOSTILE_FILES = [
    "empty.tflite", "empty.onnx", "truncated-100", "truncated-700", "header-only.tflite",
    "no-subgraph", "buffer-past-eof", "truncated.onnx", "onnx-1e9-weights-absent",
    "onnx-offset-past-data", "onnx-offset-negative", "onnx-length-text",
]  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE_FILES)
def test_hostile_model_files_are_one_line_and_exit_2(tmp_path, tflite_models, case):
    from edgekit.estimate import estimate

    path, message = hostile_file(tmp_path, tflite_models, case)
    with pytest.raises(EdgekitError) as info:
        estimate(path, target="cortex-m4")
    assert one_line(info.value) == f"{path}: {message}"
    code, out, err = cli("estimate", str(path), "--target", "cortex-m4", "--json")
    assert (code, out, err) == (2, "", f"edgekit: error: {path}: {message}\n")


def test_onnx_weights_that_their_external_file_holds_still_estimate(tmp_path):
    from edgekit.estimate import estimate

    (tmp_path / "w.bin").write_bytes(bytes(600))
    path = onnx_matmul(tmp_path / "m.onnx", units=8, external=False,
                       edit=_external_tensor([16, 8], offset="88"))  # bytes 88..600  # fmt: skip
    e = estimate(path, target="cortex-m4")
    assert (e.macs, e.params) == (16 * 8, 16 * 8 + 8)
    assert e.flash_bytes == path.stat().st_size + 600


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "nope"], "unknown target 'nope'; choose from cortex-m3, cortex-m33, "
         "cortex-m4, cortex-m7, esp32-s3, rpi-zero2, rpi4"),
        (["--target", ""], "unknown target ''; choose from cortex-m3, cortex-m33, cortex-m4, "
         "cortex-m7, esp32-s3, rpi-zero2, rpi4"),
        (["--target", "cortex-m4", "--runtime", "nope"], "target 'cortex-m4' has no runtime "
         "'nope'; choose from tflm, c"),
        (["--target", "cortex-m7", "--runtime", "tflm"], "target 'cortex-m7' has no runtime "
         "'tflm'; choose from none: it has no runtime cost model"),
        ([], "estimate needs --target NAME; choose from cortex-m3, cortex-m33, cortex-m4, "
         "cortex-m7, esp32-s3, rpi-zero2, rpi4"),
    ],
)  # fmt: skip
def test_bad_targets_and_runtimes_are_one_line(in_tmp, tflite_models, argv, message):
    code, out, err = cli("estimate", str(tflite_models["int8"]), *argv)
    assert (code, out, err) == (2, "", f"edgekit: error: {message}\n")


BAD_CATALOGS = {
    "duplicate-key": ("[targets.x]\nclock_hz = 1e6\nclock_hz = 2e6\n",
                      "not a valid TOML file (Cannot overwrite a value"),
    "duplicate-table": ("[targets.x]\nclock_hz = 1e6\n[targets.x]\nram_bytes = 1\n",
                        "not a valid TOML file (Cannot declare ('targets', 'x') twice"),
    "targets-array": ("targets = [1, 2]\n",
                      "[targets] must be a table of [targets.NAME] tables"),
    "target-number": ("[targets]\nx = 5\n", "target 'x' must be a table"),
    "sources-string": ("[targets.x]\nclock_hz = 1e6\nram_bytes = 1\nflash_bytes = 1\n"
                       "cycles_per_mac_int8 = 1\ncycles_per_mac_float = 1\nsources = 'a'\n",
                       "target 'x': sources must be a table of strings"),
    "source-number": ("[targets.x]\nclock_hz = 1e6\nram_bytes = 1\nflash_bytes = 1\n"
                      "cycles_per_mac_int8 = 1\ncycles_per_mac_float = 1\nsource = 5\n",
                      "target 'x': clock_hz has no source; add sources.clock_hz = \"datasheet "
                      "...\" or \"assumption: ...\" (every number says where it comes from)"),
    "runtimes-array": (CATALOG + "runtimes = [1]\n",
                       "target 'x': runtimes must be a table of [runtimes.NAME] tables"),
    "ops-not-list": (CATALOG + RUNTIME.replace("[5, 2, 1]", "'cheap'"),
                     "target 'x' runtime 'r': ops.* must be [base, per_mac, per_element], got "
                     "'cheap'"),
    "unknown-field": (CATALOG.replace("ram_bytes", "ram_kb"),
                      "target 'x': unknown field(s) ram_kb; fields are clock_hz, ram_bytes, "
                      "flash_bytes, cycles_per_mac_int8, cycles_per_mac_float, "
                      "op_overhead_cycles, description, source, sources, runtimes"),
    "not-utf8": (b"\xff\xfe[targets]", "not a valid TOML file ('utf-8' codec can't decode "
                 "byte 0xff in position 0: invalid start byte)"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_CATALOGS))
def test_bad_catalogs_are_one_line(in_tmp, tflite_models, case):
    text, message = BAD_CATALOGS[case]
    catalog = in_tmp / "edgekit.toml"
    if isinstance(text, bytes):
        catalog.write_bytes(text)
    else:
        catalog.write_text(text, encoding="utf-8")
    code, out, err = cli("estimate", str(tflite_models["int8"]), "--target", "x")
    assert (code, out) == (2, "") and err.count("\n") == 1 and err.endswith("\n")
    if case.startswith("duplicate"):  # then the TOML parser's position, in its own words
        assert err.startswith(f"edgekit: error: {catalog}: {message} "), err
    else:
        assert err == f"edgekit: error: {catalog}: {message}\n"


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_every_truncation_and_seeded_byte_flips_are_one_line(tmp_path, tflite_models, variant):
    """No length of the file and no corrupted byte gives a traceback (or a second line)."""
    import random

    from edgekit.estimate import estimate

    data = tflite_models[variant].read_bytes()
    rng = random.Random(variant)
    files = [data[:n] for n in range(0, len(data), 7)]
    for _ in range(300):
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        files.append(bytes(flipped))
    path = tmp_path / "f.tflite"
    refused = 0
    for blob in files:
        path.write_bytes(blob)
        try:
            e = estimate(path, target="cortex-m4")
        except EdgekitError as err:
            one_line(err)
            refused += 1
            continue
        json.loads(e.json_text())  # what is accepted gives finite numbers
        assert e.ram_bytes > 0 and e.flash_bytes == len(blob)
    assert refused >= len(data) // 7  # every truncation at least
