"""A real SSH "device" on 127.0.0.1: OpenSSH's sshd with generated keys, for the remote tests.

The session's sshd runs as the current user on a free port, with a generated ed25519 host
key and user key, ``AuthorizedKeysFile`` in a temporary file and its own known_hosts file for
the client (host key checking stays on). ``SetEnv TMPDIR=...`` points the device's temporary
directories at a folder the tests inspect. The device's Python is the ``core_venv`` fixture:
a virtualenv with only the core install.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgekit-test", "-f", str(path)],
        check=True,
        timeout=30,
    )
    return path


@dataclass
class Sshd:
    """The running sshd and what a client needs to reach it."""

    port: int
    user: str
    key: Path
    known_hosts: Path
    remote_tmp: Path  # the device's $TMPDIR
    log: Path

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    def options(self, key: Path | None = None, known_hosts: Path | None = None) -> list[str]:
        """``--ssh-option`` flags for the bench command."""
        pairs = {
            "IdentityFile": key or self.key,
            "IdentitiesOnly": "yes",
            "UserKnownHostsFile": known_hosts or self.known_hosts,
            "GlobalKnownHostsFile": "/dev/null",
        }
        return [arg for k, v in pairs.items() for arg in ("--ssh-option", f"{k}={v}")]

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.remote_tmp.iterdir())


def _wait_for(port: int, proc: subprocess.Popen, log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited ({proc.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    pytest.fail(f"sshd did not listen on 127.0.0.1:{port}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory) -> Iterator[Sshd]:
    yield from _run_sshd(tmp_path_factory.mktemp("sshd"), sftp=True)


@pytest.fixture(scope="session")
def sshd_no_sftp(tmp_path_factory) -> Iterator[Sshd]:
    """A second sshd without any ``Subsystem sftp`` line, as dropbear on many boards: scp
    (which speaks SFTP since OpenSSH 9) and sftp fail there."""
    yield from _run_sshd(tmp_path_factory.mktemp("sshd_no_sftp"), sftp=False)


def _run_sshd(base: Path, *, sftp: bool) -> Iterator[Sshd]:
    if not SSHD.exists() or shutil.which("ssh") is None:
        pytest.skip("needs OpenSSH: /usr/sbin/sshd and ssh (apt-get install openssh-server)")
    host_key = keygen(base / "host_key")
    user_key = keygen(base / "user_key")
    authorized = base / "authorized_keys"
    authorized.write_text((base / "user_key.pub").read_text())
    remote_tmp = base / "device_tmp"
    remote_tmp.mkdir()
    port = free_port()
    config = base / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {base / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "StrictModes no",
                "UsePAM no",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                *(["Subsystem sftp internal-sftp"] if sftp else []),
                f"SetEnv TMPDIR={remote_tmp}",
                "MaxStartups 50",
                "MaxSessions 50",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    if os.geteuid() == 0:  # sshd's privilege separation directory (a container may lack it)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    known_hosts = base / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {(base / 'host_key.pub').read_text()}")
    log = base / "sshd.log"
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)], stdout=log_fh, stderr=log_fh
        )
    try:
        _wait_for(port, proc, log, time.monotonic() + 15)
        yield Sshd(
            port=port,
            user=getpass.getuser(),
            key=user_key,
            known_hosts=known_hosts,
            remote_tmp=remote_tmp,
            log=log,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def device_export(digits_run, tmp_path_factory) -> Path:
    """float32 + int8 TFLite and the int8 C source of the digits run (manifest, test.npz)."""
    import edgekit

    out = tmp_path_factory.mktemp("device_export") / "export"
    result = edgekit.export(digits_run.path, quantize=["float32", "int8"], c_source="int8", out=out)
    return Path(result.path)
