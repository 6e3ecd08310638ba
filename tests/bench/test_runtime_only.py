"""Benchmarking .tflite/.onnx needs only the core install: no TensorFlow, anywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.bench.benchhelpers import run_edgekit

HEAVY = ("tensorflow", "keras", "tf2onnx", "matplotlib", "sklearn", "onnx")


def imported(importtime_stderr: str) -> set[str]:
    """Top-level module names from ``python -X importtime`` output."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            names.add(name.split(".")[0])
    return names


def test_parent_imports_no_heavy_framework(export_dir):
    proc = run_edgekit(
        "bench", str(export_dir / "model.int8.tflite"), "--runs", "5", "--min-time", "0",
        "--json", "-", python_flags=["-X", "importtime"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["results"][0]["status"] == "ok"
    mods = imported(proc.stderr)
    assert {"edgekit", "click"} <= mods
    assert not mods & set(HEAVY), mods & set(HEAVY)
    # The parent does not even need numpy (only the measuring child does): it stays light so
    # that the first child starts sooner.
    assert "numpy" not in mods


@pytest.mark.parametrize("name", ["model.int8.tflite", "model.float32.onnx"])
def test_measuring_child_imports_no_tensorflow(export_dir, name):
    job = {"path": str(export_dir / name), "runtime": "tflite" if name.endswith("tflite")
           else "onnxruntime", "runs": 5, "min_time": 0.0, "data": str(export_dir / "test.npz"),
           "y_key": "y", "reference_key": "reference"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "edgekit.bench.worker"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["status"] == "ok" and result["metrics"]["accuracy"] > 0.5
    mods = imported(proc.stderr)
    assert not mods & set(HEAVY), mods & set(HEAVY)
    # only the runtime the job needs
    other = "onnxruntime" if name.endswith("tflite") else "ai_edge_litert"
    assert other not in mods


def test_start_to_first_result_is_quick(export_dir):
    """``edgekit bench model.tflite`` with default settings reports its first row fast.

    The figure to reach is 1 s; the assertion leaves room for a loaded CI machine.
    """
    exe = shutil.which("edgekit")
    cmd = [exe] if exe else [sys.executable, "-m", "edgekit"]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [*cmd, "bench", str(export_dir / "model.float32.tflite")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = None
        for line in proc.stderr:
            if line.startswith("[1/1]") and first is None:
                first = time.perf_counter() - start
        assert proc.wait(timeout=60) == 0
        times.append(first)
    assert min(times) < 2.5, times


@pytest.mark.slow
def test_core_install_benches_and_inspects(core_venv, export_dir, tmp_path):
    """In a venv with only ``pip install .`` (the session's ``core_venv``): no TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    edgekit = core_venv / "edgekit"
    out = tmp_path / "core.json"
    proc = subprocess.run(
        [str(edgekit), "bench", str(export_dir / "model.int8.tflite"),
         str(export_dir / "model.float32.onnx"), "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    assert [(r["artifact"], r["status"]) for r in rows] == [
        ("model.int8.tflite", "ok"),
        ("model.float32.onnx", "ok"),
    ]
    assert rows[0]["metrics"]["accuracy"] > 0.5
    assert "tensorflow" not in json.loads(out.read_text())["environment"]["versions"]
    # The Keras reference needs the train extra: a skipped row naming it, not a crash.
    proc = subprocess.run(
        [str(edgekit), "bench", str(export_dir), "--runtime", "keras", "--runs", "5"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "skipped: model.keras [keras, cpu, threads=1, batch=1]: the keras runtime needs "
        "tensorflow, which is not installed here (pip install '.[train]' in edgekit's source tree)"
    ) in proc.stdout
    # inspect works in the core install too, ONNX included (no onnx package).
    proc = subprocess.run(
        [str(edgekit), "inspect", str(export_dir / "model.float32.onnx")],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "parameters: 1,210 (dense layers)" in proc.stdout
    # report needs matplotlib (train extra): one line naming it.
    proc = subprocess.run(
        [str(edgekit), "report", str(out)], capture_output=True, text=True, env=env,
        timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == (
        "edgekit: error: this needs matplotlib, which is not installed: "
        "pip install '.[train]' in edgekit's source tree\n"
    )
