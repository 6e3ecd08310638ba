"""Tensor-arena planning from tensor lifetimes, as TensorFlow Lite Micro does it.

A buffer lives from the step that writes it to the last step that reads it (inclusive: an
operator reads its inputs while it writes its outputs, so the two never share memory). Two
numbers come out:

* ``peak_live``: the largest sum of the sizes of buffers alive at one step, a lower bound
  for any allocator;
* ``greedy_plan``: offsets from TFLite Micro's ``GreedyMemoryPlanner`` strategy (largest
  buffer first, each at the lowest aligned offset that does not overlap a buffer whose
  lifetime it shares). Its total is the arena size a device needs for the activations.
"""

from __future__ import annotations

from dataclasses import dataclass

ALIGNMENT = 16  # TFLite Micro aligns arena buffers to 16 bytes


@dataclass
class Buffer:
    """A block of memory needed from step ``first`` to step ``last`` (inclusive)."""

    key: object
    size: int
    first: int
    last: int
    offset: int = 0

    def overlaps(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


def _align(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def peak_live(buffers: list[Buffer]) -> int:
    """The largest total size of buffers alive at the same step."""
    steps = {b.first for b in buffers} | {b.last for b in buffers}
    return max((sum(b.size for b in buffers if b.first <= s <= b.last) for s in steps), default=0)


def greedy_plan(buffers: list[Buffer], *, alignment: int = ALIGNMENT) -> int:
    """Assign ``offset`` to every buffer; returns the arena size (end of the last buffer)."""
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first, b.last)):
        conflicts = sorted((b.offset, b.offset + b.size) for b in placed if b.overlaps(buf))
        offset = 0
        for start, end in conflicts:
            if offset + buf.size <= start:
                break
            offset = max(offset, _align(end, alignment))
        buf.offset = offset
        placed.append(buf)
    return max((b.offset + b.size for b in buffers), default=0)
