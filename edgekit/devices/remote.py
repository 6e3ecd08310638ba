"""Bench on a remote Linux board: copy the files there, run edgekit's bench, bring the JSON back.

The flow of :func:`bench_remote`, over :class:`~edgekit.devices.ssh.SSH`:

1. the remote Python checks that it can import edgekit and makes a fresh temporary directory
   (``tempfile.mkdtemp``, which honours the device's ``$TMPDIR`` as ``mktemp -d`` does);
2. the artifacts, each directory's ``manifest.json`` and test data (or ``--data``) go into
   it as a tar stream over ssh (:meth:`~edgekit.devices.ssh.SSH.upload`: no scp, no SFTP),
   keeping the file names;
3. ``<python> -m edgekit bench FILES --json - FLAGS`` runs there (the core install is enough)
   and its JSON comes back on stdout; the run removes the directory when it ends;
4. on any failure, timeout or Ctrl-C, a separate best-effort call stops the remote bench and
   removes the directory.

Budgets, the baseline and the output files are then handled here, on the returned rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.devices.config import DEFAULT_PYTHON, Device
from edgekit.devices.ssh import SSH, DeviceError, connection_error, last_message
from edgekit.formats.manifest import MANIFEST_NAME

PREFLIGHT_TIMEOUT = 60.0
CLEANUP_TIMEOUT = 30.0
MIN_PYTHON = (3, 10)

# Runs in the device's Python (any version, so that an old one gets a clear message).
PREFLIGHT = """\
import json, sys, tempfile
if sys.path and sys.path[0] in ("", "."):
    del sys.path[0]
try:
    import edgekit
    version = getattr(edgekit, "__version__", "unknown")
except ImportError:
    version = None
ok = version is not None and sys.version_info >= (3, 10)
tmp = tempfile.mkdtemp(prefix="edgekit-bench-") if ok else None
sys.stdout.write(json.dumps({"python": "%d.%d.%d" % tuple(sys.version_info[:3]),
                             "edgekit": version, "tmp": tmp}) + "\\n")
