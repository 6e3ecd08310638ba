"""Device names, ssh:// URLs, device files and the ssh command lines (no network needed)."""

from __future__ import annotations

import json
import shlex

import pytest

from edgekit.devices import SSH, Device, load_devices, parse_ssh_option, parse_ssh_url
from edgekit.devices.config import resolve_device
from edgekit.devices.remote import CLEANUP, RUN, run_words
from edgekit.devices.ssh import UNPACK
from edgekit.errors import EdgekitError
from tests.conftest import cli


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize(
    ("url", "user", "host", "port", "destination"),
    [
        ("ssh://pi@raspberrypi.local:2222", "pi", "raspberrypi.local", 2222, "pi@raspberrypi.local"),
        ("ssh://jetson", None, "jetson", None, "jetson"),
        ("ssh://root@10.0.0.7/", "root", "10.0.0.7", None, "root@10.0.0.7"),
        ("ssh://me@[::1]:22", "me", "[::1]", 22, "me@::1"),
    ],
)  # fmt: skip
def test_ssh_urls(url, user, host, port, destination):
    device = parse_ssh_url(url)
    assert (device.user, device.host, device.port, device.destination) == (
        user, host, port, destination
    )  # fmt: skip
    assert device.name == url.rstrip("/") and device.label == device.name


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ssh://", "--device 'ssh://' is not a valid ssh URL; expected ssh://[user@]host[:port], "
                   "e.g. ssh://pi@raspberrypi.local:22"),
        ("ssh://-oProxyCommand=touch_x", "--device 'ssh://-oProxyCommand=touch_x' is not a valid "
                                         "ssh URL; expected ssh://[user@]host[:port], e.g. "
                                         "ssh://pi@raspberrypi.local:22"),
        ("ssh://a b", "--device 'ssh://a b' is not a valid ssh URL; expected "
                      "ssh://[user@]host[:port], e.g. ssh://pi@raspberrypi.local:22"),
        ("ssh://pi@host:0", "--device 'ssh://pi@host:0': port must be an integer 1-65535, got '0'"),
        ("ssh://host:70000", "--device 'ssh://host:70000': port must be an integer 1-65535, "
                             "got '70000'"),
    ],
)  # fmt: skip
def test_bad_ssh_urls(url, message):
    with pytest.raises(EdgekitError) as err:
        parse_ssh_url(url)
    assert str(err.value) == message


def test_device_files_and_precedence(tmp_path, monkeypatch):
    user_file = tmp_path / "xdg" / "edgekit" / "devices.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text(
        '[devices.pi4]\nhost = "pi@raspberrypi.local"\nport = 22\n'
        'python = "/home/pi/venv/bin/python"\n'
        'ssh_options = {IdentityFile = "~/.ssh/pi", ForwardAgent = false, ConnectTimeout = 5}\n'
        '[devices.jetson]\nhost = "nvidia@jetson"\n'
    )
    (tmp_path / "edgekit.toml").write_text(
        '[targets.x]\n[devices.jetson]\nhost = "ubuntu@jetson.lan"\nport = 2200\n'
    )
    devices = load_devices()
    assert sorted(devices) == ["jetson", "pi4"]
    pi = devices["pi4"]
    assert (pi.user, pi.host, pi.port, pi.python) == (
        "pi", "raspberrypi.local", 22, "/home/pi/venv/bin/python"
    )  # fmt: skip
    assert pi.ssh_options == {
        "IdentityFile": "~/.ssh/pi",
        "ForwardAgent": "no",
        "ConnectTimeout": "5",
    }
    assert pi.origin == str(user_file) and pi.label == "pi4 (pi@raspberrypi.local:22)"
    # the user's own entry wins over the working directory's (a cloned project's) edgekit.toml
    jetson = resolve_device("jetson")
    assert (jetson.destination, jetson.port, jetson.python) == ("nvidia@jetson", None, None)
    assert jetson.origin == str(user_file)
    with pytest.raises(EdgekitError) as err:
        resolve_device("tpu")
    assert str(err.value) == (
        "unknown device 'tpu'; choose cpu, gpu, ssh://[user@]host[:port] or a device name from "
        "./edgekit.toml or ~/.config/edgekit/devices.toml (jetson, pi4)"
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[devices.pi]\nhost = "pi@pi"\nuser = "x"\n',
         "device 'pi': unknown field(s) user; fields are host, port, python, ssh_options"),
        ("[devices.pi]\nport = 22\n", "device 'pi': host must be \"[user@]host\", got None"),
        ('[devices.pi]\nhost = "pi@pi; rm -rf ~"\n',
         "device 'pi': host must be \"[user@]host\", got 'pi@pi; rm -rf ~'"),
        ('[devices.pi]\nhost = "pi"\nport = "ssh"\n',
         "device 'pi': port must be an integer 1-65535, got 'ssh'"),
        ('[devices.cpu]\nhost = "pi"\n',
         "device 'cpu': a device name uses letters, digits, '_', '.' and '-', and cannot be "
         "cpu or gpu"),
        ('[devices.pi]\nhost = "pi"\nssh_options = "IdentityFile=x"\n',
         "device 'pi': ssh_options must be a table, e.g. {IdentityFile = \"~/.ssh/pi\"}"),
        ("devices = 3\n", "[devices] must be a table of [devices.NAME] tables"),
        ("[devices.pi\n", "not a valid TOML file"),
    ],
)  # fmt: skip
def test_bad_device_files(tmp_path, toml, message):
    (tmp_path / "edgekit.toml").write_text(toml)
    with pytest.raises(EdgekitError) as err:
        load_devices()
    assert str(err.value).startswith(f"{tmp_path / 'edgekit.toml'}: {message}")


