"""``edgekit device setup`` against real sshds on 127.0.0.1 (see conftest.py).

The "board" is this machine, with an isolated Python: a fresh virtualenv that sees only the
standard library, pip and edgekit's core dependencies (click, numpy, onnxruntime,
ai-edge-litert and what they need, linked from this environment so that no package index is
needed), never edgekit itself nor TensorFlow. The wheel is built once per session.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import edgekit
from edgekit.devices import setup as device_setup
from edgekit.devices.setup import (
    Wheel,
    _pip_failure,
    build_wheel,
    installed_distribution,
    source_tree,
    wheel_from_installed,
)
from edgekit.errors import EdgekitError
from tests.conftest import cli

CORE = ("click", "numpy", "onnxruntime", "ai-edge-litert", "pip")


@pytest.fixture(autouse=True)
def _private_tmp(tmp_path, monkeypatch):
    """Local temporary files (the wheel, the ssh control socket) go to a folder we check."""
    local = tmp_path / "local_tmp"
    local.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("TMPDIR", str(local))
    monkeypatch.setattr(tempfile, "tempdir", str(local))
    yield local
    assert sorted(p.name for p in local.glob("edgekit-*")) == []


@pytest.fixture(scope="session")
def core_wheel(tmp_path_factory) -> Wheel:
    """This edgekit's wheel, built from its source tree (once: about 10-30 s)."""
    if source_tree() is None:
        pytest.skip("edgekit runs from an installed wheel here, not from its source tree")
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def _closure(names: tuple[str, ...]) -> list[metadata.Distribution]:
    """The installed distributions ``names`` need (their requirements, markers evaluated)."""
    from packaging.requirements import Requirement

    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


@pytest.fixture(scope="session")
def core_deps(tmp_path_factory) -> Path:
    """A folder of links to the core dependencies (and pip) of this environment."""
    folder = tmp_path_factory.mktemp("core_deps")
    for dist in _closure(CORE):
        for top in {f.parts[0] for f in dist.files or [] if ".." not in f.parts}:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (folder / top).exists() and top.split(".")[-1] != "pth":
                (folder / top).symlink_to(source)
    return folder


def _python_sees(python: str, code: str) -> str:
    return subprocess.run(
        [python, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()


@pytest.fixture
def board(tmp_path, core_deps) -> Path:
    """A fresh virtualenv on the "board": stdlib + pip + the core dependencies, no edgekit."""
    venv = tmp_path / "board venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    site = Path(_python_sees(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])"))
    (site / "_core_deps.pth").write_text(f"{core_deps}\n")
    assert _python_sees(python, "import importlib.util as u; print(u.find_spec('edgekit'))") == (
        "None"
    )
    return venv


def _setup(sshd, *args: str) -> tuple[int, dict, str]:
    code, out, err = cli("device", "setup", sshd.url, *sshd.options(), *args, "--json")
    return code, (json.loads(out) if out.strip() else {}), err


def _leftovers(sshd) -> list[str]:
    return sorted(p.name for p in sshd.remote_tmp.glob("edgekit-setup-*"))


def test_the_wheel_is_this_edgekit_core_only(core_wheel):
    assert core_wheel.version == edgekit.__version__
    assert core_wheel.source == f"the source tree {source_tree()}"
    with zipfile.ZipFile(core_wheel.path) as zf:
        names = zf.namelist()
        meta = zf.read(f"edgekit-{edgekit.__version__}.dist-info/METADATA").decode()
    assert "edgekit/__init__.py" in names and "edgekit/py.typed" in names
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
    required = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    core = [line for line in required if "extra ==" not in line]
    assert not any("tensorflow" in line for line in core)  # TensorFlow only in [train]


def test_setup_on_a_board_without_sftp_and_again(sshd_no_sftp, core_wheel, board):
    python = str(board / "bin" / "python")
    args = ["--remote-python", python, "--wheel", str(core_wheel.path)]
    code, doc, err = _setup(sshd_no_sftp, *args)
    assert code == 0, err
    assert doc["version"] == edgekit.__version__ and doc["previous"] is None
    assert doc["user"] is False  # a virtualenv's Python: into the virtualenv, not --user
    assert doc["location"].startswith(str(board))
    env = doc["environment"]
    assert env["schema"] == "edgekit.env/1"
    assert env["versions"]["edgekit"] == edgekit.__version__
    assert "tensorflow" not in env["versions"]  # the core install: no TensorFlow there
    assert "installing with" in err and "verifying" in err
    # the board's Python itself now runs the installed edgekit
    assert _setup_location(python) == doc["location"]
    assert _leftovers(sshd_no_sftp) == []
    # again, with the same version: pip alone would keep the (here: stale) files
    installed = Path(doc["location"]) / "envinfo.py"
    installed.write_text(installed.read_text() + "\nraise SystemExit('stale')\n")
    code, doc, err = _setup(sshd_no_sftp, *args)
    assert code == 0, err
    assert doc["previous"] == edgekit.__version__
    assert "stale" not in installed.read_text()
    assert _leftovers(sshd_no_sftp) == []


def _setup_location(python: str) -> str:
    return _python_sees(python, "import edgekit, os; print(os.path.dirname(edgekit.__file__))")