"""

# Runs the bench in the temporary directory; its pid goes to .pid (for a cleanup that must
# stop it) and the directory is removed when the bench ends, however it ends.
RUN = """\
d=$1; shift
cd "$d" || exit 125
"$@" &
p=$!
echo "$p" > .pid
wait "$p"
rc=$?
cd / && rm -rf -- "$d"
exit "$rc"
"""

CLEANUP = """\
if [ "$2" = stop ] && [ -f "$1/.pid" ]; then kill -TERM "$(cat "$1/.pid")" 2>/dev/null; fi
rm -rf -- "$1"
"""


@dataclass
class Staged:
    """The files to copy, laid out in a local directory of symlinks, and their remote names."""

    root: Path
    entries: list[Path]  # top-level entries of ``root`` (copied into the remote directory)
    files: list[str]  # per target, its path relative to the remote directory
    data: str | None  # --data, relative to the remote directory
    nbytes: int


def _link(src: Path, dst: Path) -> int:
    if not dst.exists():
        os.symlink(src.resolve(), dst)
    return src.stat().st_size


def stage(targets: Sequence[Any], user_data: Path | None, root: Path) -> Staged:
    """Lay out what the device needs: ``d<k>/`` per source directory (and test data).

    A directory gets its ``manifest.json``, the artifacts being benched (and the files they
    need, such as a C header) and its test data as ``test.npz``; ``--data`` goes to
    ``data/<name>``. Targets are bench :class:`~edgekit.bench.targets.Target` objects.
    """
    groups: dict[tuple, str] = {}
    files: list[str] = []
    nbytes = 0
    for target in targets:
        data = None if user_data is not None or target.data is None else target.data.path
        key = (target.path.parent.resolve(), Path(data).resolve() if data else None)
        if key not in groups:
            groups[key] = f"d{len(groups)}"
            folder = root / groups[key]
            folder.mkdir()
            manifest = target.path.parent / MANIFEST_NAME
            if manifest.is_file():
                nbytes += _link(manifest, folder / MANIFEST_NAME)
            if data is not None:
                nbytes += _link(Path(data), folder / "test.npz")
        folder = root / groups[key]
        for path in [target.path, *getattr(target, "extra_files", [])]:
            nbytes += _link(path, folder / path.name)
        files.append(f"{groups[key]}/{target.path.name}")
    data_rel = None
    if user_data is not None:
        (root / "data").mkdir()
        nbytes += _link(user_data, root / "data" / user_data.name)
        data_rel = f"data/{user_data.name}"
    entries = sorted(root.iterdir())
    return Staged(root=root, entries=entries, files=files, data=data_rel, nbytes=nbytes)


class RemoteSession:
    """A temporary directory on the device: made by :meth:`start`, removed by :meth:`cleanup`."""

    def __init__(self, ssh: SSH, python: str) -> None:
        self.ssh = ssh
        self.python = python
        self.tmp: str | None = None
        self.remote_python_version: str | None = None
        self.remote_edgekit: str | None = None

    @property
    def label(self) -> str:
        return self.ssh.device.label

    def start(self) -> str:
        """Check the device's Python and edgekit; make the temporary directory."""
        info = probe_python(self.ssh, self.python, PREFLIGHT)
        self.remote_python_version = str(info.get("python"))
        self.remote_edgekit = info.get("edgekit")
        if self.remote_edgekit is None:
            raise DeviceError(
                f"{self.label}: edgekit is not installed for {self.python} there; install "
                f"this edgekit there with: {setup_command(self.ssh.device, self.python)}"
                f"{' and the same --ssh-option flags' if self.ssh.options else ''} (it copies "
                "this install's own core wheel there; the package index's 'edgekit' is an "
                "unrelated project)"
            )
        check_python_version(self.ssh.device, self.python, self.remote_python_version)
        tmp = info.get("tmp")
        if not isinstance(tmp, str) or not tmp.startswith("/"):
            raise DeviceError(f"{self.label}: could not make a temporary directory there")
        self.tmp = tmp
        return tmp

    def cleanup(self, *, stop: bool) -> None:
        """Remove the temporary directory (best effort); ``stop`` also ends a running bench."""
        if self.tmp is None:
            return
        words = ["sh", "-c", CLEANUP, "sh", self.tmp, "stop" if stop else "keep"]
        with contextlib.suppress(DeviceError, OSError, subprocess.SubprocessError):
            self.ssh.run(words, timeout=CLEANUP_TIMEOUT, what="cleaning up", check=False)
        self.tmp = None


def probe_python(
    ssh: SSH, python: str, script: str, *, args: Sequence[str] = (), what: str = ""
) -> dict[str, Any]:
    """Run ``script`` in the device's ``python``; the JSON object its last line prints.

    A missing or non-executable ``python``, or one that is not Python, is a
    :class:`DeviceError` naming the flag and the device entry's field that choose it.
    """
    label = ssh.device.label
    proc = ssh.run(
        [python, "-c", script, *args],
        timeout=PREFLIGHT_TIMEOUT,
        what=what or "checking the remote Python",
    )
    if proc.returncode == 127:
        raise DeviceError(
            f"{label}: no Python at {python} there; pass --remote-python PATH "
            "or set python in the device's entry"
        )
    if proc.returncode == 126:
        raise DeviceError(f"{label}: {python} is not executable there")
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        if not isinstance(info, dict):
            raise ValueError("not an object")
    except (ValueError, IndexError):
        raise DeviceError(
            f"{label}: {python} did not run as Python there "
            f"(exit {proc.returncode}: {last_message(proc.stderr)})"
        ) from None
    return info


def check_python_version(device: Device, python: str, version: str) -> None:
    """Refuse a device Python older than :data:`MIN_PYTHON`."""
    try:
        found = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        found = (0, 0)
    if found < MIN_PYTHON:
        raise DeviceError(
            f"{device.label}: {python} is Python {version}; edgekit needs Python 3.10 or newer"
        )


def setup_command(device: Device, python: str) -> str:
    """The ``edgekit device setup`` command line that installs edgekit for ``python`` there."""
    words = ["edgekit", "device", "setup", device.name]
    if python != (device.python or DEFAULT_PYTHON):
        words += ["--remote-python", python]
    return " ".join(shlex.quote(w) for w in words)


