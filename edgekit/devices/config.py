"""Which device ``--device`` names: ``cpu``/``gpu`` here, ``ssh://[user@]host[:port]``, or NAME.

A NAME is a ``[devices.NAME]`` table in the user's ``~/.config/edgekit/devices.toml``
(``$XDG_CONFIG_HOME`` is honoured) or in the project's ``edgekit.toml`` in the working
directory; the user's entry wins over a project's for the same name::

    [devices.pi4]
    host = "pi@raspberrypi.local"      # [user@]host, required
    port = 22                          # optional; else ssh's own configuration decides
    python = "/home/pi/venv/bin/python"  # optional; default python3
    ssh_options = {IdentityFile = "~/.ssh/pi"}   # optional; each becomes -o KEY=VALUE

A project's file comes with the code in the working directory (a cloned repository), so its
devices cannot set ssh options that run commands on this machine (:data:`COMMAND_OPTIONS`:
``ProxyCommand``, ``LocalCommand``, ``KnownHostsCommand``, ``ProxyJump``, ``XAuthLocation``,
...), as git ignores a repository's own hooks; and it may set only the options of
:data:`PROJECT_OPTIONS` (keys, host keys, algorithms, timeouts, logging): no forwarding of
X11, the agent or ports, no environment sent. The user allows one project's file in the user's own file::

    allow_commands = ["~/src/robot"]   # project directories (or their edgekit.toml files)

The check is made where the ssh command line is built (:meth:`edgekit.devices.SSH.option_args`),
so no caller can get around it.
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
PROJECT_FILE = "edgekit.toml"
USER_FILE = Path("edgekit") / "devices.toml"
# ssh_config options that run a command (or load code) on this machine, or change how the
# options after them are read; lower case, as ssh compares them.
COMMAND_OPTIONS = (
    "proxycommand",
    "proxyjump",
    "localcommand",
    "permitlocalcommand",
    "knownhostscommand",
    "match",
    "include",
    "host",
    "pkcs11provider",
    "securitykeyprovider",
    "xauthlocation",
)
# What a project's file may set: options that choose keys, host keys, algorithms, timeouts
# and logging. Anything else (X11 or agent forwarding, port forwards, environment sent, ...)
# only from the user's own file: a denylist alone missed XAuthLocation, which runs a program.
PROJECT_OPTIONS = frozenset(
    o.lower()
    for o in (
        "AddressFamily",
        "BatchMode",
        "CertificateFile",
        "CheckHostIP",
        "Ciphers",
        "Compression",
        "ConnectionAttempts",
        "ConnectTimeout",
        "GlobalKnownHostsFile",
        "HashKnownHosts",
        "HostKeyAlgorithms",
        "HostKeyAlias",
        "IdentitiesOnly",
        "IdentityFile",
        "IPQoS",
        "KbdInteractiveAuthentication",
        "KexAlgorithms",
        "LogLevel",
        "MACs",
        "PasswordAuthentication",
        "Port",
        "PreferredAuthentications",
        "PubkeyAcceptedAlgorithms",
        "PubkeyAuthentication",
        "RekeyLimit",
        "ServerAliveCountMax",
        "ServerAliveInterval",
        "StrictHostKeyChecking",
        "TCPKeepAlive",
        "UpdateHostKeys",
        "User",
        "UserKnownHostsFile",
        "VerifyHostKeyDNS",
    )
)
# ...and what must not appear inside another option's value either (-oProxyCommand=...).
_COMMAND_WORD = re.compile(
    "|".join(o for o in COMMAND_OPTIONS if o not in ("match", "include", "host")), re.IGNORECASE
)


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
    # whether ssh_options may run commands here (COMMAND_OPTIONS): the user's own file, or a
    # project file the user allowed
    allow_commands: bool = False

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
            "allow_commands": self.allow_commands,
        }

    def check_options(self) -> None:
        """Refuse ``ssh_options`` that would run a command here, unless allowed."""
        if self.allow_commands:
            return
        for key, value in self.ssh_options.items():
            word = key if key.lower() in COMMAND_OPTIONS else None
            if word is None:
                m = _COMMAND_WORD.search(value)
                word = m.group(0) if m else None
            if word is not None:
                raise EdgekitError(command_refusal(self, key, word))
            if key.lower() not in PROJECT_OPTIONS:
                raise EdgekitError(option_refusal(self, key))
            if _turns_host_keys_off(key, value):
                raise EdgekitError(host_key_refusal(self, key, value))


def user_file() -> Path:
    """The user's own device file (it need not exist)."""
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / USER_FILE


