"""The examples run, with small settings, so they never rot."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

EXAMPLES = REPO / "examples"


def test_device_app_classifies_without_edgekit(digits_export):
    """The Python device app reproduces the validated int8 accuracy from the manifest alone."""
    code = (
        "import json, runpy, sys, numpy as np\n"
        f"app = runpy.run_path({str(EXAMPLES / 'device_app' / 'classify.py')!r})\n"
        f"d = np.load({str(digits_export.path / 'test.npz')!r})\n"
        f"result = app['classify'](__import__('pathlib').Path({str(digits_export.path)!r}), d['x'])\n"
        "labels = [label for label, _ in result]\n"
        "heavy = [m for m in ('edgekit', 'tensorflow', 'keras') if m in sys.modules]\n"
        "print(json.dumps({'labels': labels, 'heavy': heavy}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/"
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    y = np.load(digits_export.path / "test.npz")["y"]
    manifest = json.loads((digits_export.path / "manifest.json").read_text())
    int8 = next(a for a in manifest["artifacts"] if a["variant"] == "int8")
    accuracy = float(np.mean(np.array(out["labels"]) == np.array(manifest["labels"])[y]))
    assert accuracy == int8["validation"]["metrics"]["accuracy"]


def test_device_app_cli(digits_export):
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "device_app" / "classify.py"),
            str(digits_export.path),
            str(digits_export.path / "test.npz"),
            "--limit",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("0: ")


def _small_mnist(path):
    rng = np.random.default_rng(0)
    y = np.arange(600) % 10
    x = rng.integers(0, 60, size=(600, 28, 28))
    x[np.arange(600), y * 2 + 3, :] = 255  # a learnable stripe per digit
    np.savez(
        path,
        x_train=x[:500].astype(np.uint8),
        y_train=y[:500].astype(np.uint8),
        x_test=x[500:].astype(np.uint8),
        y_test=y[500:].astype(np.uint8),
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize("script", ["mnist_mlp.py", "mnist_mlp_64_32.py", "binary_mlp.py"])
def test_seed_examples_run_end_to_end(script, tmp_path):
    args = [sys.executable, str(EXAMPLES / "seeds" / script), "--epochs", "1", "--out", "run"]
    if script.startswith("mnist"):
        args += ["--dataset", str(_small_mnist(tmp_path / "mnist.npz"))]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "run" / "export" / "manifest.json").read_text())
    assert manifest["artifacts"]
    ok_rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("model.") and " ok " in ln]
    assert len(ok_rows) >= len(manifest["artifacts"])
    if script == "mnist_mlp_64_32.py":
        assert (tmp_path / "run" / "export" / "model_int8_data.c").is_file()


LATEST_MAJOR = {  # the newest major versions, checked when this was written (2026-09)
    "actions/checkout": "v7",
    "actions/setup-python": "v7",
    "actions/cache": "v6",
    "actions/upload-artifact": "v7",
}


def test_ci_workflow_structure():
    """The CI example parses, pins current actions, asks for no more than it needs and
    installs edgekit from a pinned source (the name `edgekit` on PyPI is another project)."""
    yaml = pytest.importorskip("yaml")
    text = (EXAMPLES / "ci" / "github-actions.yml").read_text()
    workflow = yaml.safe_load(text)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"pull_request", "push"} and triggers["push"] == {"branches": ["main"]}
    assert workflow["permissions"] == {"contents": "read", "actions": "read"}
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    used = {s["uses"].split("@")[0]: s["uses"].split("@")[1] for s in steps if "uses" in s}
    assert used == LATEST_MAJOR
    runs = [s["run"] for s in steps if "run" in s]
    install = next(r for r in runs if "pip install" in r)
    assert install.strip() == 'python -m pip install "$EDGEKIT"'
    spec = workflow["env"]["EDGEKIT"]
    assert spec == (
        "edgekit[train] @ file://${{ github.workspace }}/wheels/edgekit-0.1.0-py3-none-any.whl"
    )
    from edgekit._version import __version__

    assert f"edgekit-{__version__}-py3-none-any.whl" in spec  # the wheel this version builds
    assert "pip install edgekit" not in text.replace("`pip install edgekit`", "")
    assert any(r.strip() == "bash examples/ci/gate.sh" for r in runs)
    baseline = next(s for s in steps if s.get("name") == "Download the baseline")
    assert baseline["if"] == "github.event_name == 'pull_request'"
    assert "gh run download" in baseline["run"] and baseline["env"]["GH_TOKEN"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["name"] == "edgekit-bench"
    assert upload["with"]["path"].split() == ["bench.json", "bench.md", "junit.xml"]
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    if "cache" in setup["with"]:  # the default key needs a requirements.txt or pyproject.toml
        assert setup["with"]["cache-dependency-path"] == ".github/workflows/edgekit.yml"
    gate = (EXAMPLES / "ci" / "gate.sh").read_text()
    assert "--junit junit.xml" in gate and "--json bench.json" in gate


@pytest.mark.slow
def test_ci_gate_script_passes_then_compares_with_its_baseline(tmp_path):
    """The workflow's gate: train, export, bench with budgets; then again against a baseline."""
    workflow = (EXAMPLES / "ci" / "github-actions.yml").read_text()
    assert "bash examples/ci/gate.sh" in workflow
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "digits_mlp.toml").write_text(
        (REPO / "models" / "digits_mlp.toml").read_text()
    )
    summary = tmp_path / "summary.md"
    env = {
        **__import__("os").environ,
        "EPOCHS": "10",
        "REPEAT": "2",
        "MAX_REGRESSION": "100",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    gate = ["bash", str(EXAMPLES / "ci" / "gate.sh")]
    first = subprocess.run(gate, capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "budgets: " in first.stdout and "passed" in first.stdout
    assert (
        "| model.int8.tflite |" in summary.read_text() or "model.int8.tflite" in summary.read_text()
    )
    (tmp_path / "baseline").mkdir()
    (tmp_path / "bench.json").rename(tmp_path / "baseline" / "bench.json")
    second = subprocess.run(
        gate, capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env
    )
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert "reusing the trained run" in second.stdout
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert "comparison" in bench
    import xml.etree.ElementTree as ET

    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    names = [c.get("classname") for c in suite.findall("testcase")]
    rows, budgets = len(bench["results"]), len(bench["budgets"])
    assert names.count("edgekit.measurement") == rows and names.count("edgekit.budget") == budgets
    assert names.count("edgekit.baseline") == len(bench["comparison"]["rows"])
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0")


@pytest.mark.slow
def test_c_app_classifies_like_the_int8_model(digits_run, tmp_path):
    import edgekit

    export = edgekit.export(digits_run.path, c_source="int8", out=tmp_path / "export").path
    subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "c_app" / "make_samples.py"),
            str(export),
            str(tmp_path / "samples.bin"),
            "--limit",
            "50",
        ],
        check=True,
        timeout=60,
    )
    exe = tmp_path / "classify"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-O2",
            "-Wall",
            "-Werror",
            "-I",
            str(export),
            str(EXAMPLES / "c_app" / "main.c"),
            str(export / "edgekit_model.c"),
            "-lm",
            "-o",
            str(exe),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    proc = subprocess.run(
        [str(exe), str(tmp_path / "samples.bin")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    predicted = [int(line.split()[1]) for line in proc.stdout.splitlines()]
    from edgekit.runtime import open_runner

    x = np.load(export / "test.npz")["x"][:50]
    with open_runner(export / "model.int8.tflite") as runner:
        expected = runner.infer(x).argmax(1).tolist()
    assert len(predicted) == 50
    assert predicted == expected
