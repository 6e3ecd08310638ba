"""Text and markdown tables and number formatting, shared by every command that prints one."""

from __future__ import annotations

from collections.abc import Sequence


def num(value: float | None, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (``-`` for None)."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 10**digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 else f"{value:.2e}"


def size(nbytes: int) -> str:
    if nbytes < 1024:
        return f"{nbytes} B"
    if nbytes < 1024**2:
        return f"{nbytes / 1024:.1f} KB"
    return f"{nbytes / 1024**2:.1f} MB"


def format_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A plain-text table; text columns left-aligned, numbers right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]
    numeric = [all(_looks_numeric(r[i]) for r in body) and bool(body) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).rjust(w) if numeric[i] else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *(line(r) for r in body)])


def _looks_numeric(text: str) -> bool:
    t = str(text).replace(" KB", "").replace(" MB", "").replace(" B", "").rstrip("%")
    if t == "-":
        return True
    try:
        float(t)
    except ValueError:
        return False
    return True


def markdown_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    def esc(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in head) + " |"]
    lines.append("|" + "|".join("---" for _ in head) + "|")
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in body]
    return "\n".join(lines)
