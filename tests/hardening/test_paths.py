"""Paths with spaces and non-ASCII characters work, through every command, as real processes
(including one in the C locale)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import regression_csv, run_cli, write_csv
from tests.hardening.conftest import leftovers

C_LOCALE = {"LC_ALL": "C", "LANG": "C"}


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_every_command_with_spaces_and_non_ascii_paths(tmp_path):
    data = tmp_path / "dátos con espacio" / "naïve 数据.csv"
    data.parent.mkdir()
    write_csv(data, ["größe", "höhe", "klasse"],
              [[i % 7, (i * 3) % 5, "ja" if i % 2 else "nein"] for i in range(60)])  # fmt: skip
    run = tmp_path / "runs ü" / "modèle 1"
    out = _ok(run_cli("train", "--dataset", str(data), "--hidden", "4", "--epochs", "2",
                      "--out", str(run), cwd=tmp_path))  # fmt: skip
    assert f"run directory: {run}" in out
    assert json.loads((run / "run.json").read_text(encoding="utf-8"))["labels"] == ["ja", "nein"]

    export = tmp_path / "export é ñ"
    out = _ok(run_cli("export", str(run), "--quantize", "float32,int8", "--onnx", "--c-array",
                      "--out", str(export), cwd=tmp_path))  # fmt: skip
    assert f"manifest: {export / 'manifest.json'}" in out

    results = tmp_path / "résultats ü.json"
    markdown = tmp_path / "résumé.md"
    out = _ok(run_cli("bench", str(export), "--runs", "5", "--min-time", "0", "--json",
                      str(results), "--markdown", str(markdown), cwd=tmp_path, env=C_LOCALE))  # fmt: skip
    rows = json.loads(results.read_text(encoding="utf-8"))["results"]
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"]
    assert rows[0]["path"] == str(export / "model.float32.tflite")
    assert "model.int8.tflite" in markdown.read_text(encoding="utf-8")

    tflite = export / "model.int8.tflite"
    assert "FULLY_CONNECTED" in _ok(run_cli("inspect", str(tflite), env=C_LOCALE))
    assert "MACs" in _ok(run_cli("estimate", str(export / "model.float32.onnx"), "--target",
                                 "cortex-m4", env=C_LOCALE))  # fmt: skip
    assert "same" in _ok(run_cli("compare", str(results), str(results), cwd=tmp_path))
    report = tmp_path / "rapport à plat"
    _ok(run_cli("report", str(results), "--out", str(report), cwd=tmp_path))
    assert sorted(p.name for p in report.iterdir()) == ["latency.png", "report.md", "tradeoff.png"]
    assert leftovers(tmp_path) == []


def test_train_reads_a_csv_in_a_directory_with_spaces_in_process(tmp_path):
    from tests.conftest import cli

    (tmp_path / "mes données").mkdir()
    data = regression_csv(tmp_path / "mes données" / "été 2024.csv", n=60)
    code, out, err = cli("train", "--dataset", str(data), "--hidden", "2", "--epochs", "1",
                         "--out", str(tmp_path / "sortie ü"))  # fmt: skip
    assert code == 0, err
    assert f"run directory: {tmp_path / 'sortie ü'}" in out
    assert (tmp_path / "sortie ü" / "model.keras").is_file()
