"""The console table printed by ``edgekit export``."""

from __future__ import annotations

from typing import Any


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def export_table(manifest: dict[str, Any]) -> str:
    arts = manifest["artifacts"]
    base = next((a["bytes"] for a in arts if a["variant"] == "float32"), None)
    base_onnx = next((a["bytes"] for a in arts if a["variant"] == "onnx-float32"), None)
    regression = manifest["task"] == "regression"
    metric = "mae" if regression else "accuracy"
    header = [
        "variant",
        "file",
        "size",
        "vs float32",
        metric,
        "drop" if not regression else "mae +%",
        "max diff",
        "passed",
    ]
    rows = []
    for a in arts:
        v = a["validation"]
        ref = base_onnx if a["format"] == "onnx" else base
        ratio = f"{100 * a['bytes'] / ref:.0f}%" if ref else "-"
        value = v["metrics"].get(metric)
        drop = v.get("mae_increase_pct") if regression else v.get("accuracy_drop")
        rows.append(
            [
                a["variant"],
                a["file"],
                f"{a['bytes'] / 1024:.1f} KB",
                ratio,
                _fmt(value, ".4f"),
                _fmt(drop, "+.2f") + ("" if regression or drop is None else " pp"),
                _fmt(v["max_abs_diff"], ".2e"),
                "yes" if v["passed"] else f"NO ({v['criterion']})",
            ]
        )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
