"""The CLI shell: help everywhere, lazy imports, one-line errors and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import cli, run_cli

COMMANDS = ["train", "export", "bench", "inspect", "estimate", "compare", "report", "demo", "env",
            "predict", "device"]  # fmt: skip
# Known gaps (command -> reason), marked xfail; none left.
TRUNCATED: dict[str, str] = {}
UNDOCUMENTED: dict[str, str] = {}


def _known(command: str, gaps: dict[str, str]):
    marks = [pytest.mark.xfail(reason=gaps[command], strict=False)] if command in gaps else []
    return pytest.param(command, marks=marks)


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


def test_bare_edgekit_prints_the_help_and_exits_0():
    proc = run_cli()
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith("Usage: edgekit [OPTIONS] COMMAND [ARGS]...")
    assert "Commands:" in proc.stdout and "_EDGEKIT_COMPLETE=bash_source edgekit" in proc.stdout


def _summaries() -> dict[str, str]:
    code, out, _ = cli("--help")
    assert code == 0
    lines = out.split("Commands:\n", 1)[1].splitlines()
    return {line.split()[0]: line.split(None, 1)[1] for line in lines if line.strip()}


def test_every_command_is_listed():
    assert sorted(_summaries()) == sorted([*COMMANDS, "diagnose"])


@pytest.mark.parametrize("command", [_known(c, TRUNCATED) for c in [*COMMANDS, "diagnose"]])
def test_command_summaries_fit_without_truncation(command):
    summary = _summaries()[command]
    assert not summary.endswith("..."), summary


@pytest.mark.parametrize("command", [_known(c, UNDOCUMENTED) for c in [*COMMANDS, "diagnose"]])
def test_every_flag_has_help_and_shows_its_default(command):
    import click

    from edgekit.cli import cli as group

    for param in group.commands[command].params:
        if not isinstance(param, click.Option):
            continue
        assert param.help, f"{command} {param.opts[0]}: no help text"
        has_default = (  # click's "no default" is a sentinel, not None
            isinstance(param.default, (int, float, str))
            and not param.is_flag
            and not param.multiple
        )
        if has_default:
            assert param.show_default, f"{command} {param.opts[0]}: default not shown"


def test_train_help_states_every_default_of_the_trainer():
    """train's flags default to None (a recipe may set them), so their help says the default."""
    import dataclasses

    from edgekit.cli import cli as group
    from edgekit.trainer.config import TrainConfig

    defaults = {f.name: f for f in dataclasses.fields(TrainConfig)}
    said = {"auto": "auto (the default)", "relu": "relu (default)", None: "default off"}
    for param in group.commands["train"].params:
        field = defaults.get(param.name or "")
        if not isinstance(param.default, type(None)) or field is None or param.name == "out":
            continue
        if param.name in ("name", "force", "dataset", "target"):
            continue
        value = field.default_factory() if callable(field.default_factory) else field.default
        value = ",".join(map(str, value)) if isinstance(value, list) else value
        text = said.get(value, f"default {value:g}" if isinstance(value, float) else None)
        text = text or f"default {value}"
        assert text in (param.help or ""), f"train --{param.name}: {param.help!r} lacks {text!r}"


def test_env_json():
    import json

    code, out, _ = cli("env", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "edgekit.env/1"
    assert {"python", "cpu", "cores", "versions", "gpus", "onnxruntime_providers"} <= set(doc)
    assert "CPUExecutionProvider" in doc["onnxruntime_providers"]
    assert doc["versions"]["edgekit"] == "0.1.0"


def test_shell_completion_script_and_completions():
    proc = run_cli(env={"_EDGEKIT_COMPLETE": "bash_source"})
    assert proc.returncode == 0
    assert "_edgekit_completion()" in proc.stdout and "complete -o nosort -F" in proc.stdout
    proc = run_cli(env={"_EDGEKIT_COMPLETE": "bash_complete", "COMP_WORDS": "edgekit pre",
                        "COMP_CWORD": "1"})  # fmt: skip
    assert proc.returncode == 0 and "plain,predict" in proc.stdout
