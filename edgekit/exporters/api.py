"""``edgekit.export(...)``: resolve the source, build each variant, validate, write manifest."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._version import __version__
from edgekit.errors import EdgekitError
from edgekit.exporters.build import build_variant, float_note, write_c_arrays
from edgekit.exporters.merge import TEST_DATA, entry_files, plan_merge
from edgekit.exporters.multi import input_names, is_multi, output_names
from edgekit.exporters.onnx import check_opset
from edgekit.exporters.reference import calibration_inputs, id_records, reference, test_arrays
from edgekit.exporters.source import (
    as_float32,
    attach_data,
    check_layers,
    data_files,
    infer_task,
    model_digest,
    resolve_source,
)
from edgekit.exporters.tflite import TFLITE_VARIANTS
from edgekit.exporters.variants import AUTO, VARIANTS, BuildInputs, select_variants
from edgekit.fileio import check_not_input, temporary_directory
from edgekit.formats.ids import IDS_KEY
from edgekit.formats.manifest import MANIFEST_NAME, MANIFEST_SCHEMA, write_manifest
from edgekit.formats.run_dir import Run
from edgekit.outdirs import atomic_directory, check_output_dir


@dataclass
class ExportResult:
    """What ``export`` wrote: the directory, the manifest and each artifact's validation."""

    path: Path
    manifest: dict[str, Any]
    extra_files: list[Path] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # files of the directory's old export
    kept: list[str] = field(default_factory=list)  # artifacts kept from it, unchanged

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        return self.manifest["artifacts"]

    @property
    def failed_variants(self) -> list[str]:
        failed = [a["variant"] for a in self.artifacts if a["validation"]["passed"] is False]
        failed += [p["variant"] for p in self.manifest.get("problems", []) if not p["skipped"]]
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
        if self.kept:
            text += "\nkept from the existing export: " + ", ".join(self.kept)
        if self.replaced:
            text += "\nreplaced: " + ", ".join(self.replaced)
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
    c_rounding: str = "tflm",
    mcu: bool = False,
    data: str | Path | None = None,
    target: str | None = None,
    calibration: str | Path | None = None,
    calibration_samples: int = 200,
    atol: float = 1e-4,
    max_accuracy_drop: float = 1.0,
    integer_only: bool = False,
    out: str | Path | None = None,
    force: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a run (a :class:`Run`, its directory, default ``runs/latest``), a ``.keras`` or
    ``.h5`` file or a SavedModel directory into validated artifacts and a manifest
    (``edgekit export``; see its ``--help``).

    ``data``/``target``/``calibration``: the user's own test and calibration data (``.npz`` or
    ``.csv``), for a bare model or instead of a run's. Into an existing export directory the
    variants asked for are added (replaced with ``force``) and the others kept
    (:mod:`edgekit.exporters.merge`). ``quantize=["auto"]`` adds the ``auto`` variant, the
    smallest artifact that meets ``max_accuracy_drop`` (:mod:`edgekit.exporters.auto`);
    ``integer_only`` restricts it to artifacts whose every op is integer. ``mcu``: TFLite
    variants with a fixed batch of 1 and no shape ops, as TensorFlow Lite Micro wants them.
    ``on_step``: called with one progress line per variant built (the CLI prints them on
    stderr)."""
    variants = select_variants(
        tflite=tflite, quantize=quantize, onnx=onnx, onnx_quantize=onnx_quantize
    )
    names = [v.name for v in variants]
    implied = ["onnx-float32"] if onnx_quantize is not None and not onnx else []
    if not (tflite or quantize is not None or onnx or onnx_quantize is not None) and (
        c_source is not None or c_array
    ):  # the default float32 only carries the C: one already exported is reused
        implied.append("float32")
    optional = set(TFLITE_VARIANTS) if quantize == ["all"] else set()  # failures: skipped
    if integer_only and AUTO not in names:
        raise EdgekitError("--integer-only applies to the auto variant; add --quantize auto")
    if io_type is not None and "int8" not in names:
        raise EdgekitError("--io-type applies to the int8 variant; add --quantize int8")
    if c_array and not any(v.format == "tflite" for v in variants):
        raise EdgekitError("--c-array needs at least one TFLite variant")
    if mcu and not any(v.format == "tflite" for v in variants):
        raise EdgekitError("--mcu applies to TFLite variants; add --tflite or --quantize")
    if c_source is not None:
        from edgekit.exporters.c_source import plan_c_source

        variants = plan_c_source(c_source, c_prefix, io_type=io_type, variants=variants)
        if "int8" not in names and any(v.name == "int8" for v in variants):
            implied.append("int8")
    requested = [v.name for v in variants if v.name not in implied]
    if any(v.format == "onnx" for v in variants):  # the opset matters (and onnx is needed)
        check_opset(opset)
    if calibration_samples < 1:
        raise EdgekitError(f"--calibration-samples must be at least 1, got {calibration_samples}")
    if not atol >= 0:
        raise EdgekitError(f"--atol must be non-negative, got {atol}")
    if not max_accuracy_drop >= 0:
        raise EdgekitError(f"--max-accuracy-drop must be non-negative, got {max_accuracy_drop}")

    from edgekit.formats.keras_file import load_model_file

    source_path = source.path if isinstance(source, Run) else source
    if out is not None:  # before anything is read: never the source, nor a directory holding it
        early = [p for p in (source_path or "runs/latest", data, calibration) if p is not None]
        early += data_files(source_path)
        check_not_input(out, early)
        if force:
            check_output_dir(out, force=True, protect=early)
    src = resolve_source(source)
    out_dir = Path(out) if out else src.default_out
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgekitError(f"--out {out_dir} exists and is not a directory")
    protect = [p for p in (source_path, src.model_path, data, calibration) if p is not None]
    protect += data_files(source_path)
    check_not_input(out_dir, protect)  # never the source, nor a directory holding it
    if force:  # the working directory, home, a directory edgekit did not write: refused now
        check_output_dir(out_dir, force=True, protect=protect)
    model = load_model_file(src.model_path)
    check_layers(model, src.model_path)
    several = len(model.inputs) > 1
    n_features = int(np.prod([int(d) for d in model.inputs[0].shape[1:]]))
    attach_data(
        src, data=data, target=target, calibration=calibration, n_features=n_features,
        input_names=input_names(model) if several else None,
    )  # fmt: skip
    want = [int(d) for d in model.inputs[0].shape[1:]]
    if src.test is not None and not several:
        src.test["x"] = _shaped(src.test["x"], want)
    if src.calibration is not None and not several:
        src.calibration = _shaped(src.calibration, want)
    if is_multi(model) and c_source is not None:
        raise EdgekitError(
            f"--c-source writes models with one input and one output; {src.model_path.name} "
            f"has {len(model.inputs)} input(s) and {len(model.outputs)} output(s)"
        )
    if is_multi(model) and AUTO in names:
        raise EdgekitError("--quantize auto searches models with one input and one output")
    task = src.task or infer_task(model)
    ref = reference(model, task, src)
    model, dtype_note = as_float32(model)  # what the artifacts are built from
    if AUTO in names and ref.synthetic:
        raise EdgekitError(
            "--quantize auto judges accuracy, and there is no test data; pass --data FILE"
        )
    digest = model_digest(src.model_path)
    merge = plan_merge(
        out_dir, source_digest=digest, x=ref.x, requested=requested, implied=implied,
        c_source=c_source is not None, force=force,
    )  # fmt: skip
    if merge.regenerate_c is not None:  # its int8 artifact is being replaced
        c_source, c_prefix = merge.regenerate_c
    if merge.directory is None and out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise EdgekitError(f"{out_dir} already exists; pass --force to overwrite it")
    variants = [v for v in variants if v.name not in merge.reused]
    needs_calibration = [v.name for v in variants if v.calibrated]
    calib = None
    if needs_calibration:
        if src.calibration is None:
            raise EdgekitError(
                f"{', '.join(needs_calibration)} need{'s' if len(needs_calibration) == 1 else ''} "
                f"calibration data, and {src.model_path} has none; pass --calibration FILE "
                "(or --data FILE, whose inputs calibrate too)"
            )
        where = (
            f"--calibration {calibration}" if calibration is not None
            else src.test_name if data is not None else "calibration data"
        )  # fmt: skip
        calib = calibration_inputs(model, src.calibration, calibration_samples, what=where)

    core, affine = (None, None)
    if needs_calibration:
        from edgekit.exporters.fold import fold_batch_norm
        from edgekit.exporters.preprocess import normalize_inputs

        folded = fold_batch_norm(model, calibration=calib)  # the integer variants' model
        core, affine = normalize_inputs(folded, calib)  # one affine map per input, or None
        if affine is None and core is model:
            core = None
    problems: list[dict[str, Any]] = []
    empty = out_dir.is_dir() and not any(out_dir.iterdir())
    with (
        atomic_directory(
            out_dir, force=force or merge.directory is not None or empty, protect=protect
        ) as tmp,
        temporary_directory() as scratch,
    ):
        merge.copy_into(tmp)
        batch = 1 if mcu else None
        saved_model = core_saved_model = None
        if any(v.format == "tflite" for v in variants):
            from edgekit._lazy import silenced
            from edgekit.exporters.tflite import saved_model_for

            with silenced():
                saved_model = saved_model_for(model, Path(scratch) / "saved_model", batch=batch)
                if core is not None and any(
                    v.calibrated and v.format == "tflite" for v in variants
                ):
                    core_saved_model = saved_model_for(
                        core, Path(scratch) / "core_saved_model", batch=batch
                    )
        inputs = BuildInputs(
            model=model, out_dir=tmp, saved_model=saved_model, calibration=calib,
            io_type=io_type or "int8", opset=opset, core=core,
            core_saved_model=core_saved_model, affine=affine, batch=batch,
        )  # fmt: skip
        entries: list[dict[str, Any]] = []
        steps = [v.name for v in variants if v.build is not None]
        steps += [AUTO] * (AUTO in names) + ["c-source"] * (c_source is not None)
        step = _Steps(on_step, steps)
        with _gc_frozen():
            for v in variants:
                if v.build is None:
                    continue
                blocked = _blocked_by(v, problems)
                try:
                    if blocked:
                        raise EdgekitError(blocked)
                    entries.append(build_variant(v, inputs, ref, atol, max_accuracy_drop))
                    step.done(v.name, entries[-1])
                except EdgekitError as err:
                    reason = str(err).replace(str(tmp), str(out_dir))  # not the temporary name
                    problems.append(
                        {"variant": v.name, "file": v.file, "reason": reason,
                         "skipped": v.name in optional}
                    )  # fmt: skip
                    step.failed(v.name, reason, skipped=v.name in optional)
            if AUTO in names:
                from edgekit.exporters.auto import build_auto

                entries.append(
                    build_auto(
                        inputs, ref, scratch=Path(scratch) / AUTO, calibration_set=src.calibration,
                        atol=atol, max_accuracy_drop=max_accuracy_drop, integer_only=integer_only,
                    )
                )  # fmt: skip
                step.done(AUTO, entries[-1])
        for entry in entries:
            note = float_note(entry, tmp / entry["file"])
            if note:
                entry.setdefault("notes", []).append(note)
        extra: list[Path] = []
        if c_array:  # the new artifacts, and kept ones that have no C array yet
            extra += write_c_arrays(tmp, entries + [e for e in merge.kept if "c_array" not in e])
        all_entries = _in_registry_order(merge.kept + entries)
        c_info = merge.kept_c_source
        if c_source is not None:
            from edgekit.exporters.c_source import export_c_source

            try:
                c_info = export_c_source(
                    tmp, variant=c_source, prefix=c_prefix, model=model, entries=all_entries,
                    x=ref.x, reference=ref.outputs, labels=src.labels, features=src.features,
                    atol=atol, c_rounding=c_rounding, source_name=src.model_path.name,
                )  # fmt: skip
            except EdgekitError as err:
                reason = str(err).replace(str(tmp), str(out_dir))  # not the temporary name
                problems.append(
                    {"variant": "c-source", "file": f"{c_prefix}_model.c", "reason": reason,
                     "skipped": False}
                )  # fmt: skip
                step.failed("c-source", reason, skipped=False)
                c_info = None
            else:
                step.done("c-source", c_info)
            if c_info is not None:
                extra += [tmp / name for name in c_info["files"]]
        arrays = test_arrays(ref)
        if ref.y is not None:
            arrays["y"] = ref.y
        np.savez(tmp / TEST_DATA, **arrays)
        manifest: dict[str, Any] = {
            "schema": MANIFEST_SCHEMA,
            "task": task,
            "labels": src.labels,
            "features": src.features,
            "target": src.target,
            "source": {"file": src.model_path.name, "sha256": digest},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "edgekit": __version__,
            "validation": {
                "data": TEST_DATA,
                "on": ref.description,
                "samples": ref.n,
                "labelled": ref.y is not None,
                "reference_metrics": ref.metrics,
                "atol": atol,
                "max_accuracy_drop": max_accuracy_drop,
            },
            "artifacts": all_entries,
        }
        ids = id_records(model)
        if ids:
            manifest[IDS_KEY] = ids
        if is_multi(model):
            manifest["model_inputs"] = input_names(model)
            manifest["model_outputs"] = output_names(model)
        if problems:
            manifest["problems"] = problems
        if dtype_note:
            manifest["notes"] = [dtype_note]
        if c_info is not None:
            manifest["c_source"] = c_info
        write_manifest(tmp, manifest)
    return ExportResult(
        path=out_dir.resolve(),
        manifest=manifest,
        extra_files=[out_dir / p.name for p in extra],
        replaced=merge.replaced,
        kept=[f for e in merge.kept for f in entry_files(e)],
    )


class _Steps:
    """One progress line per variant: ``[2/4] int8 model.int8.tflite 9.3 KB: passed (1.2 s)``."""

    def __init__(self, on_step: Callable[[str], None] | None, names: list[str]) -> None:
        self.on_step, self.total, self.index = on_step, len(names), 0
        self.started = time.perf_counter()

    def _say(self, name: str, what: str) -> None:
        self.index += 1
        now = time.perf_counter()
        seconds, self.started = now - self.started, now
        if self.on_step is not None:
            self.on_step(f"[{self.index}/{self.total}] {name} {what} ({seconds:.1f} s)")

    def done(self, name: str, entry: dict[str, Any]) -> None:
        from edgekit.tables import size

        passed = entry.get("validation", {}).get("passed")
        verdict = {True: "passed", False: "FAILED validation", None: "not validated"}[passed]
        if "bytes" in entry:
            self._say(name, f"{entry['file']} {size(entry['bytes'])}: {verdict}")
        else:
            self._say(name, f"{', '.join(entry.get('files', []))}: {verdict}")

    def failed(self, name: str, reason: str, *, skipped: bool) -> None:
        self._say(name, f"{'skipped' if skipped else 'FAILED'}: {reason}")


def _shaped(x: np.ndarray, want: list[int]) -> np.ndarray:
    """Flat CSV columns in the model's sample shape (an 8x8 image from 64 columns)."""
    if x.ndim == 2 and len(want) > 1 and int(np.prod(want)) == x.shape[1]:
        return x.reshape(len(x), *want)
    return x


def _blocked_by(variant, problems: list[dict[str, Any]]) -> str | None:
    """ONNX Runtime quantizes the float ONNX model: without it, there is nothing to quantize."""
    if variant.name in ("onnx-dynamic", "onnx-static") and any(
        p["variant"] == "onnx-float32" for p in problems
    ):
        return "needs onnx-float32, which could not be built"
    return None


def _in_registry_order(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {name: i for i, name in enumerate(VARIANTS)}
    return sorted(entries, key=lambda e: order.get(e["variant"], len(order)))


@contextlib.contextmanager
def _gc_frozen():
    """The TFLite converter runs ``gc.collect()`` on every conversion, which scans every
    object TensorFlow has loaded; freezing them first makes those collections cheap."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
