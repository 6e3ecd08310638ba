"""``edgekit report`` (markdown + PNG plots), and regression results through bench."""

from __future__ import annotations

import json
import sys

import pytest

from edgekit.bench import run_bench
from edgekit.bench.schema import BenchRow
from edgekit.errors import MissingExtraError
from edgekit.report import write_report
from tests.bench.benchhelpers import FAST, cli

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
        "this needs matplotlib, which is not installed: pip install '.[train]' in edgekit's source tree"
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


def test_report_html_is_one_self_contained_file(bench_json, tmp_path):
    import base64
    import re

    code, out, err = cli("report", str(bench_json), "--out", str(tmp_path / "r"), "--html")
    assert code == 0, err
    assert out.split()[-1] == str(tmp_path / "r" / "report.html")
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<tr>") == 1 + 6
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2 and all(base64.b64decode(i).startswith(PNG) for i in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    assert "Fastest per sample: " in page and " µs" in page


def _timed_row(batch: int, p50_ms: float, artifact: str = "m.tflite") -> BenchRow:
    return BenchRow(artifact=artifact, format="tflite", variant="float32", runtime="tflite",
                    device="cpu", threads=2, batch=batch, size_bytes=1000,
                    latency_ms={"p50": p50_ms, "p95": p50_ms * 1.1, "mean": p50_ms, "std": 0.0},
                    metrics={"accuracy": 1.0}, throughput_per_s=batch * 1000 / p50_ms)  # fmt: skip


def test_fastest_per_sample_divides_by_the_batch():
    from edgekit.report.markdown import fastest_per_sample, report_markdown

    rows = [_timed_row(1, 0.01), _timed_row(32, 0.1, "big.tflite")]
    assert fastest_per_sample(rows) == (
        "Fastest per sample: big.tflite on tflite (cpu), 3.13 µs per sample (p50 100 µs per "
        "call of batch 32, 2 threads)."
    )  # it said "p50 0.1 ms at batch 32": a per-batch time
    md = report_markdown(rows, {"cpu": "x", "cores": 2, "python": "3"}, source="b.json")
    assert "| m.tflite | float32 | tflite | cpu | 2 | 1 | ok | 1000 B | 10.0 µs | 11.0 µs |" in md
    assert "| 100,000 | 100.00% |" in md  # samples/s, accuracy in percent


def test_plot_axes_are_labelled_and_capped():
    from edgekit.report.plots import _log_axis_us, _span, figure, nice_ticks

    assert nice_ticks(1.53, 1.6) == [1.0, 2.0]
    assert nice_ticks(2.4, 4.7) == [2.0, 3.0, 4.0, 5.0]  # a narrow range: more than one tick
    assert nice_ticks(3.0, 480.0)[0] == 2.0 and nice_ticks(3.0, 480.0)[-1] == 500.0
    ax = figure(4, 3).add_subplot()
    _log_axis_us(ax, 6.46, 11.4)
    labels = [ax.xaxis.get_major_formatter()(t, i) for i, t in enumerate(ax.get_xticks())]
    assert labels == ["6", "7", "8", "9", "10", "20"]
    from edgekit.report.plots import _tick_label, colorbar_ticks

    # the colour bar labels both ends: markers up to 19.5 µs had no label beyond 10
    assert colorbar_ticks(2.335, 19.5) == [2.335, 5.0, 10.0, 19.5]
    assert [_tick_label(t) for t in colorbar_ticks(2.335, 19.5)] == ["2.33", "5", "10", "19.5"]
    assert colorbar_ticks(11.6, 12.4) == [11.6, 12.4]
    assert _tick_label(1500.0) == "1,500" and _tick_label(0.05) == "0.05"
    assert _span([96.9, 100.0], cap=100.0)[1] == 100.0  # accuracy never beyond 100%
    low, high = _span([0.12, 0.2], cap=None)
    assert low < 0.12 and high > 0.2
