"""``edgekit bench --device ssh://...`` against a real sshd on 127.0.0.1 (see conftest.py).

The device's Python is the core install (``core_venv``: no TensorFlow). Its temporary
directories land in ``sshd.remote_tmp`` (the device's ``$TMPDIR``), so every test can check
that nothing is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import cli
from tests.devices.conftest import keygen

FAST = ["--warmup", "2", "--runs", "20", "--min-time", "0"]
# The device's Python is the core_venv fixture, a virtualenv built once per session (~30 s);
# the tests that use it are slow for that reason only (each takes a few seconds).
SLOW = pytest.mark.slow


@pytest.fixture(autouse=True)
def _private_tmp(tmp_path, monkeypatch):
    """Local temporary files (staging, the ssh control socket) go to a folder we check."""
    local = tmp_path / "local_tmp"
    local.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("TMPDIR", str(local))
    monkeypatch.setattr(tempfile, "tempdir", str(local))
    yield local
    # the staging directory and the ssh control socket's directory are removed
    assert sorted(p.name for p in local.glob("edgekit-*")) == []


@pytest.fixture(scope="module")
def device_python(core_venv) -> str:
    return str(core_venv / "python")


def _leftovers(sshd) -> list[str]:
    return sorted(p.name for p in sshd.remote_tmp.glob("edgekit-bench-*"))


def _bench(*args: str) -> tuple[int, dict, str]:
    code, out, err = cli("bench", *args, "--json", "-")
    return code, (json.loads(out) if out.strip() else {}), err


@SLOW
def test_remote_bench_of_an_export_dir(sshd, device_export, device_python):
    runtimes = "auto,c" if shutil.which("gcc") else "auto"
    code, doc, err = _bench(
        str(device_export), "--device", sshd.url, "--remote-python", device_python,
        *sshd.options(), "--runtime", runtimes, "--batch", "1,4", *FAST,
    )  # fmt: skip
    assert code == 0, err
    rows = doc["results"]
    want = ["model.float32.tflite", "model.int8.tflite"] + (
        ["edgekit_model.c"] if "c" in runtimes else []
    )
    assert [r["artifact"] for r in rows] == [a for a in want for _ in (1, 4)]
    assert {r["device"] for r in rows} == {sshd.url}
    assert all(r["status"] == "ok" and r["latency_ms"]["p50"] > 0 for r in rows), rows
    assert all(r["metrics"]["accuracy"] > 0.8 for r in rows)
    assert rows[0]["path"] == str(device_export / "model.float32.tflite")  # the local file
    env = doc["environment"]
    assert env["device"] == sshd.url and env["remote_python"] == device_python
    assert env["cores"] == os.cpu_count() and env["memory_mb"] > 0 and env["cpu"]
    assert "tensorflow" not in env["versions"]  # measured by the device's core install
    assert f"[1/{len(rows)}] model.float32.tflite tflite {sshd.url} threads=1 batch=1: ok" in err
    assert _leftovers(sshd) == []


@SLOW
def test_budgets_and_baseline_apply_here(sshd, device_export, device_python, tmp_path):
    common = [str(device_export / "model.int8.tflite"), "--device", sshd.url,
              "--remote-python", device_python, *sshd.options(), *FAST]  # fmt: skip
    first = tmp_path / "first.json"
    code, out, err = cli("bench", *common, "--budget", "int8:accuracy>=0.5", "--json", str(first))
    assert code == 0, err
    assert "budgets: 1 check(s) passed" in out
    code, out, err = cli("bench", *common, "--budget", "p50_ms<=0.000001", "--baseline", str(first))
    assert code == 1
    assert "budget violations:" in out and sshd.url in out
    assert "against the baseline" in out  # rows matched on the device's name
    assert err.splitlines()[-1].startswith("edgekit: error: 1 budget check(s) violated")
    assert _leftovers(sshd) == []


@SLOW
def test_named_device_from_edgekit_toml(sshd, device_export, device_python, tmp_path):
    (tmp_path / "edgekit.toml").write_text(
        f'[devices.board]\nhost = "{sshd.user}@127.0.0.1"\nport = {sshd.port}\n'
        f'python = "{device_python}"\n'
        f'ssh_options = {{IdentityFile = "{sshd.key}", IdentitiesOnly = true, '
        f'UserKnownHostsFile = "{sshd.known_hosts}", GlobalKnownHostsFile = "/dev/null"}}\n'
    )
    data = tmp_path / "my test data.npz"
    shutil.copy(device_export / "test.npz", data)
    code, doc, err = _bench(
        str(device_export / "model.int8.tflite"), "--device", "board", "--data", str(data), *FAST
    )
    assert code == 0, err
    (row,) = doc["results"]
    assert (row["device"], row["status"]) == ("board", "ok")
    assert doc["environment"]["device"] == "board"
    assert _leftovers(sshd) == []


@SLOW
def test_hostile_file_names_stay_file_names(sshd, device_export, device_python, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(device_export, export)
    manifest = json.loads((export / "manifest.json").read_text())
    names = {
        "model.int8.tflite": "model; touch ${TMPDIR}_pwned1 #.int8.tflite",
        "model.float32.tflite": "$(touch ${TMPDIR}_pwned2) 'q\" `touch ${TMPDIR}_pwned3`.tflite",
    }
    for art in manifest["artifacts"]:
        (export / art["file"]).rename(export / names[art["file"]])
        art["file"] = names[art["file"]]
    (export / "manifest.json").write_text(json.dumps(manifest))
    data = tmp_path / "-x $(touch ${TMPDIR}_pwned4).npz"
    shutil.copy(export / "test.npz", data)
    code, doc, err = _bench(
        str(export), "--device", sshd.url, "--remote-python", device_python, *sshd.options(),
        "--data", str(data), *FAST,
    )  # fmt: skip
    assert code == 0, err
    assert [(r["artifact"], r["status"]) for r in doc["results"]] == [
        (names["model.float32.tflite"], "ok"), (names["model.int8.tflite"], "ok")
    ]  # fmt: skip
    for place in (sshd.remote_tmp, sshd.remote_tmp.parent, Path.home(), Path.cwd(), tmp_path):
        assert list(place.glob("*_pwned[0-9]")) == [], place
    assert _leftovers(sshd) == []


@SLOW
def test_ctrl_c_stops_the_remote_bench_and_removes_its_directory(
    sshd, device_export, device_python, tmp_path
):
    """SIGINT to the local edgekit while the device measures: exit 130, nothing left there."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgekit", "bench", str(device_export / "model.int8.tflite"),
         "--device", sshd.url, "--remote-python", device_python, *sshd.options(),
         "--batch", "2048", "--runs", "100000", "--min-time", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(tmp_path / "local_tmp")},
    )  # fmt: skip
    try:
        pid_file, deadline = None, time.monotonic() + 60
        while pid_file is None and time.monotonic() < deadline:
            found = list(sshd.remote_tmp.glob("edgekit-bench-*/.pid"))
            pid_file = found[0] if found and found[0].read_text().strip() else None
            time.sleep(0.05)
        assert pid_file is not None, proc.stderr.read() if proc.poll() is not None else ""
        remote_pid = int(pid_file.read_text())
        time.sleep(1.0)  # the device is measuring now
        assert Path(f"/proc/{remote_pid}").exists()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert err.endswith("edgekit: interrupted\n")
    assert _leftovers(sshd) == []
    deadline = time.monotonic() + 10
    while Path(f"/proc/{remote_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{remote_pid}").exists()  # the remote bench was stopped


