"""``--c-source``: dependency-free C99 inference code, ``<prefix>_model.h`` / ``<prefix>_model.c``.

Two variants, one API (``int <prefix>_predict(const float *input, float *output)``, real
values in and out, returns 0 on success):

* ``float32`` is written from the Keras model: Normalization, Dense with its activation
  (relu, relu6, tanh, sigmoid, elu, selu, gelu, swish, linear, softmax), Activation, ReLU,
  Softmax, Rescaling; Flatten, Reshape and Dropout are no-ops. It matches Keras to float
  rounding (about 1e-6) and needs libm for its activations (``expf``, ``tanhf``, ``expm1f``,
  ``erff``; link with ``-lm``).
* ``int8`` is written from the int8 ``.tflite`` file and adds
  ``int <prefix>_predict_int8(const int8_t *input, int8_t *output)`` on the quantized tensors.
  It reproduces the arithmetic of TensorFlow Lite's builtin int8 kernels as ai_edge_litert
  runs them without delegates (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``):

  - FULLY_CONNECTED: int32 accumulation of ``w * (x - x_zero_point)`` plus the bias, then
    per-channel fixed-point requantization with the multiplier and shift of TFLite's
    ``QuantizeMultiplier`` (``SaturatingRoundingDoublingHighMul``, then a rounding right
    shift with ties rounded upward, which is what TFLite's optimized kernels (ruy) do;
    gemmlowp's ``RoundingDivideByPOT`` rounds ties away from zero instead and differs on
    negative ties), the output zero point, and the fused RELU/RELU6/RELU_N1_TO_1 clamp;
  - SUB, MUL (the normalization of tabular models): TFLite's general 8-bit paths with
    ``MultiplyByQuantizedMultiplier`` and gemmlowp rounding;
  - SOFTMAX: TFLite's int8 kernel, a 256-entry ``expf`` table scaled by the input scale and
    beta, a float sum and ``round`` (the table is computed with the C library's ``expf`` at
    export, so the generated code needs no libm);
  - elementwise activations (TANH, LOGISTIC, GELU, DEQUANTIZE-ELU-QUANTIZE, LOGISTIC+MUL for
    swish, ...): a chain of elementwise ops applied to one int8 tensor is a function of one
    int8 value, so it is exactly a 256-entry table. TFLite itself evaluates int8 TANH and
    LOGISTIC through such a table; edgekit fills each table by running that part of the
    graph in ai_edge_litert on all 256 inputs;
  - RESHAPE and the shape computation in front of it are no-ops on contiguous memory.

  The int8 code uses only integer arithmetic except SOFTMAX (float, as in TFLite), and no
  libm. ``<prefix>_predict`` quantizes with ``round(x / scale) + zero_point`` (ties to even,
  like edgekit's runners) and dequantizes with ``(q - zero_point) * scale``.

  Which TFLite: ai_edge_litert ships three int8 FULLY_CONNECTED arithmetics. The builtin
  optimized kernels (ruy) are the one reproduced here, bit for bit. LiteRT's reference
  kernels (``BUILTIN_REF``) requantize in double precision, and the interpreter's default
  applies XNNPACK, which requantizes in floating point and has its own elementwise kernels;
  both differ from the builtin kernels by a few LSB on a few percent of the outputs (export
  records the counts under ``validation.vs_reference_kernels`` and
  ``vs_default_interpreter``). TensorFlow Lite Micro's reference kernels requantize with
  ``MultiplyByQuantizedMultiplier`` (gemmlowp's ties-away rounding, or single rounding when
  built so), so they can differ from this code by 1 LSB where a result is an exact tie.

Weights are ``static const`` arrays, activations live in one static arena planned from
tensor lifetimes; nothing is allocated. Compile without ``-ffast-math`` (float order matters
for bit-exactness); right shifts of negative numbers are written portably.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_text
from edgekit.toolchain import NO_COMPILER, find_compiler

C_VARIANTS = ("float32", "int8")
_C_KEYWORDS = frozenset((
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "_Bool", "_Complex", "_Imaginary",
))  # fmt: skip
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class CSource:
    """What :func:`to_c_source` wrote."""

    variant: str
    prefix: str
    header: Path
    source: Path
    input_size: int
    output_size: int
    input_quantization: dict[str, float] | None = None
    output_quantization: dict[str, float] | None = None
    ops: list[str] = field(default_factory=list)
    arena_bytes: int = 0
    needs_libm: bool = False

    @property
    def files(self) -> list[Path]:
        return [self.header, self.source]

    @classmethod
    def load(cls, export_dir: str | Path) -> CSource:
        """The C source an export directory holds, from its ``manifest.json``."""
        from edgekit.formats.manifest import c_source_entry, load_manifest

        export_dir = Path(export_dir)
        info = c_source_entry(export_dir, load_manifest(export_dir))
        if not info:
            raise EdgekitError(f"{export_dir}: holds no C source (export with --c-source)")
        header, source = info["paths"]
        return cls(
            variant=info["variant"],
            prefix=info["prefix"],
            header=header,
            source=source,
            input_size=info["input_size"],
            output_size=info["output_size"],
            input_quantization=info.get("input_quantization"),
            output_quantization=info.get("output_quantization"),
            ops=info.get("ops", []),
            arena_bytes=info.get("arena_bytes", 0),
            needs_libm=info.get("needs_libm", False),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "prefix": self.prefix,
            "files": [p.name for p in self.files],
            "input_size": self.input_size,
            "output_size": self.output_size,
            "input_quantization": self.input_quantization,
            "output_quantization": self.output_quantization,
            "ops": self.ops,
            "arena_bytes": self.arena_bytes,
            "needs_libm": self.needs_libm,
        }


def check_prefix(prefix: str) -> str:
    """``--c-prefix`` must be a C identifier that is not a keyword."""
    if not isinstance(prefix, str) or not _IDENT.match(prefix) or prefix in _C_KEYWORDS:
        raise EdgekitError(
            f"--c-prefix must be a C identifier (letters, digits and _, not starting with a "
            f"digit, not a C keyword), got {prefix!r}"
        )
    return prefix


def check_variant(variant: str) -> str:
    if variant not in C_VARIANTS:
        raise EdgekitError(f"unknown --c-source {variant!r}; choose from {', '.join(C_VARIANTS)}")
    return variant


def to_c_source(
    model,
    out_dir: str | Path,
    *,
    variant: str,
    prefix: str = "edgekit",
    tflite: str | Path | None = None,
    origin: str | None = None,
    labels: list[str] | None = None,
) -> CSource:
    """Write ``<prefix>_model.h`` / ``<prefix>_model.c`` into ``out_dir``.

    ``float32`` reads the Keras ``model``; ``int8`` reads the int8 ``.tflite`` file given as
    ``tflite`` (int8 input and output). Example:
    ``to_c_source(None, "build", variant="int8", tflite="export/model.int8.tflite")``.
    """
    check_variant(variant)
    check_prefix(prefix)
    out_dir = Path(out_dir)
    source_name = origin or (Path(tflite).name if variant == "int8" and tflite else "Keras model")
    comment = f" * Model: {source_name}."
    if labels:
        comment += "\n * Outputs in label order: " + ", ".join(str(label) for label in labels)
    if variant == "float32":
        if model is None:
            raise EdgekitError("--c-source float32 needs the Keras model")
        from edgekit.exporters.c_templates.float32 import FloatWriter

        code = FloatWriter(prefix).write(model, comment)
    else:
        if tflite is None:
            raise EdgekitError("--c-source int8 needs the int8 .tflite model")
        from edgekit.exporters.c_templates.int8 import Int8Writer

        code = Int8Writer(prefix).write(Path(tflite), comment)
    header = out_dir / f"{prefix}_model.h"
    source = out_dir / f"{prefix}_model.c"
    atomic_write_text(header, code.header)
    atomic_write_text(source, code.source)
    return CSource(
        variant=variant,
        prefix=prefix,
        header=header,
        source=source,
        input_size=code.input_size,
        output_size=code.output_size,
        input_quantization=code.input_q,
        output_quantization=code.output_q,
        ops=code.ops,
        arena_bytes=code.arena_bytes,
        needs_libm=code.needs_libm,
    )


HARNESS = r"""/* edgekit harness: runs {p}_predict / {p}_predict_int8 over samples from a file. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "{p}_model.h"

static int call_int8(const void *x, void *y)
{{
#if {HAS_INT8}
    return {p}_predict_int8((const int8_t *)x, (int8_t *)y);
#else
    (void)x;
    (void)y;
    return -1;
#endif
}}

/* harness MODE IN OUT [CALLS]
 *   MODE f: float32 samples in, float32 outputs out;  q: int8 in, int8 out
 *   MODE tf / tq: time CALLS calls on the samples (cycling), write nanoseconds per call */
