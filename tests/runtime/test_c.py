"""``edgekit bench --runtime c``: the generated C (``export --c-source``), compiled and timed.

The export comes from the root conftest's ``digits_run`` (a seeded digits MLP). The int8 C is
bit-exact to the int8 ``.tflite`` in ai_edge_litert's builtin kernels, so its accuracy and
max |diff| must equal those computed from that interpreter.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.bench.benchhelpers import FAST, cli, rehash

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


@pytest.fixture(scope="module")
def c_export(digits_run, tmp_path_factory) -> Path:
    import edgekit

    out = tmp_path_factory.mktemp("c_int8") / "export"
    return Path(edgekit.export(digits_run.path, quantize=["int8"], c_source="int8", out=out).path)


@pytest.fixture(scope="module")
def c_float_export(digits_run, tmp_path_factory) -> Path:
    import edgekit

    out = tmp_path_factory.mktemp("c_float") / "export"
    return Path(
        edgekit.export(digits_run.path, quantize=["float32"], c_source="float32", out=out).path
    )


def _bench(*args: str) -> tuple[int, dict, str]:
    code, out, err = cli("bench", *args, "--json", "-")
    return code, json.loads(out) if out.strip() else {}, err


def _builtin_figures(export: Path) -> tuple[float, float]:
    """Accuracy and max |diff| of the int8 .tflite run with the builtin kernels."""
    from edgekit.exporters.c.litert import tflite_int8_outputs

    test = np.load(export / "test.npz")
    entry = next(
        a for a in json.loads((export / "manifest.json").read_text())["artifacts"]
        if a["variant"] == "int8"
    )  # fmt: skip
    qi, qo = entry["inputs"][0]["quantization"], entry["outputs"][0]["quantization"]
    x = test["x"].reshape(len(test["x"]), -1).astype(np.float32)
    scale = np.asarray(qi["scale"], np.float32)  # q = round(x / s + z): the manifest's rule
    q = np.clip(np.round(x / scale + np.asarray(qi["zero_point"], np.float32)), -128, 127)
    out = tflite_int8_outputs(export / "model.int8.tflite", q.astype(np.int8), kernels="builtin")
    y = ((out.astype(np.float32) - qo["zero_point"]) * np.float32(qo["scale"])).astype(np.float32)
    accuracy = float(np.mean(np.argmax(y, axis=1) == test["y"]))
    return accuracy, float(np.max(np.abs(y - test["reference"].reshape(y.shape))))


def test_c_rows_beside_tflite(c_export):
    code, doc, err = _bench(str(c_export), "--runtime", "auto,c", *FAST)
    assert code == 0, err
    rows = {r["runtime"]: r for r in doc["results"]}
    assert sorted(rows) == ["c", "tflite"]
    c = rows["c"]
    assert (c["artifact"], c["format"], c["variant"], c["device"]) == (
        "edgekit_model.c", "c", "c-int8", "cpu"
    )  # fmt: skip
    assert c["status"] == "ok" and c["error"] is None
    assert c["runs"] >= 20 and 0 < c["latency_ms"]["p50"] < 1.0
    assert set(c["latency_ms"]) == {"min", "mean", "std", "p50", "p90", "p95", "p99", "max"}
    assert c["init_ms"] > 0 and c["first_ms"] > 0 and c["throughput_per_s"] > 0
    # the compiled code and weights: more than the int8 weights, less than the C source text
    assert 2000 < c["size_bytes"] < (c_export / "edgekit_model.c").stat().st_size
    accuracy, max_diff = _builtin_figures(c_export)
    assert c["metrics"]["accuracy"] == accuracy
    assert c["max_abs_diff"] == pytest.approx(max_diff, abs=1e-7)


def test_runtime_c_alone_and_the_c_file(c_export):
    code, doc, err = _bench(str(c_export), "--runtime", "c", *FAST)
    assert code == 0, err
    assert [r["runtime"] for r in doc["results"]] == ["c"]
    # the .c file itself, runtime auto (by file type)
    code, doc, err = _bench(str(c_export / "edgekit_model.c"), *FAST)
    assert code == 0, err
    assert [(r["variant"], r["status"]) for r in doc["results"]] == [("c-int8", "ok")]


def test_batch_loops_over_samples_and_threads_do_not_apply(c_export):
    code, doc, err = _bench(
        str(c_export), "--runtime", "c", "--batch", "1,32", "--threads", "1,2", *FAST
    )
    assert code == 0, err
    got = {(r["threads"], r["batch"]): r for r in doc["results"]}
    assert got[1, 32]["latency_ms"]["p50"] > 4 * got[1, 1]["latency_ms"]["p50"]  # 32 calls
    for batch in (1, 32):
        assert got[2, batch]["status"] == "skipped"
        assert got[2, batch]["error"] == (
            "the generated C runs on one thread; threads=2 does not apply"
        )


def test_float32_c_matches_keras(c_float_export):
    code, doc, err = _bench(str(c_float_export), "--runtime", "auto,c", *FAST)
    assert code == 0, err
    rows = {r["variant"]: r for r in doc["results"]}
    assert rows["c-float32"]["status"] == "ok"
    assert rows["c-float32"]["max_abs_diff"] < 1e-5
    assert rows["c-float32"]["metrics"] == rows["float32"]["metrics"]


def test_runner_api(c_export, tmp_path):
    from edgekit.exporters.c.artifact import CSource
    from edgekit.exporters.c.harness import compile_harness, run_harness
    from edgekit.runtime import open_runner

    x = np.load(c_export / "test.npz")["x"]
    with open_runner(c_export / "edgekit_model.c") as runner:
        assert runner.runtime == "c" and runner.input.shape == [-1, 8, 8]
        got = runner.infer(x)
    c = CSource.load(c_export)
    exe = compile_harness(c, tmp_path)
    want = run_harness(exe, x.reshape(len(x), -1), n_out=c.output_size, int8=False)
    np.testing.assert_array_equal(got, want)


def test_the_build_for_this_cpu_falls_back_to_the_portable_one(c_export, monkeypatch):
    """-O3 with the CPU's own instructions where the compiler takes them; a compiler that
    accepts -march=native but cannot build with it (an old assembler) gets the portable
    build, with the same outputs."""
    import edgekit.runtime.c as c_runtime
    from edgekit.runtime import open_runner

    x = np.load(c_export / "test.npz")["x"]
    with open_runner(c_export / "edgekit_model.c") as runner:
        native = runner.infer(x)
        assert runner.cflags[:3] == ["-std=c99", "-O3", "-ffp-contract=off"]
    monkeypatch.setattr(c_runtime, "NATIVE", ["-mno-such-flag-edgekit"])
    with open_runner(c_export / "edgekit_model.c") as runner:
        portable = runner.infer(x)
        assert runner.cflags == c_runtime.CFLAGS
    np.testing.assert_array_equal(native, portable)


def test_no_compiler_is_a_skipped_row(c_export, monkeypatch, tmp_path):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang on it
    code, doc, err = _bench(str(c_export), "--runtime", "c", *FAST)
    assert code == 0, err
    (row,) = doc["results"]
    assert (row["status"], row["error"]) == (
        "skipped", "no C compiler found (set CC, or install gcc or clang)"
    )  # fmt: skip


def test_broken_c_is_an_error_row(c_export, tmp_path):
    broken = tmp_path / "export"
    shutil.copytree(c_export, broken)
    (broken / "edgekit_model.c").write_text("int edgekit_predict(oops;\n")
    rehash(broken, "edgekit_model.c")  # recorded as exported: the compiler sees it
    code, doc, err = _bench(str(broken), "--runtime", "c", *FAST)
    assert code == 1
    (row,) = doc["results"]
    assert row["status"] == "error"
    assert row["error"].startswith("compiling edgekit_model.c failed: ")
    assert err.splitlines()[-1] == "edgekit: error: 1 measurement(s) failed"


def test_c_usage_errors(c_export, export_dir):
    code, _, err = cli("bench", str(export_dir), "--runtime", "c")
    assert (code, err) == (
        2,
        f"edgekit: error: {export_dir}: holds no C source to benchmark with the c runtime "
        "(export with --c-source float32|int8)\n",
    )
    model = c_export / "model.int8.tflite"
    code, _, err = cli("bench", str(model), "--runtime", "c")
    assert err == (
        f"edgekit: error: {model}: the c runtime does not run .tflite files (use --runtime "
        "tflite or auto)\n"
    )
    source = c_export / "edgekit_model.c"
    code, _, err = cli("bench", str(source), "--runtime", "tflite")
    assert err == (
        f"edgekit: error: {source}: the tflite runtime does not run .c files (use --runtime c "
        "or auto)\n"
    )
