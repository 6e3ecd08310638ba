"""C literals for the generated code: float32 numbers that read back exactly, constant arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError


def c_float(value: float) -> str:
    """A float32 as the shortest C literal that reads back as the same float."""
    v = np.float32(value)
    if not np.isfinite(v):
        raise EdgekitError(f"the model holds a non-finite number ({v}); it cannot be written as C")
    text = np.format_float_scientific(v, unique=True, trim="-", exp_digits=2)
    return f"{text}f"


def c_hexfloat(value: float) -> str:
    """A float32 as an exact C99 hexadecimal literal."""
    return float(np.float32(value)).hex() + "f"


def c_int(value: Any) -> str:
    return str(int(value))


def c_int32(value: Any) -> str:
    """An int32; ``INT32_MIN`` by name (``-2147483648`` is not an int literal in C)."""
    v = int(value)
    return "INT32_MIN" if v == -(2**31) else str(v)


def c_array(
    ctype: str, name: str, values: Any, fmt: Callable[[Any], str] = str, per_line: int = 12
) -> str:
    """``static const <ctype> <name>[n] = {...};`` with ``per_line`` values a line."""
    flat = list(np.asarray(values).ravel())
    rows = [
        "    " + ", ".join(fmt(v) for v in flat[i : i + per_line]) + ","
        for i in range(0, len(flat), per_line)
    ]
    body = "\n".join(rows) if rows else "    0,"
    return f"static const {ctype} {name}[{max(len(flat), 1)}] = " + "{\n" + body + "\n};\n"


def c_string(text: str) -> str:
    """``text`` as a C string literal: UTF-8 bytes, with quotes, backslashes, ``?`` (no
    trigraphs) and every byte outside printable ASCII as an octal escape."""
    out = []
    for byte in str(text).encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'
