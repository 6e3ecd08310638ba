"""``edgekit report`` (markdown + PNG plots), and regression results through bench."""

from __future__ import annotations

import json
import sys

import pytest
from benchhelpers import FAST, cli

from edgekit.bench import run_bench
from edgekit.errors import MissingExtraError
from edgekit.report import write_report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bench_json(export_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "bench.json"
    code, _, err = cli("bench", str(export_dir), *FAST, "--batch", "1,8", "--json", str(out))
    assert code == 0, err
    return out


def test_report_writes_markdown_and_plots(bench_json, tmp_path):
    code, out, err = cli("report", str(bench_json), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    assert out.split() == [str(tmp_path / "rep" / n) for n in
                           ("report.md", "latency.png", "tradeoff.png")]  # fmt: skip
    for name in ("latency.png", "tradeoff.png"):
        data = (tmp_path / "rep" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md.startswith("# edgekit bench report\n")
    assert md.count("| model.") == 6  # 3 artifacts x 2 batch sizes
    assert "![latency distribution per artifact](latency.png)" in md
    assert "Fastest per sample: " in md


def test_report_default_directory_and_rows_without_samples(bench_json, tmp_path):
    obj = json.loads(bench_json.read_text())
    for row in obj["results"]:
        row.pop("samples_ms")  # a file from another tool or an older edgekit
    obj["results"][0].update(status="error", error="killed by signal SIGSEGV", latency_ms=None)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(obj))
    written = write_report(path)
    assert [p.parent for p in written] == [tmp_path / "report"] * 3
    assert "- error: model.float32.tflite [tflite, cpu, threads=1, batch=1]: killed by signal " \
           "SIGSEGV" in written[0].read_text()  # fmt: skip


def test_report_bad_input(tmp_path, bench_json):
    (tmp_path / "x.json").write_text('{"schema": "other"}')
    code, out, err = cli("report", str(tmp_path / "x.json"))
    assert (code, out) == (2, "")
    assert err == (
        f"edgekit: error: {tmp_path / 'x.json'}: not an edgekit bench file (schema "
        "edgekit.bench/1 expected)\n"
    )
    (tmp_path / "bad.json").write_text(
        '{"schema": "edgekit.bench/1", "results": [{"artifact": 1}]}'
    )
    code, _, err = cli("report", str(tmp_path / "bad.json"))
    assert (code, err) == (2, f"edgekit: error: {tmp_path / 'bad.json'}: results[0]: missing "
                              "field 'runtime'\n")  # fmt: skip
    (tmp_path / "file").write_text("")
    code, _, err = cli("report", str(bench_json), "--out", str(tmp_path / "file"))
    assert (code, err) == (
        2, f"edgekit: error: Invalid value for '--out': Directory '{tmp_path / 'file'}' is a "
        "file.\n"
    )  # fmt: skip
    from edgekit.errors import EdgekitError

    with pytest.raises(EdgekitError, match=r"--out .*file: exists and is not a directory$"):
        write_report(bench_json, out=tmp_path / "file")


def test_report_without_matplotlib_names_the_extra(bench_json, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError) as err:
        write_report(bench_json, out=tmp_path / "r")
    assert str(err.value) == (
        "this needs matplotlib, which is not installed: pip install 'edgekit[train]'"
    )
    assert not (tmp_path / "r").exists()


def test_regression_rows_report_mae_and_rmse(regression_export):
    manifest = json.loads((regression_export / "manifest.json").read_text())
    (row,) = run_bench([regression_export], warmup=1, runs=10, min_time=0.0).rows
    validation = manifest["artifacts"][0]["validation"]["metrics"]
    assert set(row.metrics) == {"mae", "rmse"}
    assert row.metrics["mae"] == pytest.approx(validation["mae"], rel=1e-5)
    assert row.metrics["rmse"] == pytest.approx(validation["rmse"], rel=1e-5)
    assert row.accuracy_drop is None and row.max_abs_diff < 1e-4
    code, out, _ = cli("bench", str(regression_export), *FAST, "--budget", "accuracy>=0.5")
    assert code == 1
    assert f"mae {row.metrics['mae']:.4g}"[:8] in out
    assert out.split("budget violations:\n")[1].splitlines()[2].split()[-2:] == [
        "not", "measured"
    ]  # fmt: skip
