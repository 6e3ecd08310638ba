"""The variant registry: every artifact edgekit can export, and how it is built.

Dispatch goes through ``VARIANTS`` (a dict), so a new format is one module and one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.exporters.preprocess import InputAffines
from edgekit.exporters.tflite import TFLITE_VARIANTS

AUTO = "auto"  # the smallest artifact that meets --max-accuracy-drop (auto.py)


@dataclass(frozen=True)
class BuildInputs:
    """What a variant's builder may use."""

    model: Any
    out_dir: Path
    saved_model: Path | None  # the model as a SavedModel, shared by the TFLite variants
    calibration: Any  # raw inputs (a list of arrays for several inputs)
    io_type: str
    opset: int
    # The calibrated (integer) variants' model: BatchNormalization folded (fold.py), without
    # its inputs' leading normalizations, and those normalizations, one per input
    # (preprocess.py); None when it is the model itself.
    core: object | None = None
    core_saved_model: Path | None = None
    affine: InputAffines | None = None
    batch: int | None = None  # a fixed batch size the TFLite variants are traced with (--mcu)


@dataclass(frozen=True)
class Variant:
    name: str
    format: str  # "tflite" or "onnx"
    file: str
    exact: bool  # judged by --atol (float32) rather than --max-accuracy-drop
    calibrated: bool
    # One conversion; None for ``auto``, which is a search over conversions (auto.py).
    build: Callable[[BuildInputs, Path], Path] | None


def _tflite(variant: str) -> Callable[[BuildInputs, Path], Path]:
    def build(inp: BuildInputs, path: Path) -> Path:
        from edgekit.exporters.tflite import CALIBRATED, to_tflite

        core = variant in CALIBRATED and inp.core is not None
        model = (inp.core_saved_model or inp.core) if core else (inp.saved_model or inp.model)
        return to_tflite(
            model,
            path,
            variant=variant,
            calibration=inp.calibration,
            io_type=inp.io_type,
            affine=inp.affine if core else None,
            input_names=[str(t.name) for t in inp.model.inputs],
        )

    return build


def _onnx_float(inp: BuildInputs, path: Path) -> Path:
    from edgekit.exporters.onnx import to_onnx

    return to_onnx(inp.model, path, opset=inp.opset)


def _onnx_quant(mode: str) -> Callable[[BuildInputs, Path], Path]:
    def build(inp: BuildInputs, path: Path) -> Path:
        from edgekit.exporters.onnx import quantize_onnx, to_onnx

        src = inp.out_dir / VARIANTS["onnx-float32"].file
        if mode == "static" and inp.core is not None:  # calibrate the core, on normalized x
            src = to_onnx(inp.core, path.with_name(f".{path.stem}.core.onnx"), opset=inp.opset)
            try:
                return quantize_onnx(
                    src, path, mode=mode, calibration=inp.calibration, affine=inp.affine
                )
            finally:
                src.unlink(missing_ok=True)
        return quantize_onnx(src, path, mode=mode, calibration=inp.calibration)

    return build


VARIANTS: dict[str, Variant] = {
    **{
        v: Variant(
            v, "tflite", f"model.{v}.tflite", v == "float32", v in ("int8", "int16x8"), _tflite(v)
        )
        for v in TFLITE_VARIANTS
    },
    "onnx-float32": Variant("onnx-float32", "onnx", "model.float32.onnx", True, False, _onnx_float),
    "onnx-dynamic": Variant(
        "onnx-dynamic", "onnx", "model.dynamic.onnx", False, False, _onnx_quant("dynamic")
    ),
    "onnx-static": Variant(
        "onnx-static", "onnx", "model.static.onnx", False, True, _onnx_quant("static")
    ),
    AUTO: Variant(AUTO, "tflite", f"model.{AUTO}.tflite", False, True, None),  # built last
}
ONNX_MODES = ("dynamic", "static")
QUANTIZE_CHOICES = (*TFLITE_VARIANTS, AUTO)


def select_variants(
    *, tflite: bool, quantize: list[str] | None, onnx: bool, onnx_quantize: list[str] | None
) -> list[Variant]:
    """The variants the flags ask for, in registry order.

    ``--quantize`` implies ``--tflite``; ``--onnx-quantize`` implies ``--onnx`` (the float
    model is what ONNX Runtime quantizes). With no format flag at all: TFLite float32.
    ``all`` is every TFLite variant but ``auto``, which is a search, asked for by name.
    """
    chosen: list[str] = []
    if quantize is not None:
        names = list(TFLITE_VARIANTS) if quantize == ["all"] else quantize
        for name in names:
            if name not in QUANTIZE_CHOICES:
                raise EdgekitError(
                    f"unknown variant {name!r}; choose from {', '.join(QUANTIZE_CHOICES)} or all"
                )
        if not names:
            raise EdgekitError("--quantize needs at least one variant")
        chosen += names
    elif tflite or not (onnx or onnx_quantize):
        chosen.append("float32")
    if onnx or onnx_quantize:
        chosen.append("onnx-float32")
    if onnx_quantize is not None:
        modes = list(ONNX_MODES) if onnx_quantize == ["all"] else onnx_quantize
        for mode in modes:
            if mode not in ONNX_MODES:
                raise EdgekitError(
                    f"unknown ONNX quantization {mode!r}; choose from {', '.join(ONNX_MODES)} or all"
                )
        chosen += [f"onnx-{mode}" for mode in modes]
    return [v for name, v in VARIANTS.items() if name in chosen]


def folded_input(path: Path, inputs: BuildInputs) -> list[dict | None] | None:
    """The raw features' quantization of each input of an integer-input artifact built from
    the core model (its own input quantization is the normalized features'), in the model's
    input order: None for an input with nothing to fold, and None for all when no input has
    (no normalization taken out, or float inputs that normalize in float)."""
    if inputs.affine is None or path.suffix != ".tflite":  # ONNX inputs here are float
        return None
    from edgekit.exporters.multi import input_names
    from edgekit.exporters.tflite_input import input_quantizations

    names = input_names(inputs.model)
    own = input_quantizations(path.read_bytes(), names)  # the flatbuffer alone: no interpreter
    folded = inputs.affine.fold(own)
    changed = [f if f is not q else None for f, q in zip(folded, own, strict=True)]
    return folded if any(c is not None for c in changed) else None
