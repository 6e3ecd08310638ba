"""``edgekit estimate``: exact MACs and parameters, arena planning, catalog, CLI and errors."""

from __future__ import annotations

import json
import math
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
BUILTIN = ("cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "esp32-s3", "rpi-zero2", "rpi4")


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
    assert e.activation_bytes == 1576
    assert e.scratch_bytes == 0
    assert e.fits_ram and e.fits_flash
    # TFLite Micro's arena: a head (the plan, or the planner's temporaries if larger) and a
    # persistent tail (the catalog's fit)
    tflm = get_target("cortex-m4").runtimes["tflm"]
    assert e.runtime == "tflm" and e.tensors == 15
    tail = (tflm.arena_base + 15 * tflm.arena_per_tensor + 7 * tflm.arena_per_op
            + 2 * tflm.arena_ops["FULLY_CONNECTED.int8"][0]
            + (128 + 10) * tflm.arena_ops["FULLY_CONNECTED.int8"][1])  # fmt: skip
    head = max(1576, tflm.arena_temp_base + 15 * tflm.arena_temp_per_tensor)
    assert e.arena_bytes == -(-math.ceil(head + tail) // 16) * 16
    # the generated C's buffers are static: it needs the activations alone
    assert estimate(mnist_models["int8"], target="cortex-m4", runtime="c").arena_bytes == 1576


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
    """Without a runtime cost model (cortex-m7), the catalog's MAC and op figures."""
    e = estimate(mnist_models["int8"], target="cortex-m7")
    t = get_target("cortex-m7")
    assert (t.clock_hz, t.cycles_per_mac_int8, t.op_overhead_cycles) == (216e6, 0.6, 2000.0)
    assert e.ops == 7 and e.runtime is None
    assert e.latency_ms == pytest.approx((MNIST_MACS * 0.6 + 7 * 2000) / 216e6 * 1e3)
    f = estimate(mnist_models["float32"], target="cortex-m7")
    assert f.latency_ms == pytest.approx((MNIST_MACS * 1.5 + 7 * 2000) / 216e6 * 1e3)
    assert f.total_flash_bytes == f.flash_bytes  # model only
    assert "flash (model only, no runtime)" in f.text()


def test_latency_on_the_m4_is_the_runtimes_per_op_instructions(mnist_models):
    e = estimate(mnist_models["int8"], target="cortex-m4")
    tflm = get_target("cortex-m4").runtimes["tflm"]
    fc = tflm.ops["FULLY_CONNECTED.int8"]
    softmax = tflm.ops["SOFTMAX.int8"]
    # 7 ops dispatched; the two FULLY_CONNECTED layers and the SOFTMAX priced per MAC and
    # per output; the RESHAPE per element; SHAPE, STRIDED_SLICE, PACK (int32) dispatch only
    expected = (7 * tflm.op_overhead + fc.per_mac * MNIST_MACS + fc.per_element * (128 + 10)
                + softmax.per_element * 10 + tflm.ops["RESHAPE"].per_element * 784)  # fmt: skip
    assert e.cycles == pytest.approx(expected)
    assert e.latency_ms == pytest.approx(expected / 64e6 * 1e3)
    c = estimate(mnist_models["int8"], target="cortex-m4", runtime="c")
    assert c.runtime == "c" and c.cycles != e.cycles
    assert [r.name for r in e.runtimes] == ["tflm", "c"]
    with pytest.raises(EdgekitError, match="has no runtime 'nope'; choose from tflm, c"):
        estimate(mnist_models["int8"], target="cortex-m4", runtime="nope")


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
        for rt in t.runtimes.values():
            keys = ["flash_bytes", "op_overhead", *(f"ops.{k}" for k in rt.ops)]
            for key in keys:
                assert rt.sources[key].startswith(
                    ("measured here:", "measured elsewhere:", "datasheet:", "assumption:")
                ), (t.name, rt.name, key)
    m4 = targets["cortex-m4"].runtimes
    assert m4["tflm"].sources["arena_base"].startswith("measured here:")
    assert m4["tflm"].sources["ops.FULLY_CONNECTED.int8"].startswith("measured elsewhere:")
    assert m4["c"].sources["ops.FULLY_CONNECTED.int8"].startswith("measured here:")


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


USER_RUNTIME = (
    "[targets.tiny]\nclock_hz = 1e6\nram_bytes = 65536\nflash_bytes = 1048576\n"
    "cycles_per_mac_int8 = 1\ncycles_per_mac_float = 1\nsource = 'assumption: test'\n"
    "[targets.tiny.runtimes.rt]\nflash_bytes = 1000\nop_overhead = 10\narena_base = 100\n"
    "arena_temp_base = 4000\nsource = '{source}'\n"
    "[targets.tiny.runtimes.rt.ops]\n'FULLY_CONNECTED.int8' = [5, 2, 1]\n"
)


def test_a_user_runtime_prices_ops_and_sizes_the_arena(tmp_path, mnist_models):
    (tmp_path / "edgekit.toml").write_text(
        USER_RUNTIME.format(source="measured here: a test"), encoding="utf-8"
    )
    e = estimate(mnist_models["int8"], target="tiny")
    assert e.runtime == "rt" and e.total_flash_bytes == e.flash_bytes + 1000
    # 7 ops dispatched; the two FULLY_CONNECTED layers per call, MAC and output
    assert e.cycles == 7 * 10 + 2 * 5 + 2 * MNIST_MACS + (128 + 10)
    # the head: the planner's temporaries (4,000 B) exceed the 1,576 B of activations
    assert e.activation_bytes == 1576 and e.arena_bytes == 4112


def test_a_runtime_source_must_say_what_kind_of_figure_it_is(tmp_path):
    (tmp_path / "edgekit.toml").write_text(
        USER_RUNTIME.format(source="fitted somewhere"), encoding="utf-8"
    )
    with pytest.raises(EdgekitError, match="must start with one of datasheet:, measured here:"):
        load_catalog()


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
         "unknown target 'arduino'; choose from cortex-m3, cortex-m33, cortex-m4, cortex-m7, esp32-s3, "
         "rpi-zero2, rpi4"),
        (["estimate", "--target", "rpi4"],
         "estimate needs an ARTIFACT (a .tflite or .onnx file) or --list-targets"),
        (["estimate", "m.tflite"],
         "estimate needs --target NAME; choose from cortex-m3, cortex-m33, cortex-m4, cortex-m7, "
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


def test_ops_outside_the_calibration_are_priced_by_their_macs(tmp_path):
    """The Cortex-M4 cost models were fitted on MLPs: a convolution's MACs are priced at
    FULLY_CONNECTED's cost per MAC (it was 4 instructions per output element, whatever its
    MACs, and 0 for edgekit's C), and the estimate says so."""
    import keras
    import numpy as np

    from edgekit.estimate import estimate
    from edgekit.exporters.tflite import to_tflite

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 16, 16, 1)).astype(np.float32)
    # named layers: Keras's automatic names count per process ("conv2d", "conv2d_1"), and
    # other tests expect the first ones
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(16, 3, name="c"),
                              keras.layers.Flatten(name="f"), keras.layers.Dense(4, name="d")],
                             name="cnn")  # fmt: skip
    tfl = to_tflite(model, tmp_path / "cnn.int8.tflite", variant="int8", calibration=x)
    for runtime in ("tflm", "c"):
        e = estimate(tfl, target="cortex-m4", runtime=runtime)
        conv = next(layer for layer in e.layers if layer.op == "CONV_2D")
        assert conv.macs == 14 * 14 * 16 * 9
        assert conv.instructions[runtime] >= 1.5 * conv.macs  # FC int8: about 1.6-1.8 per MAC
        assert any("CONV_2D (int8) is outside what the" in n for n in e.notes), e.notes
