"""``edgekit predict``: any artifact on raw features from .npz or .csv, labels and scores."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import edgekit
from edgekit.errors import EdgekitError
from edgekit.predict import PREDICT_SCHEMA, predict
from edgekit.runtime import open_runner
from tests.conftest import cli, regression_csv, write_csv


def _digits_csv(path, x, y=None, *, label="digit"):
    flat = x.reshape(len(x), -1)
    header = [f"px{i}" for i in range(flat.shape[1])] + ([label] if y is not None else [])
    rows = [[*(f"{v:g}" for v in xi), *([int(yi)] if y is not None else [])]
            for xi, yi in zip(flat, y if y is not None else [None] * len(flat), strict=True)]  # fmt: skip
    return write_csv(path, header, rows)


@pytest.mark.parametrize("name", ["model.int8.tflite", "model.float32.onnx"])
def test_npz_input_gives_the_manifest_labels_and_the_runner_scores(export_dir, name):
    test = np.load(export_dir / "test.npz")
    result = predict(export_dir / name, export_dir / "test.npz")
    with open_runner(export_dir / name) as runner:
        expected = runner.infer(test["x"])
    assert len(result.rows) == len(test["x"])
    assert [r.label for r in result.rows] == [str(i) for i in expected.argmax(1)]
    np.testing.assert_allclose([r.scores for r in result.rows], expected, rtol=1e-6, atol=1e-7)
    doc = result.to_json()
    assert (doc["schema"], doc["artifact"], doc["task"]) == (
        PREDICT_SCHEMA, str(export_dir / name), "multiclass"
    )  # fmt: skip
    assert doc["predictions"][0] == {"label": result.rows[0].label, "scores": result.rows[0].scores}
    manifest = json.loads((export_dir / "manifest.json").read_text())
    entry = next(a for a in manifest["artifacts"] if a["file"] == name)
    accuracy = np.mean(np.array([int(r.label) for r in result.rows]) == test["y"])
    assert accuracy == pytest.approx(entry["validation"]["metrics"]["accuracy"])


def test_csv_columns_label_column_and_shape(export_dir, tmp_path):
    test = np.load(export_dir / "test.npz")
    x, y = test["x"][:20], test["y"][:20]
    from_npz = predict(export_dir / "model.int8.tflite", export_dir / "test.npz").rows[:20]
    # 64 pixel columns and a label column: the label is not a feature; 64 values -> 8x8
    with_label = predict(export_dir / "model.int8.tflite", _digits_csv(tmp_path / "a.csv", x, y))
    without = predict(export_dir / "model.int8.tflite", _digits_csv(tmp_path / "b.csv", x))
    assert with_label.rows == without.rows == from_npz
    with pytest.raises(EdgekitError) as err:
        predict(export_dir / "model.int8.tflite", _digits_csv(tmp_path / "c.csv", x[:, :4]))
    assert str(err.value) == (
        f"{tmp_path / 'c.csv'}: 32 numeric feature column(s) (px0, px1, px2, px3, px4, px5, px6, "
        "px7, px8, px9, px10, px11, px12, px13, px14, px15, px16, px17, px18, px19, px20, px21, "
        "px22, px23, px24, px25, px26, px27, px28, px29, px30, px31), the model takes 64 features"
    )


@pytest.fixture(scope="module")
def csv_export(tmp_path_factory):
    """A regression model trained on a CSV (features a, b, c, d; target value), exported."""
    from tests.conftest import chdir

    base = tmp_path_factory.mktemp("predict_csv")
    regression_csv(base / "train.csv", n=200)
    with chdir(base):
        run = edgekit.train(dataset="train.csv", hidden=[8], epochs=3, seed=0, out="run")
        edgekit.export(run.path, quantize=["float32"], out=base / "run" / "export")
    return base / "run"


def test_csv_features_are_picked_by_name(csv_export, tmp_path):
    """The run records features a, b, c, d: other columns, and their order, do not matter."""
    rows = [[7, 0.1, -1.0, 2.0, 0.5, "x"], [8, 1.0, 0.0, -0.5, 1.5, "y"]]
    write_csv(tmp_path / "shuffled.csv", ["id", "d", "c", "b", "a", "note"],
              [[i, d, c, b, a, n] for i, a, b, c, d, n in rows])  # fmt: skip
    write_csv(tmp_path / "plain.csv", ["a", "b", "c", "d"], [r[1:5] for r in rows])
    model = csv_export / "export" / "model.float32.tflite"
    shuffled, plain = (
        predict(model, tmp_path / "shuffled.csv"),
        predict(model, tmp_path / "plain.csv"),
    )
    assert shuffled.rows == plain.rows and shuffled.task == "regression"
    value = plain.rows[0].label
    assert isinstance(value, float) and plain.rows[0].scores == [value]
    with open_runner(model) as runner:
        expected = runner.infer(np.array([r[1:5] for r in rows], np.float32))[:, 0]
    np.testing.assert_allclose([r.label for r in plain.rows], expected, rtol=1e-6)
    write_csv(tmp_path / "missing.csv", ["a", "b", "value"], [[1, 2, 3]])
    code, out, err = cli("predict", str(model), str(tmp_path / "missing.csv"))
    assert (code, out) == (2, "")
    assert err == (
        f"edgekit: error: {tmp_path / 'missing.csv'}: no column(s) 'c', 'd', which the model "
        "takes as features; columns are a, b, value\n"
    )


def test_cli_table_json_and_out_files(export_dir, tmp_path):
    model = str(export_dir / "model.float32.tflite")
    data = str(export_dir / "test.npz")
    code, out, err = cli("predict", model, data)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["#", "label", *(f"p({i})" for i in range(10))]
    assert len(lines) == 2 + 360
    code, out, _ = cli("predict", model, data, "--json")
    doc = json.loads(out)
    assert doc["schema"] == "edgekit.predict/1" and len(doc["predictions"]) == 360
    assert doc["labels"] == [str(i) for i in range(10)]
    code, out, _ = cli("predict", model, data, "--out", str(tmp_path / "p.csv"))
    assert (code, out) == (0, f"360 prediction(s) -> {tmp_path / 'p.csv'}\n")
    with open(tmp_path / "p.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [r["label"] for r in table] == [p["label"] for p in doc["predictions"]]
    assert float(table[0]["p(3)"]) == pytest.approx(doc["predictions"][0]["scores"][3], rel=1e-6)
    code, out, _ = cli("predict", model, data, "--out", str(tmp_path / "p.json"))
    assert json.loads((tmp_path / "p.json").read_text()) == doc
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.tflite", "x.npz"], "nope.tflite: no such file"),
        (["{model}", "nope.csv"], "nope.csv: no such file"),
        (["{model}", "x.txt"], "x.txt: unknown input type '.txt'; predict reads .npz or .csv"),
        (["{model}", "e.csv"], "e.csv: the CSV file is empty"),
        (["{model}", "t.csv"], "t.csv: 1 numeric feature column(s) (a), the model takes 64 "
                               "features; not numeric: b"),
        (["{model}", "typo.csv"], "typo.csv: line 3, column 'b': '1,5' is not a finite number "
                                  "(feature columns must be numeric)"),
        (["{model}", "x.npz", "--threads", "0"], "--threads takes an integer >= 1, got 0"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(export_dir, tmp_path, args, message):
    (tmp_path / "x.txt").write_text("1,2\n")
    (tmp_path / "e.csv").write_text("")
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 8, 8), np.float32))
    write_csv(tmp_path / "t.csv", ["a", "b"], [[1, "high"]])
    (tmp_path / "typo.csv").write_text(
        ",".join(["a", "b", *(f"c{i}" for i in range(62))])
        + "\n"
        + ",".join(["1"] * 64)
        + "\n"
        + ",".join(["1", '"1,5"', *(["1"] * 62)])
        + "\n"
    )
    argv = [a.format(model=export_dir / "model.int8.tflite") for a in args]
    code, out, err = cli("predict", *argv)
    assert (code, out, err) == (2, "", f"edgekit: error: {message}\n")


def test_bench_reads_the_same_csv(export_dir, tmp_path):
    from edgekit.bench import run_bench

    test = np.load(export_dir / "test.npz")
    csv_path = _digits_csv(tmp_path / "d.csv", test["x"], test["y"])
    quick = dict(warmup=1, runs=5, min_time=0.0, runtime="tflite")
    by_csv = {r.artifact: r for r in run_bench([export_dir], data=csv_path, **quick).rows}
    by_npz = {r.artifact: r for r in run_bench([export_dir], **quick).rows}
    assert by_csv.keys() == by_npz.keys()
    for name, row in by_csv.items():
        assert row.status == "ok"
        assert row.metrics == by_npz[name].metrics
    lines = csv_path.read_text().splitlines()
    cells = lines[2].split(",")
    cells[3] = "a"  # a typo in a number column: an error, not a column left out
    (tmp_path / "bad.csv").write_text("\n".join([lines[0], lines[1], ",".join(cells)]) + "\n")
    with pytest.raises(EdgekitError) as err:
        run_bench([export_dir], data=tmp_path / "bad.csv", **quick)
    assert str(err.value) == (
        f"{tmp_path / 'bad.csv'}: line 3, column 'px3': 'a' is not a finite number (feature "
        "columns must be numeric)"
    )
