"""Training: run directories, every task, recipes, seeds, early stopping, bad input."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.errors import EdgekitError
from edgekit.trainer import TrainConfig, load_recipe
from tests.conftest import REPO, cli, regression_csv, run_cli, write_csv

RUN_FILES = [
    "model.keras",
    "run.json",
    "history.csv",
    "training.png",
    "data/test.npz",
    "data/calibration.npz",
]


def test_multiclass_run_directory(digits_run):
    for name in RUN_FILES:
        assert (digits_run.path / name).is_file(), name
    info = json.loads((digits_run.path / "run.json").read_text())
    assert info["schema"] == "edgekit.run/1"
    assert info["task"] == "multiclass" and info["labels"] == [str(i) for i in range(10)]
    ds = info["dataset"]
    assert ds["name"] == "digits" and ds["input_shape"] == [8, 8]
    assert ds["n_train"] + ds["n_val"] + ds["n_test"] == 1797 and ds["n_test"] == 360
    assert info["model"] == {
        "hidden": [32],
        "activation": "relu",
        "dropout": 0.0,
        "params": 64 * 32 + 32 + 32 * 10 + 10,
    }
    assert info["training"]["epochs_run"] == 12 and info["training"]["seed"] == 0
    assert info["metrics"]["test"]["accuracy"] >= 0.9
    assert set(info["versions"]) == {"edgekit", "tensorflow", "keras"}
    test = np.load(digits_run.path / "data/test.npz")
    assert test["x"].shape == (360, 8, 8) and test["x"].max() == 16.0  # raw features
    calibration = np.load(digits_run.path / "data/calibration.npz")
    assert calibration["x"].shape == (1000, 8, 8)
    with open(digits_run.path / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(rows[0])


def test_binary_has_one_sigmoid_output(binary_run):
    model = binary_run.load_model()
    assert model.outputs[0].shape[-1] == 1
    assert model.layers[-1].activation.__name__ == "sigmoid"
    assert binary_run.labels == ["0", "1"]
    assert binary_run.metrics["test"]["accuracy"] >= 0.8


def test_regression_reports_mae_and_rmse(regression_run):
    test = regression_run.metrics["test"]
    assert regression_run.labels is None and regression_run.task == "regression"
    assert set(test) == {"loss", "mae", "rmse"}
    y = np.load(regression_run.path / "data/test.npz")["y"]
    assert test["mae"] < 0.25 * float(np.std(y))  # learned well beyond predicting the mean


def test_normalization_is_inside_the_model(digits_run):
    model = digits_run.load_model()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[:3] == ["InputLayer", "Flatten", "Normalization"]
    raw = np.load(digits_run.path / "data/test.npz")
    probs = model.predict(raw["x"], verbose=0)
    accuracy = float(np.mean(probs.argmax(1) == raw["y"]))
    assert accuracy == pytest.approx(digits_run.metrics["test"]["accuracy"], abs=1e-6)


def test_runs_latest_points_at_the_newest_run(tmp_path):
    run = edgekit.train(dataset="synthetic", hidden=[4], epochs=1)
    assert run.path.parent == (tmp_path / "runs").resolve()
    assert (tmp_path / "runs" / "latest").resolve() == run.path
    assert run.path.name.startswith("synthetic-")


def test_runs_latest_moves_only_for_runs_under_runs(tmp_path):
    """``--out`` elsewhere leaves ``runs/latest`` alone; ``--out runs/NAME`` moves it."""
    first = edgekit.train(dataset="synthetic", hidden=[4], epochs=1, out="runs/first")
    assert (tmp_path / "runs" / "latest").resolve() == first.path
    elsewhere = edgekit.train(dataset="synthetic", hidden=[4], epochs=1, out="elsewhere/run")
    assert elsewhere.path == (tmp_path / "elsewhere" / "run").resolve()
    assert (tmp_path / "runs" / "latest").resolve() == first.path
    assert not (tmp_path / "elsewhere" / "latest").exists()


def test_same_seed_same_model(tmp_path):
    a = edgekit.train(dataset="synthetic", hidden=[8], epochs=2, seed=7, out="a")
    b = edgekit.train(dataset="synthetic", hidden=[8], epochs=2, seed=7, out="b")
    wa = a.load_model().get_weights()
    wb = b.load_model().get_weights()
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, y)


def test_early_stopping_restores_best_weights(tmp_path):
    run = edgekit.train(
        dataset="synthetic",
        hidden=[64, 64],
        epochs=200,
        early_stopping=2,
        learning_rate=0.01,
        out="es",
    )
    epochs_run = run.info["training"]["epochs_run"]
    assert epochs_run < 200
    with open(run.path / "history.csv") as fh:
        val = [float(r["val_loss"]) for r in csv.DictReader(fh)]
    best = int(np.argmin(val))
    assert epochs_run == best + 1 + 2  # stopped `patience` epochs after the best one
    model = run.load_model()
    assert model.count_params() == run.info["model"]["params"]


def test_existing_output_needs_force(tmp_path):
    edgekit.train(dataset="synthetic", hidden=[4], epochs=1, out="r")
    marker = (tmp_path / "r" / "run.json").read_text()
    with pytest.raises(EdgekitError, match="r already exists; pass --force to overwrite it"):
        edgekit.train(dataset="synthetic", hidden=[4], epochs=1, out="r")
    assert (tmp_path / "r" / "run.json").read_text() == marker
    run = edgekit.train(dataset="synthetic", hidden=[4], epochs=1, out="r", force=True)
    assert run.path == (tmp_path / "r").resolve()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".r.")]  # no leftovers


@pytest.mark.parametrize("name", ["mnist_mlp", "mnist_mlp_64_32", "binary_mlp", "digits_mlp"])
def test_recipes_parse(name):
    config = load_recipe(REPO / "models" / f"{name}.toml")
    assert config.name == name


def test_recipes_match_the_seeds():
    mnist = load_recipe(REPO / "models" / "mnist_mlp.toml")
    assert (mnist.dataset, mnist.hidden, mnist.epochs, mnist.optimizer) == (
        "mnist",
        [128],
        5,
        "adam",
    )
    small = load_recipe(REPO / "models" / "mnist_mlp_64_32.toml")
    assert (small.hidden, small.epochs) == ([64, 32], 5)
    binary = load_recipe(REPO / "models" / "binary_mlp.toml")
    assert (binary.dataset, binary.hidden, binary.epochs, binary.batch_size, binary.val_split) == (
        "synthetic",
        [64, 32],
        50,
        10,
        0.2,
    )
    default = load_recipe(REPO / "models" / "digits_mlp.toml")
    # `edgekit train` alone trains exactly the digits_mlp recipe
    assert dataclasses.replace(default, name=None) == TrainConfig()


def test_flags_override_the_recipe(tmp_path):
    code, out, err = cli(
        "train",
        str(REPO / "models" / "binary_mlp.toml"),
        "--epochs",
        "2",
        "--hidden",
        "8",
        "--out",
        "ovr",
    )
    assert code == 0, err
    info = json.loads((tmp_path / "ovr" / "run.json").read_text())
    assert info["name"] == "binary_mlp"
    assert info["model"]["hidden"] == [8] and info["training"]["epochs_run"] == 2
    assert info["training"]["batch_size"] == 10 and info["training"]["val_split"] == 0.2
    assert "trained binary_mlp: binary" in out


def test_bad_recipe_keys(tmp_path):
    (tmp_path / "r.toml").write_text("hidden = [8]\nepochz = 3\n")
    with pytest.raises(EdgekitError, match="unknown recipe key\\(s\\) epochz"):
        load_recipe(tmp_path / "r.toml")
    (tmp_path / "s.toml").write_text("hidden = [8\n")
    with pytest.raises(EdgekitError, match="not a valid TOML recipe"):
        load_recipe(tmp_path / "s.toml")


def test_regression_from_csv_cli(tmp_path):
    regression_csv(tmp_path / "r.csv", n=120)
    code, out, err = cli(
        "train", "--dataset", "r.csv", "--hidden", "8", "--epochs", "2", "--out", "reg"
    )
    assert code == 0, err
    assert "regression" in out and "mae=" in out


BAD_INPUTS = [
    (
        ["--dataset", "imagenet"],
        "unknown dataset 'imagenet'; choose from digits, breast_cancer, synthetic, mnist, or pass a .csv or .npz file",
    ),
    (["--dataset", "missing.csv"], "missing.csv: no such file"),
    (["--dataset", "empty.csv"], "empty.csv: the CSV file is empty"),
    (["--dataset", "ragged.csv"], "ragged.csv: line 3 has 2 fields, the header has 3"),
    (
        ["--dataset", "text.csv"],
        "text.csv: line 2, column 'b': 'high' is not a number (feature columns must be numeric)",
    ),
    (["--dataset", "holes.csv"], "holes.csv: line 3, column 'a' is empty"),
    (
        ["--dataset", "ok.csv", "--target", "nope"],
        "ok.csv: no column named 'nope'; columns are a, b, y",
    ),
    (
        ["--dataset", "single.csv"],
        "single.csv: the target has a single class ('1'); classification needs at least two",
    ),
    (["--val-split", "1.2"], "--val-split must be between 0 and 1 (exclusive), got 1.2"),
    (["--val-split", "0"], "--val-split must be between 0 and 1 (exclusive), got 0.0"),
    (["--hidden", "0"], "--hidden sizes must be positive integers, got 0"),
    (["--hidden", "a,b"], "--hidden takes comma-separated integers, got 'a,b'"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1), got 1.5"),
    (["--out", "exists"], "exists already exists; pass --force to overwrite it"),
    (
        ["--distribute", "multi-worker"],
        "--distribute multi-worker needs TF_CONFIG describing the cluster",
    ),
]


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "ragged.csv").write_text("a,b,y\n1,2,0\n3,4\n")
    (tmp_path / "text.csv").write_text("a,b,y\n1,high,0\n3,4,1\n")
    (tmp_path / "holes.csv").write_text("a,b,y\n1,2,0\n,4,1\n")
    write_csv(tmp_path / "ok.csv", ["a", "b", "y"], [[1, 2, 0], [3, 4, 1]])
    write_csv(tmp_path / "single.csv", ["a", "b", "y"], [[1, 2, 1], [3, 4, 1]])
    (tmp_path / "exists").mkdir()
    return tmp_path


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[m[:40] for _, m in BAD_INPUTS])
def test_bad_input_exit_2_one_line_no_run_dir(bad_files, argv, message):
    code, out, err = cli("train", *argv)
    assert (code, out) == (2, "")
    assert err == f"edgekit: error: {message}\n"
    assert not (bad_files / "runs").exists()
    assert sorted(p.name for p in bad_files.iterdir() if p.name.startswith(".")) == []


def test_bad_input_as_a_subprocess_has_no_traceback(bad_files):
    proc = run_cli("train", "--dataset", "ragged.csv", cwd=bad_files)
    assert proc.returncode == 2
    assert proc.stderr == "edgekit: error: ragged.csv: line 3 has 2 fields, the header has 3\n"


@pytest.mark.slow
def test_interrupted_training_leaves_no_run_directory(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgekit",
            "train",
            "--dataset",
            "synthetic",
            "--epochs",
            "2000",
            "--hidden",
            "128,128",
            "--out",
            "killed",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    # Off a terminal, training prints one line per epoch: the first one means it is mid-fit
    # (2000 epochs take minutes), with no guessed sleep.
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while not proc.stdout.readline().startswith("epoch 1/"):
        assert proc.poll() is None and time.monotonic() < deadline, "no epoch line"
    assert proc.poll() is None, "training ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "edgekit: interrupted"
    assert "Traceback" not in err
    assert list(Path(tmp_path).iterdir()) == []


def test_plain_progress_lines_when_not_on_a_terminal(tmp_path):
    """Not a terminal (a CI log, a pipe): no progress bars, but a header, a line per epoch and
    the early-stopping outcome as they happen (it printed only the 2 summary lines, at the
    end: changed on purpose)."""
    proc = run_cli(
        "train", "--dataset", "synthetic", "--hidden", "4", "--epochs", "2",
        "--early-stopping", "3", "--out", "q", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 8, proc.stdout
    assert lines[0] == "dataset synthetic (binary): 720 train, 80 validation, 200 test samples"
    assert lines[1] == "model: input 20 -> 4 relu -> 1 sigmoid; 89 parameters"
    assert lines[2] == (
        "training: up to 2 epochs, batch 32, adam (learning rate 0.001), early stopping "
        "(patience 3)"
    )
    for i, line in enumerate(lines[3:5], start=1):
        assert re.fullmatch(
            rf"epoch {i}/2: loss \d\.\d{{4}}, accuracy \d\.\d{{4}}, val_loss \d\.\d{{4}}, "
            r"val_accuracy \d\.\d{4} \(\d+\.\d s\)",
            line,
        ), line
    assert re.fullmatch(
        r"early stopping: not triggered in 2 epochs; best val_loss \d\.\d{4} at epoch \d", lines[5]
    ), lines[5]
    assert lines[6].startswith("trained synthetic: binary, ")
    assert lines[7] == f"run directory: {(tmp_path / 'q').resolve()}"
    assert proc.stderr == ""
    assert "\x08" not in proc.stdout and "\r" not in proc.stdout  # no progress bar drawn


def test_run_json_records_the_csv_features_and_target(tmp_path):
    regression_csv(tmp_path / "r.csv", n=60)
    run = edgekit.train(dataset="r.csv", hidden=[4], epochs=1, out="reg")
    assert run.info["features"] == ["a", "b", "c", "d"] and run.info["target"] == "value"
    digits = edgekit.train(dataset="synthetic", hidden=[4], epochs=1, out="syn")
    assert digits.info["features"] is None and digits.info["target"] is None


def test_an_unwritable_run_directory_fails_before_training(tmp_path):
    (tmp_path / "file").write_text("x")
    code, out, err = cli("train", "--dataset", "synthetic", "--epochs", "1", "--out", "file/run")
    assert (code, out, err) == (2, "", "edgekit: error: cannot write to file: not a directory\n")