def command_refusal(device: Device, key: str, word: str) -> str:
    """The one line that refuses a project's device option that would run a command."""
    origin = Path(device.origin)
    what = (
        f"sets ssh option {key}"
        if key.lower() == word.lower()
        else (f"has {word!r} in ssh option {key}")
    )
    return (
        f"{origin}: device {device.name!r} {what}, which would run a command on this machine; "
        f"a project's {PROJECT_FILE} may not do that (define the device in {user_file()}, or "
        f'allow this project there: allow_commands = ["{origin.parent}"])'
    )


def _turns_host_keys_off(key: str, value: str) -> bool:
    """``StrictHostKeyChecking=no`` (or ``off``) accepts any host's key, and a user
    known-hosts file of only ``/dev/null`` (or ``none``) forgets every key accepted: host key
    checking off, either way. (A ``GlobalKnownHostsFile`` of ``/dev/null`` only ignores the
    system's list.)"""
    words = value.strip().strip('"').lower()
    if key.lower() == "stricthostkeychecking":
        return words in ("no", "off", "false")
    if key.lower() == "userknownhostsfile":
        return bool(words.split()) and all(w in ("/dev/null", "none") for w in words.split())
    return False


def host_key_refusal(device: Device, key: str, value: str) -> str:
    """The one line that refuses a project's device option that turns host keys off."""
    origin = Path(device.origin)
    return (
        f"{origin}: device {device.name!r} sets ssh option {key}={value}, which turns host key "
        f"checking off; a project's {PROJECT_FILE} may not (define the device in "
        f'{user_file()}, or allow this project there: allow_commands = ["{origin.parent}"])'
    )


def option_refusal(device: Device, key: str) -> str:
    """The one line that refuses a project's device option outside :data:`PROJECT_OPTIONS`."""
    origin = Path(device.origin)
    return (
        f"{origin}: device {device.name!r} sets ssh option {key}, which a project's "
        f"{PROJECT_FILE} may not set (it may set keys, host keys, algorithms, timeouts and "
        f"logging: IdentityFile, UserKnownHostsFile, ConnectTimeout, ...); define the device "
        f'in {user_file()}, or allow this project there: allow_commands = ["{origin.parent}"]'
    )


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
    """Device files that exist, in the order they are read (later files win, per device):
    the project's ``./edgekit.toml``, then the user's own file."""
    candidates = [Path.cwd() / PROJECT_FILE, user_file()]
    return [p for p in candidates if p.is_file()]


def _option_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value.strip() and not _has_control(value):
        return value.strip()
    raise EdgekitError(f"{where} must be a string, number or boolean, got {value!r}")


def _device(path: Path, name: str, entry: Any, *, allow_commands: bool = False) -> Device:
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
        allow_commands=allow_commands,
    )


def _document(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise EdgekitError(f"{path}: not a valid TOML file ({err})") from err
    except OSError as err:
        raise EdgekitError(f"{path}: cannot read it ({err.strerror or err})") from err


def _read(path: Path, *, allow_commands: bool = False) -> dict[str, Device]:
    doc = _document(path)
    section = doc.get("devices", {})
    if not isinstance(section, dict):
        raise EdgekitError(f"{path}: [devices] must be a table of [devices.NAME] tables")
    return {
        name: _device(path, name, entry, allow_commands=allow_commands)
        for name, entry in section.items()
    }


def allowed_projects(path: Path | None = None) -> list[Path]:
    """The project files whose devices may run commands: ``allow_commands`` in the user's
    own file (``path``, default :func:`user_file`), each a directory or its edgekit.toml."""
    path = user_file() if path is None else path
    if not path.is_file():
        return []
    value = _document(path).get("allow_commands", [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise EdgekitError(
            f'{path}: allow_commands must be a list of project directories, e.g. ["~/src/robot"]'
        )
    out = []
    for item in value:
        allowed = Path(item.strip()).expanduser().resolve()
        out.append(allowed if allowed.suffix == ".toml" else allowed / PROJECT_FILE)
    return out


def _is_user_file(path: Path) -> bool:
    return path.resolve() == user_file().resolve()


def load_devices(files: list[Path] | None = None) -> dict[str, Device]:
    """The configured devices by name (``files`` defaults to :func:`config_files`; later
    files win). Devices of the user's own file may use every ssh option; those of any other
    file only if the user's file allows that file (``allow_commands``)."""
    devices: dict[str, Device] = {}
    paths = [Path(p) for p in (config_files() if files is None else files)]
    allowed = allowed_projects() if any(not _is_user_file(p) for p in paths) else []
    for path in paths:
        trusted = _is_user_file(path) or path.resolve() in allowed
        devices.update(_read(path, allow_commands=trusted))
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
        device = devices[spec]
        device.check_options()
        return device
    defined = ", ".join(sorted(devices)) if devices else "none defined"
    raise EdgekitError(
        f"unknown device {spec!r}; choose cpu, gpu, {URL_FORM} or a device name from "
        f"./edgekit.toml or ~/.config/edgekit/devices.toml ({defined})"
    )
