"""A project's ``./edgekit.toml`` cannot make ssh run commands here (issue 13, class 3).

The working directory's file comes with a cloned repository; its devices may not set ssh
options that run a command on this machine (``ProxyCommand``, ``LocalCommand``, ...), not even
hidden in another option's value, unless the user's own ``~/.config/edgekit/devices.toml``
allows that project (``allow_commands``). The user's entry wins over a project's. The check
sits where the ssh command line is built, so every path goes through it; a real sshd on
127.0.0.1 shows that nothing ran.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from edgekit.devices import SSH, Device, load_devices, resolve_device
from edgekit.devices.config import COMMAND_OPTIONS, user_file
from edgekit.errors import EdgekitError
from tests.conftest import cli
from tests.devices import conftest as device_fixtures

sshd = device_fixtures.sshd

FAST = ["--warmup", "1", "--runs", "5", "--min-time", "0"]
OPTION_NAMES = {
    "proxycommand": "ProxyCommand",
    "proxyjump": "ProxyJump",
    "localcommand": "LocalCommand",
    "permitlocalcommand": "PermitLocalCommand",
    "knownhostscommand": "KnownHostsCommand",
    "match": "Match",
    "include": "Include",
    "host": "Host",
    "pkcs11provider": "PKCS11Provider",
    "securitykeyprovider": "SecurityKeyProvider",
    "xauthlocation": "XAuthLocation",  # with ForwardX11 ssh runs it: found by a hostile try
}


@pytest.fixture(autouse=True)
def _user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def project(tmp_path: Path, options: str, name: str = "board", host: str = "pi@board") -> Path:
    path = tmp_path / "edgekit.toml"
    path.write_text(f'[devices.{name}]\nhost = "{host}"\nssh_options = {{{options}}}\n')
    return path


def user(text: str) -> Path:
    path = user_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def refusal(path: Path, key: str, word: str | None = None, name: str = "board") -> str:
    what = f"sets ssh option {key}" if word is None else f"has {word!r} in ssh option {key}"
    return (
        f"{path}: device {name!r} {what}, which would run a command on this machine; a "
        f"project's edgekit.toml may not do that (define the device in {user_file()}, or allow "
        f'this project there: allow_commands = ["{path.parent}"])'
    )


def test_every_command_option_is_listed():
    assert set(COMMAND_OPTIONS) == set(OPTION_NAMES)


@pytest.mark.parametrize("key", [*OPTION_NAMES.values(), *(k.upper() for k in OPTION_NAMES),
                                 *OPTION_NAMES])  # fmt: skip
def test_a_project_cannot_set_a_command_option(tmp_path, key):
    path = project(tmp_path, f'{key} = "touch {tmp_path}/pwned"')
    with pytest.raises(EdgekitError) as err:
        resolve_device("board")
    assert str(err.value) == refusal(path, key)
    code, out, err_text = cli("bench", "x.tflite", "--device", "board")
    assert (code, out, err_text) == (2, "", f"edgekit: error: {refusal(path, key)}\n")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("key", "value", "word"),
    [
        ("IdentityFile", "-oProxyCommand=touch pwned", "ProxyCommand"),
        ("UserKnownHostsFile", "/dev/null -o LocalCommand=touch pwned", "LocalCommand"),
        ("ControlPath", "x proxycommand sh", "proxycommand"),
        ("User", "pi -oKnownHostsCommand=/bin/sh", "KnownHostsCommand"),
        ("SendEnv", "LANG -J evil -oProxyJump=evil", "ProxyJump"),
        ("HostKeyAlias", "x PermitLocalCommand=yes", "PermitLocalCommand"),
        ("CertificateFile", "-oPKCS11Provider=/tmp/evil.so", "PKCS11Provider"),
        ("IdentityAgent", "SecurityKeyProvider=/tmp/evil.so", "SecurityKeyProvider"),
    ],
)
def test_a_command_option_hidden_in_a_value_is_refused(tmp_path, key, value, word):
    path = project(tmp_path, f'{key} = "{value}"')
    with pytest.raises(EdgekitError) as err:
        resolve_device("board")
    assert str(err.value) == refusal(path, key, word)


@pytest.mark.parametrize("key", list(OPTION_NAMES.values()))
def test_the_users_own_file_may_set_them(tmp_path, key):
    user(f'[devices.board]\nhost = "pi@board"\nssh_options = {{{key} = "echo hi"}}\n')
    device = resolve_device("board")
    assert device.allow_commands and device.origin == str(user_file())
    args = SSH(device, multiplex=False).option_args()
    assert f"{key}=echo hi" in args


@pytest.mark.parametrize("form", ["dir", "file", "tilde", "trailing-slash"])
def test_the_user_can_allow_one_project(tmp_path, monkeypatch, form):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = project(tmp_path, 'ProxyCommand = "nc %h %p"')
    entry = {"dir": str(tmp_path), "file": str(path), "tilde": "~",
             "trailing-slash": f"{tmp_path}/"}[form]  # fmt: skip
    user(f'allow_commands = ["{entry}"]\n')
    device = resolve_device("board")
    assert device.allow_commands
    assert "ProxyCommand=nc %h %p" in SSH(device, multiplex=False).option_args()


@pytest.mark.parametrize(
    "allowed", ["/nonexistent", "{tmp}/sub", "{tmp}/edgekit.toml.bak", "{tmp}/other.toml"]
)
def test_allowing_another_place_does_not_allow_this_one(tmp_path, allowed):
    path = project(tmp_path, 'LocalCommand = "touch pwned"')
    user(f'allow_commands = ["{allowed.format(tmp=tmp_path)}"]\n')
    with pytest.raises(EdgekitError) as err:
        resolve_device("board")
    assert str(err.value) == refusal(path, "LocalCommand")


def test_a_project_cannot_allow_itself(tmp_path):
    path = tmp_path / "edgekit.toml"
    path.write_text(
        f'allow_commands = ["{tmp_path}"]\n[devices.board]\nhost = "pi@board"\n'
        'ssh_options = {ProxyCommand = "touch pwned"}\n'
    )
    with pytest.raises(EdgekitError) as err:
        resolve_device("board")
    assert str(err.value) == refusal(path, "ProxyCommand")


@pytest.mark.parametrize("value", ['"~/src"', "true", "[1]", '[""]', "{a = 1}"])
def test_a_malformed_allow_list_is_a_user_error(tmp_path, value):
    project(tmp_path, 'IdentityFile = "~/.ssh/pi"')
    path = user(f"allow_commands = {value}\n")
    with pytest.raises(EdgekitError) as err:
        load_devices()
    assert str(err.value) == (
        f'{path}: allow_commands must be a list of project directories, e.g. ["~/src/robot"]'
    )


def test_the_users_entry_wins_over_the_projects(tmp_path):
    project(tmp_path, 'ProxyCommand = "touch pwned"', host="evil@attacker")
    user('[devices.board]\nhost = "pi@raspberrypi.local"\nport = 2222\n')
    device = resolve_device("board")
    assert (device.destination, device.port, device.ssh_options) == (
        "pi@raspberrypi.local", 2222, {}
    )  # fmt: skip
    assert device.origin == str(user_file())
    # a project's other devices are still there, under the same rule
    (tmp_path / "edgekit.toml").write_text(
        (tmp_path / "edgekit.toml").read_text() + '[devices.other]\nhost = "pi@other"\n'
    )
    assert sorted(load_devices()) == ["board", "other"]
    assert load_devices()["other"].allow_commands is False


@pytest.mark.parametrize("key", ["IdentityFile", "Port", "ConnectTimeout", "ServerAliveInterval",
                                 "UserKnownHostsFile", "Compression"])  # fmt: skip
def test_ordinary_options_stay_allowed(tmp_path, key):
    project(tmp_path, f'{key} = "2"')
    device = resolve_device("board")
    assert f"{key}=2" in SSH(device, multiplex=False).option_args()


@pytest.mark.parametrize(
    "key", ["ForwardX11", "ForwardAgent", "LocalForward", "RemoteForward", "DynamicForward",
            "SendEnv", "SetEnv", "ControlPath", "IdentityAgent", "Tunnel", "forwardx11trusted"]
)  # fmt: skip
def test_a_project_may_set_only_the_listed_options(tmp_path, key):
    """An allowlist, not only a denylist: outside keys, host keys, algorithms, timeouts and
    logging, a project's device file sets nothing (X11/agent/port forwarding, environment)."""
    path = project(tmp_path, f'{key} = "yes"')
    message = (
        f"{path}: device 'board' sets ssh option {key}, which a project's edgekit.toml may not "
        "set (it may set keys, host keys, algorithms, timeouts and logging: IdentityFile, "
        f"UserKnownHostsFile, ConnectTimeout, ...); define the device in {user_file()}, or "
        f'allow this project there: allow_commands = ["{path.parent}"]'
    )
    with pytest.raises(EdgekitError) as err:
        resolve_device("board")
    assert str(err.value) == message
    code, out, err_text = cli("bench", "x.tflite", "--device", "board")
    assert (code, out, err_text) == (2, "", f"edgekit: error: {message}\n")
    user(f'allow_commands = ["{tmp_path}"]\n')  # the user can allow this project
    assert f"{key}=yes" in SSH(resolve_device("board"), multiplex=False).option_args()


