"""Building one variant: convert, validate, and describe it for the manifest.

Each variant stands alone: a variant that cannot be built or run (a converter error, a
runtime without a kernel for one of its ops) is recorded as a problem with its reason, and
the others are still written and validated. Under ``--quantize all`` such a variant is
*skipped* (``all`` means every variant the model's ops support); a variant asked for by name
*fails* the export.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.exporters.validate import Reference
from edgekit.exporters.variants import BuildInputs, Variant, folded_input
from edgekit.fileio import sha256_file
from edgekit.formats.sizes import artifact_bytes


def one_line(err: BaseException) -> str:
    """A converter's or runtime's error as one line: its first line that says error, or
    its first line."""
    text = str(err).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    flagged = [ln for ln in lines if "error" in ln.lower()]
    line = (flagged or lines or [type(err).__name__])[0]
    return line if len(line) <= 300 else line[:297] + "..."


def build_variant(
    variant: Variant, inputs: BuildInputs, ref: Reference, atol: float, max_drop: float
) -> dict[str, Any]:
    """Build and validate ``variant``; returns its manifest entry. Raises
    :class:`~edgekit.errors.EdgekitError` (one line) when it cannot be built or run."""
    from edgekit._lazy import silenced
    from edgekit.exporters.validate import validate

    assert variant.build is not None
    path = inputs.out_dir / variant.file
    try:
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
    except KeyboardInterrupt:
        raise
    except EdgekitError:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    except Exception as err:  # converters and runtimes raise anything; the others go on
        with contextlib.suppress(OSError):
            path.unlink()
        raise EdgekitError(one_line(err)) from err
    entry: dict[str, Any] = {
        "file": variant.file,
        "format": variant.format,
        "variant": variant.name,
        "bytes": artifact_bytes(path),
        "sha256": sha256_file(path),
        "inputs": ins,
        "outputs": outs,
        "validation": validation,
    }
    fixed = inputs.batch if inputs.batch is not None else fixed_batch(ins)
    if fixed is not None and variant.format == "tflite":
        entry["fixed_batch"] = fixed
    return entry


def fixed_batch(tensors: list[dict[str, Any]]) -> int | None:
    """The batch size an artifact's inputs are fixed to (``--mcu``, or a model built with
    ``keras.Input(..., batch_size=N)``), None when it takes any (``-1``)."""
    sizes = {int(t["shape"][0]) for t in tensors if t.get("shape")}
    if len(sizes) != 1:
        return None
    (size,) = sizes
    return size if size > 0 else None


def float_note(entry: dict[str, Any], path: Path) -> str | None:
    """Why a ``dynamic`` ``.tflite`` may hold no integer weights: the converter leaves
    tensors under 1024 elements in float, so a small model stays float32."""
    if entry["variant"] != "dynamic" or entry["format"] != "tflite":
        return None
    from edgekit.formats.tflite_graph import read_tflite

    graph = read_tflite(path)
    if any(t.dtype == "int8" for t in graph.tensors):
        return None
    return (
        "no weight was quantized: the converter keeps tensors under 1024 elements in float, "
        "so this file is float32; use int8 for an integer model"
    )


def write_c_arrays(out_dir: Path, entries: list[dict[str, Any]]) -> list[Path]:
    """``--c-array``: each ``.tflite`` as a C array; the entry lists its files and ops."""
    from edgekit.exporters.c_array import write_c_array
    from edgekit.exporters.tflite import tflite_ops
    from edgekit.fileio import sha256_file

    written: list[Path] = []
    for entry in entries:
        if entry["format"] != "tflite":
            continue
        path = out_dir / entry["file"]
        ops = tflite_ops(path)
        entry["ops"] = list(dict.fromkeys(ops))
        files = write_c_array(path, ops=ops)
        entry["c_array"] = [p.name for p in files]
        entry["c_array_sha256"] = {p.name: sha256_file(p) for p in files}
        written += files
    return written
