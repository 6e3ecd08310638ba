"""``edgekit device setup``: install this edgekit's own core wheel on a board, over SSH.

The name ``edgekit`` on the package index belongs to an unrelated project, so the board never
installs edgekit by name. Instead:

1. the board's Python is checked (3.10 or newer, pip, a virtual environment or the user's
   site-packages) and makes a temporary directory;
2. a wheel of the running edgekit is built here (:func:`build_wheel`): ``pip wheel --no-deps``
   of its source tree (a checkout or an editable install), or, for an install from a wheel,
   the installed files packed again (:func:`wheel_from_installed`);
3. the wheel goes there as a tar stream over ssh (no scp, no SFTP) and
   ``<python> -m pip install [--user] WHEEL`` installs it: the core only (click, numpy,
   onnxruntime, ai-edge-litert from the board's package index; never TensorFlow);
   ``--user`` unless the Python is a virtual environment's;
4. ``<python> -m edgekit env --json`` there must report the version built here.

>>> from edgekit.devices import resolve_device, setup_device
>>> setup_device(resolve_device("pi4")).version                      # doctest: +SKIP
'0.1.0'
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from edgekit.devices.config import DEFAULT_PYTHON, Device
from edgekit.devices.remote import (
    CLEANUP_TIMEOUT,
    check_python_version,
    probe_python,
)
from edgekit.devices.ssh import SSH, DeviceError, connection_error, last_message
from edgekit.errors import EdgekitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DIST = "edgekit"
BUILD_TIMEOUT = 600.0
# Copied from the source tree to build the wheel (beside the edgekit package itself).
PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in")
PROJECT_GLOBS = ("README*", "LICENSE*", "LICENCE*", "NOTICE*", "COPYING*")
# The installer's own files in a .dist-info, not part of the wheel.
INSTALLER_FILES = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "WHEEL")

# Runs in the board's Python (any version). With --tmp it also makes the upload directory.
PROBE = """\
import json, os, site, sys, tempfile
if sys.path and sys.path[0] in ("", "."):
    del sys.path[0]
try:
    import edgekit
    version = str(getattr(edgekit, "__version__", "unknown"))
    where = os.path.dirname(os.path.abspath(edgekit.__file__))
except Exception:
    version = where = None
try:
    import importlib.util
    pip = importlib.util.find_spec("pip") is not None
except Exception:
    pip = False
venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix) or hasattr(sys, "real_prefix")
tmp = None
if "--tmp" in sys.argv and sys.version_info >= (3, 10) and pip:
    tmp = tempfile.mkdtemp(prefix="edgekit-setup-")
sys.stdout.write(json.dumps({"python": "%d.%d.%d" % tuple(sys.version_info[:3]),
                             "edgekit": version, "location": where, "pip": pip,
                             "venv": venv, "user_site": bool(site.ENABLE_USER_SITE),
                             "user_base": site.getuserbase(), "tmp": tmp}) + "\\n")
