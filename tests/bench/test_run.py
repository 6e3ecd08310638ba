"""``edgekit bench`` end to end on real artifacts: figures, isolation, outputs and gates."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from edgekit.bench import BENCH_SCHEMA, load_bench, run_bench
from edgekit.bench.isolate import WorkerPool
from edgekit.bench.job import Job
from edgekit.errors import EdgekitError
from tests.bench.benchhelpers import (
    CLASSES,
    FAST,
    FEATURES,
    cli,
    corrupt_input_type,
    manifest,
    noisy_run,
    rehash,
    run_edgekit,
)

QUICK = dict(warmup=2, runs=20, min_time=0.0)
ROW_KEYS = [
    "artifact", "format", "variant", "runtime", "device", "threads", "batch", "status", "error",
    "size_bytes", "init_ms", "first_ms", "latency_ms", "throughput_per_s", "peak_rss_mb",
    "metrics", "max_abs_diff",
]  # fmt: skip


def test_export_dir_figures(export_dir):
    result = run_bench([export_dir], batch=[1, 32], **QUICK)
    assert result.passed
    by = {(r.artifact, r.batch): r for r in result.rows}
    assert sorted(by) == sorted(
        (a, b) for a in ("model.float32.tflite", "model.int8.tflite", "model.float32.onnx")
        for b in (1, 32)
    )  # fmt: skip
    entries = {a["file"]: a for a in manifest(export_dir)["artifacts"]}
    test = np.load(export_dir / "test.npz")
    for (name, batch), row in by.items():
        assert row.status == "ok" and row.error is None
        assert row.variant == entries[name]["variant"]
        assert row.format == entries[name]["format"]
        assert row.runtime == {"tflite": "tflite", "onnx": "onnxruntime"}[row.format]
        assert row.size_bytes == (export_dir / name).stat().st_size
        lat = row.latency_ms
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert lat["min"] <= lat["mean"] <= lat["max"]
        # samples/s at the median batch time (it was batch / mean: changed on purpose)
        assert row.throughput_per_s == pytest.approx(batch * 1000 / lat["p50"])
        kept = np.array([v for v in row.samples_ms if v <= lat["p99"]])
        unstable = bool(lat["p95"] / lat["p50"] > 2 or kept.std() / kept.mean() > 0.5)
        assert row.unstable is unstable and row.to_json()["unstable"] is unstable
        assert row.runs >= 20 and len(row.samples_ms) == row.runs
        assert min(row.samples_ms) == pytest.approx(lat["min"], abs=1e-6)
        assert row.init_ms > 0 and row.first_ms > 0
        assert 20 < row.peak_rss_mb < 2000
        # Accuracy and parity on test.npz are those the exporter validated.
        validation = entries[name]["validation"]
        assert row.metrics["accuracy"] == pytest.approx(validation["metrics"]["accuracy"])
        assert row.max_abs_diff == pytest.approx(validation["max_abs_diff"], rel=1e-3, abs=1e-6)
        keras_acc = np.mean(np.argmax(test["reference"], 1) == test["y"])
        assert row.accuracy_drop == pytest.approx(100 * (keras_acc - row.metrics["accuracy"]))
    assert by["model.float32.tflite", 1].max_abs_diff < 1e-4
    assert by["model.int8.tflite", 1].max_abs_diff > 1e-4  # quantized: real, visible error
    json_rows = result.to_json()["results"]
    assert list(json_rows[0])[: len(ROW_KEYS)] == ROW_KEYS


def test_threads_rows_and_min_time_extends_runs(export_dir):
    result = run_bench(
        [export_dir / "model.int8.tflite"], threads=[1, 2], warmup=0, runs=5, min_time=0.3
    )
    assert [r.threads for r in result.rows] == [1, 2]
    for row in result.rows:
        # a call takes microseconds: 0.3 s of timing gives far more than 5 runs,
        assert row.runs > 1000
        # and the stored samples are capped (evenly spaced over the run).
        assert len(row.samples_ms) == 2000


def test_bare_file_without_manifest_or_data(export_dir, tmp_path):
    lone = tmp_path / "lone.tflite"
    lone.write_bytes((export_dir / "model.float32.tflite").read_bytes())
    (row,) = run_bench([lone], **QUICK).rows
    assert (row.status, row.variant, row.metrics, row.max_abs_diff) == ("ok", "lone", None, None)
    assert row.latency_ms["p50"] > 0


def test_data_file_infers_the_task(export_dir, tmp_path):
    lone = tmp_path / "m.onnx"
    lone.write_bytes((export_dir / "model.float32.onnx").read_bytes())
    test = np.load(export_dir / "test.npz")
    np.savez(tmp_path / "d.npz", x=test["x"][:50], y=test["y"][:50])
    (row,) = run_bench([lone], data=tmp_path / "d.npz", **QUICK).rows
    expected = np.mean(np.argmax(test["reference"][:50], 1) == test["y"][:50])
    assert row.metrics["accuracy"] == pytest.approx(expected)
    assert row.variant == "onnx-m" and row.max_abs_diff is None


def test_wrong_feature_count_is_a_usage_error(export_dir, tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((5, 10), np.float32), y=np.zeros(5, np.int64))
    # Known from the manifest before anything runs:
    with pytest.raises(EdgekitError) as err:
        run_bench([export_dir], data=tmp_path / "bad.npz", **QUICK)
    assert str(err.value) == (
        f"{tmp_path / 'bad.npz'}: 'x' has samples of shape [10], model.float32.tflite takes "
        "[batch, 8, 8]"
    )
    # Found by the child for a bare file:
    lone = tmp_path / "lone.tflite"
    lone.write_bytes((export_dir / "model.float32.tflite").read_bytes())
    code, _, err_text = cli("bench", str(lone), "--data", str(tmp_path / "bad.npz"), *FAST)
    assert code == 2
    assert err_text.splitlines()[-1] == (
        f"edgekit: error: {tmp_path / 'bad.npz'}: 'x' has samples of shape [10], lone.tflite "
        "takes [batch, 8, 8]"
    )


def test_a_crashing_runtime_is_isolated(export_copy):
    """A corrupt int8 model crashes LiteRT; bench reports it and measures the rest."""
    bad = export_copy / "model.int8.tflite"
    corrupt_input_type(bad, bad)
    rehash(export_copy, bad.name)  # the manifest records the corrupt file (else: refused)
    proc = run_edgekit("bench", str(export_copy), *FAST, "--json", "-")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == "edgekit: error: 1 measurement(s) failed"
    assert "Traceback" not in proc.stderr
    rows = {r["artifact"]: r for r in json.loads(proc.stdout)["results"]}
    assert rows["model.int8.tflite"]["status"] == "error"
    # LiteRT segfaults or aborts (depending on the call path): either way, a signal.
    assert rows["model.int8.tflite"]["error"] in (
        "killed by signal SIGSEGV",
        "killed by signal SIGABRT",
    )
    assert rows["model.int8.tflite"]["latency_ms"] is None
    assert rows["model.float32.tflite"]["status"] == "ok"
    assert rows["model.float32.onnx"]["status"] == "ok"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("model.float32.tflite", "truncate", "cannot load the TFLite model (The model is not a "
                                             "valid Flatbuffer buffer)"),
        ("model.float32.tflite", b"\x89PNG\r\n\x1a\n" + bytes(100), "not a TensorFlow Lite "
                                                                      "flatbuffer"),
        ("model.float32.onnx", "truncate", "cannot load the ONNX model"),
        ("model.float32.onnx", b"hello, world\n" * 10, "cannot load the ONNX model"),
    ],
)  # fmt: skip
def test_corrupt_and_foreign_files_are_error_rows(export_copy, name, content, message):
    path = export_copy / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if content == "truncate" else content)
    rehash(export_copy, name)  # the manifest records the damaged file (else: refused)
    code, out, err = cli("bench", str(path), *FAST)
    assert code == 1
    assert err.splitlines()[-1] == "edgekit: error: 1 measurement(s) failed"
    assert f"error: {name} [" in out and message in out
    assert "Traceback" not in out + err


def test_a_hanging_child_is_killed_at_the_timeout(tmp_path):
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    with WorkerPool(hang) as pool:
        result = pool.run(Job(path="x.tflite", runtime="tflite"), timeout=1)
    assert result == {
        "status": "error",
        "error": "timed out after 1 s (the child process was killed)",
    }


def test_worker_failures_become_error_rows(tmp_path):
    crash = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    fail = [sys.executable, "-c", "import sys; sys.exit('boom: bad things')"]
    silent = [sys.executable, "-c", "print('not json')"]
    job = Job(path="x.tflite", runtime="tflite")
    with WorkerPool(crash) as pool:
        assert pool.run(job, timeout=30)["error"] == "killed by signal SIGSEGV"
    with WorkerPool(fail) as pool:
        assert pool.run(job, timeout=30)["error"] == (
            "the worker exited with code 1: boom: bad things"
        )
    with WorkerPool(silent) as pool:
        assert pool.run(job, timeout=30)["error"] == "the worker returned no result"


def test_gpu_rows_are_skipped_without_a_gpu(export_dir):
    import onnxruntime

    result = run_bench([export_dir], device="gpu", **QUICK)
    assert result.passed  # skipped is not a failure
    rows = {r.artifact: r for r in result.rows}
    tfl = rows["model.float32.tflite"]
    assert (tfl.status, tfl.error) == ("skipped", "the tflite runtime runs on the CPU only")
    onnx = rows["model.float32.onnx"]
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA; the skip path is not reachable")
    assert onnx.status == "skipped"
    assert onnx.error.startswith("no CUDA execution provider in this onnxruntime")


def test_keras_reference_runtime(export_dir):
    (row,) = run_bench([export_dir], runtime="keras", **QUICK).rows
    assert (row.artifact, row.variant, row.runtime, row.status) == (
        "model.keras", "keras", "keras", "ok"
    )  # fmt: skip
    assert row.max_abs_diff < 1e-5
    assert row.accuracy_drop == 0.0


def test_json_to_stdout_is_pure_json_and_table_goes_to_stderr(export_dir):
    proc = run_edgekit("bench", str(export_dir / "model.int8.tflite"), *FAST, "--json", "-")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["schema"] == BENCH_SCHEMA
    assert set(obj["environment"]) >= {"host", "cpu", "cores", "python", "versions"}
    assert obj["environment"]["versions"]["ai-edge-litert"]
    assert obj["budgets"] == []
    assert "model.int8.tflite  int8" in proc.stderr
    assert "[1/1] model.int8.tflite tflite cpu threads=1 batch=1: ok, p50 " in proc.stderr


def test_json_markdown_and_step_summary_files(export_dir, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out_json, out_md = tmp_path / "b.json", tmp_path / "b.md"
    code, out, err = cli(
        "bench", str(export_dir / "model.float32.onnx"), *FAST,
        "--json", str(out_json), "--markdown", str(out_md),
    )  # fmt: skip
    assert code == 0, err
    bench = load_bench(out_json)
    assert [r.artifact for r in bench.rows] == ["model.float32.onnx"]
    md = out_md.read_text()
    assert md.startswith("## edgekit bench\n")
    assert "| model.float32.onnx | onnx-float32 | onnxruntime | cpu | 1 | 1 | ok |" in md
    assert summary.read_text() == "# earlier step\n" + md + "\n"
    header = out.splitlines()[0].split()
    assert header[:7] == ["artifact", "variant", "runtime", "device", "threads", "batch", "status"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave nothing behind


def test_budgets_pass_fail_and_json(export_dir, tmp_path):
    out = tmp_path / "b.json"
    code, stdout, err = cli(
        "bench", str(export_dir), *FAST, "--budget", "accuracy>=0.5",
        "--budget", "int8:p95_ms<=0.000001", "--budget", "size_kb<1000", "--json", str(out),
    )  # fmt: skip
    assert code == 1
    assert err.splitlines()[-1] == "edgekit: error: 1 budget check(s) violated"
    lines = stdout.split("budget violations:\n", 1)[1].splitlines()
    assert lines[0].split() == ["budget", "artifact", "runtime", "threads", "batch", "value"]
    assert lines[2].split()[:5] == ["int8:p95_ms<=0.000001", "model.int8.tflite", "tflite",
                                    "1", "1"]  # fmt: skip
    budgets = json.loads(out.read_text())["budgets"]
    assert len(budgets) == 3 + 1 + 3
    assert [b["passed"] for b in budgets if b["expr"] != "int8:p95_ms<=0.000001"] == [True] * 6
    (bad,) = [b for b in budgets if not b["passed"]]
    assert bad["artifact"] == "model.int8.tflite" and bad["value"] > 0.000001

    code, stdout, err = cli("bench", str(export_dir), *FAST, "--budget", "accuracy>=0.5")
    assert code == 0 and "budgets: 3 check(s) passed" in stdout


def test_same_model_measured_twice_does_not_flag(export_dir, tmp_path):
    """Two copies of one model, measured in 5 interleaved rounds each (--repeat): the way to
    compare on a noisy machine. This machine's speed flips by up to 2x within milliseconds
    (other tenants), which the two-stage bootstrap absorbs."""
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        shutil.copy(export_dir / "model.float32.tflite", tmp_path / side)
    both = tmp_path / "both.json"
    code, _, err = cli(
        "bench", str(tmp_path / "a" / "model.float32.tflite"),
        str(tmp_path / "b" / "model.float32.tflite"), "--repeat", "5", "--warmup", "20",
        "--runs", "200", "--min-time", "0.1", "--json", str(both),
    )  # fmt: skip
    assert code == 0, err
    obj = json.loads(both.read_text())
    assert [r["rounds"] for r in obj["results"]] == [5, 5]
    assert [len(r["samples_ms"]) for r in obj["results"]] == [2000, 2000]
    for i, name in enumerate(("base", "new")):
        (tmp_path / f"{name}.json").write_text(json.dumps({**obj, "results": [obj["results"][i]]}))
    code, out, err = cli("compare", str(tmp_path / "base.json"), str(tmp_path / "new.json"))
    assert code == 0, out + err
    # Never a regression (the gate passes). Two copies of one file may still differ by a few
    # per cent for real (where the interpreter's buffers land), which a tight interval calls
    # "faster" or "slower" within the allowance; "noise" when other tenants load the machine.
    assert out.splitlines()[2].split()[-1] in ("same", "noise", "faster", "slower")


def _with_samples(obj: dict, samples) -> dict:
    """``obj`` (a bench file) with its row's latencies replaced by ``samples``."""
    from edgekit.bench.stats import summarize

    obj = json.loads(json.dumps(obj))
    (row,) = obj["results"]
    row["samples_ms"] = [float(v) for v in samples]
    row["latency_ms"] = summarize(samples)
    return obj