def test_ssh_options():
    assert parse_ssh_option("IdentityFile=~/.ssh/my key") == ("IdentityFile", "~/.ssh/my key")
    assert parse_ssh_option("ProxyJump=bastion") == ("ProxyJump", "bastion")
    for bad in ("IdentityFile", "=x", "-oProxyCommand=x", "Key=", "Key=a\nb"):
        with pytest.raises(EdgekitError) as err:
            parse_ssh_option(bad)
        assert str(err.value) == (
            "--ssh-option takes KEY=VALUE with KEY an ssh_config option, e.g. "
            f"IdentityFile=~/.ssh/id_ed25519; got {bad!r}"
        )


def test_ssh_argv_order_and_quoting():
    device = Device(
        name="pi4", host="raspberrypi.local", user="pi", port=2222,
        ssh_options={"IdentityFile": "~/.ssh/pi", "ConnectTimeout": "3", "BatchMode": "no"},
    )  # fmt: skip
    ssh = SSH(device, options=[("IdentityFile", "/keys/ci"), ("UserKnownHostsFile", "/kh")],
              multiplex=False)  # fmt: skip
    words = ["python3", "-m", "edgekit", "bench", "/tmp/d/model; touch pwned #.tflite", "$(id)"]
    argv = ssh.ssh_argv(words)
    assert argv[:-1] == [
        "ssh",
        "-o", "BatchMode=yes",  # enforced: a device entry cannot turn prompts on
        "-o", "IdentityFile=/keys/ci",  # --ssh-option before the device's entry
        "-o", "UserKnownHostsFile=/kh",
        "-o", "ConnectTimeout=3",  # the device's entry before edgekit's defaults
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=4",
        "-p", "2222",
        "--", "pi@raspberrypi.local",
    ]  # fmt: skip
    assert shlex.split(argv[-1]) == words  # what the remote shell will see: the same words
    assert not any("StrictHostKeyChecking" in a for a in argv)
    upload = ssh.upload_argv("/tmp/edgekit bench $(x)")  # files travel as tar over ssh
    assert upload[:-1] == argv[:-1]  # the same options, port and destination
    assert shlex.split(upload[-1]) == ["sh", "-c", UNPACK, "sh", "/tmp/edgekit bench $(x)"]


def test_remote_scripts_take_their_paths_as_arguments():
    words = run_words(
        "/tmp/edgekit-bench-a", "/venv/bin/python", ["d0/m'x.tflite"], ["--runs", "5"]
    )
    assert words[:5] == ["sh", "-c", RUN, "sh", "/tmp/edgekit-bench-a"]
    assert words[5:] == [
        "/venv/bin/python", "-m", "edgekit", "bench", "/tmp/edgekit-bench-a/d0/m'x.tflite",
        "--json", "-", "--runs", "5",
    ]  # fmt: skip
    for script in (RUN, CLEANUP):  # no path is ever pasted into the scripts
        assert "edgekit-bench" not in script and "$1" in script


