"""Emulated microcontrollers: the generated C on a Cortex-M4 in QEMU (``--device qemu:cortex-m4``).

The export's C (``export --c-source``) is cross-compiled with ``arm-none-eabi-gcc`` (``-O2``,
newlib-nano, hard float) together with a small harness and start-up code
(``edgekit/devices/qemu_firmware/``) into a firmware for QEMU's ``mps2-an386`` board
(Cortex-M4F; code at 0x00000000, data at 0x20000000). It runs in ``qemu-system-arm`` with
semihosting: it reads the test inputs from ``in.bin`` and writes each output to ``out.bin``
in its working directory, so the whole test set runs, whatever its size.

Instruction counts are exact: a second run executes one instruction per translation block
(``-singlestep``) with QEMU's exec trace (``-d exec,nochain``) on its stderr, and the harness
calls ``ek_mark()`` just before and just after each ``<prefix>_predict`` call. The trace lines
between two marks are the instructions that one inference executed (the call included); a
pair of marks with nothing between them, counted once, is subtracted. Tracing is slow (about
10^5 instructions a second), so only the first :data:`TRACE_SAMPLES` samples are traced; the
counts depend a little on the input (branches in clamping and softmax), so each traced sample
has its own count. QEMU does not model the pipeline, flash wait states or the memory
system; the same trace is also priced in cycles with the Cortex-M4 manual's instruction
timings (:mod:`edgekit.devices.m4_timing`: an estimate from an exact trace, zero wait states).

Nothing here imports numpy at module level.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.devices.m4_timing import CycleCounter, disassemble
from edgekit.errors import EdgekitError
from edgekit.runtime.base import RuntimeUnavailable

if TYPE_CHECKING:
    import numpy as np

TRACE_SAMPLES = 16
BUILD_TIMEOUT = 300.0
FIRMWARE_FILES = ("startup.c", "harness.c", "ek_semihost.h", "mps2_an386.ld")


@dataclass(frozen=True)
class Board:
    """A QEMU board that emulates one core, and the catalog target whose clock it reports."""

    device: str  # the --device name
    machine: str  # qemu-system-arm -machine
    cflags: tuple[str, ...]
    linker_script: str
    catalog_target: str  # edgekit/estimate/targets.toml: clock_hz for the derived latency
    cycle_timings: bool = False  # the trace is priced in cycles (edgekit.devices.m4_timing)


BOARDS = {
    "qemu:cortex-m4": Board(
        device="qemu:cortex-m4",
        machine="mps2-an386",
        cflags=("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
        linker_script="mps2_an386.ld",
        catalog_target="cortex-m4",
        cycle_timings=True,
    ),
    # the same memory map; no DSP extension (the C's portable loop), no FPU (soft float);
    # no cycle model (the timings are the M4's)
    "qemu:cortex-m3": Board(
        device="qemu:cortex-m3",
        machine="mps2-an385",
        cflags=("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"),
        linker_script="mps2_an386.ld",
        catalog_target="cortex-m3",
    ),
}
COMPILER = "arm-none-eabi-gcc"
EMULATOR = "qemu-system-arm"


def is_qemu_device(name: str) -> bool:
    return name.startswith("qemu:")


def board(name: str) -> Board:
    """The board of a ``--device qemu:CORE`` name; an unknown one is a user error."""
    if name not in BOARDS:
        raise EdgekitError(f"unknown device {name!r}; emulated devices: {', '.join(BOARDS)}")
    return BOARDS[name]


def tools_missing() -> str | None:
    """Why the emulated device cannot run here (a tool is not installed), or None."""
    missing = [tool for tool in (COMPILER, EMULATOR) if shutil.which(tool) is None]
    if not missing:
        return None
    return (
        f"{' and '.join(missing)} not found (install gcc-arm-none-eabi, "
        "libnewlib-arm-none-eabi and qemu-system-arm)"
    )


@dataclass
class QemuRun:
    """What the firmware did: every sample's outputs, and the traced samples' counts."""

    outputs: np.ndarray  # (samples, output_size) float32, from out.bin
    instructions: list[int] = field(default_factory=list)  # per traced inference, exact
    mark_overhead: int = 0  # instructions of an empty pair of marks (subtracted)
    # per traced inference: Cortex-M4 cycles from the TRM's timings (edgekit.devices.m4_timing),
    # on boards with Board.cycle_timings only
    cycles: list[int] = field(default_factory=list)
    flash_bytes: int | None = None  # the model's code and constants, for the Cortex-M4
    firmware_bytes: int | None = None  # the whole firmware's text + data
    compiler: str = ""


def _compile(cmd: list[str], what: str) -> None:
    from edgekit.toolchain import run_compiler

    run_compiler(cmd, what=what, timeout=BUILD_TIMEOUT)


def _elf_sizes(elf: Path) -> int | None:
    """``text + data`` of the firmware (what goes to flash), from arm-none-eabi-size."""
    size = shutil.which("arm-none-eabi-size")
    if size is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError, IndexError):
        done = subprocess.run([size, str(elf)], capture_output=True, text=True, timeout=60)
        text, data = (int(v) for v in done.stdout.splitlines()[1].split()[:2])
        return text + data
    return None


def _symbol(elf: Path, name: str) -> int:
    nm = shutil.which("arm-none-eabi-nm")
    if nm is None:
        raise RuntimeUnavailable("arm-none-eabi-nm not found (install gcc-arm-none-eabi)")
    done = subprocess.run([nm, str(elf)], capture_output=True, text=True, timeout=60)
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16) & ~1
    raise EdgekitError(f"the firmware has no symbol {name!r}")


def build_firmware(c_path: Path, info: dict[str, Any], build: Path, target: Board) -> Path:
    """Cross-compile the export's C (each file checked against the manifest's sha256) with
    the harness and start-up code; returns the ELF firmware."""
    from edgekit.formats.manifest import c_source_digests, read_verified

    where = c_path.parent / "manifest.json"
    digests = c_source_digests(info, where=where)
    for path in info["paths"]:
        (build / path.name).write_bytes(read_verified(path, digests[path.name], where=where))
    firmware = resources.files("edgekit.devices") / "qemu_firmware"
    for name in FIRMWARE_FILES:
        (build / name).write_bytes((firmware / name).read_bytes())
    prefix = str(info["prefix"])
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise EdgekitError(f"{where}: the C prefix {prefix!r} is not a C identifier")
    cc = shutil.which(COMPILER)
    if cc is None:
        raise RuntimeUnavailable(tools_missing() or COMPILER)
    common = [
        cc, *target.cflags, "-std=c99", "-O2", "-ffunction-sections", "-fdata-sections",
        "-iquote", str(build),
    ]  # fmt: skip
    model_o = build / "model.o"
    _compile([*common, "-c", str(build / c_path.name), "-o", str(model_o)], c_path.name)
    elf = build / "firmware.elf"
    defines = [
        f'-DEK_HEADER="{prefix}_model.h"', f"-DEK_PREDICT={prefix}_predict",
        f"-DEK_N_IN={int(info['input_size'])}", f"-DEK_N_OUT={int(info['output_size'])}",
    ]  # fmt: skip
    link = [
        *common, *defines, "--specs=nano.specs", "--specs=nosys.specs", "-nostartfiles",
        "-T", str(build / target.linker_script), "-Wl,--gc-sections",
        str(build / "startup.c"), str(build / "harness.c"), str(model_o), "-lm",
        "-o", str(elf),
    ]  # fmt: skip
    _compile(link, f"the {target.device} firmware")
    return elf


def _qemu_command(elf: Path, target: Board, *, trace: bool) -> list[str]:
    emulator = shutil.which(EMULATOR)
    if emulator is None:
        raise RuntimeUnavailable(tools_missing() or EMULATOR)
    cmd = [
        emulator, "-machine", target.machine, "-nographic", "-monitor", "none",
        "-serial", "none", "-semihosting-config", "enable=on,target=native",
        "-kernel", str(elf),
    ]  # fmt: skip
    if trace:
        cmd += ["-singlestep", "-d", "exec,nochain"]
    return cmd


_EXIT_REASONS = {
    1: "the firmware could not open or write its files (semihosting)",
    2: "the model's predict() returned an error",
    3: "the firmware faulted (HardFault or another exception)",
}


def _failed(code: int, what: str, stderr: str) -> EdgekitError:
    reason = _EXIT_REASONS.get(code, f"{EMULATOR} exited with status {code}")
    last = [line for line in stderr.splitlines() if line.strip()][-1:] if stderr else []
    return EdgekitError(f"{what}: {reason}{': ' + last[0][:200] if last else ''}")


def _count_marks(
    proc: subprocess.Popen, mark_pc: int, counter: CycleCounter | None
) -> tuple[list[int], list[int], str]:
    """Stream QEMU's exec trace (one line per instruction): at each entry to ``ek_mark``,
    the instructions and the cycles (``counter``, :mod:`edgekit.devices.m4_timing`; none
    without one) so far; and the non-trace text at the end (QEMU's own messages)."""
    assert proc.stderr is not None
    pattern = re.compile(rb"\[[0-9a-f]+/([0-9a-f]{8})/")
    marks: list[int] = []
    cycles: list[int] = []
    lines = 0
    tail = b""
    last = b""
    while True:
        chunk = proc.stderr.read(1 << 20)
        if not chunk:
            break
        buf = tail + chunk
        cut = buf.rfind(b"\n") + 1
        body, tail = buf[:cut], buf[cut:]
        for m in pattern.finditer(body):
            pc = int(m.group(1), 16)
            if pc == mark_pc:
                marks.append(lines)
                if counter is not None:
                    cycles.append(counter.total)
            if counter is not None:
                counter.step(pc)
            lines += 1
        last = body[-4096:]
    text = (last + tail).decode("utf-8", "replace")
    messages = "\n".join(line for line in text.splitlines() if not line.startswith("Trace "))
    return marks, cycles, messages


def run_on_qemu(
    c_path: str | Path,
    inputs: np.ndarray,
    *,
    device: str = "qemu:cortex-m4",
    trace_samples: int = TRACE_SAMPLES,
    timeout: float = 600.0,
) -> QemuRun:
    """Run the export's C (``c_path``, its ``<prefix>_model.c``) on the emulated core.

    ``inputs`` are the samples, flattened as the C takes them (real values). Every sample
    runs once (the outputs); the first ``trace_samples`` run again under the exec trace (the
    instruction counts; 0: none).
    """
    import numpy as np

    from edgekit.runtime.c import c_source_entry
    from edgekit.toolchain import object_footprint

    target = board(device)
    missing = tools_missing()
    if missing:
        raise RuntimeUnavailable(missing)
    c_path = Path(c_path)
    info = c_source_entry(c_path)
    n_in, n_out = int(info["input_size"]), int(info["output_size"])
    x = np.ascontiguousarray(np.asarray(inputs, dtype="<f4").reshape(len(inputs), -1))
    if x.shape[1] != n_in:
        raise EdgekitError(f"{c_path.name}: inputs have {x.shape[1]} features, the C takes {n_in}")
    build = Path(tempfile.mkdtemp(prefix="edgekit-qemu-"))
    try:
        elf = build_firmware(c_path, info, build, target)
        run = QemuRun(outputs=np.empty((0, n_out), np.float32), compiler=COMPILER)
        with contextlib.suppress(OSError, ValueError, IndexError):
            run.flash_bytes = object_footprint(build / "model.o")
        run.firmware_bytes = _elf_sizes(elf)
        x.tofile(build / "in.bin")
        try:
            done = subprocess.run(
                _qemu_command(elf, target, trace=False), cwd=build, capture_output=True,
                text=True, timeout=timeout, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except subprocess.TimeoutExpired as err:
            raise EdgekitError(f"{device}: the firmware ran over {timeout:g} s") from err
        if done.returncode != 0:
            raise _failed(done.returncode, device, done.stderr)
        out = np.fromfile(build / "out.bin", dtype="<f4")
        if out.size != len(x) * n_out:
            raise EdgekitError(
                f"{device}: the firmware wrote {out.size} outputs for {len(x)} samples of {n_out}"
            )
        run.outputs = out.reshape(len(x), n_out).astype(np.float32)
        k = min(int(trace_samples), len(x))
        if k > 0:
            run.instructions, run.mark_overhead, run.cycles = _trace(
                elf, x[:k], build, target, timeout
            )
        return run
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _trace(
    elf: Path, x: np.ndarray, build: Path, target: Board, timeout: float
) -> tuple[list[int], int, list[int]]:
    """Per-inference instruction counts of the samples ``x`` (see the module's docstring),
    the instructions of an empty pair of marks, and per-inference cycles (TRM timings)."""
    mark_pc = _symbol(elf, "ek_mark")
    counter = CycleCounter(disassemble(elf)) if target.cycle_timings else None
    x.tofile(build / "in.bin")
    proc = subprocess.Popen(
        _qemu_command(elf, target, trace=True), cwd=build, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    import threading

    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        marks, cycles, messages = _count_marks(proc, mark_pc, counter)
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code != 0:
        raise _failed(code, f"{target.device} (traced run)", messages)
    if len(marks) != 2 + 2 * len(x):
        raise EdgekitError(
            f"{target.device}: the trace holds {len(marks)} marks, expected {2 + 2 * len(x)} "
            "(the run was cut short)"
        )
    overhead = marks[1] - marks[0]
    counts = [marks[i + 1] - marks[i] - overhead for i in range(2, len(marks), 2)]
    if not cycles:
        return counts, overhead, []
    cycle_overhead = cycles[1] - cycles[0]
    per_cycles = [cycles[i + 1] - cycles[i] - cycle_overhead for i in range(2, len(cycles), 2)]
    return counts, overhead, per_cycles


def catalog_clock_hz(device: str) -> tuple[int, str]:
    """The clock of the catalog target that the device's latency is derived at, and where
    that figure comes from."""
    from edgekit.estimate.catalog import get_target

    target = get_target(board(device).catalog_target)
    source = (getattr(target, "sources", None) or {}).get("clock_hz", "")
    return int(target.clock_hz), str(source)


def summarize_counts(counts: Sequence[int]) -> dict[str, float]:
    """``{"min", "mean", "max", "samples"}`` of per-inference instruction counts."""
    return {
        "min": int(min(counts)),
        "mean": round(sum(counts) / len(counts), 2),
        "max": int(max(counts)),
        "samples": len(counts),
    }
