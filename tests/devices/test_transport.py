"""Files to a board as a tar stream over ssh: no scp, no SFTP (real sshds, see conftest.py).

``sshd_no_sftp`` has no ``Subsystem sftp`` line, like dropbear on many embedded images: scp
(which speaks SFTP since OpenSSH 9) fails there, edgekit's upload does not.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edgekit.devices import SSH, Device, DeviceError, parse_ssh_url
from edgekit.errors import EdgekitError
from tests.devices.conftest import free_port

HOSTILE = [
    "model; touch ${TMPDIR}_pwned1 #.tflite",
    "$(touch ${TMPDIR}_pwned2) 'q\" `touch ${TMPDIR}_pwned3`.npz",
    "-rf --no-same-owner",
    "ünïcode ☃ name.json",
    "long-" + "x" * 150 + ".tflite",  # beyond ustar's 100 characters
]


def ssh_to(sshd, **kwargs) -> SSH:
    options = [
        ("IdentityFile", str(sshd.key)),
        ("IdentitiesOnly", "yes"),
        ("UserKnownHostsFile", str(sshd.known_hosts)),
        ("GlobalKnownHostsFile", "/dev/null"),
    ]
    return SSH(parse_ssh_url(sshd.url), options=options, **kwargs)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _pwned(sshd, *places: Path) -> list[Path]:
    found: list[Path] = []
    for place in (sshd.remote_tmp, sshd.remote_tmp.parent, Path.home(), Path.cwd(), *places):
        found += place.glob("*_pwned[0-9]")
    return found


def test_scp_fails_without_an_sftp_subsystem(sshd_no_sftp, tmp_path):
    """What the transport used to be: it cannot copy to such a board."""
    source = tmp_path / "f.txt"
    source.write_text("x")
    proc = subprocess.run(
        ["scp", "-q", "-o", "BatchMode=yes", "-o", f"IdentityFile={sshd_no_sftp.key}",
         "-o", f"UserKnownHostsFile={sshd_no_sftp.known_hosts}", "-P", str(sshd_no_sftp.port),
         "--", str(source), f"{sshd_no_sftp.user}@127.0.0.1:{sshd_no_sftp.remote_tmp}/"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert not (sshd_no_sftp.remote_tmp / "f.txt").exists()


def test_upload_without_sftp_keeps_hostile_names_as_names(sshd_no_sftp, tmp_path):
    local = tmp_path / "stage"
    (local / "d0" / "sub").mkdir(parents=True)
    for i, name in enumerate(HOSTILE):
        (local / "d0" / name).write_bytes(f"{i}:{name}".encode() * 100)
    (local / "d0" / "sub" / "nested.bin").write_bytes(bytes(range(256)) * 4000)  # 1 MB
    elsewhere = tmp_path / "elsewhere.npz"
    elsewhere.write_bytes(b"followed")
    (local / "d0" / "link.npz").symlink_to(elsewhere)  # staging links are copied as files
    top = local / "top $(touch ${TMPDIR}_pwned4).txt"
    top.write_text("top")
    remote = sshd_no_sftp.remote_tmp / "up $(touch ${TMPDIR}_pwned5) 'q\" dir" / "new"
    with ssh_to(sshd_no_sftp) as ssh:
        ssh.upload([local / "d0", top], str(remote), timeout=60)
    assert _tree(remote / "d0") == {
        **_tree(local / "d0"), "link.npz": b"followed"
    }  # fmt: skip
    assert not (remote / "d0" / "link.npz").is_symlink()
    assert (remote / top.name).read_text() == "top"
    assert _pwned(sshd_no_sftp, tmp_path) == []


def test_upload_refuses_a_relative_remote_directory(sshd_no_sftp, tmp_path):
    with ssh_to(sshd_no_sftp) as ssh, pytest.raises(DeviceError, match="is not absolute"):
        ssh.upload([tmp_path], "relative/dir", timeout=10)


def test_upload_into_a_place_that_cannot_be_made(sshd_no_sftp, tmp_path):
    blocker = sshd_no_sftp.remote_tmp / "a-file"
    blocker.write_text("")
    (tmp_path / "x").write_text("x")
    with ssh_to(sshd_no_sftp) as ssh, pytest.raises(DeviceError) as err:
        ssh.upload([tmp_path / "x"], str(blocker / "sub"), timeout=30)
    message = str(err.value)
    assert message.startswith(f"copying files to {sshd_no_sftp.url} failed (")
    assert "Not a directory" in message or "File exists" in message
    blocker.unlink()


def test_upload_to_an_unreachable_board(sshd_no_sftp, tmp_path):
    port = free_port()  # nothing listens there
    device = Device(name=f"ssh://127.0.0.1:{port}", host="127.0.0.1", port=port)
    (tmp_path / "x").write_text("x")
    ssh = SSH(device, options=[("UserKnownHostsFile", str(sshd_no_sftp.known_hosts))])
    with ssh, pytest.raises(DeviceError, match=f"cannot reach ssh://127.0.0.1:{port} "):
        ssh.upload([tmp_path / "x"], "/tmp/x", timeout=30)


def test_upload_of_a_missing_local_file(sshd_no_sftp, tmp_path):
    with ssh_to(sshd_no_sftp) as ssh, pytest.raises(EdgekitError, match="cannot read"):
        ssh.upload([tmp_path / "missing.tflite"], str(sshd_no_sftp.remote_tmp / "m"), timeout=30)


def test_upload_keeps_the_project_file_restrictions(sshd_no_sftp, tmp_path):
    """A project's device entry that would run a command here is refused before ssh runs."""
    device = Device(
        name="board", host="127.0.0.1", port=sshd_no_sftp.port,
        ssh_options={"ProxyCommand": f"touch {tmp_path}/pwned"}, origin="/repo/edgekit.toml",
    )  # fmt: skip
    (tmp_path / "x").write_text("x")
    with SSH(device) as ssh, pytest.raises(EdgekitError, match="sets ssh option ProxyCommand"):
        ssh.upload([tmp_path / "x"], "/tmp/x", timeout=30)
    assert not (tmp_path / "pwned").exists()
