"""The int8 C against TensorFlow Lite Micro, and the C's figures for a microcontroller.

By default the generated int8 C reproduces TFLM (the PyPI ``tflite-micro`` interpreter) bit
for bit: its ties-away requantization, its fixed-point SOFTMAX, TANH and LOGISTIC; with
``--c-rounding litert`` it reproduces LiteRT's builtin kernels instead. The manifest's
``c_source`` has ``ram_bytes``, ``flash_bytes`` and ``stack_bytes`` measured with
arm-none-eabi-gcc; ``--c-array`` headers define TFLM's measured arena.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from edgekit.exporters.c import tflm
from edgekit.exporters.c.tflite_math import exp_on_negative_values, softmax_tflm_table
from edgekit.exporters.c.validate import validate_c_source
from edgekit.exporters.c_source import to_c_source
from tests.conftest import cli, run_cli

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
needs_tflm = pytest.mark.skipif(not tflm.available(), reason="needs tflite-micro (pip)")
needs_arm = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc"
)


def both_roundings(tflite, x, tmp_path, raw_q=None):
    """validate_c_source's results for the TFLM C and the LiteRT C of one model."""
    out = {}
    for rounding in ("tflm", "litert"):
        where = tmp_path / rounding
        where.mkdir()
        c = to_c_source(None, where, variant="int8", prefix="m", tflite=tflite,
                        raw_input_q=raw_q, rounding=rounding)  # fmt: skip
        out[rounding] = validate_c_source(c, x, tflite=tflite, raw_input_q=raw_q)
    return out


def assert_exact(v, key):
    n = v["outputs"]
    assert v["vs"][key] == {"exact": n, "outputs": n, "off_by_one": 0, "max_lsb": 0}, v["vs"]
    assert v["passed"] is True and v["exact"] == n and v["max_lsb_diff"] == 0


def small_model(tmp_path, activation, scales, task="multiclass", seed=1):
    """A tiny Keras model on 5 features with the given spreads, as an int8 .tflite."""
    import keras

    from edgekit.exporters.tflite import to_tflite
    from edgekit.trainer.model import build_model

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    scales = np.asarray(scales)
    x = (rng.normal(size=(200, 5)) * scales + scales).astype(np.float32)
    x_test = (rng.normal(size=(400, 5)) * scales * 1.5 + scales).astype(np.float32)
    model = build_model(input_shape=[5], task=task, n_classes=3, hidden=[16, 8],
                        activation=activation, x_train=x, y_train=rng.normal(size=200))  # fmt: skip
    tflite = to_tflite(model, tmp_path / "m.int8.tflite", variant="int8", calibration=x)
    return tflite, x_test


@needs_tflm
def test_digits_c_equals_tflm_and_litert_c_equals_builtin(digits_export, tmp_path):
    tflite = digits_export.path / "model.int8.tflite"
    entry = next(a for a in digits_export.artifacts if a["variant"] == "int8")
    x = np.load(digits_export.path / "test.npz")["x"]
    v = both_roundings(tflite, x, tmp_path, entry["inputs"][0]["quantization"])
    assert_exact(v["tflm"], "tflm")
    assert_exact(v["litert"], "litert_builtin")
    assert v["tflm"]["outputs"] == len(x) * 10
    # the C of one rounding is the other runtime's, counted alike
    assert v["tflm"]["vs"]["litert_builtin"]["exact"] == v["litert"]["vs"]["tflm"]["exact"]
    assert set(v["tflm"]["vs"]) == {"tflm", "litert_builtin", "litert_reference", "xnnpack"}


@needs_tflm
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_tanh_and_logistic_tables_are_tflms(activation, tmp_path):
    tflite, x = small_model(tmp_path, activation, [1, 3, 0.5, 2, 1])
    v = both_roundings(tflite, x, tmp_path)
    assert_exact(v["tflm"], "tflm")
    assert_exact(v["litert"], "litert_builtin")
    # TFLM's fixed-point TANH/LOGISTIC and LiteRT's float tables differ somewhere here
    assert v["tflm"]["vs"]["litert_builtin"]["exact"] < v["tflm"]["outputs"]


