"""The C shipped in ``kernels/``: reading it, picking kernel sections, filling in names.

Kernel files (``ek_int8.c``, ``ek_float.c``) and ``harness.c`` are real C99 that compiles
on its own. From a kernel file the generator pastes only the sections a model needs: the
lines between ``/* ek:section NAME */`` (or ``/* ek:section NAME uses A B */``, the sections
it calls) and the next ``/* ek:end */``, in file order. Templates (``*.in``) are the rest of
a generated file with ``@SLOT@`` markers: ``model_*.c.in`` for ``--c-source``,
``tflite_array.*.in`` for ``--c-array``.

One substitution, :func:`fill`, in one pass over the shipped text (what it inserts is never
rescanned): an identifier named in ``macros`` becomes its value; any other identifier that
starts with ``ek_`` or ``EK_`` takes the prefix (``ek_fc`` -> ``edgekit_fc``, ``EK_INPUT_SIZE``
-> ``EDGEKIT_INPUT_SIZE``); ``@SLOT@`` becomes ``slots["SLOT"]``, and every slot must be given.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib.resources import files

_SECTION = re.compile(
    r"^/\* ek:section (\w+)(?: uses ([\w ]+))? \*/\n(.*?)^/\* ek:end \*/$", re.M | re.S
)
_TOKEN = re.compile(r"@([A-Z0-9_]+)@|\b(?:ek|EK)_\w*")


@dataclass(frozen=True)
class Section:
    """One kernel: its name, the sections it calls and its C text (ending in a newline)."""

    name: str
    uses: tuple[str, ...]
    text: str


@functools.cache
def read(name: str) -> str:
    """The text of ``kernels/<name>``."""
    return (files("edgekit.exporters.c") / "kernels" / name).read_text(encoding="utf-8")


@functools.cache
def sections(name: str) -> dict[str, Section]:
    """The sections of kernel file ``name``, in file order."""
    found = {}
    for match in _SECTION.finditer(read(name)):
        key, uses, text = match.groups()
        found[key] = Section(key, tuple((uses or "").split()), text)
    return found


def select(name: str, wanted: set[str]) -> list[Section]:
    """The sections ``wanted`` from kernel file ``name`` and those they use, in file order."""
    available = sections(name)
    needed: set[str] = set()
    todo = list(wanted)
    while todo:
        key = todo.pop()
        if key not in needed:
            needed.add(key)
            todo.extend(available[key].uses)
    return [s for key, s in available.items() if key in needed]


def fill(
    text: str,
    prefix: str | None = None,
    *,
    slots: dict[str, str] | None = None,
    macros: dict[str, str] | None = None,
) -> str:
    """``text`` with the prefix, the ``macros`` and the ``slots`` substituted (see above).

    Without a ``prefix``, ``ek_``/``EK_`` names are left as they are.
    """
    slots, macros = slots or {}, macros or {}
    used: set[str] = set()

    def substitute(match: re.Match[str]) -> str:
        slot, word = match.group(1), match.group(0)
        if slot is not None:
            if slot not in slots:
                raise KeyError(f"C template slot @{slot}@ has no value")
            used.add(slot)
            return slots[slot]
        if word in macros:
            return macros[word]
        if prefix is None:
            return word
        return (prefix if word.startswith("ek_") else prefix.upper()) + word[2:]

    out = _TOKEN.sub(substitute, text)
    if set(slots) - used:
        raise KeyError(f"C template has no slot {', '.join(sorted(set(slots) - used))}")
    return out