int main(int argc, char **argv)
{{
    static float fin[{N_IN}], fout[{N_OUT}];
    static signed char qin[{N_IN}], qout[{N_OUT}];
    const int quant = argv[1] != NULL && (argv[1][0] == 'q' || argv[1][1] == 'q');
    const int timing = argv[1] != NULL && argv[1][0] == 't';
    const size_t n_in = quant ? sizeof qin : sizeof fin;
    const size_t n_out = quant ? sizeof qout : sizeof fout;
    FILE *in, *out;
    if (argc < 4) {{
        fprintf(stderr, "usage: %s f|q|tf|tq IN OUT [CALLS]\n", argv[0]);
        return 2;
    }}
    in = fopen(argv[2], "rb");
    out = fopen(argv[3], "wb");
    if (in == NULL || out == NULL) {{
        perror("open");
        return 2;
    }}
    if (timing) {{
        long calls = argc > 4 ? atol(argv[4]) : 1000, k;
        static unsigned char samples[{MAX_SAMPLES}][sizeof fin];
        long count = 0;
        while (count < {MAX_SAMPLES} && fread(samples[count], n_in, 1, in) == 1) {{
            ++count;
        }}
        if (count == 0) {{
            return 2;
        }}
        for (k = 0; k < calls; ++k) {{
            struct timespec t0, t1;
            double ns;
            const void *x = samples[k % count];
            clock_gettime(CLOCK_MONOTONIC, &t0);
            if (quant) {{
                call_int8(x, qout);
            }} else {{
                {p}_predict((const float *)x, fout);
            }}
            clock_gettime(CLOCK_MONOTONIC, &t1);
            ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
            fwrite(&ns, sizeof ns, 1, out);
        }}
    }} else {{
        while (fread(quant ? (void *)qin : (void *)fin, n_in, 1, in) == 1) {{
            int rc = quant ? call_int8(qin, qout) : {p}_predict(fin, fout);
            if (rc != 0) {{
                return 1;
            }}
            fwrite(quant ? (void *)qout : (void *)fout, n_out, 1, out);
        }}
    }}
    fclose(in);
    fclose(out);
    return 0;
}}
"""


def compile_harness(
    c: CSource, build_dir: str | Path, *, cc: str | None = None, flags: list[str] | None = None
) -> Path:
    """Compile the generated code with edgekit's harness; returns the executable."""
    cc = cc or find_compiler()
    if cc is None:
        raise EdgekitError(NO_COMPILER)
    build = Path(build_dir)
    harness = build / f"{c.prefix}_harness.c"
    harness.write_text(
        HARNESS.format(
            p=c.prefix,
            N_IN=c.input_size,
            N_OUT=c.output_size,
            MAX_SAMPLES=64,
            HAS_INT8=int(c.variant == "int8"),
        ),
        encoding="utf-8",
    )
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