@needs_tflm
def test_features_from_1e_2_to_1e3(tmp_path):
    """Normalization folded into SUB/MUL on features whose scales span five decades."""
    tflite, x = small_model(tmp_path, "relu", [1e-2, 1e-1, 1.0, 1e2, 1e3], task="multiclass")
    v = both_roundings(tflite, x, tmp_path)
    assert_exact(v["tflm"], "tflm")
    assert_exact(v["litert"], "litert_builtin")


def test_gemmlowp_exp_and_the_softmax_table():
    assert exp_on_negative_values(0, 5) == 2**31 - 1  # exp(0) = 1, saturated
    for a in (-1.0, -0.3, -2.5, -7.0):  # Q5.26 -> Q0.31, within gemmlowp's accuracy
        got = exp_on_negative_values(round(a * 2**26), 5) / 2**31
        assert abs(got - np.exp(a)) < 2e-7
    table = softmax_tflm_table(0.1, 1.0)
    assert table[0] == 2**31 - 1 and np.all(np.diff(table) <= 0) and table[50] > 0


def test_without_tflite_micro_the_c_is_not_checked(digits_export, tmp_path, monkeypatch):
    monkeypatch.setattr(tflm, "available", lambda: False)
    tflite = digits_export.path / "model.int8.tflite"
    x = np.load(digits_export.path / "test.npz")["x"][:20]
    c = to_c_source(None, tmp_path, variant="int8", prefix="m", tflite=tflite)
    v = validate_c_source(c, x, tflite=tflite)
    assert v["passed"] is None
    assert v["reason"] == "not checked: tflite-micro not installed (pip install tflite-micro)"
    assert v["vs"]["tflm"] == {"not_checked": tflm.NOT_INSTALLED}
    assert v["vs"]["litert_builtin"]["outputs"] == 200
    from edgekit.exporters.c_array import write_c_array

    copy = tmp_path / "copy.tflite"
    shutil.copy(tflite, copy)
    h, _ = write_c_array(copy, ops=["FULLY_CONNECTED"])
    text = h.read_text()
    assert "NOT MEASURED (tflite-micro not installed" in text
    assert re.search(r"#define COPY_DATA_TENSOR_ARENA_SIZE \d+\n", text)


@needs_tflm
@needs_arm
def test_cli_manifest_records_rounding_counts_and_footprint(digits_run, tmp_path):
    out = tmp_path / "c"
    code, text, err = cli("export", str(digits_run.path), "--c-source", "int8",
                          "--c-rounding", "litert", "--out", str(out))  # fmt: skip
    assert code == 0 and all(line.startswith("[") for line in err.splitlines()), err
    assert "int8 outputs identical to TFLite's builtin kernels" in text
    info = json.loads((out / "manifest.json").read_text())["c_source"]
    assert info["rounding"] == "litert"
    v = info["validation"]
    assert v["passed"] and v["vs"]["litert_builtin"]["max_lsb"] == 0
    assert v["vs"]["tflm"]["outputs"] == v["outputs"]
    src = (out / "edgekit_model.c").read_text()
    assert "LiteRT's builtin int8 kernels" in src and "edgekit_requant(" in src
    assert info["footprint"]["measured_with"].startswith("arm-none-eabi-gcc -mcpu=cortex-m4")
    # every static buffer: the arena, ek_u (int16 per FC input on a Cortex-M) and predict's q_in/q_out
    n_in = info["input_size"]
    assert info["ram_bytes"] >= info["arena_bytes"] + 2 * n_in + n_in + info["output_size"]
    assert info["flash_bytes"] > 64 * 32  # the weights at least
    assert 0 < info["stack_bytes"] < 1024


