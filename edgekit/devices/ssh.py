"""The SSH transport: the system OpenSSH client (``ssh``), from argument lists.

Every call runs ``ssh`` with ``-o BatchMode=yes`` (never a password prompt), host key checking
as the user's configuration has it (edgekit never turns it off), a connect timeout and a
subprocess time limit, and ``--`` before the destination. The command that runs on the device
is built from words, each quoted with :func:`shlex.quote`, so no file name is ever interpreted
by the remote shell. Options stack: ``BatchMode=yes`` first, then ``--ssh-option`` values, then
the device's ``ssh_options``, then edgekit's defaults; ssh takes the first value it gets for an
option, and the user's ``~/.ssh/config`` fills in everything not given on the command line.

Connections are multiplexed: the first call starts an OpenSSH control master (a socket in a
private local temporary directory, ``ControlPersist`` of a few seconds) and later calls reuse
it, so a remote bench pays for one handshake; :meth:`SSH.close` stops the master.

Files travel as a tar stream over that same ssh connection (:meth:`SSH.upload`: Python's
:mod:`tarfile` writes it here, the board's ``tar`` unpacks it), never over scp or SFTP: many
boards (dropbear on embedded Linux images) have no SFTP subsystem, which OpenSSH's scp needs
since 9.0. The board needs only ``sh`` and ``tar`` (busybox has both).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.devices.config import Device
from edgekit.errors import EdgekitError

ENFORCED = (("BatchMode", "yes"),)
DEFAULTS = (("ConnectTimeout", "10"), ("ServerAliveInterval", "15"), ("ServerAliveCountMax", "4"))
CONTROL_PERSIST_S = 10


class DeviceError(EdgekitError):
    """The device cannot be used: unreachable, login refused, no Python or edgekit there."""


_UNREACHABLE = (
    "connection refused",
    "connection timed out",
    "operation timed out",
    "no route to host",
    "network is unreachable",
    "could not resolve hostname",
    "name or service not known",
    "temporary failure in name resolution",
    "connection reset",
    "connection closed by",
    "kex_exchange_identification",
)
_AUTH = ("permission denied", "too many authentication failures", "no supported authentication")
_HOSTKEY = ("host key verification failed", "remote host identification has changed")


def remote_command(words: Sequence[str]) -> str:
    """Words -> one command line for the remote shell, every word quoted."""
    return " ".join(shlex.quote(str(w)) for w in words)


def last_message(stderr: str) -> str:
    """ssh's own last message (the warnings banner and blank lines dropped)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("@@@", "Warning: Permanently"))]
    return lines[-1][:300] if lines else "no message"


def connection_error(device: Device, stderr: str) -> DeviceError:
    """ssh exited with 255: which of unreachable, login refused, host key or other."""
    text = stderr.lower()
    reason = last_message(stderr)
    if any(s in text for s in _HOSTKEY):
        return DeviceError(
            f"cannot verify the host key of {device.label} ({reason}); edgekit keeps host key "
            "checking on: connect once with ssh to add the host to known_hosts, or pass "
            "--ssh-option UserKnownHostsFile=FILE"
        )
    if any(s in text for s in _AUTH):
        return DeviceError(
            f"{device.label} refused the login ({reason}); check the user and the key, e.g. "
            "--ssh-option IdentityFile=~/.ssh/id_ed25519 or ssh_options in the device's entry"
        )
    if any(s in text for s in _UNREACHABLE):
        return DeviceError(f"cannot reach {device.label} ({reason})")
    return DeviceError(f"ssh to {device.label} failed ({reason})")


