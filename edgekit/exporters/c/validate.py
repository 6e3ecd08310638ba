"""Validation of the generated C: compile it with the harness, run it, compare.

``float32`` is compared with the Keras outputs (``max_abs_diff`` within ``atol``); ``int8``
on the same int8 inputs, element by element, with the kernels it reproduces (TensorFlow Lite
Micro, the ``tflite-micro`` interpreter, by default; LiteRT's builtin kernels with
``--c-rounding litert``) and, for information, with the others: ``vs`` holds the counts
against TFLM, LiteRT builtin, LiteRT reference and XNNPACK (LiteRT's default interpreter).
Without a C compiler nothing is validated, and the result says so (``"validated": false``);
without tflite-micro the TFLM C is run but not checked (``"passed": null``, the reason).
A model with ops TFLM has no kernel for (GELU) is checked against TFLM with those ops run in
LiteRT's builtin kernels, where the C's tables for them come from (``against`` says so);
when its graph does not cut so, it is not checked, and the reason says which kernels TFLM
lacks. TFLM's own messages never reach stderr (:func:`edgekit.exporters.c.tflm.probe`).
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


# the int8 references: manifest key -> what it is
REFERENCES = {
    "tflm": "TensorFlow Lite Micro (tflite-micro interpreter, reference kernels)",
    "litert_builtin": "ai_edge_litert builtin kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES)",
    "litert_reference": "ai_edge_litert reference kernels (BUILTIN_REF)",
    "xnnpack": "ai_edge_litert default interpreter (XNNPACK)",
}
_LITERT = {"litert_builtin": "builtin", "litert_reference": "reference", "xnnpack": "default"}


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
    from edgekit.exporters.validate import float_tolerance

    allowed, criterion = float_tolerance(atol, ref)
    return {"max_abs_diff": diff, "criterion": criterion, "passed": diff <= allowed}


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
    vs = {key: _compare_with(got, tflite, q, key) for key in REFERENCES}
    key = "tflm" if c.rounding == "tflm" else "litert_builtin"
    main = vs[key]
    out: dict[str, Any] = {"reference": REFERENCES[key], "outputs": int(got.size)}
    if "exact" in main:
        out.update(exact=main["exact"], off_by_one=main["off_by_one"], max_lsb_diff=main["max_lsb"])
    out.update(vs=vs, criterion=f"every int8 output identical to {key}")
    if "with_litert" in main:  # TFLM lacks kernels for some ops: those ran in LiteRT
        ops = ", ".join(main["with_litert"])
        out["reference"] += f", with {ops} in {REFERENCES['litert_builtin']} ({main['because']})"
        out["criterion"] += f" ({ops}: litert_builtin)"
        out["against"] = f"TFLite Micro ({ops} in TFLite's builtin kernels: {main['because']})"
    if "not_checked" in main:
        out.update(passed=None, reason=f"not checked: {main['not_checked']}")
    else:
        out["passed"] = main.get("max_lsb") == 0
    return out


def _compare_with(got: np.ndarray, tflite: Path, q: np.ndarray, key: str) -> dict[str, Any]:
    """How the C outputs compare with one runtime's kernels: ``{"exact", "outputs",
    "off_by_one", "max_lsb"}``, ``{"not_checked": why}`` or ``{"error": ...}``."""
    from edgekit.exporters.c import tflm

    around: dict[str, Any] = {}
    try:
        if key == "tflm":
            verdict = tflm.probe(tflite)  # in a child process: TFLM's messages stay there
            if verdict.runs:
                want = tflm.tflm_int8_outputs(tflite, q)
            elif not verdict.missing:  # a model TFLM cannot run cannot be checked against it
                return {"not_checked": verdict.reason}
            else:
                try:
                    want = tflm.tflm_int8_outputs_around(tflite, q, verdict.missing)
                except ValueError:
                    return {"not_checked": verdict.reason}
                around = {"with_litert": list(verdict.missing), "because": verdict.reason}
        else:
            want = tflite_int8_outputs(tflite, q, kernels=_LITERT[key])
    except (ValueError, RuntimeError) as err:  # e.g. BUILTIN_REF lacks ELU
        why = (str(err).strip().splitlines() or ["failed"])[0]
        if key == "tflm":
            return {"not_checked": f"tflite-micro cannot run the model ({why})"}
        return {"error": why}
    same = compare_int8(got, want.reshape(got.shape))
    return {
        "exact": same["exact"],
        "outputs": int(got.size),
        "off_by_one": same["off_by_one"],
        "max_lsb": same["max_lsb_diff"],
        **around,
    }