# --- what goes wrong, each with one clear line ---------------------------------------------


def _one_line_error(args: list[str]) -> tuple[int, str]:
    """A real subprocess: exit code and the whole of stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit", "bench", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.stdout == ""
    return proc.returncode, proc.stderr


@pytest.fixture(scope="module")
def model(device_export) -> str:
    return str(device_export / "model.int8.tflite")


def test_unreachable_host(sshd, model):
    from tests.devices.conftest import free_port

    port = free_port()  # nothing listens there
    url = f"ssh://{sshd.user}@127.0.0.1:{port}"
    code, err = _one_line_error([model, "--device", url, *sshd.options()])
    assert (code, err) == (
        2,
        f"edgekit: error: cannot reach {url} (ssh: connect to host 127.0.0.1 port {port}: "
        "Connection refused)\n",
    )


def test_login_refused(sshd, model, tmp_path):
    wrong = keygen(tmp_path / "wrong_key")
    code, err = _one_line_error([model, "--device", sshd.url, *sshd.options(key=wrong)])
    assert (code, err) == (
        2,
        f"edgekit: error: {sshd.url} refused the login ({sshd.user}@127.0.0.1: Permission denied "
        "(publickey).); check the user and the key, e.g. --ssh-option "
        "IdentityFile=~/.ssh/id_ed25519 or ssh_options in the device's entry\n",
    )


def test_unknown_host_key_is_refused(sshd, model, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    code, err = _one_line_error([model, "--device", sshd.url, *sshd.options(known_hosts=empty)])
    assert (code, err) == (
        2,
        f"edgekit: error: cannot verify the host key of {sshd.url} (Host key verification "
        "failed.); edgekit keeps host key checking on: connect once with ssh to add the host to "
        "known_hosts, or pass --ssh-option UserKnownHostsFile=FILE\n",
    )


def test_remote_python_missing(sshd, model):
    code, err = _one_line_error(
        [model, "--device", sshd.url, *sshd.options(), "--remote-python", "/nonexistent/python"]
    )
    assert (code, err) == (
        2,
        f"edgekit: error: {sshd.url}: no Python at /nonexistent/python there; pass "
        "--remote-python PATH or set python in the device's entry\n",
    )
    assert _leftovers(sshd) == []


def test_remote_edgekit_missing(sshd, model, tmp_path_factory):
    bare = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = str(bare / "bin" / "python")
    code, err = _one_line_error(
        [model, "--device", sshd.url, *sshd.options(), "--remote-python", python]
    )
    assert (code, err) == (
        2,
        f"edgekit: error: {sshd.url}: edgekit is not installed for {python} there; install "
        f"this edgekit there with: edgekit device setup {sshd.url} --remote-python {python} and "
        "the same --ssh-option flags (it copies this install's own core wheel there; the "
        "package index's 'edgekit' is an unrelated project)\n",
    )
    assert _leftovers(sshd) == []
