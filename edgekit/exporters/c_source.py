"""``--c-source``: dependency-free C99 inference code, ``<prefix>_model.h`` / ``<prefix>_model.c``.

Two variants, one API (``int <prefix>_predict(const float *input, float *output)``, real
values in and out, returns 0 on success):

* ``float32`` is written from the Keras model: Normalization, Dense with its activation
  (relu, relu6, tanh, sigmoid, elu, selu, gelu, swish, linear, softmax), Activation, ReLU,
  Softmax, Rescaling; Flatten, Reshape and Dropout are no-ops. It matches Keras to float
  rounding (about 1e-6) and needs no libm: its exp, expm1, tanh, erf and sqrt are its own
  static functions (``ek_float.c``, within 1.5 ulp), so no ``-lm`` and, on newlib, no errno.
* ``int8`` is written from the int8 ``.tflite`` file and adds
  ``int <prefix>_predict_int8(const int8_t *input, int8_t *output)`` on the quantized tensors.
  By default (``--c-rounding tflm``) it reproduces TensorFlow Lite Micro's reference int8
  kernels bit for bit: FULLY_CONNECTED requantized with ``MultiplyByQuantizedMultiplier``
  (gemmlowp's ``RoundingDivideByPOT``, ties away from zero), SOFTMAX in gemmlowp fixed point
  (its exponentials as a 256-entry int32 table, TFLite's ``GetReciprocal``), elementwise
  tables filled by running that part of the graph in tflite-micro (LiteRT's builtin kernels
  fill them where tflite-micro is missing or lacks an op: ``tables`` in the manifest says
  which). With ``--c-rounding litert`` it reproduces the arithmetic of LiteRT's builtin int8
  kernels as ai_edge_litert runs them without delegates
  (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``), described here:

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

  Which runtime: by default (``rounding="tflm"``) TensorFlow Lite Micro's reference
  kernels, bit for bit: ``MultiplyByQuantizedMultiplier`` (gemmlowp's ties-away rounding),
  its fixed-point SOFTMAX, TANH and LOGISTIC. ``rounding="litert"``: ai_edge_litert's
  builtin optimized kernels (ruy: ties rounded upward; float SOFTMAX tables). LiteRT's
  reference kernels (``BUILTIN_REF``) requantize in double precision and the interpreter's
  default applies XNNPACK, which requantizes in floating point. Export records the counts
  against each under ``validation.vs`` (``benchmarks/c_truth_table.py``: TFLM and LiteRT
  builtin differ on up to 2 outputs in a thousand by 1-2 LSB; XNNPACK on 0.1-0.9% of them,
  by up to 11 LSB on MNIST).

  The fully-connected loop has three forms with one result (exact integer sums): the Arm
  DSP extension's SXTB16/SMLAD, x86 VNNI's byte dot products (a vectorizing compiler with
  ``-march=native``) and a portable int16 loop.

Weights are ``static const`` arrays, activations live in one static arena planned from
tensor lifetimes; nothing is allocated. Compile without ``-ffast-math`` (float order matters
for bit-exactness); right shifts of negative numbers are written portably.

This module is the export's part (check the options, write, validate, summarise); the
generator is :mod:`edgekit.exporters.c`, its C in ``edgekit/exporters/c/kernels/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.c.artifact import CSource
from edgekit.fileio import atomic_write_text
from edgekit.formats.manifest import C_VARIANTS

_C_KEYWORDS = frozenset((
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "_Bool", "_Complex", "_Imaginary",
))  # fmt: skip
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
    model: Any,
    out_dir: str | Path,
    *,
    variant: str,
    prefix: str = "edgekit",
    tflite: str | Path | None = None,
    origin: str | None = None,
    labels: list[str] | None = None,
    raw_input_q: dict[str, Any] | None = None,
    features: list[str] | None = None,
    rounding: str = "tflm",
) -> CSource:
    """Write ``<prefix>_model.h`` / ``<prefix>_model.c`` into ``out_dir``.

    ``rounding`` (int8): ``tflm`` reproduces TensorFlow Lite Micro's kernels, ``litert``
    LiteRT's builtin ones (``--c-rounding``).

    ``float32`` reads the Keras ``model``; ``int8`` reads the int8 ``.tflite`` file given as
    ``tflite`` (int8 input and output), and the ``model`` it came from, when given, names
    the Keras layer of an op it refuses. Example:
    ``to_c_source(None, "build", variant="int8", tflite="export/model.int8.tflite")``.
    """
    check_variant(variant)
    check_prefix(prefix)
    out_dir = Path(out_dir)
    source_name = origin or (Path(tflite).name if variant == "int8" and tflite else "Keras model")
    comment = f" * Model: {source_name}."
    if variant == "float32":
        if model is None:
            raise EdgekitError("--c-source float32 needs the Keras model")
        from edgekit.exporters.c.float_writer import FloatWriter

        code = FloatWriter(prefix).write(model, comment)
    else:
        if tflite is None:
            raise EdgekitError("--c-source int8 needs the int8 .tflite model")
        from edgekit.exporters.c.int8_writer import write_int8

        layers = {layer.name: type(layer).__name__ for layer in model.layers} if model else None
        code = write_int8(
            Path(tflite), prefix, comment, raw_input_q=raw_input_q, rounding=rounding,
            layers=layers,
        )  # fmt: skip
    if labels:  # said once the output size is known: one probability, or one per label
        said = (
            f"\n * Output 0: the probability of {labels[1]} (below 0.5: {labels[0]})."
            if len(labels) == 2 and code.output_size == 1
            else "\n * Outputs in label order: " + ", ".join(str(label) for label in labels)
        )
        code.header = code.header.replace(comment, comment + said, 1)
        code.source = code.source.replace(comment, comment + said, 1)
    header = out_dir / f"{prefix}_model.h"
    source = out_dir / f"{prefix}_model.c"
    head_text, source_text = _with_names(
        prefix, code.header, code.source, features=features, labels=labels,
        n_in=code.input_size, n_out=code.output_size,
    )  # fmt: skip
    atomic_write_text(header, head_text)
    atomic_write_text(source, source_text)
    return CSource(
        variant=variant,
        prefix=prefix,
        header=header,
        source=source,
        input_size=code.input_size,
        output_size=code.output_size,
        input_quantization=code.input_q,
        output_quantization=code.output_q,
        feature_quantization=raw_input_q,
        ops=code.ops,
        arena_bytes=code.arena_bytes,
        needs_libm=code.needs_libm,
        rounding=code.rounding,
        tables=code.tables,
    )


def _with_names(
    prefix: str,
    header: str,
    source: str,
    *,
    features: list[str] | None,
    labels: list[str] | None,
    n_in: int,
    n_out: int,
) -> tuple[str, str]:
    """The header and source with the input feature names and the output labels as string
    arrays (``<prefix>_feature_names``, ``<prefix>_labels``), where they are known and
    match the model's sizes: a device app reads the input order from them."""
    from edgekit.exporters.c.literals import c_string

    up = prefix.upper()
    decls, defs = [], []
    binary = n_out == 1 and labels is not None and len(labels) == 2
    if binary:  # one probability output: labels[1]'s, labels[0] below 0.5
        decls.append(f"#define {up}_LABEL_COUNT 2")
    for names, what, size, macro in (
        (features, "feature_names", n_in, "INPUT_SIZE"),
        (labels, "labels", 2 if binary else n_out, "LABEL_COUNT" if binary else "OUTPUT_SIZE"),
    ):
        if not names or len(names) != size:
            continue
        decls.append(f"#define {up}_HAS_{what.upper()} 1")
        decls.append(f"extern const char *const {prefix}_{what}[{up}_{macro}];")
        body = ",\n".join(f"    {c_string(n)}" for n in names)
        defs.append(f"const char *const {prefix}_{what}[{up}_{macro}] = {{\n{body}\n}};")
    if not decls:
        return header, source
    anchor = f"\nint {prefix}_predict(const float *input, float *output);"
    comment = "\n/* The input features in the order predict() takes them, and the output labels. */"
    header = header.replace(anchor, comment + "\n" + "\n".join(decls) + "\n" + anchor, 1)
    source = source.rstrip("\n") + "\n\n" + "\n\n".join(defs) + "\n"
    return header, source