def test_remote_flags_need_a_remote_device(tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"x")
    code, _, err = cli("bench", "m.tflite", "--remote-python", "/usr/bin/python3")
    assert (code, err) == (
        2,
        "edgekit: error: --remote-python applies to remote devices only (--device "
        "ssh://[user@]host[:port] or a device name from edgekit.toml)\n",
    )
    code, _, err = cli("bench", "m.tflite", "--device", "cpu,ssh://pi@pi")
    assert err == (
        "edgekit: error: --device cpu,ssh://pi@pi: a remote device (ssh://pi@pi) is benched on "
        "its own; run bench once per device\n"
    )
    code, _, err = cli("bench", "m.tflite", "--device", "ssh://pi@pi", "--ssh-option", "x")
    assert err == (
        "edgekit: error: --ssh-option takes KEY=VALUE with KEY an ssh_config option, e.g. "
        "IdentityFile=~/.ssh/id_ed25519; got 'x'\n"
    )


def _target(path, data=None, extra=()):
    from edgekit.bench.targets import Target
    from edgekit.bench.testdata import TestData

    test = TestData(path=data, x_key="x", y_key="y", reference_key=None, n=1, feature_shape=(2,))
    return Target(
        path=path, artifact=path.name, format=path.suffix[1:], variant="v", runtime="r",
        size_bytes=1, data=test if data else None, extra_files=list(extra),
    )  # fmt: skip


def test_staged_layout(tmp_path):
    from edgekit.devices.remote import stage

    a, b = tmp_path / "a", tmp_path / "b"
    for path in (
        a / "manifest.json",
        a / "m 1.tflite",
        a / "m2.tflite",
        a / "test.npz",
        a / "k_model.c",
        a / "k_model.h",
        b / "x.onnx",
        tmp_path / "my data.npz",
    ):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"12345")  # fmt: skip
    targets = [
        _target(a / "m 1.tflite", a / "test.npz"),
        _target(a / "m2.tflite", a / "test.npz"),
        _target(a / "k_model.c", a / "test.npz", extra=[a / "k_model.h"]),
        _target(b / "x.onnx"),
    ]
    root = tmp_path / "stage"
    root.mkdir()
    staged = stage(targets, None, root)
    assert staged.files == ["d0/m 1.tflite", "d0/m2.tflite", "d0/k_model.c", "d1/x.onnx"]
    assert staged.data is None and [p.name for p in staged.entries] == ["d0", "d1"]
    assert sorted(p.name for p in (root / "d0").iterdir()) == [
        "k_model.c", "k_model.h", "m 1.tflite", "m2.tflite", "manifest.json", "test.npz"
    ]  # fmt: skip
    assert [p.name for p in (root / "d1").iterdir()] == ["x.onnx"]
    assert staged.nbytes == 7 * 5  # each file once
    root2 = tmp_path / "stage2"
    root2.mkdir()
    staged = stage(targets, tmp_path / "my data.npz", root2)  # --data: one copy, no test.npz
    assert staged.data == "data/my data.npz"
    assert "test.npz" not in {p.name for p in (root2 / "d0").iterdir()}


def test_remote_output_parsing():
    from edgekit.devices import DeviceError
    from edgekit.devices.remote import _parse

    device = parse_ssh_url("ssh://pi@pi")
    doc = {"schema": "edgekit.bench/1", "environment": {}, "results": []}
    banner = "Welcome to {the} board\n"
    assert _parse(device, banner + json.dumps(doc, indent=2), "", 1) == doc
    for stdout, stderr, code, message in [
        ("", "edgekit: error: --runs takes an integer >= 1, got 0\n", 2,
         "edgekit on ssh://pi@pi refused the bench: --runs takes an integer >= 1, got 0"),
        ("", "Traceback (most recent call last):\nValueError: boom\n", 0,
         "edgekit on ssh://pi@pi returned no bench results (exit 0: ValueError: boom)"),
        ("", "Killed\n", 137, "edgekit on ssh://pi@pi failed (exit 137): Killed"),
        ("", "edgekit: interrupted\n", 130, "edgekit on ssh://pi@pi was interrupted"),
    ]:  # fmt: skip
        with pytest.raises(DeviceError) as err:
            _parse(device, stdout, stderr, code)
        assert str(err.value) == message
