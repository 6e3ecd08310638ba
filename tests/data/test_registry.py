"""Datasets: built-in names, MNIST lookup, CSV and NPZ readers, task inference, splits."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.data import load_dataset, split_dataset
from edgekit.errors import EdgekitError
from tests.conftest import write_csv


def test_digits_are_images_with_digit_labels():
    ds = load_dataset("digits")
    assert ds.x.shape == (1797, 8, 8)
    assert ds.task == "multiclass"
    assert ds.labels == [str(i) for i in range(10)]
    assert ds.source == "sklearn.datasets.load_digits"
    assert len(ds.sha256) == 64


def test_breast_cancer_keeps_class_names():
    ds = load_dataset("breast_cancer")
    assert ds.x.shape == (569, 30)
    assert ds.task == "binary"
    assert ds.labels == ["malignant", "benign"]


def test_synthetic_is_the_seeds_task():
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=1000, n_features=20, random_state=42)
    ds = load_dataset("synthetic")
    assert ds.task == "binary"
    np.testing.assert_array_equal(ds.x, x.astype(np.float32))
    np.testing.assert_array_equal(ds.y, y)


def _small_mnist(path, n_train=120, n_test=30):
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        y_train=np.arange(n_train, dtype=np.uint8) % 10,
        x_test=rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        y_test=np.arange(n_test, dtype=np.uint8) % 10,
    )
    return path


def test_mnist_from_edgekit_data_dir_keeps_its_test_split(tmp_path, monkeypatch):
    _small_mnist(tmp_path / "mnist.npz")
    monkeypatch.setenv("EDGEKIT_DATA_DIR", str(tmp_path))
    ds = load_dataset("mnist")
    assert ds.name == "mnist"
    assert ds.x.shape == (120, 28, 28) and ds.x_test.shape == (30, 28, 28)
    assert ds.labels == [str(i) for i in range(10)]
    splits = split_dataset(ds, val_split=0.1, test_split=0.2, seed=0)
    assert len(splits.x_test) == 30  # MNIST's own test split, not a cut of the training data
    assert len(splits.x_train) + len(splits.x_val) == 120


def test_mnist_by_path(tmp_path):
    ds = load_dataset(str(_small_mnist(tmp_path / "mnist.npz")))
    assert ds.x_test is not None and ds.input_shape == [28, 28]


def test_mnist_without_a_copy_names_the_ways_to_provide_one(tmp_path, monkeypatch):
    # Keras's loader looks in $KERAS_HOME and would download; there is no network here.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("EDGEKIT_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(EdgekitError, match=r"MNIST is not available offline: pass --dataset"):
        load_dataset("mnist")


def test_shared_mnist_file_if_present():
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "mnist.npz"
    if not path.is_file():
        pytest.skip("the shared MNIST copy is not beside this checkout")
    ds = load_dataset(str(path))
    assert ds.x.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.sha256 == "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"


def test_csv_string_labels_and_target_column(tmp_path):
    path = write_csv(
        tmp_path / "flowers.csv",
        ["species", "petal", "sepal"],
        [["rose", 1, 2], ["tulip", 3, 4], ["iris", 5, 6], ["rose", 1.5, 2.5]],
    )
    ds = load_dataset(str(path), target="species")
    assert ds.task == "multiclass"
    assert ds.labels == ["iris", "rose", "tulip"]
    np.testing.assert_array_equal(ds.y, [1, 2, 0, 1])
    assert ds.meta["features"] == ["petal", "sepal"]
    np.testing.assert_array_equal(ds.x[1], [3, 4])


def test_csv_integer_labels_default_to_last_column(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["a", "b", "label"], [[0, 1, 3], [1, 0, 7], [2, 2, 3]])
    ds = load_dataset(str(path))
    assert ds.task == "binary" and ds.labels == ["3", "7"]


def test_csv_float_target_is_regression(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["a", "y"], [[0, 0.5], [1, 1.25], [2, 2.75]])
    ds = load_dataset(str(path))
    assert ds.task == "regression" and ds.labels is None
    assert ds.y.dtype == np.float32


def test_task_can_be_forced(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["a", "y"], [[0, 1], [1, 2], [2, 3]])
    assert load_dataset(str(path), task="regression").task == "regression"
    with pytest.raises(EdgekitError, match="--task binary needs exactly two classes, found 3"):
        load_dataset(str(path), task="binary")


def test_npz_x_y(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((10, 3)), y=np.arange(10) % 2)
    ds = load_dataset(str(tmp_path / "d.npz"))
    assert ds.task == "binary" and ds.input_shape == [3]


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "the CSV file is empty"),
        ("a,b,y\n", "the CSV file has a header but no data rows"),
        ("a,b,y\n1,2,0\n1,2\n", "line 3 has 2 fields, the header has 3"),
        ("a,b,y\n1,x,0\n2,3,1\n", "line 2, column 'b': 'x' is not a number"),
        ("a,b,y\n1,,0\n2,3,1\n", "line 2, column 'b' is empty"),
        ("a,b,y\n1,2,0\n2,3,0\n", "the target has a single class ('0')"),
        ("a,b,y\n1,nan,0\n2,3,1\n", "line 2, column 'b' is nan"),
    ],
)
def test_bad_csv(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EdgekitError) as info:
        load_dataset(str(path))
    assert message in str(info.value)


def test_unknown_target_column(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["a", "y"], [[0, 1], [1, 0]])
    with pytest.raises(EdgekitError, match="no column named 'label'; columns are a, y"):
        load_dataset(str(path), target="label")


def test_unknown_dataset_and_missing_file():
    with pytest.raises(EdgekitError, match="unknown dataset 'cifar'; choose from digits"):
        load_dataset("cifar")
    with pytest.raises(EdgekitError, match="nope.csv: no such file"):
        load_dataset("nope.csv")
    with pytest.raises(EdgekitError, match="unsupported dataset file type '.parquet'"):
        load_dataset("data.parquet")


def test_npz_with_wrong_keys_or_pickles(tmp_path):
    np.savez(tmp_path / "w.npz", features=np.ones((4, 2)))
    with pytest.raises(EdgekitError, match="expected arrays x and y"):
        load_dataset(str(tmp_path / "w.npz"))
    np.savez(tmp_path / "p.npz", x=np.array([{"a": 1}], dtype=object), y=np.array([1]))
    with pytest.raises(EdgekitError, match="pickled objects"):
        load_dataset(str(tmp_path / "p.npz"))
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(EdgekitError, match=r"c.npz: not a valid .npz file"):
        load_dataset(str(tmp_path / "c.npz"))


def test_nan_features_in_npz(tmp_path):
    x = np.ones((4, 2))
    x[1, 1] = np.nan
    np.savez(tmp_path / "n.npz", x=x, y=[0, 1, 0, 1])
    with pytest.raises(EdgekitError, match="x contains NaN or inf"):
        load_dataset(str(tmp_path / "n.npz"))


def test_splits_are_seeded_and_stratified():
    ds = load_dataset("digits")
    a = split_dataset(ds, val_split=0.1, test_split=0.2, seed=3)
    b = split_dataset(ds, val_split=0.1, test_split=0.2, seed=3)
    c = split_dataset(ds, val_split=0.1, test_split=0.2, seed=4)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)
    assert len(a.x_test) == 360
    counts = np.bincount(a.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 of each digit


def test_split_fraction_out_of_range():
    ds = load_dataset("synthetic")
    with pytest.raises(
        EdgekitError, match=r"--val-split must be between 0 and 1 \(exclusive\), got 1.5"
    ):
        split_dataset(ds, val_split=1.5, test_split=0.2, seed=0)
