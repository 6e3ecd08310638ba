"""``edgekit.export(...)``: resolve the source, build each variant, validate, write manifest."""

from __future__ import annotations

import contextlib
import gc
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._version import __version__
from edgekit.errors import EdgekitError
from edgekit.exporters.onnx import check_opset
from edgekit.exporters.source import check_layers, infer_task, model_digest, resolve_source
from edgekit.exporters.variants import AUTO, BuildInputs, folded_input, select_variants
from edgekit.fileio import atomic_directory, sha256_file
from edgekit.formats.manifest import MANIFEST_NAME, MANIFEST_SCHEMA, write_manifest
from edgekit.formats.run_dir import Run

# Layers the exporters (TFLite, ONNX and edgekit's C generator) are built and tested for.
REFERENCE_SAMPLES_WITHOUT_DATA = 256


@dataclass
class ExportResult:
    """What ``export`` wrote: the directory, the manifest and each artifact's validation."""

    path: Path
    manifest: dict[str, Any]
    extra_files: list[Path] = field(default_factory=list)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        return self.manifest["artifacts"]

    @property
    def failed_variants(self) -> list[str]:
        failed = [a["variant"] for a in self.artifacts if not a["validation"]["passed"]]
        if self.manifest.get("c_source", {}).get("validation", {}).get("passed") is False:
            failed.append("c-source")
        return failed

    @property
    def passed(self) -> bool:
        return not self.failed_variants

    def table(self) -> str:
        from edgekit.exporters.table import export_table

        text = export_table(self.manifest)
        auto = next((a for a in self.artifacts if a["variant"] == AUTO), None)
        if auto is not None:
            from edgekit.exporters.auto import auto_table

            base = next((a["bytes"] for a in self.artifacts if a["variant"] == "float32"), None)
            text += "\n\n" + auto_table(auto, float32_bytes=base)
        if "c_source" in self.manifest:
            from edgekit.exporters.c_source import c_source_summary

            text += "\n" + c_source_summary(self.manifest["c_source"])
        return text


def export(
    source: str | Path | Run | None = None,
    *,
    tflite: bool = False,
    quantize: list[str] | None = None,
    io_type: str | None = None,
    onnx: bool = False,
    onnx_quantize: list[str] | None = None,
    opset: int = 17,
    c_array: bool = False,
    c_source: str | None = None,
    c_prefix: str = "edgekit",
    calibration_samples: int = 200,
    atol: float = 1e-4,
    max_accuracy_drop: float = 1.0,
    integer_only: bool = False,
    out: str | Path | None = None,
    force: bool = False,
) -> ExportResult:
    """Export a run (a :class:`Run`, its directory, default ``runs/latest``) or a ``.keras``
    file into validated artifacts and a manifest (``edgekit export``; see its ``--help``).

    ``quantize=["auto"]`` adds the ``auto`` variant, the smallest artifact that meets
    ``max_accuracy_drop`` (:mod:`edgekit.exporters.auto`); ``integer_only`` restricts it to
    artifacts whose every op is integer."""
    variants = select_variants(
        tflite=tflite, quantize=quantize, onnx=onnx, onnx_quantize=onnx_quantize
    )
    names = [v.name for v in variants]
    if integer_only and AUTO not in names:
        raise EdgekitError("--integer-only applies to the auto variant; add --quantize auto")
    if io_type is not None and "int8" not in names:
        raise EdgekitError("--io-type applies to the int8 variant; add --quantize int8")
    if c_array and not any(v.format == "tflite" for v in variants):
        raise EdgekitError("--c-array needs at least one TFLite variant")
    if c_source is not None:
        from edgekit.exporters.c_source import plan_c_source

        variants = plan_c_source(c_source, c_prefix, io_type=io_type, variants=variants)
    check_opset(opset)
    if calibration_samples < 1:
        raise EdgekitError(f"--calibration-samples must be at least 1, got {calibration_samples}")
    if not atol >= 0:
        raise EdgekitError(f"--atol must be non-negative, got {atol}")
    if not max_accuracy_drop >= 0:
        raise EdgekitError(f"--max-accuracy-drop must be non-negative, got {max_accuracy_drop}")

    src = resolve_source(source)
    out_dir = Path(out) if out else src.default_out
    if out_dir.exists() and not force:
        raise EdgekitError(f"{out_dir} already exists; pass --force to overwrite it")
    needs_calibration = [v.name for v in variants if v.calibrated]
    if needs_calibration and src.calibration is None:
        raise EdgekitError(
            f"{', '.join(needs_calibration)} need calibration data, and {src.model_path} has "
            "no data/calibration.npz beside it; export a run directory made by `edgekit train`"
        )

    from edgekit.formats.keras_file import load_model_file

    model = load_model_file(src.model_path)
    check_layers(model, src.model_path)
    task = src.task or infer_task(model)
    ref = _reference(model, task, src.test)
    calibration = None
    if src.calibration is not None:
        calibration = np.asarray(src.calibration[:calibration_samples], np.float32)
        want = [int(d) for d in model.inputs[0].shape[1:]]
        if list(calibration.shape[1:]) != want:
            raise EdgekitError(
                f"calibration data has feature shape {list(calibration.shape[1:])}, "
                f"the model takes {want}"
            )

    core, affine = (None, None)
    if needs_calibration:
        from edgekit.exporters.preprocess import split_normalization

        core, affine = split_normalization(model)
        if affine is None:
            core = None
    with atomic_directory(out_dir, force=force) as tmp, tempfile.TemporaryDirectory() as scratch:
        saved_model = core_saved_model = None
        if any(v.format == "tflite" for v in variants):
            from edgekit._lazy import silenced
            from edgekit.exporters.tflite import saved_model_for

            with silenced():
                saved_model = saved_model_for(model, Path(scratch) / "saved_model")
                if core is not None and any(
                    v.calibrated and v.format == "tflite" for v in variants
                ):
                    core_saved_model = saved_model_for(core, Path(scratch) / "core_saved_model")
        inputs = BuildInputs(
            model=model,
            out_dir=tmp,
            saved_model=saved_model,
            calibration=calibration,
            io_type=io_type or "int8",
            opset=opset,
            core=core,
            core_saved_model=core_saved_model,
            affine=affine,
        )
        with _gc_frozen():
            entries = [
                _build_one(v, inputs, ref, atol, max_accuracy_drop)
                for v in variants
                if v.build is not None
            ]
            if AUTO in names:
                from edgekit.exporters.auto import build_auto

                entries.append(
                    build_auto(
                        inputs, ref, scratch=Path(scratch) / AUTO, calibration_set=src.calibration,
                        atol=atol, max_accuracy_drop=max_accuracy_drop, integer_only=integer_only,
                    )
                )  # fmt: skip
        extra: list[Path] = []
        if c_array:
            extra += _write_c_arrays(tmp, entries)
        c_info = None
        if c_source is not None:
            from edgekit.exporters.c_source import export_c_source

            c_info = export_c_source(
                tmp, variant=c_source, prefix=c_prefix, model=model, entries=entries,
                x=ref.x, reference=ref.outputs, labels=src.labels, atol=atol,
            )  # fmt: skip
            extra += [tmp / name for name in c_info["files"]]
        arrays = {"x": ref.x, "reference": ref.outputs}
        if ref.y is not None:
            arrays["y"] = ref.y
        np.savez(tmp / "test.npz", **arrays)
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "task": task,
            "labels": src.labels,
            "features": src.features,
            "target": src.target,
            "source": {"file": src.model_path.name, "sha256": model_digest(src.model_path)},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "edgekit": __version__,
            "validation": {
                "data": "test.npz",
                "samples": len(ref.x),
                "labelled": ref.y is not None,
                "reference_metrics": ref.metrics,
                "atol": atol,
                "max_accuracy_drop": max_accuracy_drop,
            },
            "artifacts": entries,
        }
        if c_info is not None:
            manifest["c_source"] = c_info
        write_manifest(tmp, manifest)
    return ExportResult(
        path=out_dir.resolve(), manifest=manifest, extra_files=[out_dir / p.name for p in extra]
    )


