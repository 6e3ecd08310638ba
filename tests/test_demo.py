"""`edgekit demo`, the quickstart's main job, end to end as a user runs it."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_demo_trains_exports_and_benches(tmp_path):
    proc = run_cli("demo", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for step in ("demo 1/3: training", "demo 2/3: exporting", "demo 3/3: benchmarking"):
        assert step in out
    assert "Traceback" not in proc.stderr
    manifest = json.loads((tmp_path / "runs/demo/export/manifest.json").read_text())
    assert len(manifest["artifacts"]) == 8
    assert all(a["validation"]["passed"] for a in manifest["artifacts"])
    assert manifest["validation"]["reference_metrics"]["accuracy"] >= 0.93
    # the bench table has one ok row per artifact and batch size
    rows = [line for line in out.splitlines() if line.startswith("model.") and " ok " in line]
    assert len(rows) == 16
