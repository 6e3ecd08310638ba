"""The steps an int8 graph lowers to, and the state the lowering functions share.

A :class:`Step` is one call of a kernel of ``kernels/ek_int8.c``: its arguments are C text
(constants, names of the arrays written for it) and :class:`Ref` s to tensors, which the
writer replaces with where each tensor lives (``input``, ``output`` or ``arena + offset``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgekit.exporters.c.literals import c_array
from edgekit.formats.tflite_graph import TFLiteGraph


@dataclass(frozen=True)
class Ref:
    """A tensor as a kernel argument."""

    tensor: int


@dataclass
class Step:
    kernel: str  # the section of ek_int8.c called: fc, softmax, lut, ...
    args: list[str | Ref]
    inputs: list[int]  # the tensors read, for their lifetimes
    output: int
    what: str  # the comment above the call; before the first ":", the op list entry


@dataclass
class Lowering:
    """One graph being lowered: its steps and constant arrays so far, and the tensor aliases."""

    g: TFLiteGraph
    prefix: str
    rounding: str = "tflm"  # whose kernels the C reproduces: "tflm" or "litert" (builtin)
    steps: list[Step] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    fc_inputs: list[int] = field(default_factory=list)  # sizes ek_u must hold
    alias: dict[int, int] = field(default_factory=dict)  # RESHAPE output -> its input
    count: int = 0
    tables: set[str] = field(default_factory=set)  # who filled the elementwise tables

    def name(self, what: str) -> str:
        """A fresh C name, ``<prefix>_<what><n>``."""
        self.count += 1
        return f"{self.prefix}_{what}{self.count}"

    def array(
        self, ctype: str, name: str, values: Any, fmt: Callable[[Any], str], per_line: int
    ) -> str:
        """Write the constant array ``name`` (from :meth:`name`); returns the name."""
        self.data.append(c_array(ctype, name, values, fmt, per_line))
        return name

    def find(self, tensor: int) -> int:
        """The tensor that holds ``tensor``'s data (through RESHAPE and the like)."""
        while tensor in self.alias:
            tensor = self.alias[tensor]
        return tensor

    def ref(self, tensor: int) -> Ref:
        return Ref(self.find(tensor))
