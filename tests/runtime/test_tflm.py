"""``edgekit bench --runtime tflm``: the ``.tflite`` in TensorFlow Lite for Microcontrollers.

The export is the shared ``export_dir`` (a seeded digits MLP, float32 and int8 ``.tflite``).
TFLM's arena is probed in child processes; these tests check the figure against TFLM itself.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tests.bench.benchhelpers import FAST, cli

HAVE_TFLM = importlib.util.find_spec("tflite_micro") is not None
needs_tflm = pytest.mark.skipif(not HAVE_TFLM, reason="needs tflite-micro (the [mcu] extra)")


def _bench(*args: str) -> tuple[int, dict, str]:
    code, out, err = cli("bench", *args, "--json", "-")
    return code, json.loads(out) if out.strip() else {}, err


@pytest.fixture(scope="module")
def tflm_rows(export_dir) -> list[dict]:
    code, out, err = _bench(str(export_dir), "--runtime", "tflite,tflm", *FAST)
    assert code == 0, err
    return out["results"]


@needs_tflm
def test_arena_is_the_smallest_tflm_accepts(tflm_rows, export_dir):
    from edgekit.runtime.tflm import ALIGNMENT, arena_fits

    rows = [r for r in tflm_rows if r["runtime"] == "tflm"]
    assert {r["variant"] for r in rows} == {"float32", "int8"}
    for row in rows:
        arena = row["arena_bytes"]
        assert isinstance(arena, int) and 256 < arena < 1 << 20 and arena % ALIGNMENT == 0
        model = (export_dir / row["artifact"]).read_bytes()
        assert arena_fits(model, arena)
        assert not arena_fits(model, arena - ALIGNMENT)
        assert not arena_fits(model, arena - 8 * ALIGNMENT)


@needs_tflm
def test_rows_match_the_reference_like_other_runtimes(tflm_rows):
    by = {(r["variant"], r["runtime"]): r for r in tflm_rows}
    for variant in ("float32", "int8"):
        tflm, lite = by[variant, "tflm"], by[variant, "tflite"]
        assert tflm["status"] == "ok" and tflm["latency_source"] == "host"
        assert tflm["latency_ms"]["p50"] > 0 and tflm["runs"] >= 20
        assert 0.5 < tflm["metrics"]["accuracy"] <= 1.0
        # the same model: within one output LSB of LiteRT (TFLM rounds ties differently)
        assert abs(tflm["metrics"]["accuracy"] - lite["metrics"]["accuracy"]) <= 0.02
        assert tflm["max_abs_diff"] is not None
        assert abs(tflm["max_abs_diff"] - lite["max_abs_diff"]) <= 0.01
        assert "arena_bytes" not in lite and "latency_source" not in lite
    assert by["float32", "tflm"]["max_abs_diff"] < 1e-5


@needs_tflm
def test_runner_outputs_match_litert_float32(export_dir):
    from edgekit.runtime import open_runner

    x = np.load(export_dir / "test.npz")["x"][:40]
    with open_runner(export_dir / "model.float32.tflite", runtime="tflm") as tflm:
        got = tflm.infer(x)
    with open_runner(export_dir / "model.float32.tflite") as lite:
        want = lite.infer(x)
    assert got.shape == want.shape == (40, 10)
    np.testing.assert_allclose(got, want, atol=1e-5)


@needs_tflm
def test_arena_kb_budget(export_dir):
    code, out, err = _bench(
        str(export_dir / "model.int8.tflite"), "--runtime", "tflm", "--budget", "arena_kb<=0.1",
        *FAST,
    )  # fmt: skip
    assert code == 1, err
    (check,) = out["budgets"]
    assert check["passed"] is False and check["metric"] == "arena_kb"
    assert check["value"] == pytest.approx(out["results"][0]["arena_bytes"] / 1024)
    assert "budget check(s) violated" in err


def test_arena_kb_budget_needs_the_tflm_runtime():
    """Like any metric a row does not have, arena_kb fails on rows of other runtimes."""
    from edgekit.bench.budgets import check_budgets, parse_budget
    from edgekit.bench.schema import BenchRow

    lite = BenchRow("m.tflite", "tflite", "int8", "tflite", "cpu", 1, 1)
    tflm = BenchRow("m.tflite", "tflite", "int8", "tflm", "cpu", 1, 1, arena_bytes=2048)
    checks = check_budgets([parse_budget("arena_kb<=2")], [lite, tflm])
    assert [(c.value, c.passed) for c in checks] == [(None, False), (2.0, True)]
    back = BenchRow.from_json(tflm.to_json())
    assert back.arena_bytes == 2048 and "arena_bytes" not in lite.to_json()


def test_missing_tflite_micro_skips_the_row(export_dir, tmp_path):
    """Without tflite-micro the row is skipped, naming the extra (not `pip install edgekit`)."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'tflite_micro':\n"
        "            raise ImportError('hidden by the test')\n"
        "sys.meta_path.insert(0, _Hide())\n"
    )
    from tests.conftest import run_cli

    proc = run_cli(
        "bench", str(export_dir / "model.int8.tflite"), "--runtime", "tflm", *FAST, "--json", "-",
        env={"PYTHONPATH": f"{hide}:{Path(__file__).resolve().parents[2]}"},
    )  # fmt: skip
    out = json.loads(proc.stdout)
    (row,) = out["results"]
    assert row["status"] == "skipped"
    assert row["error"] == "tflite-micro not installed (pip install the [mcu] extra)"
    assert "pip install edgekit" not in proc.stderr + proc.stdout


def test_a_crashing_probe_is_a_no(monkeypatch):
    """A probe that dies of a signal (TFLM's segfault on a tiny arena) is a "no"."""
    from edgekit.runtime import tflm

    monkeypatch.setattr(tflm, "_PROBE", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert tflm.arena_fits(b"", 4096) is False
    monkeypatch.setattr(
        tflm, "_PROBE", "import sys; sys.exit(0 if int(sys.argv[1]) >= 5000 else -11)"
    )
    assert tflm.smallest_arena(b"") == 5008  # the next multiple of 16
