"""The ``tflm`` runtime: a ``.tflite`` in TensorFlow Lite for Microcontrollers, on this host.

It runs the PyPI ``tflite-micro`` interpreter (the ``[mcu]`` extra): TFLM's own reference
kernels, as a microcontroller runs them, compiled for this machine. Latency is therefore the
host's, not a device figure. TFLM works on one sample per ``invoke`` (its tensors have the
model's static shapes): a batch of B is B invokes.

``arena_bytes`` is the smallest tensor arena that this interpreter accepts for the model,
rounded to TFLM's 16-byte arena alignment: the least size at which creating the interpreter
(``AllocateTensors``) and one ``invoke`` succeed. The wrapper can crash (segfault, abort) or
hang on an arena that is too small, so every probe runs in its own child process: sizes
double from :data:`FIRST_PROBE` until one works, then a bisection finds the smallest. The
interpreter is the 64-bit host build with TFLM's recording allocator (its default), whose
bookkeeping takes some of the arena: a 32-bit microcontroller needs somewhat less.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.runtime.base import Runner, RuntimeUnavailable, TensorInfo

NOT_INSTALLED = "tflite-micro not installed (pip install the [mcu] extra)"
MODULE = "tflite_micro.python.tflite_micro.runtime"
ALIGNMENT = 16  # TFLM aligns the arena and its buffers to 16 bytes
FIRST_PROBE = 4096
MAX_ARENA = 256 << 20  # no model edgekit exports needs more; above it the probe gives up
PROBE_TIMEOUT = 60.0

# One probe: the model's bytes on stdin, the arena size in argv; exit 0 when TFLM allocated
# and ran one inference. Nothing else is imported (numpy comes with tflite_micro).
_PROBE = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
model = sys.stdin.buffer.read()
interpreter = runtime.Interpreter.from_bytes(model, arena_size=int(sys.argv[1]))
detail = interpreter.get_input_details(0)
interpreter.set_input(np.zeros(detail["shape"], detail["dtype"]), 0)
interpreter.invoke()
interpreter.get_output(0)
"""


def _tflm_module() -> Any:
    import importlib

    try:
        return importlib.import_module(MODULE)
    except ImportError as err:
        raise RuntimeUnavailable(NOT_INSTALLED) from err


def arena_fits(model: bytes, size: int, *, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether TFLM allocates ``model`` in an arena of ``size`` bytes and runs it once.

    Runs in a child process: a crash or a hang there is a "no", not the end of this one.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(int(size))],
            input=model,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def smallest_arena(model: bytes, *, timeout: float = PROBE_TIMEOUT) -> int:
    """The smallest arena (a multiple of 16 bytes) in which TFLM allocates and runs ``model``."""
    hi = FIRST_PROBE
    while not arena_fits(model, hi, timeout=timeout):
        hi *= 2
        if hi > MAX_ARENA:
            raise EdgekitError(
                f"TFLM did not run the model with any arena up to {MAX_ARENA >> 20} MiB (an "
                "operator TFLM lacks, or a model it cannot allocate)"
            )
    # in units of ALIGNMENT: lo_units fails (or is zero), hi_units works
    lo_units = 0 if hi == FIRST_PROBE else hi // 2 // ALIGNMENT
    hi_units = hi // ALIGNMENT
    while hi_units - lo_units > 1:
        mid = (lo_units + hi_units) // 2
        if arena_fits(model, mid * ALIGNMENT, timeout=timeout):
            hi_units = mid
        else:
            lo_units = mid
    return hi_units * ALIGNMENT


def _tensor_info(detail: dict[str, Any], name: str) -> TensorInfo:
    shape = [int(d) for d in detail["shape"]]
    dtype = np.dtype(detail["dtype"]).name
    params = detail.get("quantization_parameters") or {}
    scales = list(np.asarray(params.get("scales", []), np.float64).ravel())
    zeros = list(np.asarray(params.get("zero_points", []), np.int64).ravel())
    quant = None
    if scales and np.dtype(dtype).kind != "f":
        if len(scales) != 1:
            raise EdgekitError(f"{name}: per-axis quantized model inputs/outputs are not supported")
        quant = {"scale": float(scales[0]), "zero_point": int(zeros[0] if zeros else 0)}
    return TensorInfo(name=name, shape=[-1, *shape[1:]], dtype=dtype, quantization=quant)


class TFLMRunner(Runner):
    """A ``.tflite`` in the ``tflite-micro`` interpreter; ``build()`` measures the arena."""

    runtime = "tflm"

    def __init__(self, path, **options: Any) -> None:
        super().__init__(path, **options)
        self.arena_bytes: int | None = None
        self._model: bytes | None = None

    def _read(self) -> bytes:
        if self._model is None:
            if self.device != "cpu":
                raise RuntimeUnavailable("the tflm runtime runs on this host's CPU only")
            if self.threads != 1:
                raise RuntimeUnavailable(
                    f"TFLM runs on one thread; threads={self.threads} does not apply"
                )
            _tflm_module()
            try:
                self._model = self.path.read_bytes()
            except OSError as err:
                raise EdgekitError(f"{self.path}: cannot read it ({err.strerror or err})") from err
            from edgekit.formats.tflite_graph import CorruptFlatbuffer, check_tflite

            try:
                check_tflite(self.path)  # declared sizes against the file, before TFLM reads it
            except CorruptFlatbuffer as err:
                raise EdgekitError(f"{self.path}: not a valid TFLite model ({err})") from err
        return self._model

    def build(self) -> int:
        """Find the smallest arena (child processes; before bench's ``init_ms`` clock)."""
        if self.arena_bytes is None:
            self.arena_bytes = smallest_arena(self._read())
        return self.arena_bytes

    def load(self) -> None:
        model = self._read()
        runtime = _tflm_module()
        # Run with room to spare: the minimum was found in the probes, what is timed here is
        # the kernels, which do not depend on the arena's size.
        arena = 2 * self.arena_bytes + 4096 if self.arena_bytes else max(len(model) * 10, 1 << 20)
        try:
            self.interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
            details_in = self.interpreter.get_input_details(0)
            details_out = self.interpreter.get_output_details(0)
        except (ValueError, RuntimeError) as err:
            raise EdgekitError(f"{self.path}: TFLM cannot load the model ({err})") from err
        self.inputs = [_tensor_info(details_in, "input")]
        self.outputs = [_tensor_info(details_out, "output")]
        self._sample_shape = tuple(int(d) for d in details_in["shape"])
        if not self._sample_shape or self._sample_shape[0] != 1:
            raise EdgekitError(f"{self.path}: TFLM runs models with a batch of 1 per invoke")
        self._set, self._invoke = self.interpreter.set_input, self.interpreter.invoke
        self._get = self.interpreter.get_output

    def prepare(self, x: np.ndarray) -> np.ndarray:
        feed = super().prepare(x)
        return np.ascontiguousarray(feed.reshape(len(feed), 1, *self._sample_shape[1:]))

    def call(self, feed: np.ndarray) -> np.ndarray:
        set_input, invoke, get_output = self._set, self._invoke, self._get
        parts = []
        for sample in feed:
            set_input(sample, 0)
            invoke()
            parts.append(get_output(0).copy())
        return np.concatenate(parts) if parts else np.empty((0,), np.float32)

    def bind(self, feed: np.ndarray):
        set_input, invoke, get_output = self._set, self._invoke, self._get
        samples = list(feed)

        def run() -> None:
            for sample in samples:
                set_input(sample, 0)
                invoke()
                get_output(0)

        return run
