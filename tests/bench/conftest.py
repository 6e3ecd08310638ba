"""Fixtures for the bench tests: one tiny trained + exported digits model, reused.

The artifacts come from edgekit's own public API (``edgekit.train`` then ``edgekit.export``),
seeded; everything else (corrupt files, fake bench results) is made in the test that needs it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from benchhelpers import HIDDEN

from tests.conftest import chdir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def bench_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="session")
def trained_run(bench_root) -> Path:
    """A digits MLP (64 -> 16 -> 10), a few epochs, seeded."""
    import edgekit

    with chdir(bench_root):
        run = edgekit.train(
            dataset="digits", hidden=[HIDDEN], epochs=4, seed=0, out=str(bench_root / "run")
        )
    return Path(run.path)


@pytest.fixture(scope="session")
def export_dir(trained_run) -> Path:
    """float32 + int8 TFLite and float32 ONNX, with manifest.json and test.npz."""
    import edgekit

    with chdir(trained_run.parent):
        result = edgekit.export(
            trained_run, quantize=["float32", "int8"], onnx=True, out=trained_run / "export"
        )
    return Path(result.path)


@pytest.fixture
def export_copy(export_dir, tmp_path) -> Path:
    """A private copy of the export directory, free to damage."""
    dst = tmp_path / "export"
    shutil.copytree(export_dir, dst)
    return dst


@pytest.fixture(scope="session")
def regression_export(bench_root) -> Path:
    """A one-output regression model (float32 TFLite), trained on a small seeded .npz."""
    import numpy as np

    import edgekit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = (2 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=300)).astype(np.float32)
    np.savez(bench_root / "reg.npz", x=x, y=y)
    with chdir(bench_root):
        run = edgekit.train(
            dataset=str(bench_root / "reg.npz"), hidden=[8], epochs=20, seed=0,
            learning_rate=0.01, out=str(bench_root / "reg"),
        )  # fmt: skip
        result = edgekit.export(run.path, quantize=["float32"], out=bench_root / "reg" / "export")
    return Path(result.path)
