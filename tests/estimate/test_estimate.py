"""``edgekit estimate``: exact MACs and parameters, arena planning, catalog, CLI and errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgekit.errors import EdgekitError
from edgekit.estimate import estimate, get_target, list_targets, load_catalog
from edgekit.formats.arena import Buffer, greedy_plan, peak_live
from tests.conftest import cli, run_cli

# 784 -> 128 -> 10, computed by hand
MNIST_MACS = 784 * 128 + 128 * 10  # 101,632
MNIST_PARAMS = (784 * 128 + 128) + (128 * 10 + 10)  # 101,770
BUILTIN = ("cortex-m4", "cortex-m7", "cortex-m33", "esp32-s3", "rpi-zero2", "rpi4")


@pytest.fixture(autouse=True)
def _no_user_catalog(tmp_path, monkeypatch):
    """Keep the developer's own ~/.config/edgekit/targets.toml out of the tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.mark.parametrize("variant", ["float32", "int8", "dynamic", "onnx"])
def test_macs_and_params_are_exact_for_a_dense_stack(mnist_models, variant):
    e = estimate(mnist_models[variant], target="cortex-m4")
    dense = [layer for layer in e.layers if layer.macs]
    assert [layer.macs for layer in dense] == [784 * 128, 128 * 10]
    assert [layer.params for layer in dense] == [784 * 128 + 128, 128 * 10 + 10]
    assert e.macs == MNIST_MACS == 101_632
    assert e.params == MNIST_PARAMS
    assert e.flash_bytes == mnist_models[variant].stat().st_size


def test_int8_arena_from_tensor_lifetimes(mnist_models):
    e = estimate(mnist_models["int8"], target="cortex-m4")
    assert e.compute == "int8"
    # The converter flattens with SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE (dynamic batch).
    # At the RESHAPE, the 784-byte input, the 784-byte flattened copy and the 8-byte int32
    # shape are alive together: 1576 bytes, the peak; the greedy plan reaches it.
    assert e.peak_activation_bytes == 784 + 784 + 8
    assert e.arena_bytes == 1576
    assert e.scratch_bytes == 0
    assert e.fits_ram and e.fits_flash


def test_float_arena_is_four_bytes_per_value(mnist_models):
    e = estimate(mnist_models["float32"], target="cortex-m7")
    assert e.compute == "float32"
    assert e.peak_activation_bytes == 4 * (784 + 784) + 8


def test_dynamic_range_counts_the_hybrid_scratch(mnist_models):
    e = estimate(mnist_models["dynamic"], target="rpi4")
    assert e.compute == "int8"  # both layers are large enough to get int8 weights
    # per hybrid layer: the quantized input, int32 accumulators and row sums, scales
    assert e.scratch_bytes == (784 + 8 * 128 + 8) + (128 + 8 * 10 + 8)
    assert "hybrid int8" in " ".join(e.notes)


def test_latency_is_macs_times_cycles_plus_op_overhead(mnist_models):
    e = estimate(mnist_models["int8"], target="cortex-m4")
    t = get_target("cortex-m4")
    assert (t.clock_hz, t.cycles_per_mac_int8, t.op_overhead_cycles) == (64e6, 1.0, 2000.0)
    assert e.ops == 7
    assert e.latency_ms == pytest.approx((MNIST_MACS * 1.0 + 7 * 2000) / 64e6 * 1e3)
    f = estimate(mnist_models["float32"], target="cortex-m4")
    assert f.latency_ms == pytest.approx((MNIST_MACS * 4.0 + 7 * 2000) / 64e6 * 1e3)


def test_arena_planner_reuses_memory_of_dead_tensors():
    a, b, c = Buffer("a", 100, 0, 1), Buffer("b", 50, 1, 2), Buffer("c", 100, 2, 3)
    assert peak_live([a, b, c]) == 150
    assert greedy_plan([a, b, c]) == 162  # c reuses a's bytes; b sits after a, 16-aligned
    assert (a.offset, b.offset, c.offset) == (0, 112, 0)


def test_catalog_has_every_number_sourced():
    targets = {t.name: t for t in list_targets()}
    assert set(BUILTIN) <= set(targets)
    for t in targets.values():
        for key in ("clock_hz", "ram_bytes", "flash_bytes", "cycles_per_mac_int8",
                    "cycles_per_mac_float", "op_overhead_cycles"):  # fmt: skip
            source = t.sources[key]
            assert source.startswith(("datasheet:", "assumption:")), (t.name, key)
        assert t.sources["cycles_per_mac_int8"].startswith("assumption:")


def test_user_catalog_adds_and_overrides_targets(tmp_path, mnist_models):
    (tmp_path / "edgekit.toml").write_text(
        "[devices.pi]\nhost = 'pi@pi.local'\n\n"
        "[targets.tiny]\n"
        "description = 'a 32 KB part'\nclock_hz = 48e6\nram_bytes = 1024\n"
        "flash_bytes = 32768\ncycles_per_mac_int8 = 2\ncycles_per_mac_float = 10\n"
        "source = 'assumption: a made-up part for the test'\n",
        encoding="utf-8",
    )
    assert load_catalog()["tiny"].origin.endswith("edgekit.toml")
    e = estimate(mnist_models["int8"], target="tiny")
    assert not e.fits_ram and not e.fits_flash
    code, out, err = cli("estimate", str(mnist_models["int8"]), "--target", "tiny")
    assert code == 1
    assert "DOES NOT FIT" in out
    assert err == "edgekit: error: model.int8.tflite does not fit tiny: RAM and flash\n"


