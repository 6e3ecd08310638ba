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
    names_at = sections[shstrndx][4]

    def name(offset: int) -> str:
        end = blob.index(b"\0", names_at + offset)
        return blob[names_at + offset : end].decode("ascii", "replace")

    total = 0
    for sh_name, sh_type, _flags, _addr, _offset, size in sections:
        section = name(sh_name)
        if sh_type != 8 and section.startswith((".text", ".rodata", ".data")):  # 8: NOBITS
            total += size
    return total