def test_compare_flags_a_30_percent_slowdown_in_real_bench_files(export_dir, tmp_path):
    """Real bench files; the latency samples are a seeded noisy run (jitter, spikes, drift),
    so the verdict does not depend on how noisy this machine is at the moment."""
    real = tmp_path / "real.json"
    tfl = str(export_dir / "model.float32.tflite")
    assert cli("bench", tfl, "--runs", "300", "--min-time", "0", "--json", str(real))[0] == 0
    obj = json.loads(real.read_text())
    p50 = obj["results"][0]["latency_ms"]["p50"]
    files = {
        "base": _with_samples(obj, noisy_run(1, p50=p50)),
        "same": _with_samples(obj, noisy_run(2, p50=p50)),
        "slow": _with_samples(obj, noisy_run(2, p50=p50, scale=1.3)),
        # the real samples, 3x slower: flagged however noisy they are
        "real3x": _with_samples(obj, [v * 3 for v in obj["results"][0]["samples_ms"]]),
    }
    for name, content in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(content))
    code, out, err = cli("compare", str(tmp_path / "base.json"), str(tmp_path / "slow.json"))
    assert code == 1
    assert err.splitlines()[-1] == (
        "edgekit: error: 1 regression(s) beyond 10%: model.float32.tflite (tflite, threads=1, "
        "batch=1)"
    )
    assert out.splitlines()[2].split()[-1] == "regression"
    code, out, _ = cli("compare", str(tmp_path / "base.json"), str(tmp_path / "same.json"))
    assert code == 0 and out.splitlines()[2].split()[-1] == "same"
    code, out, _ = cli("compare", str(real), str(tmp_path / "real3x.json"))
    assert code == 1 and out.splitlines()[2].split()[-1] == "regression"
    assert "+200.0%" in out


