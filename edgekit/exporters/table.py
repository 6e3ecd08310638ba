"""The console table printed by ``edgekit export``."""

from __future__ import annotations

from typing import Any

from edgekit.tables import format_table, num, percent, size


def _verdict(validation: dict[str, Any]) -> str:
    if validation["passed"] is None:
        return "not judged"
    return "yes" if validation["passed"] else f"NO ({validation['criterion']})"


def export_table(manifest: dict[str, Any]) -> str:
    """One row per artifact (and per variant that could not be built), then what the
    artifacts were validated on and the notes."""
    arts = manifest["artifacts"]
    base = next((a["bytes"] for a in arts if a["variant"] == "float32"), None)
    base_onnx = next((a["bytes"] for a in arts if a["variant"] == "onnx-float32"), None)
    regression = manifest["task"] == "regression"
    metric = "mae" if regression else "accuracy"
    head = ["variant", "file", "size", "vs float32", metric,
            "mae +%" if regression else "drop", "max diff", "passed"]  # fmt: skip
    rows = []
    for a in arts:
        v = a["validation"]
        ref = base_onnx if a["format"] == "onnx" else base
        value = v["metrics"].get(metric)
        drop = v.get("mae_increase_pct") if regression else v.get("accuracy_drop")
        rows.append([
            a["variant"],
            a["file"],
            size(a["bytes"]),
            f"{100 * a['bytes'] / ref:.0f}%" if ref else "-",
            num(value) if regression else percent(value),
            "-" if drop is None else f"{drop:+.2f}" + ("" if regression else " pp"),
            "-" if v["max_abs_diff"] is None else f"{v['max_abs_diff']:.2e}",
            _verdict(v),
        ])  # fmt: skip
    for p in manifest.get("problems", []):
        if p["variant"] == "c-source":
            continue
        state = "skipped" if p["skipped"] else "FAILED"
        rows.append([p["variant"], "-", "-", "-", "-", "-", "-", state])
    lines = [format_table(head, rows)]
    validation = manifest.get("validation", {})
    if validation.get("on"):
        lines.append(f"validated on: {validation['on']}")
    for p in manifest.get("problems", []):
        state = "skipped" if p["skipped"] else "FAILED"
        lines.append(f"{p['variant']} {state}: {p['reason']}")
    for note in manifest.get("notes", []):
        lines.append(f"note: {note}")
    for a in arts:
        for note in a.get("notes", []):
            lines.append(f"note ({a['variant']}): {note}")
    return "\n".join(lines)
