"""TensorFlow Lite Micro (the PyPI ``tflite-micro`` interpreter) as a reference for the C.

The int8 C reproduces TFLM's reference kernels by default; this module runs a ``.tflite`` in
TFLM to check that, to fill the C's elementwise tables with TFLM's values, and to find the
smallest arena TFLM accepts for a model (``--c-array``'s ``<NAME>_TENSOR_ARENA_SIZE``).

The wrapper can crash the whole process (not raise) on an arena that is too small, so every
interpreter here gets a generous arena (:func:`generous_arena`), and the arena probes that
try small sizes each run in a child process (:func:`smallest_arena`).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

NOT_INSTALLED = "tflite-micro not installed (pip install tflite-micro)"
_MODULE = "tflite_micro.python.tflite_micro.runtime"


def available() -> bool:
    """Whether the ``tflite-micro`` interpreter can be imported."""
    try:
        return importlib.util.find_spec("tflite_micro") is not None
    except (ImportError, ValueError):
        return False


def _runtime() -> Any:
    import importlib

    return importlib.import_module(_MODULE)


def generous_arena(model: bytes) -> int:
    """10x the bytes of every tensor of the model (and of the file) plus 64 KiB: an arena
    far above what TFLM needs, so the wrapper never runs short."""
    import tempfile

    from edgekit.errors import EdgekitError
    from edgekit.formats.tflite_graph import read_tflite

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model)
        try:
            g = read_tflite(path)
            tensors = sum(t.nbytes for t in g.tensors)
        except (EdgekitError, ValueError):  # the estimate only sizes a buffer
            tensors = 0
    return 10 * (tensors + len(model)) + 64 * 1024


def tflm_int8_outputs(model: Path | bytes, q: np.ndarray) -> np.ndarray:
    """The int8 outputs of ``model`` run in TFLM on int8 inputs ``q``, one sample at a time
    (TFLM's shapes are fixed); one row per sample."""
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    rt = _runtime()
    interp = rt.Interpreter.from_bytes(data, arena_size=generous_arena(data))
    shape = list(interp.get_input_details(0)["shape"])
    rows = []
    for sample in np.ascontiguousarray(q, np.int8).reshape(len(q), -1):
        interp.set_input(sample.reshape(shape), 0)
        interp.invoke()
        rows.append(np.asarray(interp.get_output(0)).reshape(-1).copy())
    return np.stack(rows) if rows else np.zeros((0, 0), np.int8)


# A child process: build an interpreter on argv[2] bytes of arena, run one inference.
_PROBE = """
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2]))
d = it.get_input_details(0)
it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
it.invoke()
print("ok")
"""


def arena_fits(model: Path, size: int, *, timeout: float = 60.0) -> bool:
    """Whether TFLM allocates and runs ``model`` in an arena of ``size`` bytes (a child
    process: a crash or a hang is a no)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(model), str(size)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and done.stdout.strip() == "ok"


def smallest_arena(model: str | Path, *, start: int | None = None) -> int | None:
    """The smallest arena (bytes, a multiple of 16) TFLM accepts for ``model``: bisection
    over child processes, each creating the interpreter and running one inference
    (``start``: a first upper bound to try, e.g. an estimate). None when tflite-micro is
    missing or the model does not run even in a generous arena."""
    model = Path(model)
    if not available():
        return None
    hi = generous_arena(model.read_bytes())
    if start is not None and start < hi and arena_fits(model, start):
        hi = start
    elif not arena_fits(model, hi):
        return None
    lo = 0  # lo: known too small (or zero), hi: known to fit; both multiples of 16
    hi = (hi + 15) // 16 * 16
    while hi - lo > 16:
        mid = (lo + hi) // 32 * 16
        if arena_fits(model, mid):
            hi = mid
        else:
            lo = mid
    return hi