def _same_as_file(quantization: dict[str, Any] | None, tflite: Path) -> bool:
    """Whether the manifest's input quantization is the int8 ``.tflite``'s own (no
    normalization was folded into it)."""
    from edgekit.formats.tflite_graph import read_tflite

    if quantization is None or isinstance(quantization.get("scale"), list):
        return quantization is None
    g = read_tflite(tflite)
    t = g.tensors[g.inputs[0]]
    return bool(
        abs(float(quantization["scale"]) - t.scale) <= 1e-7 * t.scale
        and float(quantization["zero_point"]) == t.zero_point
    )


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
    model: Any,
    entries: list[dict],
    x: np.ndarray,
    reference: np.ndarray,
    labels: list[str] | None = None,
    features: list[str] | None = None,
    atol: float = 1e-4,
    c_rounding: str = "tflm",
    source_name: str = "model.keras",
) -> dict[str, Any]:
    """Write and validate the C files in an export directory; returns the manifest entry.

    Without a C compiler the files are written but not validated: the entry's
    ``validation`` is ``{"passed": None, "validated": False, "reason": ...}``.
    ``c_rounding`` (int8): whose kernels the C reproduces, ``tflm`` or ``litert``.
    ``source_name``: the model file the float32 C is written from (``from`` in the entry).

    The entry records the C's figures on a microcontroller (:func:`c_footprint`):
    ``flash_bytes``, ``ram_bytes``, ``stack_bytes``; ``arena_bytes`` is the activation
    arena only (one of the static buffers ``ram_bytes`` counts).
    """
    from edgekit.exporters.c.validate import validate_c_source

    if variant == "int8":
        entry = next(e for e in entries if e["variant"] == "int8")
        tflite = out_dir / entry["file"]
        raw_q = entry["inputs"][0].get("quantization") if entry.get("inputs") else None
        c = to_c_source(
            model, out_dir, variant="int8", prefix=prefix, tflite=tflite, labels=labels,
            raw_input_q=None if _same_as_file(raw_q, tflite) else raw_q, features=features,
            rounding=c_rounding,
        )  # fmt: skip
        validation = validate_c_source(c, x, tflite=tflite, raw_input_q=raw_q)
        origin = entry["file"]
    else:
        origin = source_name
        c = to_c_source(
            model,
            out_dir,
            variant="float32",
            prefix=prefix,
            origin=origin,
            labels=labels,
            features=features,
        )
        validation = validate_c_source(c, x, reference=reference, atol=atol)
    from edgekit.fileio import sha256_file

    digests = {p.name: sha256_file(p) for p in c.files}  # bench checks them before compiling
    entry = {**c.to_json(), "from": origin, "sha256": digests}
    return {**entry, **c_footprint(c), "validation": validation}


