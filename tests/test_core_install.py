"""The core install (``pip install .``) works without TensorFlow and names the extra it lacks."""

from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.slow


def _run(core_venv, *args, cwd=None):
    return subprocess.run(
        [str(core_venv / "edgekit"), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_core_install_has_no_training_stack(core_venv):
    proc = subprocess.run(
        [
            str(core_venv / "python"),
            "-c",
            "import importlib.util as u; print([m for m in ('tensorflow', 'keras', 'sklearn', "
            "'tf2onnx', 'onnx', 'matplotlib') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "[]"


def test_help_works_in_the_core_install(core_venv):
    proc = _run(core_venv, "--help")
    assert proc.returncode == 0 and "Commands:" in proc.stdout


def test_train_names_the_extra_to_install(core_venv, tmp_path):
    proc = _run(core_venv, "train", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == (
        "edgekit: error: this needs tensorflow, which is not installed: "
        "pip install '.[train]' in edgekit's source tree\n"
    )
    assert not (tmp_path / "runs").exists()


def test_export_names_the_extra_to_install(core_venv, tmp_path):
    proc = _run(core_venv, "export", "model.keras", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "edgekit: error: model.keras: no such file or directory\n"
    (tmp_path / "model.keras").write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    proc = _run(core_venv, "export", "model.keras", cwd=tmp_path)
    assert proc.returncode == 2
    assert "pip install '.[train]' in edgekit's source tree" in proc.stderr


def test_env_works_in_the_core_install(core_venv):
    proc = _run(core_venv, "env")
    assert proc.returncode == 0 and "onnxruntime" in proc.stdout and "tensorflow" not in proc.stdout
