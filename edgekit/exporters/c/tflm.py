"""TensorFlow Lite Micro (the PyPI ``tflite-micro`` interpreter) as a reference for the C.

The int8 C reproduces TFLM's reference kernels by default; this module runs a ``.tflite`` in
TFLM to check that, to fill the C's elementwise tables with TFLM's values, and to find the
smallest arena TFLM accepts for a model (``--c-array``'s ``<NAME>_TENSOR_ARENA_SIZE``).

The wrapper can crash the whole process (not raise) on an arena that is too small, so every
interpreter here gets a generous arena (:func:`generous_arena`), and the arena probes that
try small sizes each run in a child process (:func:`smallest_arena`).

TFLM's C++ code prints straight to the process's stderr when it cannot run a model ("Didn't
find op for builtin opcode 'GELU'"). So a model is first tried in a child process
(:func:`probe`), whose output becomes the reason ("TFLite Micro has no GELU kernel"), and
only a model that ran there is run in this process. A model TFLM lacks kernels for can still
serve as the C's reference: :func:`tflm_int8_outputs_around` runs the ops TFLM has in TFLM
and the others in LiteRT's builtin kernels (whose tables the C holds for them).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NOT_INSTALLED = "tflite-micro not installed (pip install tflite-micro)"
_MODULE = "tflite_micro.python.tflite_micro.runtime"
# What TFLM prints for an operator it has no kernel for.
_NO_KERNEL = re.compile(r"Didn't find op for builtin opcode '(\w+)'")


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


@dataclass(frozen=True)
class Probe:
    """Whether TFLM runs a model: ``runs``, else ``reason`` (one line) and the builtin ops it
    has no kernel for (``missing``, possibly empty when something else failed)."""

    runs: bool
    reason: str | None = None
    missing: tuple[str, ...] = ()


_probed: dict[str, Probe] = {}


def probe(model: Path | bytes, *, timeout: float = 60.0) -> Probe:
    """Create ``model``'s interpreter (a generous arena) and run one inference, in a child
    process whose output is kept from this one's stderr and read for the reason."""
    if not available():
        return Probe(False, NOT_INSTALLED)
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    key = hashlib.sha256(data).hexdigest()
    if key not in _probed:
        _probed[key] = _probe(data, timeout)
    return _probed[key]


def _probe(data: bytes, timeout: float) -> Probe:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(data)
        try:
            done = subprocess.run(
                [sys.executable, "-c", _PROBE, str(path), str(generous_arena(data))],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return Probe(False, f"tflite-micro did not run the model within {timeout:g} s")
    if done.returncode == 0 and done.stdout.strip() == "ok":
        return Probe(True)
    said = done.stdout + done.stderr
    missing = tuple(dict.fromkeys(_NO_KERNEL.findall(said)))
    if missing:
        kernels = "kernel" if len(missing) == 1 else "kernels"
        return Probe(False, f"TFLite Micro has no {', '.join(missing)} {kernels}", missing)
    if done.returncode < 0:
        return Probe(False, f"tflite-micro crashed on the model (signal {-done.returncode})")
    lines = [ln.strip() for ln in said.splitlines() if ln.strip()]
    own = lines[: next((i for i, ln in enumerate(lines) if ln.startswith("Traceback")), None)]
    line = (own or lines[-1:] or ["failed"])[0]
    return Probe(False, f"tflite-micro cannot run the model ({line})")


def tflm_int8_outputs_around(path: Path, q: np.ndarray, missing: tuple[str, ...]) -> np.ndarray:
    """The int8 outputs of ``path`` on ``q`` with the ``missing`` ops in LiteRT's builtin
    kernels and every other op in TFLM: the graph is cut into consecutive runs of ops, each
    with one int8 tensor in and one out, and each run goes to its runtime as a model of its
    own. Raises ValueError when the graph does not cut so, or a TFLM run does not run."""
    from edgekit.exporters.c.int8_regions import cut_model
    from edgekit.exporters.c.litert import tflite_int8_outputs
    from edgekit.formats.tflite_graph import read_tflite

    g = read_tflite(path)
    runs: list[list[Any]] = []
    for op in g.ops:
        if runs and (runs[-1][0].name in missing) == (op.name in missing):
            runs[-1].append(op)
        else:
            runs.append([op])
    values, tensor = np.asarray(q, np.int8).reshape(len(q), -1), g.inputs[0]
    for k, ops in enumerate(runs):
        inside = {i for op in ops for i in op.outputs}
        later = {i for op in (o for r in runs[k + 1 :] for o in r) for i in op.inputs}
        seeds = {i for op in ops for i in op.inputs if i >= 0 and not g.tensors[i].is_constant}
        exits = {i for i in inside if i in later or i in g.outputs}
        if seeds - inside != {tensor} or len(exits) != 1 or len(g.inputs) != 1:
            raise ValueError("the graph does not cut into runs with one tensor in and out")
        exit_ = exits.pop()
        model = cut_model(path, ops, tensor, exit_, shape=None)
        if ops[0].name in missing:
            values = tflite_int8_outputs(model, values, kernels="builtin")
        else:
            verdict = probe(model)
            if not verdict.runs:
                raise ValueError(verdict.reason)
            values = tflm_int8_outputs(model, values)
        tensor = exit_
    if tensor not in g.outputs:
        raise ValueError("the graph does not cut into runs with one tensor in and out")
    return values


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
