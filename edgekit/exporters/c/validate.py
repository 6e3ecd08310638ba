"""Validation of the generated C: compile it with the harness, run it, compare.

``float32`` is compared with the Keras outputs (``max_abs_diff`` within ``atol``); ``int8``
with ai_edge_litert's builtin kernels on the same int8 inputs, element by element, and, for
information, with LiteRT's reference kernels and its default interpreter (XNNPACK). Without
a C compiler nothing is validated, and the result says so (``"validated": false``).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import toolchain
from edgekit.errors import EdgekitError
from edgekit.exporters.c.artifact import CSource
from edgekit.exporters.c.harness import compile_harness, run_harness
from edgekit.exporters.c.litert import tflite_int8_outputs
from edgekit.runtime.base import TensorInfo


def compare_int8(got: np.ndarray, want: np.ndarray) -> dict[str, int]:
    """Element counts: identical outputs, outputs 1 LSB apart, the largest difference."""
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    return {
        "exact": int((diff == 0).sum()),
        "off_by_one": int((diff == 1).sum()),
        "max_lsb_diff": int(diff.max(initial=0)),
    }


def validate_c_source(
    c: CSource,
    x: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    tflite: Path | None = None,
    atol: float = 1e-4,
    raw_input_q: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compile and run the generated code on ``x``; compare with Keras or the int8 model.

    ``raw_input_q``: the manifest's quantization of the raw features, when it is not the
    ``.tflite``'s own (per-feature parameters): the int8 inputs are made with it, as a device
    makes them.

    ``float32``: ``max_abs_diff`` against ``reference`` (the Keras outputs), within ``atol``.
    ``int8``: ``<prefix>_predict_int8`` against ai_edge_litert's builtin kernels on the same
    int8 inputs, element by element (``passed`` only if every output is identical); the
    default interpreter (XNNPACK) is compared too, for information.
    """
    cc = toolchain.find_compiler()
    if cc is None:
        return {"validated": False, "passed": None, "reason": toolchain.NO_COMPILER}
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    result: dict[str, Any] = {
        "validated": True,
        "compiled": True,
        "compiler": (version.splitlines() or [cc])[0],
        "samples": len(x),
    }
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    try:
        with tempfile.TemporaryDirectory() as build:
            exe = compile_harness(c, build, cc=cc)
            if c.variant == "float32":
                result.update(_vs_keras(c, exe, x, reference, atol=atol))
            else:
                result.update(_vs_tflite(c, exe, x, tflite, raw_input_q))
            return result
    except (EdgekitError, OSError, subprocess.SubprocessError) as err:
        return {**result, "passed": False, "error": str(err)}


def _vs_keras(
    c: CSource, exe: Path, x: np.ndarray, reference: np.ndarray | None, *, atol: float
) -> dict[str, Any]:
    if reference is None:
        raise EdgekitError("validating float32 C needs the Keras outputs")
    got = run_harness(exe, x, n_out=c.output_size, int8=False)
    ref = np.asarray(reference, np.float32).reshape(len(x), -1)
    diff = float(np.max(np.abs(got.astype(np.float64) - ref))) if len(x) else 0.0
    return {"max_abs_diff": diff, "criterion": f"max_abs_diff <= {atol:g}", "passed": diff <= atol}


def _vs_tflite(
    c: CSource, exe: Path, x: np.ndarray, tflite: Path | None, raw_q: dict[str, Any] | None
) -> dict[str, Any]:
    if tflite is None:
        raise EdgekitError("validating int8 C needs the int8 .tflite model")
    qi = raw_q or c.input_quantization or {}
    # raw features -> int8 exactly as the runners make them (per tensor or per feature)
    tensor = TensorInfo(name="input", shape=[-1, c.input_size], dtype="int8", quantization=qi)
    q = tensor.quantize(x)
    got = run_harness(exe, q, n_out=c.output_size, int8=True)
    same = compare_int8(got, tflite_int8_outputs(tflite, q, kernels="builtin"))
    return {
        "reference": "ai_edge_litert builtin kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES)",
        "outputs": int(got.size),
        **same,
        "vs_reference_kernels": _compare_with(got, tflite, q, "reference"),
        "vs_default_interpreter": _compare_with(got, tflite, q, "default"),
        "criterion": "every int8 output identical",
        "passed": same["max_lsb_diff"] == 0,
    }


def _compare_with(got: np.ndarray, tflite: Path, q: np.ndarray, kernels: str) -> dict[str, Any]:
    """For information: how the C outputs compare with another set of TFLite kernels."""
    try:
        return dict(compare_int8(got, tflite_int8_outputs(tflite, q, kernels=kernels)))
    except (ValueError, RuntimeError) as err:  # e.g. BUILTIN_REF lacks ELU
        return {"error": (str(err).strip().splitlines() or ["failed"])[0]}