def test_bench_baseline_gate(export_dir, tmp_path):
    """``bench --baseline``: measured now against a stored file 10x faster, then 10x slower
    (far beyond this machine's run-to-run swings of up to 2x)."""
    real = tmp_path / "real.json"
    tfl = str(export_dir / "model.float32.tflite")
    assert cli("bench", tfl, "--runs", "300", "--min-time", "0", "--json", str(real))[0] == 0
    obj = json.loads(real.read_text())
    samples = obj["results"][0]["samples_ms"]
    (tmp_path / "fast.json").write_text(json.dumps(_with_samples(obj, [v / 10 for v in samples])))
    (tmp_path / "slow.json").write_text(json.dumps(_with_samples(obj, [v * 10 for v in samples])))
    code, out, err = cli("bench", tfl, *FAST, "--baseline", str(tmp_path / "fast.json"))
    assert code == 1
    assert "against the baseline (max regression 10%)" in out
    assert err.splitlines()[-1].startswith("edgekit: error: 1 regression(s) beyond 10%: ")
    code, out, err = cli(
        "bench", tfl, *FAST, "--baseline", str(tmp_path / "slow.json"), "--json", str(real)
    )
    assert code == 0, err
    assert json.loads(real.read_text())["comparison"]["rows"][0]["verdict"] == "faster"
    # a baseline with nothing in common is refused before measuring
    code, _, err = cli("bench", tfl, "--batch", "8", "--baseline", str(tmp_path / "slow.json"))
    assert code == 2
    assert "has no measurement in common with this run" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0"], "--threads takes integers >= 1, got 0"),
        (["--batch", "-1"], "--batch takes integers >= 1, got -1"),
        (["--batch", "x"], "--batch takes comma-separated integers, got 'x'"),
        (["--runtime", "tensorrt"],
         "unknown runtime 'tensorrt'; choose from auto, tflite, onnxruntime, keras, c, tflm"),
        (["--runtime", "onnxruntime"], "{model}: the onnxruntime runtime does not run .tflite "
                                       "files (use --runtime tflite or auto)"),
        (["--device", "tpu"], "unknown device 'tpu'; choose cpu, gpu, ssh://[user@]host[:port] "
                              "or a device name from ./edgekit.toml or "
                              "~/.config/edgekit/devices.toml (none defined)"),
        (["--runs", "0"], "--runs takes an integer >= 1, got 0"),
        (["--repeat", "0"], "--repeat takes an integer >= 1, got 0"),
        (["--warmup", "-1"], "--warmup takes an integer >= 0, got -1"),
        (["--min-time", "-1"], "--min-time takes seconds >= 0 and below half the timeout "
                               "(150 s), got -1.0"),
        (["--budget", "p95<=1"], "unknown metric 'p95' in --budget 'p95<=1'; choose from "
                                 "p50_ms, p90_ms, p95_ms, p99_ms, mean_ms, init_ms, "
                                 "throughput_per_s, size_kb, peak_rss_mb, accuracy, "
                                 "accuracy_drop, max_abs_diff, mae, rmse, arena_kb"),  # + mae, rmse
        (["--budget", "int4:p95_ms<=1"], "--budget 'int4:p95_ms<=1' matches no result: no "
                                         "variant or artifact 'int4' (variants here: int8)"),
        (["--max-regression", "-1"], "--max-regression must be a percentage >= 0, got -1.0"),
    ],
)  # fmt: skip
def test_bad_flags_exit_2_with_one_line(export_dir, args, message):
    model = export_dir / "model.int8.tflite"
    code, out, err = cli("bench", str(model), *args)
    assert code == 2
    assert err == f"edgekit: error: {message.format(model=model)}\n"
    assert out == ""


