"""The CLI shell: help everywhere, lazy imports, one-line errors and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import cli, run_cli

COMMANDS = ["train", "export", "bench", "inspect", "estimate", "compare", "report", "demo", "env"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    code, out, err = cli(command, "--help")
    assert code == 0, err
    assert "Example" in out
    assert f"edgekit {command}" in out or command in ("demo", "env")


@pytest.mark.parametrize("argv", [["--help"], ["bench", "--help"], ["export", "--help"]])
def test_help_does_not_import_tensorflow(argv):
    code = (
        "import sys\n"
        "from edgekit.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'tf2onnx', 'sklearn', 'matplotlib') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_version():
    code, out, _ = cli("--version")
    assert code == 0 and "0.1.0" in out


def test_unknown_command_is_one_line_exit_2():
    proc = run_cli("frobnicate")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "No such command 'frobnicate'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_flag_value_is_one_line_exit_2():
    proc = run_cli("train", "--epochs", "many")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "edgekit: error: Invalid value for '--epochs': 'many' is not a valid integer."
    )


def test_user_error_is_caught_once_in_main():
    code, out, err = cli("train", "--hidden", "64,0")
    assert code == 2
    assert err == "edgekit: error: --hidden sizes must be positive integers, got 64,0\n"
    assert out == ""


def test_env_prints_versions_and_devices():
    code, out, _ = cli("env")
    assert code == 0
    for key in ("python", "cpu", "cores", "gpus", "ort EPs", "numpy"):
        assert key in out
    assert "CPUExecutionProvider" in out