@pytest.mark.parametrize(("key", "value"), [("StrictHostKeyChecking", "no"),
                                            ("stricthostkeychecking", "OFF"),
                                            ("UserKnownHostsFile", "/dev/null"),
                                            ("UserKnownHostsFile", "none /dev/null")])  # fmt: skip
def test_a_project_cannot_turn_host_key_checking_off(tmp_path, key, value):
    path = project(tmp_path, f'{key} = "{value}"')
    message = (
        f"{path}: device 'board' sets ssh option {key}={value}, which turns host key checking "
        f"off; a project's edgekit.toml may not (define the device in {user_file()}, or allow "
        f'this project there: allow_commands = ["{path.parent}"])'
    )
    code, out, err_text = cli("bench", "x.tflite", "--device", "board")
    assert (code, out, err_text) == (2, "", f"edgekit: error: {message}\n")
    project(tmp_path, 'StrictHostKeyChecking = "accept-new"')  # still checks known keys
    assert (
        "StrictHostKeyChecking=accept-new"
        in SSH(resolve_device("board"), multiplex=False).option_args()
    )
    user(f'allow_commands = ["{tmp_path}"]\n')  # the user may allow it
    project(tmp_path, f'{key} = "{value}"')
    assert f"{key}={value}" in SSH(resolve_device("board"), multiplex=False).option_args()