"""


@dataclass
class Wheel:
    """A wheel of the running edgekit and where it came from."""

    path: Path
    version: str
    source: str  # "the source tree /src/edgekit", "the installed files in ...", "--wheel"


@dataclass
class SetupResult:
    """What ``setup_device`` installed where."""

    device: str
    python: str
    python_version: str
    wheel: str
    source: str
    version: str
    previous: str | None  # the edgekit version there before, if any
    location: str  # where the board's Python imports edgekit from now
    user: bool  # installed with --user (else into the board's virtual environment)
    environment: dict[str, Any] = field(default_factory=dict)  # edgekit env --json there

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "edgekit.device-setup/1",
            "device": self.device,
            "python": self.python,
            "python_version": self.python_version,
            "wheel": self.wheel,
            "source": self.source,
            "version": self.version,
            "previous": self.previous,
            "location": self.location,
            "user": self.user,
            "environment": self.environment,
        }


# --- the wheel ------------------------------------------------------------------------------


def running_package() -> Path:
    """The directory of the running ``edgekit`` package."""
    import edgekit

    return Path(edgekit.__file__).resolve().parent


def source_tree(package: Path | None = None) -> Path | None:
    """The project root of the running edgekit, if it runs from one: the directory above the
    package, with a ``pyproject.toml`` whose project is edgekit (a checkout, or an editable
    install). None for an install from a wheel (site-packages has no pyproject.toml)."""
    root = (package or running_package()).parent
    pyproject = root / "pyproject.toml"
    try:
        doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    project = doc.get("project")
    return root if isinstance(project, dict) and project.get("name") == DIST else None


def build_wheel(out_dir: str | os.PathLike, *, package: Path | None = None) -> Wheel:
    """A core wheel of the running edgekit in ``out_dir``: from its source tree if it has one,
    else from its installed files; a one-line :class:`EdgekitError` if neither is there."""
    package = package or running_package()
    root = source_tree(package)
    if root is not None:
        path = wheel_from_source(root, out_dir)
        return Wheel(path, wheel_version(path), f"the source tree {root}")
    dist = installed_distribution(package)
    if dist is None:
        raise EdgekitError(
            f"cannot build a wheel of the running edgekit ({package}): it has no source tree "
            "(pyproject.toml) and no installed record (.dist-info RECORD); pass --wheel FILE"
        )
    path = wheel_from_installed(dist, out_dir)
    return Wheel(path, wheel_version(path), f"the installed files in {package.parent}")


def wheel_version(path: Path) -> str:
    """The version in a wheel's file name (``edgekit-0.1.0-py3-none-any.whl`` -> ``0.1.0``)."""
    parts = path.name.split("-")
    if len(parts) < 5 or parts[0] != DIST or path.suffix != ".whl":
        raise EdgekitError(f"{path}: not an edgekit wheel (edgekit-VERSION-...-any.whl)")
    return parts[1]


