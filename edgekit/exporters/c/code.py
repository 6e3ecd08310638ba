"""What a C writer produced: the text of both files and what the manifest records of it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Code:
    header: str
    source: str
    input_size: int
    output_size: int
    input_q: dict[str, float] | None = None  # {"scale": ..., "zero_point": ...}, int8 only
    output_q: dict[str, float] | None = None
    ops: list[str] = field(default_factory=list)
    arena_bytes: int = 0
    needs_libm: bool = False
    rounding: str | None = None  # int8: whose kernels it reproduces ("tflm", "litert")
    tables: list[str] = field(default_factory=list)  # int8: who filled its elementwise tables
