"""Shared fixtures: a scratch working directory per test, tiny trained runs, CLI helpers.

Every model here is tiny and seeded; session-scoped runs are trained once and reused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
BENCH_HIDDEN = 16  # the bench tests' digits model: 64 -> 16 -> 10


@pytest.fixture(autouse=True)
def _scratch_cwd(tmp_path, monkeypatch):
    """Run every test in its own empty directory, so runs/ never lands in the repo."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDGEKIT_DATA_DIR", raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)


@contextlib.contextmanager
def chdir(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_cli(*args: str, env: dict | None = None, timeout: float = 300, cwd=None, python_flags=()):
    """Run ``python [FLAGS] -m edgekit ARGS`` as a real subprocess; returns CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, *python_flags, "-m", "edgekit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
    )


def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process through ``main()``; returns (exit code, stdout, stderr)."""
    import io

    from edgekit.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    lines = [",".join(header)] + [",".join(str(c) for c in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def regression_csv(
    path: Path,
    n: int = 300,
    seed: int = 0,
    *,
    scales=(1.0, 2.0, 0.5, 1.5),
    offsets=(0.0, 1.0, -1.0, 0.5),
) -> Path:
    """A smooth regression task; ``scales`` sets how different the feature ranges are."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) * np.asarray(scales) + np.asarray(offsets)
    z = (x - np.asarray(offsets)) / np.asarray(scales)
    y = 2 * z[:, 0] + 1.5 * z[:, 1] - z[:, 2] + 0.5 * z[:, 3] + 0.1 * rng.normal(size=n)
    rows = [[*(f"{v:.5f}" for v in xi), f"{yi:.5f}"] for xi, yi in zip(x, y, strict=True)]
    return write_csv(path, ["a", "b", "c", "d", "value"], rows)


def _train(base: Path, name: str, **options):
    import edgekit

    with chdir(base):
        return edgekit.train(out=str(base / name), **options)


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def digits_run(runs_dir):
    """Multiclass: digits images, one small hidden layer."""
    return _train(runs_dir, "digits", dataset="digits", hidden=[32], epochs=12, seed=0)


@pytest.fixture(scope="session")
def binary_run(runs_dir):
    """Binary: the seeds' synthetic make_classification task."""
    return _train(runs_dir, "binary", dataset="synthetic", hidden=[16, 8], epochs=15, seed=0)


@pytest.fixture(scope="session")
def regression_run(runs_dir):
    """Regression: a CSV with a numeric target, features on comparable scales."""
    csv = regression_csv(runs_dir / "reg.csv")
    return _train(
        runs_dir, "regression", dataset=str(csv), hidden=[16], epochs=60, learning_rate=0.01, seed=0
    )


@pytest.fixture(scope="session")
def digits_export(digits_run, runs_dir):
    """Every variant of the digits run, exported once."""
    import edgekit

    return edgekit.export(
        digits_run.path,
        quantize=["all"],
        onnx=True,
        onnx_quantize=["dynamic", "static"],
        c_array=True,
        out=runs_dir / "digits_export",
    )


@pytest.fixture(scope="session")
def core_venv(tmp_path_factory) -> Path:
    """A fresh virtualenv holding only the core install (``pip install .``): no TensorFlow.

    Built once per session from a copy of the working tree; pip fetches the core
    dependencies (click, numpy, onnxruntime, ai-edge-litert) from the package index.
    """
    import shutil

    base = tmp_path_factory.mktemp("core")
    src = base / "src"
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".git", "runs", "__pycache__", "*.egg-info", ".venv", "tests", "benchmarks", "build"
        ),
    )
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if pip.returncode != 0:
        pytest.fail(f"core install failed:\n{pip.stdout[-2000:]}\n{pip.stderr[-2000:]}")
    return venv / "bin"


# --- the bench, inspect and report tests' digits model (64 -> HIDDEN -> 10) and regression export


@pytest.fixture(scope="session")
def bench_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="session")
def trained_run(bench_root) -> Path:
    """A digits MLP (64 -> 16 -> 10), a few epochs, seeded."""
    import edgekit

    with chdir(bench_root):
        run = edgekit.train(
            dataset="digits", hidden=[BENCH_HIDDEN], epochs=4, seed=0, out=str(bench_root / "run")
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