@needs_tflm
def test_c_array_header_has_tflms_smallest_arena(digits_export):
    header = (digits_export.path / "model_int8_data.h").read_text()
    found = re.search(r"#define MODEL_INT8_DATA_TENSOR_ARENA_SIZE (\d+)\n", header)
    assert found, header
    size = int(found.group(1))
    assert size % 16 == 0 and "measured with" in header
    model = digits_export.path / "model.int8.tflite"
    assert tflm.arena_fits(model, size) and not tflm.arena_fits(model, size - 16)


def _gelu(tmp_path, *, residual: bool):
    """A gelu model (TFLM has no GELU kernel) saved with its data; ``residual``: the GELU's
    input is added to its output, so the graph does not cut into one-tensor runs."""
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64)
    inp = keras.Input((6,), name="features")
    h = keras.layers.Dense(8, name="h")(inp)
    g = keras.layers.Activation("gelu", name="gelu")(h)
    if residual:
        g = keras.layers.Add(name="add")([h, g])
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax", name="out")(g))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, verbose=0)
    model.save(tmp_path / "gelu.keras")
    np.savez(tmp_path / "d.npz", x=x, y=y)
    done = run_cli("export", str(tmp_path / "gelu.keras"), "--data", str(tmp_path / "d.npz"),
                   "--quantize", "int8", "--c-source", "int8", "--out", str(tmp_path / "e"))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # TFLM's own "Didn't find op for builtin opcode 'GELU'" stays in the probing child
    assert all(line.startswith("[") for line in done.stderr.splitlines()), done.stderr
    info = json.loads((tmp_path / "e" / "manifest.json").read_text())["c_source"]
    return done.stdout, info


@needs_tflm
def test_a_gelu_model_is_checked_against_tflm_with_gelu_in_litert(tmp_path):
    out, info = _gelu(tmp_path, residual=False)
    v = info["validation"]
    because = "TFLite Micro has no GELU kernel"
    assert v["passed"] is True and v["exact"] == v["outputs"] == 600
    assert v["vs"]["tflm"]["with_litert"] == ["GELU"] and v["vs"]["tflm"]["because"] == because
    assert v["against"] == f"TFLite Micro (GELU in TFLite's builtin kernels: {because})"
    assert v["criterion"] == "every int8 output identical to tflm (GELU: litert_builtin)"
    assert info["tables"] == ["litert_builtin"]  # the C's GELU table is LiteRT's
    assert (
        "edgekit_model.h, edgekit_model.c; 600/600 int8 outputs identical to TFLite Micro (GELU "
        f"in TFLite's builtin kernels: {because}) (max 0 LSB apart): passed\n"
    ) in out


@needs_tflm
def test_a_gelu_model_tflm_cannot_stand_in_for_is_not_checked_in_one_line(tmp_path):
    out, info = _gelu(tmp_path, residual=True)
    v = info["validation"]
    assert v["passed"] is None
    assert v["reason"] == "not checked: TFLite Micro has no GELU kernel"
    assert v["vs"]["tflm"] == {"not_checked": "TFLite Micro has no GELU kernel"}
    assert v["vs"]["litert_builtin"]["outputs"] == 600
    assert "edgekit_model.c; not checked: TFLite Micro has no GELU kernel\n" in out


@needs_tflm
def test_probe_turns_tflms_messages_into_the_reason(digits_export, tmp_path):
    (tmp_path / "g").mkdir()
    tflite, _ = small_model(tmp_path / "g", "gelu", [1, 1, 1, 1, 1])
    assert tflm.probe(tflite) == tflm.Probe(False, "TFLite Micro has no GELU kernel", ("GELU",))
    assert tflm.probe(digits_export.path / "model.int8.tflite") == tflm.Probe(True)
    (tmp_path / "junk.tflite").write_bytes(b"TFL3" * 16)
    verdict = tflm.probe(tmp_path / "junk.tflite")
    assert not verdict.runs and verdict.missing == ()
    assert verdict.reason.startswith("tflite-micro c") and "\n" not in verdict.reason
