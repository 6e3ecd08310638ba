"""The target catalog: clock, memory and cycle figures of devices, each with its source.

The built-in catalog is ``targets.toml`` beside this module. Users add or override targets
with the same layout in ``~/.config/edgekit/targets.toml`` (``$XDG_CONFIG_HOME`` is
honoured) or in an ``edgekit.toml`` in the working directory; later files win, per target.
Every number needs a source (``sources.<field>`` or a target-wide ``source``): a datasheet
for what a vendor publishes, ``"assumption: ..."`` for a figure someone chose.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BUILTIN = Path(__file__).with_name("targets.toml")
REQUIRED = ("clock_hz", "ram_bytes", "flash_bytes", "cycles_per_mac_int8", "cycles_per_mac_float")
OPTIONAL = ("op_overhead_cycles",)
NUMBERS = REQUIRED + OPTIONAL


@dataclass(frozen=True)
class Target:
    """One device of the catalog; ``sources`` names where each number comes from."""

    name: str
    description: str
    clock_hz: float
    ram_bytes: int
    flash_bytes: int
    cycles_per_mac_int8: float
    cycles_per_mac_float: float
    op_overhead_cycles: float = 0.0
    sources: dict[str, str] = field(default_factory=dict)
    origin: str = "built-in"

    def cycles_per_mac(self, compute: str) -> float:
        """Cycles per MAC for ``compute`` (``int8``, ``int16`` or ``float32``)."""
        return self.cycles_per_mac_float if compute == "float32" else self.cycles_per_mac_int8

    @property
    def assumptions(self) -> dict[str, str]:
        """The numbers whose source is an assumption rather than a datasheet."""
        return {k: v for k, v in self.sources.items() if v.lower().startswith("assumption")}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            **{k: _number(getattr(self, k)) for k in NUMBERS},
            "sources": dict(self.sources),
            "origin": self.origin,
        }


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def user_catalogs() -> list[Path]:
    """User catalog files that exist, in the order they are applied."""
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    candidates = [config / "edgekit" / "targets.toml", Path.cwd() / "edgekit.toml"]
    return [p for p in candidates if p.is_file()]


def load_catalog(extra: list[str | Path] | None = None) -> dict[str, Target]:
    """The built-in targets, then the user files, then ``extra`` files; later entries win."""
    targets: dict[str, Target] = {}
    files = [BUILTIN, *user_catalogs(), *(Path(p) for p in extra or [])]
    for path in files:
        for name, target in _read(path).items():
            targets[name] = target
    return targets


def get_target(name: str, *, catalog: dict[str, Target] | None = None) -> Target:
    """One target by name; an unknown name lists the valid ones."""
    catalog = load_catalog() if catalog is None else catalog
    if name not in catalog:
        raise EdgekitError(f"unknown target {name!r}; choose from {', '.join(sorted(catalog))}")
    return catalog[name]


def list_targets(catalog: list[str | Path] | None = None) -> list[Target]:
    """Every target of the catalog, sorted by name."""
    targets = load_catalog(catalog)
    return [targets[name] for name in sorted(targets)]


def targets_table(targets: list[Target]) -> str:
    """The catalog as a table (``edgekit estimate --list-targets``)."""
    from edgekit.tables import format_table, size

    rows = [
        [t.name, f"{t.clock_hz / 1e6:g}", size(t.ram_bytes), size(t.flash_bytes),
         f"{t.cycles_per_mac_int8:g}", f"{t.cycles_per_mac_float:g}", t.description]
        for t in targets
    ]  # fmt: skip
    head = ["target", "MHz", "RAM", "flash", "cyc/MAC int8", "cyc/MAC float", "description"]
    note = (
        "Sources of every number: edgekit estimate --list-targets --json. Cycle figures are "
        "assumptions; add targets in ~/.config/edgekit/targets.toml or ./edgekit.toml."
    )
    return format_table(head, rows) + "\n\n" + note


def _read(path: Path) -> dict[str, Target]:
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise EdgekitError(f"{path}: not a valid TOML file ({err})") from err
    section = doc.get("targets", {})
    if not isinstance(section, dict):
        raise EdgekitError(f"{path}: [targets] must be a table of [targets.NAME] tables")
    origin = "built-in" if path == BUILTIN else str(path)
    return {name: _target(path, name, entry, origin) for name, entry in section.items()}


def _target(path: Path, name: str, entry: Any, origin: str) -> Target:
    where = f"{path}: target {name!r}"
    if not isinstance(entry, dict):
        raise EdgekitError(f"{where} must be a table")
    unknown = set(entry) - {*NUMBERS, "description", "source", "sources"}
    if unknown:
        raise EdgekitError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"fields are {', '.join(NUMBERS)}, description, source, sources"
        )
    values: dict[str, float] = {}
    for key in NUMBERS:
        if key not in entry:
            if key in REQUIRED:
                raise EdgekitError(f"{where} lacks {key}")
            continue
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise EdgekitError(f"{where}: {key} must be a non-negative number, got {value!r}")
        if not math.isfinite(value):
            raise EdgekitError(f"{where}: {key} must be a finite number, got {value!r}")
        if key in REQUIRED and value == 0:
            raise EdgekitError(f"{where}: {key} must be positive")
        values[key] = value
    sources = entry.get("sources", {})
    if not isinstance(sources, dict):
        raise EdgekitError(f"{where}: sources must be a table of strings")
    default = entry.get("source")
    resolved: dict[str, str] = {}
    for key in values:
        text = sources.get(key, default)
        if not isinstance(text, str) or not text.strip():
            raise EdgekitError(
                f'{where}: {key} has no source; add sources.{key} = "datasheet ..." '
                'or "assumption: ..." (every number says where it comes from)'
            )
        resolved[key] = text.strip()
    return Target(
        name=name,
        description=str(entry.get("description", name)),
        clock_hz=float(values["clock_hz"]),
        ram_bytes=int(values["ram_bytes"]),
        flash_bytes=int(values["flash_bytes"]),
        cycles_per_mac_int8=float(values["cycles_per_mac_int8"]),
        cycles_per_mac_float=float(values["cycles_per_mac_float"]),
        op_overhead_cycles=float(values.get("op_overhead_cycles", 0.0)),
        sources=resolved,
        origin=origin,
    )
