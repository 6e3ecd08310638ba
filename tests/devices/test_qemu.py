"""``edgekit bench EXPORT --device qemu:cortex-m4``: the generated C on an emulated Cortex-M4.

The C is cross-compiled (arm-none-eabi-gcc, newlib-nano) for QEMU's mps2-an386 board and run
there on the whole test set; its outputs must equal the host C's (int8 bit for bit, float32
within 1e-6), and the instruction counts must be exact (the same in two runs).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.bench.benchhelpers import cli

TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm", "gcc")
_missing = [t for t in TOOLS if shutil.which(t) is None]
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"needs {', '.join(_missing)}")


@pytest.fixture(scope="module")
def c_int8(digits_run, tmp_path_factory) -> Path:
    import edgekit

    out = tmp_path_factory.mktemp("qemu_int8") / "export"
    return Path(edgekit.export(digits_run.path, quantize=["int8"], c_source="int8", out=out).path)


@pytest.fixture(scope="module")
def c_float(digits_run, tmp_path_factory) -> Path:
    import edgekit

    out = tmp_path_factory.mktemp("qemu_float") / "export"
    return Path(
        edgekit.export(digits_run.path, quantize=["float32"], c_source="float32", out=out).path
    )


def _bench(*args: str) -> tuple[int, dict, str]:
    code, out, err = cli("bench", *args, "--json", "-")
    return code, json.loads(out) if out.strip() else {}, err


def _host_c(export: Path, x: np.ndarray) -> np.ndarray:
    from edgekit.runtime.c import CRunner

    with CRunner(export / "edgekit_model.c") as runner:
        return runner.infer(x)


@pytest.mark.parametrize("which", ["c_int8", "c_float"])
def test_emulated_outputs_equal_the_host_c(which, request):
    from edgekit.devices.qemu import run_on_qemu

    export = request.getfixturevalue(which)
    x = np.load(export / "test.npz")["x"]
    x = x.reshape(len(x), -1).astype(np.float32)
    run = run_on_qemu(export / "edgekit_model.c", x, trace_samples=4)
    host = _host_c(export, x)
    assert run.outputs.shape == host.shape == (len(x), 10) and len(x) >= 300
    if which == "c_int8":
        assert np.array_equal(run.outputs.view(np.uint32), host.view(np.uint32))
    else:
        assert float(np.max(np.abs(run.outputs - host))) <= 1e-6
    assert len(run.instructions) == 4 and run.mark_overhead > 0
    assert run.flash_bytes and 1_000 < run.flash_bytes < 64_000


@pytest.fixture(scope="module")
def c_int8_odd(tmp_path_factory) -> Path:
    """int8 C of a 7-feature model (features from 1e-2 to 1e3) with 7 and 6 hidden units and
    3 classes: every FULLY_CONNECTED has a column tail (n_in % 4) and a row tail (n_out % 4),
    the paths the Cortex-M4's SMLAD loop does not take on digits."""
    import keras

    import edgekit
    from edgekit.trainer.model import build_model

    base = tmp_path_factory.mktemp("qemu_odd")
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    scales = np.array([1e-2, 1e-1, 1.0, 10.0, 1e2, 1e3, 3.0], np.float32)
    x = (rng.normal(size=(400, 7)) * scales + scales).astype(np.float32)
    y = (x[:, 3] / 10 + x[:, 5] / 1e3 > 2).astype(np.int64) + (x[:, 0] > 0.01)
    model = build_model(input_shape=[7], task="multiclass", n_classes=3, hidden=[7, 6],
                        activation="relu", x_train=x, y_train=y)  # fmt: skip
    model.save(base / "odd.keras")
    np.savez(base / "data.npz", x=x, y=y)
    out = base / "export"
    edgekit.export(base / "odd.keras", quantize=["int8"], c_source="int8", data=base / "data.npz",
                   out=out)  # fmt: skip
    return out


def test_odd_shapes_take_the_tails_of_the_dsp_loop(c_int8_odd):
    from edgekit.devices.qemu import run_on_qemu

    x = np.load(c_int8_odd / "test.npz")["x"].astype(np.float32)
    manifest = json.loads((c_int8_odd / "manifest.json").read_text())
    assert manifest["c_source"]["validation"]["vs"]["tflm"]["max_lsb"] == 0
    run = run_on_qemu(c_int8_odd / "edgekit_model.c", x, trace_samples=1)
    host = _host_c(c_int8_odd, x)
    assert run.outputs.shape == host.shape == (len(x), 3)
    assert np.array_equal(run.outputs.view(np.uint32), host.view(np.uint32))


@pytest.mark.parametrize("which", ["c_int8", "c_float"])
def test_a_cortex_m3_runs_the_portable_c(which, request):
    """No DSP extension and no FPU (soft float): the C's portable loops, the same outputs."""
    from edgekit.bench.flags import EMULATED_DEVICES
    from edgekit.devices.qemu import BOARDS

    assert tuple(BOARDS) == EMULATED_DEVICES  # the light bench parent's copy of the names
    export = request.getfixturevalue(which)
    code, out, err = _bench(str(export), "--device", "qemu:cortex-m3")
    assert code == 0, err
    (row,) = out["results"]
    assert row["status"] == "ok" and row["device"] == "qemu:cortex-m3", row
    assert row["clock_hz"] == 72_000_000 and row["instructions_per_inference"] > 2_368
    assert "cycles" not in row  # the cycle timings are the Cortex-M4's only
    assert 0.8 < row["metrics"]["accuracy"] <= 1.0