def test_setup_builds_the_wheel_and_installs_with_user(
    sshd, core_deps, core_wheel, tmp_path, monkeypatch
):
    """A Python that is not a virtualenv's: pip install --user, into its PYTHONUSERBASE."""
    base = getattr(sys, "_base_executable", sys.executable)
    facts = json.loads(_python_sees(base, (
        "import json, sys, sysconfig, os; print(json.dumps([sys.prefix == sys.base_prefix, "
        "os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED'))]))"
    )))  # fmt: skip
    if facts != [True, False]:
        pytest.skip(f"{base} is a virtualenv's or externally managed (PEP 668)")
    built: list[Path] = []

    def build(out_dir):  # the session's wheel (building is what core_wheel tests)
        built.append(Path(out_dir) / core_wheel.path.name)
        shutil.copy(core_wheel.path, built[-1])
        return Wheel(built[-1], core_wheel.version, core_wheel.source)

    monkeypatch.setattr(device_setup, "build_wheel", build)
    userbase = tmp_path / "user base"
    wrapper = tmp_path / "board-python"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONUSERBASE="{userbase}" PYTHONPATH="{core_deps}" exec "{base}" "$@"\n'
    )
    wrapper.chmod(0o755)
    code, doc, err = _setup(sshd, "--remote-python", str(wrapper))  # builds the wheel itself
    assert code == 0, err
    assert doc["user"] is True and doc["source"] == f"the source tree {source_tree()}"
    assert doc["location"].startswith(str(userbase))
    assert doc["environment"]["versions"]["edgekit"] == edgekit.__version__
    assert "building the core wheel" in err and len(built) == 1
    assert not built[0].exists()  # built in a temporary directory, removed
    assert _leftovers(sshd) == []


@pytest.mark.slow
def test_bench_on_the_board_without_sftp_after_setup(sshd_no_sftp, core_wheel, board,
                                                     device_export):  # fmt: skip
    python = str(board / "bin" / "python")
    assert _setup(sshd_no_sftp, "--remote-python", python, "--wheel", str(core_wheel.path))[0] == 0
    code, out, err = cli(
        "bench", str(device_export / "model.int8.tflite"), "--device", sshd_no_sftp.url,
        "--remote-python", python, *sshd_no_sftp.options(), "--warmup", "2", "--runs", "20",
        "--min-time", "0", "--json", "-",
    )  # fmt: skip
    assert code == 0, err
    (row,) = json.loads(out)["results"]
    assert row["status"] == "ok" and row["metrics"]["accuracy"] > 0.8
    assert sorted(p.name for p in sshd_no_sftp.remote_tmp.glob("edgekit-*")) == []


# --- what goes wrong, each with one clear line ---------------------------------------------


def test_board_python_without_pip(sshd, tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = str(bare / "bin" / "python")
    code, doc, err = _setup(sshd, "--remote-python", python)
    assert code == 2 and doc == {}
    assert err.splitlines()[-1] == (
        f"edgekit: error: {sshd.url}: {python} has no pip there; install it (e.g. apt-get "
        "install python3-pip) or use a virtual environment's Python (--remote-python)"
    )
    assert _leftovers(sshd) == []


def test_board_without_that_python(sshd):
    code, _, err = _setup(sshd, "--remote-python", "/nonexistent/python")
    assert (code, err.splitlines()[-1]) == (
        2,
        f"edgekit: error: {sshd.url}: no Python at /nonexistent/python there; pass "
        "--remote-python PATH or set python in the device's entry",
    )


def test_setup_needs_a_remote_device():
    code, out, err = cli("device", "setup", "cpu")
    assert (code, out) == (2, "")
    assert "device setup installs edgekit on a remote board; 'cpu' is this machine" in err


def test_setup_of_a_wheel_that_is_not_edgekit(sshd, tmp_path):
    other = tmp_path / "other-1.0-py3-none-any.whl"
    other.write_bytes(b"")
    code, _, err = _setup(sshd, "--wheel", str(other))
    assert code == 2 and "not an edgekit wheel" in err


def test_pip_failures_say_what_to_do():
    from edgekit.devices import Device

    device = Device(name="pi4", host="pi", user="pi")
    managed = subprocess.CompletedProcess([], 1, "", "error: externally-managed-environment\n")
    assert "externally managed (PEP 668)" in _pip_failure(device, "python3", managed)
    missing = subprocess.CompletedProcess(
        [], 1, "", "ERROR: Could not find a version that satisfies the requirement onnxruntime\n"
    )
    assert _pip_failure(device, "python3", missing).endswith("and pass --no-deps")


# --- an edgekit installed from a wheel: the wheel is packed again from its files ------------


def test_wheel_from_the_installed_files(core_wheel, tmp_path):
    site = tmp_path / "site packages"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         "--disable-pip-version-check", "--target", str(site), str(core_wheel.path)],
        check=True, timeout=120, env={**os.environ, "PIP_NO_COMPILE": "0"},
    )  # fmt: skip
    package = site / "edgekit"
    assert source_tree(package) is None  # site-packages has no pyproject.toml
    dist = installed_distribution(package)
    assert dist is not None
    rebuilt = build_wheel(tmp_path / "out", package=package)
    assert rebuilt.source == f"the installed files in {site}"
    assert rebuilt.path.name == core_wheel.path.name
    with zipfile.ZipFile(core_wheel.path) as a, zipfile.ZipFile(rebuilt.path) as b:
        skip = ("RECORD", "WHEEL")
        original = {n: a.read(n) for n in a.namelist() if n.rsplit("/", 1)[-1] not in skip}
        again = {n: b.read(n) for n in b.namelist() if n.rsplit("/", 1)[-1] not in skip}
        assert again == original
        info = f"edgekit-{edgekit.__version__}.dist-info"
        record = b.read(f"{info}/RECORD").decode().splitlines()
        assert len(record) == len(b.namelist()) and f"{info}/RECORD,," in record
    assert wheel_from_installed(dist, tmp_path / "again").read_bytes() == rebuilt.path.read_bytes()


def test_an_install_without_record_is_refused_in_one_line(tmp_path):
    package = tmp_path / "lib" / "edgekit"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    with pytest.raises(EdgekitError, match=r"has no source tree \(pyproject.toml\) and no"):
        build_wheel(tmp_path / "out", package=package)