KERNELS = {
    "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
    "reference": "BUILTIN_REF",
    "default": None,
}


def tflite_int8_outputs(path: Path, q: np.ndarray, *, kernels: str = "builtin") -> np.ndarray:
    """The int8 outputs of ``path`` on int8 inputs ``q``, in ai_edge_litert.

    ``kernels``: ``builtin`` (the optimized builtin kernels, no delegate: what the C code
    reproduces), ``reference`` (LiteRT's reference kernels, which requantize in double
    precision) or ``default`` (the interpreter's default, which applies XNNPACK where it can).
    """
    from edgekit._lazy import require

    mod = require("ai_edge_litert.interpreter")
    resolver = KERNELS[kernels]
    kw = {} if resolver is None else {
        "experimental_op_resolver_type": getattr(mod.OpResolverType, resolver)
    }  # fmt: skip
    interp = mod.Interpreter(model_path=str(path), **kw)
    detail = interp.get_input_details()[0]
    q = np.ascontiguousarray(q, np.int8).reshape(len(q), *detail["shape"][1:])
    interp.resize_tensor_input(detail["index"], list(q.shape), strict=False)
    interp.allocate_tensors()
    interp.set_tensor(detail["index"], q)
    interp.invoke()
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    return np.asarray(out).reshape(len(q), -1)


def compare_int8(got: np.ndarray, want: np.ndarray) -> dict[str, int]:
    """Element counts: identical outputs, outputs 1 LSB apart, the largest difference."""
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    return {
        "exact": int((diff == 0).sum()),
        "off_by_one": int((diff == 1).sum()),
        "max_lsb_diff": int(diff.max(initial=0)),
    }


def _compare_with(got: np.ndarray, tflite: Path, q: np.ndarray, kernels: str) -> dict:
    """For information: how the C outputs compare with another set of TFLite kernels."""
    try:
        return compare_int8(got, tflite_int8_outputs(tflite, q, kernels=kernels))
    except (ValueError, RuntimeError) as err:  # e.g. BUILTIN_REF lacks ELU
        return {"error": (str(err).strip().splitlines() or ["failed"])[0]}