@pytest.mark.parametrize("key", ["ProxyCommand", "LocalCommand", "proxyjump", "Include"])
@pytest.mark.parametrize("build", ["ssh_argv", "upload_argv", "option_args"])
def test_the_command_line_builder_refuses_it_for_every_caller(key, build):
    device = Device(name="board", host="board", ssh_options={key: "touch pwned"},
                    origin="/repo/edgekit.toml")  # fmt: skip
    ssh = SSH(device, multiplex=False)
    calls = {"ssh_argv": lambda: ssh.ssh_argv(["true"]),
             "upload_argv": lambda: ssh.upload_argv("/tmp/y"),
             "option_args": ssh.option_args}  # fmt: skip
    with pytest.raises(EdgekitError, match=f"sets ssh option {key}, which would run a command"):
        calls[build]()
    device.allow_commands = True
    assert any(f"{key}=touch pwned" in a for a in calls[build]())


def test_command_line_options_are_the_users_own():
    ssh = SSH(Device(name="ssh://b", host="b"), options=[("ProxyCommand", "nc %h %p")],
              multiplex=False)  # fmt: skip
    assert "ProxyCommand=nc %h %p" in ssh.option_args()


# --- against a real sshd -------------------------------------------------------------------


def _device_toml(sshd, extra: str) -> str:
    return (
        f'[devices.board]\nhost = "{sshd.user}@127.0.0.1"\nport = {sshd.port}\n'
        f'python = "{sys.executable}"\n'
        f'ssh_options = {{IdentityFile = "{sshd.key}", IdentitiesOnly = true, '
        f'UserKnownHostsFile = "{sshd.known_hosts}", GlobalKnownHostsFile = "/dev/null"'
        f"{extra}}}\n"
    )


@pytest.fixture
def one_artifact(export_dir, tmp_path) -> Path:
    out = tmp_path / "art"
    out.mkdir()
    for name in ("model.int8.tflite", "manifest.json", "test.npz"):
        shutil.copy(export_dir / name, out / name)
    return out / "model.int8.tflite"


@pytest.mark.parametrize("allowed", [False, True])
def test_local_command_from_a_project_file_never_runs(sshd, one_artifact, tmp_path, allowed):
    marker = tmp_path / "local-command-ran"
    path = tmp_path / "edgekit.toml"
    path.write_text(
        _device_toml(sshd, f', PermitLocalCommand = "yes", LocalCommand = "touch {marker}"')
    )
    if allowed:
        user(f'allow_commands = ["{tmp_path}"]\n')
    code, out, err = cli("bench", str(one_artifact), "--device", "board", *FAST)
    if not allowed:
        assert (code, out) == (2, "")
        assert err == f"edgekit: error: {refusal(path, 'PermitLocalCommand')}\n"
        assert not marker.exists()
    else:  # the user allowed it: ssh runs it (and the bench works)
        assert code == 0, err
        assert marker.exists()


def test_a_plain_project_device_still_works(sshd, one_artifact, tmp_path):
    (tmp_path / "edgekit.toml").write_text(_device_toml(sshd, ""))
    code, out, err = cli("bench", str(one_artifact), "--device", "board", *FAST)
    assert code == 0, err
    assert "board" in out
