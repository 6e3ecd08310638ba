"""``report.html``: the whole report in one self-contained file (the plots inlined)."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from edgekit.bench.output import COLUMNS, UNSTABLE_NOTE, row_cells
from edgekit.bench.schema import BenchRow
from edgekit.report.markdown import fastest_per_sample, machine

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: 1em 0; }
.note { color: #555; font-size: 0.9em; }
"""


def _table(rows: Sequence[BenchRow]) -> str:
    numeric = {"threads", "batch", "size", "p50", "p95", "samples/s", "accuracy", "max diff"}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{html.escape(v)}</td>'
            if c in numeric
            else f"<td>{html.escape(v)}</td>"
            for c, v in zip(COLUMNS, row_cells(row), strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def report_html(
    rows: Sequence[BenchRow],
    environment: dict,
    *,
    source: str,
    latency_png: bytes,
    tradeoff_png: bytes,
) -> str:
    """One HTML page: the bench table, notes, and both plots as inline PNGs."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>edgekit bench report: {html.escape(source)}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>edgekit bench report</h1>",
        f"<p>Source: <code>{html.escape(source)}</code>. Machine: "
        f"{html.escape(machine(environment))}. Latencies are per call of one batch; samples/s "
        "is batch / p50.</p>",
        _table(rows),
    ]
    fastest = fastest_per_sample(rows)
    if fastest:
        parts.append(f"<p>{html.escape(fastest)}</p>")
    if any(r.unstable for r in rows):
        parts.append(f'<p class="note">{html.escape(UNSTABLE_NOTE)}</p>')
    not_ok = [r for r in rows if not r.ok]
    if not_ok:
        items = "".join(
            f"<li>{html.escape(f'{r.status}: {r.label}: {r.error}')}</li>" for r in not_ok
        )
        parts.append(f'<ul class="note">{items}</ul>')
    parts += [
        "<h2>Latency</h2>",
        _image(latency_png, "latency distribution per measurement"),
        "<h2>Accuracy, size and latency</h2>",
        _image(tradeoff_png, "accuracy vs size, coloured by p50"),
        "</body></html>",
        "",
    ]
    return "\n".join(parts)