def test_bad_paths_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli("bench")[2] == (
        "edgekit: error: no artifact given and runs/latest/export does not exist; run "
        "`edgekit export` first or pass an artifact file or export directory\n"
    )
    assert (
        cli("bench", "nope.tflite")[2] == "edgekit: error: nope.tflite: no such file or directory\n"
    )
    (tmp_path / "model.pt").write_bytes(b"x")
    assert cli("bench", "model.pt")[2] == (
        "edgekit: error: model.pt: unknown artifact type '.pt'; edgekit benchmarks .tflite, "
        ".onnx, .keras files\n"
    )
    (tmp_path / "empty").mkdir()
    code, _, err = cli("bench", "empty")
    assert (code, err) == (
        2, "edgekit: error: empty: no artifact to benchmark with the onnxruntime/tflite runtime\n"
    )  # fmt: skip


def test_subprocess_exit_codes_and_no_traceback(tmp_path):
    proc = run_edgekit("bench", str(tmp_path / "missing.onnx"), "--threads", "0")
    assert proc.returncode == 2
    assert proc.stderr == "edgekit: error: --threads takes integers >= 1, got 0\n"
    assert proc.stdout == ""


def test_default_input_is_runs_latest_export(export_dir, tmp_path, monkeypatch):
    (tmp_path / "runs" / "latest").mkdir(parents=True)
    (tmp_path / "runs" / "latest" / "export").symlink_to(export_dir)
    monkeypatch.chdir(tmp_path)
    result = run_bench(runtime="tflite", **QUICK)
    assert [r.artifact for r in result.rows] == ["model.float32.tflite", "model.int8.tflite"]


def test_run_dir_benches_its_export(export_dir):
    result = run_bench([export_dir.parent], runtime="onnxruntime", **QUICK)
    assert [r.artifact for r in result.rows] == ["model.float32.onnx"]


def test_model_shapes_in_fixture_match_helpers(export_dir):
    entry = manifest(export_dir)["artifacts"][0]
    assert entry["inputs"][0]["shape"] == [-1, 8, 8]
    assert FEATURES == 64 and entry["outputs"][0]["shape"] == [-1, CLASSES]