def validate_c_source(
    c: CSource,
    x: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    tflite: Path | None = None,
    atol: float = 1e-4,
) -> dict[str, Any]:
    """Compile and run the generated code on ``x``; compare with Keras or the int8 model.

    ``float32``: ``max_abs_diff`` against ``reference`` (the Keras outputs), within ``atol``.
    ``int8``: ``<prefix>_predict_int8`` against ai_edge_litert's builtin kernels on the same
    int8 inputs, element by element (``passed`` only if every output is identical); the
    default interpreter (XNNPACK) is compared too, for information.
    """
    cc = find_compiler()
    if cc is None:
        return {"compiled": False, "passed": None, "reason": "no C compiler found (set CC)"}
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    result: dict[str, Any] = {
        "compiled": True,
        "compiler": (version.splitlines() or [cc])[0],
        "samples": len(x),
    }
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    try:
        return _validate(c, x, result, cc=cc, reference=reference, tflite=tflite, atol=atol)
    except (EdgekitError, OSError, subprocess.SubprocessError) as err:
        return {**result, "passed": False, "error": str(err)}


def _validate(c, x, result, *, cc, reference, tflite, atol) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as build:
        exe = compile_harness(c, build, cc=cc)
        if c.variant == "float32":
            got = run_harness(exe, x, n_out=c.output_size, int8=False)
            ref = np.asarray(reference, np.float32).reshape(len(x), -1)
            diff = float(np.max(np.abs(got.astype(np.float64) - ref))) if len(x) else 0.0
            result.update(
                max_abs_diff=diff, criterion=f"max_abs_diff <= {atol:g}", passed=diff <= atol
            )
            return result
        qi = c.input_quantization or {}
        q = np.clip(np.round(x / np.float32(qi["scale"])) + qi["zero_point"], -128, 127)
        q = q.astype(np.int8)
        got = run_harness(exe, q, n_out=c.output_size, int8=True)
        same = compare_int8(got, tflite_int8_outputs(tflite, q, kernels="builtin"))
        result.update(
            reference="ai_edge_litert builtin kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES)",
            outputs=int(got.size),
            **same,
            vs_reference_kernels=_compare_with(got, tflite, q, "reference"),
            vs_default_interpreter=_compare_with(got, tflite, q, "default"),
            criterion="every int8 output identical",
            passed=same["max_lsb_diff"] == 0,
        )
        return result


# --- the export command's part -------------------------------------------------------------


def plan_c_source(variant: str, prefix: str, *, io_type: str | None, variants: list) -> list:
    """Check ``--c-source``/``--c-prefix``; ``int8`` adds the int8 TFLite variant it is made from.

    The int8 C code is generated from the int8 ``.tflite`` model's own quantization, so that
    model is exported (and validated) beside it even without ``--quantize int8``.
    """
    from edgekit.exporters.variants import VARIANTS

    check_variant(variant)
    check_prefix(prefix)
    if variant == "int8":
        if io_type not in (None, "int8"):
            raise EdgekitError(
                f"--c-source int8 works on int8 tensors; it cannot be combined with "
                f"--io-type {io_type}"
            )
        if not any(v.name == "int8" for v in variants):
            names = {v.name for v in variants} | {"int8"}
            variants = [v for name, v in VARIANTS.items() if name in names]
    return variants


def export_c_source(
    out_dir: Path,
    *,
    variant: str,
    prefix: str,
    model,
    entries: list[dict],
    x: np.ndarray,
    reference: np.ndarray,
    labels: list[str] | None = None,
    atol: float = 1e-4,
) -> dict[str, Any]:
    """Write and validate the C files in an export directory; returns the manifest entry."""
    if variant == "int8":
        entry = next(e for e in entries if e["variant"] == "int8")
        tflite = out_dir / entry["file"]
        c = to_c_source(None, out_dir, variant="int8", prefix=prefix, tflite=tflite, labels=labels)
        validation = validate_c_source(c, x, tflite=tflite)
        origin = entry["file"]
    else:
        origin = "model.keras"
        c = to_c_source(
            model, out_dir, variant="float32", prefix=prefix, origin=origin, labels=labels
        )
        validation = validate_c_source(c, x, reference=reference, atol=atol)
    return {**c.to_json(), "from": origin, "validation": validation}


def c_source_summary(info: dict[str, Any]) -> str:
    """One line for the export table: the files and how they compared."""
    v = info.get("validation", {})
    files = ", ".join(info["files"])
    head = f"C source ({info['variant']}, from {info['from']}): {files}"
    if not v.get("compiled"):
        return f"{head}; not compiled: {v.get('reason', 'no C compiler')}"
    verdict = "passed" if v.get("passed") else "FAILED"
    if info["variant"] == "int8":
        return (
            f"{head}; {v['exact']}/{v['outputs']} int8 outputs identical to TFLite's builtin "
            f"kernels (max {v['max_lsb_diff']} LSB apart): {verdict}"
        )
    return f"{head}; max |diff| vs Keras {v['max_abs_diff']:.3g} ({v['criterion']}): {verdict}"
