"""edgekit's harness around the generated code (``kernels/harness.c``): build it, run it.

The executable reads samples from a file and writes the outputs (``f``: float32, ``q``: int8
through ``<prefix>_predict_int8``), or times calls (``tf``/``tq``): see ``harness.c``.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgekit import toolchain
from edgekit.errors import EdgekitError
from edgekit.exporters.c.artifact import CSource
from edgekit.exporters.c.templates import fill, read


def compile_harness(
    c: CSource, build_dir: str | Path, *, cc: str | None = None, flags: list[str] | None = None
) -> Path:
    """Compile the generated code with edgekit's harness; returns the executable."""
    cc = cc or toolchain.find_compiler()
    if cc is None:
        raise EdgekitError(toolchain.NO_COMPILER)
    build = Path(build_dir)
    harness = build / f"{c.prefix}_harness.c"
    harness.write_text(fill(read("harness.c"), c.prefix), encoding="utf-8")
    exe = build / f"{c.prefix}_harness"
    cmd = [
        cc, "-std=c99", "-O2", "-Wall", "-Wextra", *(flags or []), f"-I{c.header.parent}",
        str(c.source), str(harness), "-o", str(exe), "-lm",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise EdgekitError(f"compiling the generated C failed: {done.stderr.strip()[:500]}")
    return exe


def run_harness(exe: Path, x: np.ndarray, *, n_out: int, int8: bool) -> np.ndarray:
    """Run the harness over every sample of ``x``; returns the outputs, one row per sample."""
    dtype = np.int8 if int8 else np.float32
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        np.ascontiguousarray(x, dtype=dtype).tofile(src)
        done = subprocess.run(
            [str(exe), "q" if int8 else "f", str(src), str(dst)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise EdgekitError(f"the compiled C harness failed: {done.stderr.strip()[:300]}")
        return np.fromfile(dst, dtype=dtype).reshape(len(x), n_out)