def run_words(tmp: str, python: str, files: Sequence[str], flags: Sequence[str]) -> list[str]:
    """The command that runs the bench in ``tmp`` (every word is quoted by the transport)."""
    paths = [f"{tmp}/{name}" for name in files]
    return ["sh", "-c", RUN, "sh", tmp, python, "-m", "edgekit", "bench", *paths, "--json", "-",
            *flags]  # fmt: skip


def _remote_failure(device: Device, returncode: int, stderr: str) -> DeviceError:
    if returncode == 255:
        return connection_error(device, stderr)
    reason = last_message(stderr).removeprefix("edgekit: error: ")
    if returncode == 2:
        return DeviceError(f"edgekit on {device.label} refused the bench: {reason}")
    if returncode == 130:
        return DeviceError(f"edgekit on {device.label} was interrupted")
    return DeviceError(f"edgekit on {device.label} failed (exit {returncode}): {reason}")


def bench_remote(
    device: Device,
    targets: Sequence[Any],
    *,
    flags: Sequence[str],
    data: str | os.PathLike | None = None,
    python: str | None = None,
    ssh_options: Sequence[tuple[str, str]] = (),
    timeout: float = 3600.0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Bench ``targets`` on ``device``; returns the device's environment and result rows.

    ``flags`` are the measurement flags for the remote ``edgekit bench`` (``--threads 1``,
    ...); ``timeout`` bounds the remote bench as a whole. The rows are the remote JSON's
    ``results`` with ``path`` mapped back to the local files and ``device`` set to the
    device's name; ``environment`` gains ``device`` and ``remote_python``.
    """
    python = python or device.python or DEFAULT_PYTHON
    user_data = Path(data) if data is not None else None
    staging = Path(tempfile.mkdtemp(prefix="edgekit-stage-"))
    try:
        staged = stage(targets, user_data, staging)
        with SSH(device, options=list(ssh_options)) as ssh:
            session = RemoteSession(ssh, python)
            tmp = session.start()
            finished = False
            try:
                ssh.upload(staged.entries, tmp, timeout=60.0 + staged.nbytes / 200_000)
                extra = ["--data", f"{tmp}/{staged.data}"] if staged.data else []
                words = run_words(tmp, python, staged.files, [*flags, *extra])
                stdout, stderr, returncode = _run(ssh, words, timeout=timeout)
                # The run removed the directory itself, unless ssh failed (255) or cd did (125).
                finished = returncode not in (255, 125)
            finally:
                if finished:
                    session.tmp = None
                session.cleanup(stop=not finished)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    doc = _parse(device, stdout, stderr, returncode)
    local = {f"{tmp}/{name}": str(t.path) for name, t in zip(staged.files, targets, strict=True)}
    rows = []
    for row in doc["results"]:
        if not isinstance(row, dict):
            raise DeviceError(f"edgekit on {device.label} returned a malformed result row")
        row = dict(row)
        row["device"] = device.name
        row["path"] = local.get(str(row.get("path")), row.get("path", ""))
        rows.append(row)
    found = doc.get("environment")
    env = {
        **(found if isinstance(found, dict) else {}),
        "device": device.name,
        "remote_python": python,
    }
    return env, rows


def _run(ssh: SSH, words: list[str], *, timeout: float) -> tuple[str, str, int]:
    proc = ssh.popen(words)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise DeviceError(
            f"the bench on {ssh.device.label} did not finish within {timeout:g} s"
        ) from None
    except BaseException:  # Ctrl-C: the caller's cleanup stops the remote bench
        proc.kill()
        with contextlib.suppress(subprocess.SubprocessError):
            proc.wait(timeout=5)
        raise
    return stdout, stderr, proc.returncode


def _parse(device: Device, stdout: str, stderr: str, returncode: int) -> dict[str, Any]:
    """The bench JSON from the remote stdout (after anything a login script printed)."""
    if returncode not in (0, 1):
        raise _remote_failure(device, returncode, stderr)
    lines = stdout.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads("".join(lines[i:]))
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("results"), list):
            return doc
    raise DeviceError(
        f"edgekit on {device.label} returned no bench results (exit {returncode}: "
        f"{last_message(stderr)})"
    )
