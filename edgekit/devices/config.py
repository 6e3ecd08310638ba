"""Which device ``--device`` names: ``cpu``/``gpu`` here, ``ssh://[user@]host[:port]``, or NAME.

A NAME is a ``[devices.NAME]`` table in ``~/.config/edgekit/devices.toml``
(``$XDG_CONFIG_HOME`` is honoured) or in ``edgekit.toml`` in the working directory; the
working directory's file is read last and wins, per device::

    [devices.pi4]
    host = "pi@raspberrypi.local"      # [user@]host, required
    port = 22                          # optional; else ssh's own configuration decides
    python = "/home/pi/venv/bin/python"  # optional; default python3
    ssh_options = {IdentityFile = "~/.ssh/pi"}   # optional; each becomes -o KEY=VALUE
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCAL_DEVICES = ("cpu", "gpu")
DEFAULT_PYTHON = "python3"
FIELDS = ("host", "port", "python", "ssh_options")
_USER = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_HOST = r"[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.%A-Za-z]+\]"
_URL = re.compile(rf"^ssh://(?:(?P<user>{_USER})@)?(?P<host>{_HOST})(?::(?P<port>[0-9]+))?/?$")
_DESTINATION = re.compile(rf"^(?:(?P<user>{_USER})@)?(?P<host>{_HOST})$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_OPTION_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
URL_FORM = "ssh://[user@]host[:port]"


@dataclass
class Device:
    """A remote Linux board reached over SSH.

    ``name`` is what bench rows say in their ``device`` field: the URL as given
    (``ssh://pi@raspberrypi.local:22``) or the NAME of a configured device.
    """

    name: str
    host: str
    user: str | None = None
    port: int | None = None
    python: str | None = None
    ssh_options: dict[str, str] = field(default_factory=dict)
    origin: str = "--device"  # where it was defined (a file, or the flag)

    @property
    def destination(self) -> str:
        """``user@host`` (or ``host``), as ssh takes it."""
        host = self.host[1:-1] if self.host.startswith("[") else self.host
        return f"{self.user}@{host}" if self.user else host

    @property
    def label(self) -> str:
        """How messages name the device: the URL, or ``NAME (user@host:port)``."""
        if self.name.startswith("ssh://"):
            return self.name
        port = f":{self.port}" if self.port else ""
        return f"{self.name} ({self.destination}{port})"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "user": self.user,
            "port": self.port,
            "python": self.python,
            "ssh_options": dict(self.ssh_options),
            "origin": self.origin,
        }


def _port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise EdgekitError(f"{where}: port must be an integer 1-65535, got {value!r}")
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise EdgekitError(f"{where}: port must be an integer 1-65535, got {value!r}")
    return port


def parse_ssh_url(text: str) -> Device:
    """``ssh://[user@]host[:port]`` -> :class:`Device` named by the URL.

    >>> parse_ssh_url("ssh://pi@raspberrypi.local:2222").port
    2222
    """
    m = _URL.match(text.strip())
    if not m:
        raise EdgekitError(
            f"--device {text!r} is not a valid ssh URL; expected {URL_FORM}, e.g. "
            "ssh://pi@raspberrypi.local:22"
        )
    port = _port(m["port"], f"--device {text!r}") if m["port"] is not None else None
    return Device(name=text.strip().rstrip("/"), host=m["host"], user=m["user"], port=port)


def parse_ssh_option(text: str, *, where: str = "--ssh-option") -> tuple[str, str]:
    """``KEY=VALUE`` -> ``(KEY, VALUE)``; KEY is an ssh_config keyword."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not _OPTION_KEY.match(key) or not value.strip() or _has_control(value):
        raise EdgekitError(
            f"{where} takes KEY=VALUE with KEY an ssh_config option, e.g. "
            f"IdentityFile=~/.ssh/id_ed25519; got {text!r}"
        )
    return key, value.strip()


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def config_files() -> list[Path]:
    """Device files that exist, in the order they are read (later files win, per device)."""
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    candidates = [config / "edgekit" / "devices.toml", Path.cwd() / "edgekit.toml"]
    return [p for p in candidates if p.is_file()]


def _option_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value.strip() and not _has_control(value):
        return value.strip()
    raise EdgekitError(f"{where} must be a string, number or boolean, got {value!r}")


def _device(path: Path, name: str, entry: Any) -> Device:
    where = f"{path}: device {name!r}"
    if not _NAME.match(name) or name in LOCAL_DEVICES:
        raise EdgekitError(
            f"{where}: a device name uses letters, digits, '_', '.' and '-', and cannot be "
            f"{' or '.join(LOCAL_DEVICES)}"
        )
    if not isinstance(entry, dict):
        raise EdgekitError(f"{where} must be a table")
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise EdgekitError(
            f"{where}: unknown field(s) {', '.join(unknown)}; fields are {', '.join(FIELDS)}"
        )
    host = entry.get("host")
    m = _DESTINATION.match(host) if isinstance(host, str) else None
    if not m:
        raise EdgekitError(f'{where}: host must be "[user@]host", got {host!r}')
    port = _port(entry["port"], where) if "port" in entry else None
    python = entry.get("python")
    if python is not None and (not isinstance(python, str) or not python.strip()):
        raise EdgekitError(f"{where}: python must be a path, got {python!r}")
    options = entry.get("ssh_options", {})
    if not isinstance(options, dict):
        raise EdgekitError(
            f'{where}: ssh_options must be a table, e.g. {{IdentityFile = "~/.ssh/pi"}}'
        )
    ssh_options = {}
    for key, value in options.items():
        if not _OPTION_KEY.match(key):
            raise EdgekitError(f"{where}: ssh_options key {key!r} is not an ssh_config option")
        ssh_options[key] = _option_value(value, f"{where}: ssh_options.{key}")
    return Device(
        name=name,
        host=m["host"],
        user=m["user"],
        port=port,
        python=python.strip() if python else None,
        ssh_options=ssh_options,
        origin=str(path),
    )


def _read(path: Path) -> dict[str, Device]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise EdgekitError(f"{path}: not a valid TOML file ({err})") from err
    except OSError as err:
        raise EdgekitError(f"{path}: cannot read it ({err.strerror or err})") from err
    section = doc.get("devices", {})
    if not isinstance(section, dict):
        raise EdgekitError(f"{path}: [devices] must be a table of [devices.NAME] tables")
    return {name: _device(path, name, entry) for name, entry in section.items()}


def load_devices(files: list[Path] | None = None) -> dict[str, Device]:
    """The configured devices by name (``files`` defaults to :func:`config_files`)."""
    devices: dict[str, Device] = {}
    for path in config_files() if files is None else files:
        devices.update(_read(Path(path)))
    return devices


def is_local(spec: str) -> bool:
    return spec.strip() in LOCAL_DEVICES


def resolve_device(spec: str) -> Device:
    """An ``ssh://`` URL or a configured NAME -> :class:`Device`.

    >>> resolve_device("ssh://pi@raspberrypi.local").destination
    'pi@raspberrypi.local'
    """
    spec = spec.strip()
    if spec.startswith("ssh://"):
        return parse_ssh_url(spec)
    devices = load_devices()
    if spec in devices:
        return devices[spec]
    defined = ", ".join(sorted(devices)) if devices else "none defined"
    raise EdgekitError(
        f"unknown device {spec!r}; choose cpu, gpu, {URL_FORM} or a device name from "
        f"./edgekit.toml or ~/.config/edgekit/devices.toml ({defined})"
    )
