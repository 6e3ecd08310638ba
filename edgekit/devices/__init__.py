"""Remote devices: Linux boards reached over SSH, for ``edgekit bench --device``.

>>> from edgekit.devices import resolve_device, bench_remote, setup_device
>>> device = resolve_device("ssh://pi@raspberrypi.local")            # or a configured NAME
>>> setup_device(device)                  # this edgekit's core wheel, there  # doctest: +SKIP
>>> env, rows = bench_remote(device, targets, flags=["--runs", "100"])  # doctest: +SKIP

Nothing here imports numpy; the transport is the system OpenSSH client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

if TYPE_CHECKING:
    from edgekit.devices.config import (
        DEFAULT_PYTHON,
        LOCAL_DEVICES,
        Device,
        config_files,
        is_local,
        load_devices,
        parse_ssh_option,
        parse_ssh_url,
        resolve_device,
    )
    from edgekit.devices.remote import bench_remote
    from edgekit.devices.setup import SetupResult, build_wheel, setup_device
    from edgekit.devices.ssh import SSH, DeviceError

__all__ = [
    "DEFAULT_PYTHON",
    "LOCAL_DEVICES",
    "SSH",
    "Device",
    "DeviceError",
    "SetupResult",
    "bench_remote",
    "build_wheel",
    "config_files",
    "is_local",
    "load_devices",
    "parse_ssh_option",
    "parse_ssh_url",
    "resolve_device",
    "setup_device",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DEFAULT_PYTHON": "config",
        "LOCAL_DEVICES": "config",
        "Device": "config",
        "config_files": "config",
        "is_local": "config",
        "load_devices": "config",
        "parse_ssh_option": "config",
        "parse_ssh_url": "config",
        "resolve_device": "config",
        "bench_remote": "remote",
        "SetupResult": "setup",
        "build_wheel": "setup",
        "setup_device": "setup",
        "SSH": "ssh",
        "DeviceError": "ssh",
    },
)