@pytest.fixture(scope="module")
def c_int8_own_q(tmp_path_factory) -> Path:
    """int8 C of a model without a normalization layer on inputs in [-10, 1]: predict()
    quantizes with the .tflite's own parameters, an integer zero point above 0."""
    import keras

    import edgekit

    base = tmp_path_factory.mktemp("qemu_own_q")
    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])  # fmt: skip
    model.save(base / "m.keras")
    np.savez(base / "d.npz", x=rng.uniform(-10, 1, size=(200, 5)).astype(np.float32))
    out = base / "export"
    edgekit.export(base / "m.keras", quantize=["int8"], c_source="int8", data=base / "d.npz",
                   out=out)  # fmt: skip
    assert "_quantize(input[i]" in (out / "edgekit_model.c").read_text()
    zero_point = json.loads((out / "manifest.json").read_text())["c_source"][
        "input_quantization"]["zero_point"]  # fmt: skip
    assert zero_point > 0
    return out


@pytest.mark.parametrize("which", ["c_int8", "c_int8_odd", "c_int8_own_q"])
def test_extreme_inputs_quantize_alike_on_the_core_and_the_host(which, request):
    """VCVTR saturates at the int32 limits, where the portable rounding clamps at 1e9: an
    infinite or huge input, plus a zero point, must still land on the same int8 end."""
    from edgekit.devices.qemu import run_on_qemu

    export = request.getfixturevalue(which)
    n = json.loads((export / "manifest.json").read_text())["c_source"]["input_size"]
    values = [np.inf, -np.inf, np.nan, 3e38, -3e38, 1e10, -1e10, 2.5e9, 0.0, -0.0]
    x = np.array([[v] * n for v in values], np.float32)
    run = run_on_qemu(export / "edgekit_model.c", x, trace_samples=0)
    host = _host_c(export, x)
    assert np.array_equal(run.outputs.view(np.uint32), host.view(np.uint32))


def test_bench_row_and_exact_instruction_counts(c_int8):
    code, out, err = _bench(str(c_int8), "--device", "qemu:cortex-m4")
    assert code == 0, err
    (row,) = out["results"]
    assert row["status"] == "ok" and row["device"] == "qemu:cortex-m4" and row["runtime"] == "c"
    n = row["instructions_per_inference"]
    # digits 64-32-10 int8: 64*32 + 32*10 MACs = 2,368, a few instructions each
    assert isinstance(n, int) and 2_368 < n < 100_000
    counts = row["instructions"]
    assert counts["min"] <= n <= counts["max"] and counts["samples"] == 16
    assert row["emulated"] is True and row["clock_hz"] == 64_000_000
    assert row["latency_ms"]["mean"] == pytest.approx(counts["mean"] / 64e6 * 1e3, rel=1e-6)
    assert row["latency_source"].startswith("emulated")
    assert 0.8 < row["metrics"]["accuracy"] <= 1.0
    # the int8 C is the int8 .tflite's arithmetic: its max |diff| to Keras is the tflite's
    assert row["max_abs_diff"] < 0.1
    # exact: a second run counts the same instructions
    code, again, err = _bench(str(c_int8), "--device", "qemu:cortex-m4")
    assert code == 0, err
    assert again["results"][0]["instructions"] == counts
    # the same trace in cycles, by the Cortex-M4 manual's timings: more than one per
    # instruction (loads, taken branches), under two; the same in both runs
    cycles = row["cycles"]
    assert n < row["cycles_per_inference"] < 2 * n and cycles["samples"] == 16
    assert again["results"][0]["cycles"] == cycles
    assert row["cycles_source"].startswith("emulated: Cortex-M4 TRM instruction timings")


def test_export_without_c_source_is_refused(export_dir):
    code, _, err = _bench(str(export_dir), "--device", "qemu:cortex-m4")
    assert code == 2
    assert err.strip().splitlines()[-1].endswith("(export with --c-source float32|int8)")
    code, _, err = _bench(str(export_dir / "model.int8.tflite"), "--device", "qemu:cortex-m4")
    assert code == 2 and "export with --c-source" in err


def test_bad_device_combinations(c_int8):
    code, _, err = _bench(str(c_int8), "--device", "qemu:cortex-m4", "--runtime", "tflite")
    assert code == 2 and "runs the generated C" in err
    code, _, err = _bench(str(c_int8), "--device", "qemu:cortex-m4,cpu")
    assert code == 2 and "benched on its own" in err
    code, _, err = _bench(str(c_int8), "--device", "qemu:cortex-m99")
    assert code == 2 and "emulated devices: qemu:cortex-m4" in err
