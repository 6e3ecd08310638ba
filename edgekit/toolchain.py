"""The C toolchain: finding a compiler, running it, and measuring what it built.

Shared by the exporters (which compile the generated C to validate it) and the ``c`` runtime
(which compiles it to measure it); neither imports the other.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

from edgekit.errors import EdgekitError

NO_COMPILER = "no C compiler found (set CC, or install gcc or clang)"


def find_compiler() -> str | None:
    """``$CC``, else ``cc``, ``gcc`` or ``clang`` on PATH (None when there is none)."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def run_compiler(cmd: list[str], *, what: str, timeout: float = 300.0) -> None:
    """Run one compiler command; a failure or a time-out is a one-line error naming ``what``."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise EdgekitError(f"compiling {what} took over {timeout:g} s") from err
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0][:300]
        raise EdgekitError(f"compiling {what} failed: {first}")


def object_footprint(path: Path) -> int | None:
    """Bytes of ``.text*``, ``.rodata*`` and ``.data*`` in an ELF object (None if not ELF)."""
    blob = path.read_bytes()
    if blob[:4] != b"\x7fELF" or len(blob) < 64:
        return None
    total = 0
    for section, sh_type, size in _sections(blob):
        if sh_type != 8 and section.startswith((".text", ".rodata", ".data")):  # 8: NOBITS
            total += size
    return total


def _section_table(blob: bytes) -> tuple[list[tuple[int, ...]], str, int]:
    """The raw section headers, the struct layout's endianness and the string table offset."""
    wide, endian = blob[4] == 2, "<" if blob[5] == 1 else ">"
    if wide:
        (shoff,) = struct.unpack_from(endian + "Q", blob, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", blob, 0x3A)
        layout = endian + "IIQQQQ"  # name, type, flags, addr, offset, size
    else:
        (shoff,) = struct.unpack_from(endian + "I", blob, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", blob, 0x2E)
        layout = endian + "IIIIII"
    sections = [struct.unpack_from(layout, blob, shoff + i * shentsize) for i in range(shnum)]
    return sections, endian, sections[shstrndx][4]


def _sections(blob: bytes) -> list[tuple[str, int, int]]:
    """(name, type, size) of each section of an ELF object."""
    sections, _endian, names_at = _section_table(blob)

    def name(offset: int) -> str:
        end = blob.index(b"\0", names_at + offset)
        return blob[names_at + offset : end].decode("ascii", "replace")

    return [(name(sh[0]), sh[1], sh[5]) for sh in sections]


def _common_bytes(blob: bytes) -> int:
    """Bytes of the COMMON symbols (tentative definitions, -fcommon) of an ELF object."""
    sections, endian, _names_at = _section_table(blob)
    wide = blob[4] == 2
    total = 0
    for sh in sections:
        if sh[1] != 2:  # SHT_SYMTAB
            continue
        offset, size = sh[4], sh[5]
        entry = 24 if wide else 16
        for at in range(offset, offset + size, entry):
            if wide:
                _n, _info, _other, shndx, _value, sym_size = struct.unpack_from(
                    endian + "IBBHQQ", blob, at
                )
            else:
                _n, _value, sym_size, _info, _other, shndx = struct.unpack_from(
                    endian + "IIIBBH", blob, at
                )
            if shndx == 0xFFF2:  # SHN_COMMON
                total += sym_size
    return total


def footprint(source: Path, include_dir: Path, function: str) -> dict[str, object] | None:
    """What the C file ``source`` takes on a microcontroller: ``flash_bytes`` (code and
    constants), ``ram_bytes`` (every static buffer) and ``stack_bytes`` (the deepest call
    chain from ``function``, from ``-fstack-usage``/``-fcallgraph-info``), compiled with
    ``arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os -c`` when it is installed, else with the
    host compiler at ``-Os`` (``measured_with`` says which). None without a compiler."""
    import tempfile

    arm = shutil.which(ARM_GCC)
    cc = arm or find_compiler()
    if cc is None:
        return None
    flags = ARM_FLAGS if arm else ["-Os"]
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / (source.stem + ".o")
        cmd = [cc, "-std=c99", *flags, "-fstack-usage", "-fcallgraph-info=su", f"-I{include_dir}",
               "-c", str(source), "-o", str(obj)]  # fmt: skip
        run_compiler(cmd, what=source.name)
        sizes = section_sizes(obj)
        if sizes is None:
            return None
        stack = _stack_depth(obj.with_suffix(".ci"), function)
    target = "cortex-m4 (thumb, -Os)" if arm else "host (-Os)"
    return {
        "flash_bytes": sizes["flash"],
        "ram_bytes": sizes["ram"],
        "stack_bytes": stack,
        "measured_with": f"{Path(cc).name} {' '.join(flags)}",
        "target": target,
    }


def _stack_depth(callgraph: Path, function: str) -> int | None:
    """The largest stack (bytes) of a call chain from ``function`` in gcc's
    ``-fcallgraph-info=su`` file; calls leaving the file count as 0 (the generated C calls
    none but libm). None when the file or the function is missing."""
    import re

    if not callgraph.exists():
        return None
    text = callgraph.read_text(encoding="utf-8", errors="replace")
    frames: dict[str, int] = {}
    for title, label in re.findall(r'node: \{ title: "([^"]+)" label: "([^"]*)"', text):
        found = re.search(r"(\d+) bytes \((?:static|dynamic)", label)
        frames[title.split(":")[-1]] = int(found.group(1)) if found else 0
    calls: dict[str, list[str]] = {}
    for src, dst in re.findall(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', text):
        calls.setdefault(src.split(":")[-1], []).append(dst.split(":")[-1])
    if function not in frames:
        return None

    def deepest(name: str, seen: frozenset[str]) -> int:
        below = [deepest(c, seen | {c}) for c in calls.get(name, []) if c not in seen]
        return frames.get(name, 0) + max(below, default=0)

    return deepest(function, frozenset({function}))


ARM_GCC = "arm-none-eabi-gcc"
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-Os"]


def section_sizes(path: Path) -> dict[str, int] | None:
    """``{"flash": .text* + .rodata* + .data*, "ram": .data* + .bss* (+ COMMON)}`` of an ELF
    object, in bytes (None if not ELF): what it puts in flash, and its static mutable bytes."""
    blob = path.read_bytes()
    if blob[:4] != b"\x7fELF" or len(blob) < 64:
        return None
    flash = object_footprint(path) or 0
    ram = 0
    for section, sh_type, size in _sections(blob):
        if section.startswith((".data", ".bss")) or (sh_type == 8 and section.startswith(".tbss")):
            ram += size
    return {"flash": flash, "ram": ram + _common_bytes(blob)}