def test_a_number_without_source_is_refused(tmp_path):
    (tmp_path / "edgekit.toml").write_text(
        "[targets.bad]\nclock_hz = 1e6\nram_bytes = 1\nflash_bytes = 1\n"
        "cycles_per_mac_int8 = 1\ncycles_per_mac_float = 1\n"
        "[targets.bad.sources]\nclock_hz = 'datasheet: x'\n",
        encoding="utf-8",
    )
    with pytest.raises(EdgekitError) as err:
        load_catalog()
    assert str(err.value) == (
        f"{tmp_path / 'edgekit.toml'}: target 'bad': ram_bytes has no source; add "
        'sources.ram_bytes = "datasheet ..." or "assumption: ..." '
        "(every number says where it comes from)"
    )


def test_cli_text_says_it_is_an_estimate(mnist_models):
    code, out, err = cli("estimate", str(mnist_models["int8"]), "--target", "cortex-m4")
    assert (code, err) == (0, "")
    assert out.startswith("ESTIMATE from the model file and a target catalog, not a measurement.")
    assert "total: 101,632 MACs, 101,770 parameters, 7 ops" in out
    assert "assumptions in this estimate:" in out


def test_cli_json(mnist_models):
    code, out, _ = cli("estimate", str(mnist_models["float32"]), "--target", "rpi4", "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["schema"] == "edgekit.estimate/1" and doc["estimate"] is True
    assert doc["totals"]["macs"] == MNIST_MACS and doc["totals"]["params"] == MNIST_PARAMS
    assert doc["fits"] == {"ram": True, "flash": True}
    assert doc["target"]["sources"]["clock_hz"].startswith("datasheet:")
    assert [la["macs"] for la in doc["layers"] if la["macs"]] == [100_352, 1280]


def test_cli_lists_targets():
    code, out, _ = cli("estimate", "--list-targets")
    assert code == 0
    for name in BUILTIN:
        assert f"\n{name} " in out
    code, out, _ = cli("estimate", "--list-targets", "--json")
    names = [t["name"] for t in json.loads(out)["targets"]]
    assert code == 0 and set(BUILTIN) <= set(names)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["estimate", "m.tflite", "--target", "arduino"],
         "unknown target 'arduino'; choose from cortex-m33, cortex-m4, cortex-m7, esp32-s3, "
         "rpi-zero2, rpi4"),
        (["estimate", "--target", "rpi4"],
         "estimate needs an ARTIFACT (a .tflite or .onnx file) or --list-targets"),
        (["estimate", "m.tflite"],
         "estimate needs --target NAME; choose from cortex-m33, cortex-m4, cortex-m7, "
         "esp32-s3, rpi-zero2, rpi4"),
        (["estimate", "missing.tflite", "--target", "rpi4"], "missing.tflite: no such file"),
        (["estimate", "m.tflite", "--list-targets"],
         "--list-targets takes no ARTIFACT and no --target"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(argv, message):
    code, out, err = cli(*argv)
    assert (code, out) == (2, "")
    assert err == f"edgekit: error: {message}\n"


def test_corrupt_and_unknown_files(tmp_path):
    (tmp_path / "junk.tflite").write_bytes(b"not a model at all")
    (tmp_path / "cut.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00\xff" * 20)
    (tmp_path / "m.h5").write_bytes(b"x")
    cases = {
        "junk.tflite": "junk.tflite: not a TensorFlow Lite flatbuffer",
        "cut.tflite": "cut.tflite: not a valid TensorFlow Lite model (truncated or corrupt "
        "flatbuffer)",
        "m.h5": "m.h5: unknown model type '.h5'; edgekit estimates .tflite and .onnx files",
        ".": ".: is a directory; estimate takes one .tflite or .onnx file",
    }
    for name, message in cases.items():
        code, out, err = cli("estimate", name, "--target", "rpi4")
        assert (code, out, err) == (2, "", f"edgekit: error: {message}\n"), name


def test_estimate_needs_no_tensorflow(mnist_models):
    code = (
        "import sys\n"
        "from edgekit.estimate import estimate\n"
        f"e = estimate({str(mnist_models['int8'])!r}, target='esp32-s3')\n"
        "assert e.macs == 101632, e.macs\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = run_cli("estimate", str(mnist_models["int8"]), "--target", "nope")
    assert done.returncode == 2 and "Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["inf", "nan", "+inf"])
def test_catalog_numbers_must_be_finite(tmp_path, value):
    (tmp_path / "edgekit.toml").write_text(
        f"[targets.bad]\nclock_hz = {value}\nram_bytes = 1\nflash_bytes = 1\n"
        "cycles_per_mac_int8 = 1\ncycles_per_mac_float = 1\n",
        encoding="utf-8",
    )
    with pytest.raises(EdgekitError) as err:
        load_catalog()
    assert str(err.value).startswith(f"{tmp_path / 'edgekit.toml'}: target 'bad': clock_hz must")
    assert "finite" in str(err.value) or "non-negative" in str(err.value)
