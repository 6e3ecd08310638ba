"""Checking ``bench`` flags: runtimes, devices, counts and times, before anything runs.

Every check raises :class:`~edgekit.errors.EdgekitError` with the flag's name, so a typo fails
in a second and not after the benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from edgekit.bench.targets import RUNTIME_OF_FORMAT
from edgekit.errors import EdgekitError

if TYPE_CHECKING:
    from edgekit.devices import Device

DEVICES = ("cpu", "gpu")
# Emulated microcontrollers (edgekit.devices.qemu.BOARDS): the generated C in QEMU.
EMULATED_DEVICES = ("qemu:cortex-m4", "qemu:cortex-m3")
# Runtimes that no file type selects by itself: tflm runs .tflite files.
EXTRA_RUNTIMES = ("tflm",)
DEFAULT_TIMEOUT = 300.0
MAX_THREADS = 1024


def positive_ints(flag: str, values: Sequence[int]) -> list[int]:
    """``--threads``/``--batch`` values: integers >= 1, duplicates dropped, order kept."""
    values = list(values)
    if not values:
        raise EdgekitError(f"{flag} needs at least one value")
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise EdgekitError(f"{flag} takes integers >= 1, got {v}")
        if flag == "--threads" and v > MAX_THREADS:  # runtimes crash or hang on absurd counts
            raise EdgekitError(f"--threads takes at most {MAX_THREADS}, got {v}")
    return list(dict.fromkeys(values))


def check_repeat(repeat: int) -> None:
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        raise EdgekitError(f"--repeat takes an integer >= 1, got {repeat}")


def check_timing(*, warmup: int, runs: int, min_time: float, timeout: float) -> None:
    """``--warmup``, ``--runs``, ``--timeout`` and ``--min-time`` (below half the timeout)."""
    if not isinstance(warmup, int) or warmup < 0:
        raise EdgekitError(f"--warmup takes an integer >= 0, got {warmup}")
    if not isinstance(runs, int) or runs < 1:
        raise EdgekitError(f"--runs takes an integer >= 1, got {runs}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise EdgekitError(f"--timeout takes seconds > 0, got {timeout!r}")
    if not math.isfinite(timeout):
        raise EdgekitError(f"--timeout takes a finite number of seconds > 0, got {timeout}")
    if not (timeout > 0):
        raise EdgekitError(f"--timeout takes seconds > 0, got {timeout}")
    if not (0 <= min_time < timeout / 2):
        raise EdgekitError(
            f"--min-time takes seconds >= 0 and below half the timeout ({timeout / 2:g} s), "
            f"got {min_time}"
        )


def check_max_regression(max_regression: float) -> None:
    if not (max_regression >= 0):
        raise EdgekitError(f"--max-regression must be a percentage >= 0, got {max_regression}")
    if not math.isfinite(max_regression):  # an infinite allowance is a gate that cannot fail
        raise EdgekitError(f"--max-regression must be a finite percentage, got {max_regression}")


def _names(text: str | Sequence[str]) -> list[str]:
    items = text.split(",") if isinstance(text, str) else list(text)
    return [s.strip() for s in items if s.strip()]


def parse_runtimes(runtime: str | Sequence[str]) -> tuple[set[str], bool]:
    """``auto`` or a comma list of runtimes -> (runtime set, whether it was explicit).

    ``auto`` picks the runtime by file type (tflite, onnxruntime); it combines with others,
    as in ``auto,c`` (the file types, plus the generated C of export directories).
    """
    # The runtimes bench can measure with (edgekit.runtime.RUNTIMES, without importing numpy
    # in this process: the parent stays light so the first child starts sooner).
    known = list(dict.fromkeys([*RUNTIME_OF_FORMAT.values(), *EXTRA_RUNTIMES]))
    names = _names(runtime) or ["auto"]
    for name in names:
        if name != "auto" and name not in known:
            raise EdgekitError(f"unknown runtime {name!r}; choose from auto, {', '.join(known)}")
    if "auto" in names:
        return {"tflite", "onnxruntime", *names} - {"auto"}, False
    return set(names), True


def parse_devices(device: str | Sequence[str]) -> list[str]:
    """Local devices (``cpu``, ``gpu``) from ``--device``; see :func:`remote_device`."""
    names = _names(device) or ["cpu"]
    for name in names:
        if name.startswith("qemu:") and name not in EMULATED_DEVICES:
            raise EdgekitError(
                f"unknown device {name!r}; emulated devices: {', '.join(EMULATED_DEVICES)}"
            )
        if name not in DEVICES and name not in EMULATED_DEVICES:
            raise EdgekitError(
                f"unknown device {name!r}; choose cpu, gpu, {', '.join(EMULATED_DEVICES)}, "
                "ssh://[user@]host[:port] or a device name from edgekit.toml"
            )
    return list(dict.fromkeys(names))


def check_emulated(devices: Sequence[str], runtime: str | Sequence[str]) -> None:
    """An emulated device (``qemu:CORE``) runs the generated C, on its own in a run."""
    emulated = [d for d in devices if d in EMULATED_DEVICES]
    if not emulated:
        return
    if len(devices) > 1:
        raise EdgekitError(
            f"--device {','.join(devices)}: an emulated device ({emulated[0]}) is benched on its "
            "own; run bench once per device"
        )
    names = [n for n in _names(runtime) if n != "auto"]
    if any(n != "c" for n in names):
        raise EdgekitError(
            f"--device {emulated[0]} runs the generated C (export --c-source), not the "
            f"{','.join(n for n in names if n != 'c')} runtime; use --runtime c or auto"
        )


def remote_device(device: str | Sequence[str]) -> Device | None:
    """The remote :class:`~edgekit.devices.Device` that ``--device`` names, or None.

    A remote device (``ssh://...`` or a configured NAME) is benched on its own, not in a list
    with other devices (each device run has its own environment block).
    """
    names = _names(device) or ["cpu"]
    remote = [n for n in names if n not in DEVICES and not n.startswith("qemu:")]
    if not remote:
        return None
    if len(names) > 1:
        raise EdgekitError(
            f"--device {','.join(names)}: a remote device ({remote[0]}) is benched on its own; "
            "run bench once per device"
        )
    from edgekit.devices import resolve_device

    return resolve_device(remote[0])


def check_local_only(remote_python: str | None, ssh_options: Sequence[object]) -> None:
    """``--remote-python`` and ``--ssh-option`` need a remote ``--device``."""
    if remote_python is not None or ssh_options:
        flag = "--remote-python" if remote_python is not None else "--ssh-option"
        raise EdgekitError(
            f"{flag} applies to remote devices only (--device ssh://[user@]host[:port] or a "
            "device name from edgekit.toml)"
        )