def _build_backend_here() -> bool:
    """Whether setuptools (>= 68, as pyproject.toml asks) can build without a download."""
    try:
        version = metadata.version("setuptools")
        major = int(version.split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return major >= 68 and (major > 70 or importlib.util.find_spec("wheel") is not None)


def wheel_from_source(root: Path, out_dir: str | os.PathLike) -> Path:
    """``pip wheel --no-deps`` of a copy of the project in ``root`` (the tree itself is not
    written to: no ``build/`` or ``*.egg-info`` left there). Without build isolation when
    setuptools is installed here, so that no package index is needed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgekit-build-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        names = [n for n in PROJECT_FILES if (root / n).is_file()]
        names += sorted({p.name for g in PROJECT_GLOBS for p in root.glob(g) if p.is_file()})
        for name in names:
            shutil.copy2(root / name, src / name)
        shutil.copytree(
            root / DIST, src / DIST, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]")
        )
        wheels = Path(tmp) / "wheels"
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                "--no-input", "-q", "-w", str(wheels), str(src)]  # fmt: skip
        if _build_backend_here():
            argv.insert(4, "--no-build-isolation")
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, errors="replace", timeout=BUILD_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            raise EdgekitError(
                f"building edgekit's wheel from {root} took over {BUILD_TIMEOUT:g} s"
            ) from None
        found = sorted(wheels.glob(f"{DIST}-*.whl")) if proc.returncode == 0 else []
        if len(found) != 1:
            raise EdgekitError(
                f"building edgekit's wheel from {root} failed (pip wheel, exit "
                f"{proc.returncode}: {last_message(proc.stderr or proc.stdout)})"
            )
        target = out / found[0].name
        shutil.move(found[0], target)
    return target


def installed_distribution(package: Path | None = None) -> metadata.Distribution | None:
    """The installed distribution that the running edgekit package belongs to (its RECORD
    lists the package's ``__init__.py`` at that very place), or None."""
    package = package or running_package()
    for dist in metadata.distributions(name=DIST, path=[str(package.parent)]):
        init = dist.locate_file(f"{DIST}/__init__.py")
        if any(str(f) == f"{DIST}/__init__.py" for f in dist.files or []) and (
            Path(str(init)).resolve() == (package / "__init__.py").resolve()
        ):
            return dist
    return None


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def wheel_from_installed(dist: metadata.Distribution, out_dir: str | os.PathLike) -> Path:
    """Pack an installed edgekit (its RECORD's files: the package and its .dist-info) into a
    ``py3-none-any`` wheel again, as ``pip wheel`` would have made it.

    Compiled ``.pyc`` files, scripts outside site-packages (pip writes those again from
    ``entry_points.txt``) and the installer's own files are left out; ``WHEEL`` and
    ``RECORD`` are written anew.
    """
    version = dist.version
    files = [f for f in dist.files or [] if ".." not in f.parts and "__pycache__" not in f.parts]
    info_dirs = {f.parts[0] for f in files if f.parts[0].endswith(".dist-info")}
    if len(info_dirs) != 1 or not any(str(f) == f"{DIST}/__init__.py" for f in files):
        raise EdgekitError(f"the installed edgekit {version} has no usable RECORD to pack")
    info = info_dirs.pop()
    members: list[tuple[str, bytes]] = []
    for f in sorted(files, key=str):
        if f.suffix in (".pyc", ".pyo") or (f.parts[0] == info and f.name in INSTALLER_FILES):
            continue
        try:
            members.append((f.as_posix(), Path(str(dist.locate_file(f))).read_bytes()))
        except OSError as err:
            raise EdgekitError(
                f"cannot read {dist.locate_file(f)} to pack the installed edgekit "
                f"({err.strerror or err})"
            ) from err
    wheel_meta = (
        "Wheel-Version: 1.0\nGenerator: edgekit device setup\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    )
    members.append((f"{info}/WHEEL", wheel_meta.encode()))
    record = [f"{name},{_record_hash(data)},{len(data)}" for name, data in members]
    record.append(f"{info}/RECORD,,")
    members.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{DIST}-{version}-py3-none-any.whl"
    partial = target.with_name(f".{target.name}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:  # a fixed time: the same files make the same wheel
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    os.replace(partial, target)
    return target


# --- the board ------------------------------------------------------------------------------


def _pip_failure(device: Device, python: str, proc: subprocess.CompletedProcess[str]) -> str:
    text = (proc.stderr + proc.stdout).lower()
    if "externally-managed-environment" in text or "externally managed" in text:
        return (
            f"{device.label}: {python} is externally managed (PEP 668), so pip will not "
            "install into it; make a virtual environment there (python3 -m venv ~/edgekit-venv) "
            "and pass --remote-python ~/edgekit-venv/bin/python, or set python in the device's "
            "entry"
        )
    hint = ""
    if "could not find a version" in text or "no matching distribution" in text:
        hint = (
            "; the board's package index lacks a dependency: install it there another way "
            "and pass --no-deps"
        )
    return (
        f"pip on {device.label} could not install edgekit (exit {proc.returncode}: "
        f"{last_message(proc.stderr or proc.stdout)}){hint}"
    )


def _env_json(device: Device, stdout: str) -> dict[str, Any]:
    """``edgekit env --json``'s document in the board's stdout (after any login banner)."""
    lines = stdout.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                doc = json.loads("".join(lines[i:]))
                if isinstance(doc, dict) and doc.get("schema") == "edgekit.env/1":
                    return doc
    raise DeviceError(f"edgekit on {device.label} printed no environment (edgekit env --json)")


def setup_device(
    device: Device,
    *,
    python: str | None = None,
    ssh_options: Sequence[tuple[str, str]] = (),
    wheel: str | os.PathLike | None = None,
    no_deps: bool = False,
    timeout: float = 1800.0,
    on_step: Callable[[str], None] | None = None,
) -> SetupResult:
    """Install the running edgekit's core wheel for ``python`` on ``device``, and verify it.

    ``wheel`` installs that file instead of building one; ``no_deps`` leaves the
    dependencies to the board (``pip install --no-deps``); ``timeout`` bounds pip there
    (dependencies may take minutes on a board). ``on_step`` hears each step, for progress.
    """
    python = python or device.python or DEFAULT_PYTHON
    if not python.strip():
        raise EdgekitError("--remote-python needs a path (or a command name such as python3)")
    say = on_step or (lambda message: None)
    given = None
    if wheel is not None:
        given = Path(wheel)
        if not given.is_file():
            raise EdgekitError(f"--wheel {given}: no such file")
        wheel_version(given)
    with (
        tempfile.TemporaryDirectory(prefix="edgekit-wheel-") as local,
        SSH(device, options=list(ssh_options)) as ssh,
    ):
        say(f"checking {python} on {device.label}")
        before = probe_python(ssh, python, PROBE, args=["--tmp"])
        python_version = str(before.get("python"))
        check_python_version(device, python, python_version)
        if not before.get("pip"):
            raise DeviceError(
                f"{device.label}: {python} has no pip there; install it (e.g. apt-get install "
                "python3-pip) or use a virtual environment's Python (--remote-python)"
            )
        venv = bool(before.get("venv"))
        if not venv and not before.get("user_site"):
            raise DeviceError(
                f"{device.label}: {python} has the user's site-packages turned off "
                "(PYTHONNOUSERSITE or -s), so pip install --user would not be seen; use a "
                "virtual environment's Python there (--remote-python)"
            )
        tmp = before.get("tmp")
        if not isinstance(tmp, str) or not tmp.startswith("/"):
            raise DeviceError(f"{device.label}: could not make a temporary directory there")
        try:
            if given is not None:
                built = Wheel(given, wheel_version(given), "--wheel")
            else:
                say("building the core wheel of this edgekit")
                built = build_wheel(local)
            say(f"copying {built.path.name} to {device.label}")
            ssh.upload([built.path], tmp, timeout=60.0 + built.path.stat().st_size / 100_000)
            remote_wheel = f"{tmp}/{built.path.name}"
            pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                   *([] if venv else ["--user"])]  # fmt: skip
            runs = [[*pip, *(["--no-deps"] if no_deps else []), remote_wheel]]
            if before.get("edgekit") == built.version:  # pip would keep the installed files
                runs.append([*pip, "--force-reinstall", "--no-deps", remote_wheel])
            say(f"installing with {python} -m pip{'' if venv else ' --user'} on {device.label}")
            for words in runs:
                proc = ssh.run(words, timeout=timeout, what="pip install", check=False)
                if proc.returncode == 255:
                    raise connection_error(device, proc.stderr)
                if proc.returncode != 0:
                    raise DeviceError(_pip_failure(device, python, proc))
        finally:
            with contextlib.suppress(DeviceError, OSError, subprocess.SubprocessError):
                ssh.run(["rm", "-rf", "--", tmp], timeout=CLEANUP_TIMEOUT, check=False)
        say(f"verifying: {python} -m edgekit env --json on {device.label}")
        after = probe_python(ssh, python, PROBE, what="checking the installed edgekit")
        proc = ssh.run([python, "-m", "edgekit", "env", "--json"], timeout=120.0, what="env")
        if proc.returncode == 255:
            raise connection_error(device, proc.stderr)
        if proc.returncode != 0:
            raise DeviceError(
                f"edgekit on {device.label} does not run after the install (exit "
                f"{proc.returncode}: {last_message(proc.stderr)})"
            )
        env = _env_json(device, proc.stdout)
        versions = env.get("versions")
        reported = versions.get(DIST) if isinstance(versions, dict) else None
        if reported != built.version or after.get("edgekit") != built.version:
            raise DeviceError(
                f"{device.label}: {python} runs edgekit {after.get('edgekit')} (metadata "
                f"{reported}) from {after.get('location')} after installing {built.version}; "
                "another edgekit comes first on its sys.path there"
            )
    return SetupResult(
        device=device.name,
        python=python,
        python_version=python_version,
        wheel=built.path.name,
        source=built.source,
        version=built.version,
        previous=before.get("edgekit"),
        location=str(after.get("location")),
        user=not venv,
        environment=env,
    )
