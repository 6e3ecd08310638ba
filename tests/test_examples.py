"""The examples run, with small settings, so they never rot."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

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
