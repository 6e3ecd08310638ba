"""``--quantize auto``: try quantization repairs in order of cost, keep the smallest that passes.

When plain int8 misses ``--max-accuracy-drop`` (for regression: the MAE rule of
:mod:`edgekit.exporters.validate`), the search tries, cheapest repair first: every calibration
sample rather than ``--calibration-samples``; cross-layer equalization of outlier channels
(:mod:`edgekit.exporters.equalize`); bias correction on top (:mod:`edgekit.exporters.
bias_correction`); int16 activations; and, unless ``integer_only``, the worst layers left in
float, dynamic-range and float16. Each candidate is built into a scratch directory and
validated exactly as the other variants are. A candidate that passes ends the search for every
later one of its size class or above (``rank``), and the smallest that passed is the ``auto``
artifact. The manifest entry records every candidate tried with its result, and the choice
(the approach of NNCF's ``quantize_with_accuracy_control`` and Intel Neural Compressor's
accuracy-driven tuning, over edgekit's few TFLite recipes).

Integer candidates take int8 inputs and outputs (int16 for int16x8), normalized per feature as
the int8 variant's are; float candidates take raw float features.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import CheckFailed, EdgekitError
from edgekit.exporters.auto_candidates import CANDIDATES, MORE_CALIBRATION, Candidate, Search
from edgekit.exporters.validate import Reference, validate
from edgekit.exporters.variants import AUTO, VARIANTS, BuildInputs, folded_input
from edgekit.fileio import atomic_write_bytes, sha256_file
from edgekit.formats.sizes import artifact_bytes

INTEGER_DTYPES = ("int8", "uint8", "int16", "int32", "int64")
EDGE_OPS = {"QUANTIZE": "inputs", "DEQUANTIZE": "outputs"}  # float allowed at the graph edge


def build_auto(
    inputs: BuildInputs,
    ref: Reference,
    *,
    scratch: Path,
    calibration_set: np.ndarray | None,
    atol: float,
    max_accuracy_drop: float,
    integer_only: bool = False,
) -> dict[str, Any]:
    """Search, write ``model.auto.tflite`` into ``inputs.out_dir``; returns its manifest entry.

    ``calibration_set`` is every calibration input there is (raw); ``inputs.calibration`` the
    ``--calibration-samples`` of them the plain int8 candidate uses. When nothing passes, the
    closest candidate is written with a failed validation (the export fails, exit 1).
    """
    if inputs.calibration is None or len(inputs.calibration) == 0:
        raise EdgekitError("--quantize auto needs calibration data (data/calibration.npz)")
    scratch.mkdir(parents=True, exist_ok=True)
    every = inputs.calibration if calibration_set is None else calibration_set
    search = Search(
        inputs=inputs, ref=ref, scratch=scratch, calibration=inputs.calibration,
        more_calibration=np.asarray(every[:MORE_CALIBRATION], np.float32),
        atol=atol, max_drop=max_accuracy_drop, integer_only=integer_only,
    )  # fmt: skip
    tried: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    results: dict[str, tuple[dict, list, list]] = {}
    passed_rank: int | None = None
    for i, candidate in enumerate(CANDIDATES):
        if integer_only and not candidate.integer:
            skipped.append({"name": candidate.name, "reason": "not integer (--integer-only)"})
            continue
        if passed_rank is not None and candidate.rank >= passed_rank:
            skipped.append({"name": candidate.name, "reason": "cannot be smaller than a pass"})
            continue
        reason = _skip_reason(candidate, search)
        if reason is not None:
            skipped.append({"name": candidate.name, "reason": reason})
            continue
        record, result = _try(candidate, search, scratch / f"{i:02d}.tflite")
        tried.append(record)
        if result is not None:
            results[candidate.name] = result
        if record["passed"]:  # later candidates of this rank or above are skipped
            passed_rank = candidate.rank
    chosen = _choose(tried, integer_only)
    if chosen is None:
        errors = "; ".join(f"{r['name']}: {r.get('error')}" for r in tried)
        raise CheckFailed(f"--quantize auto: no candidate could be built ({errors})")
    path = inputs.out_dir / VARIANTS[AUTO].file
    atomic_write_bytes(path, search.built[chosen["name"]].read_bytes())
    validation, ins, outs = results[chosen["name"]]
    validation = {**validation, "passed": chosen["passed"]}
    if integer_only:
        validation["criterion"] += " and integer ops only"
    return {
        "file": path.name,
        "format": "tflite",
        "variant": AUTO,
        "bytes": artifact_bytes(path),
        "sha256": sha256_file(path),
        "inputs": ins,
        "outputs": outs,
        "validation": validation,
        "auto": {
            "integer_only": integer_only,
            "max_accuracy_drop": max_accuracy_drop,
            "tried": tried,
            "skipped": skipped,
            "chosen": chosen["name"],
        },
    }


def _skip_reason(candidate: Candidate, search: Search) -> str | None:
    """Why ``candidate`` does not apply (deciding may convert: equalization, the debugger)."""
    from edgekit._lazy import silenced

    try:
        with silenced():
            return candidate.skip(search)
    except EdgekitError as err:  # e.g. the debugger failed on this model
        return str(err)


def _try(candidate: Candidate, s: Search, path: Path) -> tuple[dict[str, Any], tuple | None]:
    """Build and validate one candidate; (its record, (validation, inputs, outputs))."""
    from edgekit._lazy import silenced

    metric = "mae_increase_pct" if s.ref.task == "regression" else "accuracy_drop"
    record: dict[str, Any] = {"name": candidate.name, "bytes": None, metric: None,
                              "passed": False, "integer_only": None}  # fmt: skip
    start = time.perf_counter()
    try:
        with silenced():
            candidate.build(s, path)
            validation, ins, outs = validate(
                path, s.ref, exact=False, atol=s.atol, max_accuracy_drop=s.max_drop,
                input_quantization=folded_input(path, s.inputs),
            )  # fmt: skip
    except EdgekitError as err:
        record["error"] = str(err)
        record["seconds"] = round(time.perf_counter() - start, 3)
        return record, None
    s.built[candidate.name] = path
    integer = integer_only_ops(path)
    record.update(
        bytes=artifact_bytes(path),
        **{metric: validation.get(metric)},
        passed=bool(validation["passed"] and (integer or not s.integer_only)),
        integer_only=integer,
        seconds=round(time.perf_counter() - start, 3),
    )
    if candidate.recipe:
        record["recipe"] = dict(candidate.recipe)
    if "float_layers" in candidate.recipe:
        layers = s.float_layer_names(candidate.recipe["float_layers"])
        record["recipe"] = {**record["recipe"], "float_layers": layers}
    return record, (validation, ins, outs)


def _choose(tried: list[dict[str, Any]], integer_only: bool) -> dict[str, Any] | None:
    """The smallest that passed; else the closest (least drop, then smallest) that was built."""
    passed = [r for r in tried if r["passed"]]
    if passed:
        return min(passed, key=lambda r: r["bytes"])
    built = [r for r in tried if r["bytes"] is not None]
    if integer_only and any(r["integer_only"] for r in built):
        built = [r for r in built if r["integer_only"]]
    if not built:
        return None
    metric = "mae_increase_pct" if "mae_increase_pct" in built[0] else "accuracy_drop"
    return min(built, key=lambda r: (np.inf if r[metric] is None else r[metric], r["bytes"]))


def integer_only_ops(path: str | Path) -> bool:
    """Whether every op of a ``.tflite`` computes on integer tensors: float only on the graph's
    own inputs and outputs, and only through QUANTIZE (in) and DEQUANTIZE (out)."""
    from edgekit.formats.tflite_graph import read_tflite

    g = read_tflite(path)
    edges = {"inputs": set(g.inputs), "outputs": set(g.outputs)}
    for op in g.ops:
        tensors = [i for i in (*op.inputs, *op.outputs) if i >= 0]
        if all(g.tensors[i].dtype in INTEGER_DTYPES for i in tensors):
            continue
        side = EDGE_OPS.get(op.name)
        if side is None or not set(getattr(op, side)) <= edges[side]:
            return False
    return True


def auto_table(entry: dict[str, Any], *, float32_bytes: int | None = None) -> str:
    """What ``--quantize auto`` tried, one row each, and which it chose."""
    from edgekit.tables import format_table, num, size

    info = entry["auto"]
    regression = any("mae_increase_pct" in r for r in info["tried"])
    metric = "mae_increase_pct" if regression else "accuracy_drop"
    head = ["auto candidate", "size", "vs float32", "drop" if metric == "accuracy_drop"
            else "mae +%", "integer", "passed", "seconds"]  # fmt: skip
    body = []
    for r in info["tried"]:
        ratio = "-"
        if r["bytes"] is not None and float32_bytes:
            ratio = f"{r['bytes'] / float32_bytes:.2f}x"
        drop = "-" if r[metric] is None else f"{r[metric]:+.2f}"
        if metric == "accuracy_drop" and r[metric] is not None:
            drop += " pp"
        mark = "  <- chosen" if r["name"] == info["chosen"] else ""
        result = "yes" if r["passed"] else ("error: " + r["error"] if "error" in r else "no")
        body.append([
            r["name"], "-" if r["bytes"] is None else size(r["bytes"]), ratio, drop,
            {True: "yes", False: "no", None: "-"}[r["integer_only"]], result + mark,
            num(r.get("seconds"), 2),
        ])  # fmt: skip
    budget = f"{metric} <= {info['max_accuracy_drop']:g}"
    only = ", integer ops only" if info["integer_only"] else ""
    return f"auto ({budget}{only}):\n" + format_table(head, body)