def c_footprint(c: CSource) -> dict[str, Any]:
    """``flash_bytes`` (code and constants), ``ram_bytes`` (every static buffer: the arena
    and the other static mutable arrays) and ``stack_bytes`` (the deepest call chain of
    ``<prefix>_predict``) of the generated C, compiled for a Cortex-M4
    (``arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os -c``) or, without that compiler, for the
    host; ``footprint.measured_with`` names the compiler. Empty without a compiler."""
    from edgekit import toolchain

    try:
        found = toolchain.footprint(c.source, c.header.parent, f"{c.prefix}_predict")
    except EdgekitError as err:
        return {"footprint": {"error": str(err)}}
    if found is None:
        return {}
    figures = {k: found[k] for k in ("flash_bytes", "ram_bytes", "stack_bytes")}
    return {**figures, "footprint": {k: found[k] for k in ("measured_with", "target")}}


def c_source_summary(info: dict[str, Any]) -> str:
    """The export table's lines on the C source: the files and how they compared."""
    v = info.get("validation", {})
    files = ", ".join(info["files"])
    head = f"C source ({info['variant']}, from {info['from']}): {files}"
    if not v.get("validated", v.get("compiled", False)):  # older manifests: only "compiled"
        return f"{head}\nC source NOT validated: {v.get('reason', 'no C compiler')}"
    if "error" in v:  # it did not compile or run
        return f"{head}; FAILED: {v['error']}"
    verdict = "passed" if v.get("passed") else "FAILED"
    if info["variant"] == "int8":
        if v.get("passed") is None and "reason" in v:
            return f"{head}; {v['reason']}"
        who = "TFLite Micro" if info.get("rounding") == "tflm" else "TFLite's builtin kernels"
        who = v.get("against", who)
        return (
            f"{head}; {v['exact']}/{v['outputs']} int8 outputs identical to {who} "
            f"(max {v['max_lsb_diff']} LSB apart): {verdict}"
        )
    return f"{head}; max |diff| vs Keras {v['max_abs_diff']:.3g} ({v['criterion']}): {verdict}"