@dataclass
class SSH:
    """Run commands on and copy files to one device.

    >>> with SSH(device, options=[("IdentityFile", "~/.ssh/pi")]) as ssh:   # doctest: +SKIP
    ...     ssh.run(["uname", "-a"], timeout=30).stdout
    """

    device: Device
    options: Sequence[tuple[str, str]] = ()
    multiplex: bool = os.name == "posix"
    _control_dir: str | None = field(default=None, init=False, repr=False)

    def option_args(self) -> list[str]:
        """``-o KEY=VALUE`` arguments, first value of each key wins (as in ssh).

        A device whose entry may not run commands here (a project's ``edgekit.toml``) is
        refused when its ``ssh_options`` hold one (:meth:`Device.check_options`): every ssh
        command line (also the one that copies files) is built here.
        """
        self.device.check_options()
        pairs = [*ENFORCED, *self.options, *self.device.ssh_options.items(), *DEFAULTS]
        if self.multiplex and self._control_dir is None:
            self._control_dir = _control_dir()
            self.multiplex = self._control_dir is not None
        if self.multiplex and self._control_dir is not None:
            pairs += [
                ("ControlMaster", "auto"),
                ("ControlPath", os.path.join(self._control_dir, "cm")),
                ("ControlPersist", str(CONTROL_PERSIST_S)),
            ]
        seen: set[str] = set()
        args: list[str] = []
        for key, value in pairs:
            if key.lower() in seen:
                continue
            seen.add(key.lower())
            args += ["-o", f"{key}={value}"]
        return args

    def ssh_argv(self, words: Sequence[str], *, extra: Sequence[str] = ()) -> list[str]:
        port = ["-p", str(self.device.port)] if self.device.port else []
        argv = ["ssh", *self.option_args(), *port, *extra, "--", self.device.destination]
        return [*argv, remote_command(words)] if words else argv

    def upload_argv(self, remote_dir: str) -> list[str]:
        """The ssh command that unpacks a tar stream (its stdin) into ``remote_dir``."""
        return self.ssh_argv(["sh", "-c", UNPACK, "sh", remote_dir])

    def _call(
        self, argv: list[str], *, timeout: float, what: str
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
            )
        except FileNotFoundError as err:
            raise DeviceError(
                f"the OpenSSH client ({argv[0]}) is not installed here; install openssh-client "
                "to bench on remote devices"
            ) from err
        except subprocess.TimeoutExpired as err:
            raise DeviceError(
                f"{self.device.label} did not answer within {timeout:g} s ({what})"
            ) from err

    def run(
        self, words: Sequence[str], *, timeout: float, what: str = "ssh", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``words`` (quoted for the remote shell) on the device.

        ssh's own failure (exit 255: unreachable, login refused, host key) raises a
        :class:`DeviceError`; the remote command's exit status is left to the caller.
        """
        proc = self._call(self.ssh_argv(words), timeout=timeout, what=what)
        if check and proc.returncode == 255:
            raise connection_error(self.device, proc.stderr)
        return proc

    def popen(self, words: Sequence[str]) -> subprocess.Popen[str]:
        """Start ``words`` on the device; stdout and stderr are pipes (text)."""
        try:
            return subprocess.Popen(
                self.ssh_argv(words),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
            )
        except FileNotFoundError as err:
            raise DeviceError(
                "the OpenSSH client (ssh) is not installed here; install openssh-client"
            ) from err

    def upload(self, sources: Sequence[Path], remote_dir: str, *, timeout: float) -> None:
        """Copy local files and directories (recursively, symlinks followed) into
        ``remote_dir`` on the device (made if missing), as a tar stream over ssh.

        Each source keeps its name; ``remote_dir`` is an absolute path, passed to the remote
        shell quoted like every other word.
        """
        if not remote_dir.startswith("/"):
            raise DeviceError(
                f"{self.device.label}: the remote directory {remote_dir!r} is not absolute"
            )
        argv = self.upload_argv(remote_dir)
        with tempfile.TemporaryFile() as stderr:
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr
                )
            except FileNotFoundError as err:
                raise DeviceError(
                    "the OpenSSH client (ssh) is not installed here; install openssh-client"
                ) from err
            writer = _TarWriter(proc, sources)
            writer.start()
            try:
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise DeviceError(
                    f"{self.device.label} did not answer within {timeout:g} s (copying files)"
                ) from None
            except BaseException:  # Ctrl-C: stop ssh, then let the caller clean up
                proc.kill()
                proc.wait()
                raise
            finally:
                writer.join()
            stderr.seek(0)
            message = stderr.read().decode("utf-8", "replace")
        if writer.error is not None:
            raise writer.error
        if returncode == 255:
            raise connection_error(self.device, message)
        if returncode == 127:
            raise DeviceError(
                f"{self.device.label} has no tar (edgekit copies files as a tar stream over "
                "ssh); install tar or busybox there"
            )
        if returncode != 0:
            raise DeviceError(
                f"copying files to {self.device.label} failed ({last_message(message)})"
            )

    def close(self) -> None:
        """Stop the control master (if one was started) and remove its directory."""
        if self._control_dir is None:
            return
        if os.path.exists(os.path.join(self._control_dir, "cm")):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    self.ssh_argv([], extra=["-O", "exit"]),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=10,
                )
        shutil.rmtree(self._control_dir, ignore_errors=True)
        self._control_dir = None

    def __enter__(self) -> SSH:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _control_dir() -> str | None:
    """A private directory for the control socket, with a path short enough for a socket.

    ssh adds 17 characters to the socket's name while it creates it, and a Unix socket's
    path has at most 104 bytes on macOS (108 on Linux); a long ``$TMPDIR`` falls back to
    ``/tmp``, and without a short enough place connections are simply not shared.
    """
    for base in (tempfile.gettempdir(), "/tmp"):
        if len(base) + len("/edgekit-ssh-12345678/cm") + 17 >= 100 or not os.path.isdir(base):
            continue
        with contextlib.suppress(OSError):
            return tempfile.mkdtemp(prefix="edgekit-ssh-", dir=base)
    return None


# Unpacks the tar stream on stdin into $1 (the board's tar: GNU, BSD or busybox).
UNPACK = 'mkdir -p -- "$1" && exec tar -C "$1" -xf -'


def _tar_info(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Members as a file copy would make them: owned by whoever unpacks them."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _TarWriter(threading.Thread):
    """Writes the tar stream of ``sources`` to ssh's stdin (a thread, so that the caller can
    bound the copy with a timeout); a local file that cannot be read ends in ``error``."""

    def __init__(self, proc: subprocess.Popen[bytes], sources: Sequence[Path]) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.sources = [Path(s) for s in sources]
        self.error: EdgekitError | None = None

    def run(self) -> None:
        stream = self.proc.stdin
        assert stream is not None
        try:
            with tarfile.open(fileobj=stream, mode="w|", dereference=True) as tar:
                for source in self.sources:
                    tar.add(source, arcname=source.name, filter=_tar_info)
        except (BrokenPipeError, ConnectionResetError):
            pass  # ssh or the remote tar ended early: its exit status and stderr tell why
        except OSError as err:
            self.error = EdgekitError(f"cannot read {err.filename or 'a file'} to copy it "
                                      f"({err.strerror or err})")  # fmt: skip
            self.proc.kill()
        finally:
            with contextlib.suppress(OSError):
                stream.close()
