"""Text and markdown tables and number formatting, shared by every command that prints one.

Latencies are stored in milliseconds and shown in the unit that suits them, with three
significant digits and thousands separators: ``latency(0.001572) == "1.57 µs"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# (unit, how many of it make one millisecond), smallest first
LATENCY_UNITS = (("ns", 1e6), ("µs", 1e3), ("ms", 1.0), ("s", 1e-3))
_SUFFIXES = (" KB", " MB", " B", " pp", "%", "/s", *(f" {u}" for u, _ in LATENCY_UNITS))


def num(value: float | None, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (``-`` for None)."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 10**digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 else f"{value:.2e}"


def sig(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits and thousands separators.

    >>> sig(1.5), sig(0.0123), sig(123456.0), sig(999.96)
    ('1.50', '0.0123', '123,000', '1,000')
    """
    if value == 0 or not math.isfinite(value):
        return f"{value:.{digits - 1}f}" if value == 0 else str(value)
    exponent = math.floor(math.log10(abs(value)))
    rounded = round(value, digits - 1 - exponent)
    if rounded != 0:
        exponent = math.floor(math.log10(abs(rounded)))  # 999.96 -> 1000: one digit more
    decimals = max(0, digits - 1 - exponent)
    return f"{rounded:,.{decimals}f}"


def latency(ms: float | None, digits: int = 3) -> str:
    """A latency given in milliseconds, in ns, µs, ms or s (``-`` for None).

    >>> latency(0.001572), latency(0.000646), latency(2.5), latency(12345.0)
    ('1.57 µs', '646 ns', '2.50 ms', '12.3 s')
    """
    if ms is None:
        return "-"
    if ms == 0:
        return "0 ns"
    value = float(sig(abs(ms), digits).replace(",", ""))  # rounded first: 999.96 µs -> 1.00 ms
    for unit, per_ms in LATENCY_UNITS:
        if value * per_ms < 1000 or unit == "s":
            return f"{'-' if ms < 0 else ''}{sig(value * per_ms, digits)} {unit}"
    raise AssertionError("unreachable")


def latency_unit(ms: float) -> tuple[str, float]:
    """The unit :func:`latency` picks for ``ms``, and how many of it make one millisecond."""
    for unit, per_ms in LATENCY_UNITS:
        if abs(ms) * per_ms < 1000 or unit == "s":
            return unit, per_ms
    raise AssertionError("unreachable")


def rate(per_s: float | None) -> str:
    """A rate such as samples per second: whole numbers with separators (``-`` for None).

    >>> rate(229148.4), rate(12.345)
    ('229,148', '12.3')
    """
    if per_s is None:
        return "-"
    return f"{per_s:,.0f}" if abs(per_s) >= 100 else sig(per_s)


def percent(fraction: float | None, decimals: int = 2) -> str:
    """A fraction as a percentage: ``percent(0.96667) == "96.67%"``."""
    return "-" if fraction is None else f"{100 * fraction:.{decimals}f}%"


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
    t = str(text).rstrip("!* ")  # marks such as "unstable" flags
    for suffix in _SUFFIXES:
        if t.endswith(suffix):
            t = t[: -len(suffix)]
            break
    t = t.replace(",", "")
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