@contextlib.contextmanager
def _gc_frozen():
    """The TFLite converter runs ``gc.collect()`` on every conversion, which scans every
    object TensorFlow has loaded; freezing them first makes those collections cheap."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _reference(model, task: str, test: dict[str, np.ndarray] | None):
    from edgekit.exporters.validate import Reference

    if test is not None and "x" in test:
        x = np.asarray(test["x"], np.float32)
        y = test.get("y")
    else:  # no data: parity against the Keras model on seeded random inputs
        shape = [int(d) for d in model.inputs[0].shape[1:]]
        noise = np.random.default_rng(0).normal(size=(REFERENCE_SAMPLES_WITHOUT_DATA, *shape))
        x, y = noise.astype(np.float32), None
    want = [int(d) for d in model.inputs[0].shape[1:]]
    if list(x.shape[1:]) != want:
        raise EdgekitError(
            f"test data has feature shape {list(x.shape[1:])}, the model takes {want}"
        )
    outputs = np.asarray(model.predict(x, batch_size=1024, verbose=0), np.float32)
    return Reference(task=task, x=x, y=y, outputs=outputs)


def _build_one(variant, inputs: BuildInputs, ref, atol: float, max_drop: float) -> dict:
    from edgekit._lazy import silenced
    from edgekit.exporters.validate import validate

    path = inputs.out_dir / variant.file
    with silenced():
        variant.build(inputs, path)
        folded = folded_input(path, inputs) if variant.calibrated else None
        validation, ins, outs = validate(
            path,
            ref,
            exact=variant.exact,
            atol=atol,
            max_accuracy_drop=max_drop,
            input_quantization=folded,
        )
    return {
        "file": variant.file,
        "format": variant.format,
        "variant": variant.name,
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "inputs": ins,
        "outputs": outs,
        "validation": validation,
    }


def _write_c_arrays(out_dir: Path, entries: list[dict]) -> list[Path]:
    from edgekit.exporters.c_array import write_c_array
    from edgekit.exporters.tflite import tflite_ops

    written: list[Path] = []
    for entry in entries:
        if entry["format"] != "tflite":
            continue
        path = out_dir / entry["file"]
        ops = tflite_ops(path)
        entry["ops"] = list(dict.fromkeys(ops))
        written += write_c_array(path, ops=ops)
    return written
