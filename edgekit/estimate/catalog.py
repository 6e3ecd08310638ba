"""The target catalog: clock, memory and cycle figures of devices, each with its source.

The built-in catalog is ``targets.toml`` beside this module. Users add or override targets
with the same layout in ``~/.config/edgekit/targets.toml`` (``$XDG_CONFIG_HOME`` is
honoured) or in an ``edgekit.toml`` in the working directory; later files win, per target.
Every number needs a source (``sources.<field>`` or a target-wide ``source``): a datasheet
for what a vendor publishes, ``"measured here: ..."`` for a figure fitted on edgekit's own
measurements (``benchmarks/estimate_calibration.py``), ``"measured elsewhere: ..."`` for one
from measurements this repository cannot repeat, ``"assumption: ..."`` for a figure someone
chose. Every number must be finite and within :data:`LIMITS` (:data:`RUNTIME_LIMITS` for a
runtime's), or the file is refused in one line naming the target, the key and the value.

A target may describe the inference runtimes that run on it (``[targets.NAME.runtimes.RT]``,
:class:`RuntimeModel`): a per-op instruction cost model fitted to emulated instruction counts,
the runtime's own flash, and (TFLite Micro) the arena's overhead over the activations. Without one the
estimate falls back to ``MACs x cycles_per_mac + ops x op_overhead_cycles``.
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
# a runtime's scalar fields; its [ops] and [arena_ops] tables are checked on their own
RUNTIME_NUMBERS = ("flash_bytes", "op_overhead", "cycles_per_instruction", "arena_base",
                   "arena_per_tensor", "arena_per_op", "arena_temp_base",
                   "arena_temp_per_tensor")  # fmt: skip
SOURCE_PREFIXES = ("datasheet:", "measured here:", "measured elsewhere:", "assumption:")
# What a number of the catalog may be: (lowest, highest, whole, unit). Far wider than any
# device, so that only a typo or a hostile file is refused, and narrow enough that every sum
# and ratio of the estimate stays finite (a 1e-320 Hz clock made its latency Infinity).
PiB = 1 << 50
LIMITS: dict[str, tuple[float, float, bool, str]] = {
    "clock_hz": (1e3, 1e11, False, " Hz"),
    "ram_bytes": (1, PiB, True, " bytes"),
    "flash_bytes": (1, PiB, True, " bytes"),
    "cycles_per_mac_int8": (1e-6, 1e6, False, ""),
    "cycles_per_mac_float": (1e-6, 1e6, False, ""),
    "op_overhead_cycles": (0, 1e9, False, ""),
}
RUNTIME_LIMITS: dict[str, tuple[float, float, bool, str]] = {
    "flash_bytes": (0, PiB, True, " bytes"),
    "op_overhead": (0, 1e9, False, " instructions"),
    "cycles_per_instruction": (1e-6, 1e6, False, ""),
    "arena_base": (0, PiB, False, " bytes"),
    "arena_per_tensor": (0, PiB, False, " bytes"),
    "arena_per_op": (0, PiB, False, " bytes"),
    "arena_temp_base": (0, PiB, False, " bytes"),
    "arena_temp_per_tensor": (0, PiB, False, " bytes"),
    "ops": (0, 1e9, False, " instructions"),
    "arena_ops": (0, PiB, False, " bytes"),
}


@dataclass(frozen=True)
class OpCost:
    """Instructions of one op: ``base + per_mac x MACs + per_element x output elements``."""

    base: float
    per_mac: float
    per_element: float

    def instructions(self, macs: int, elements: int) -> float:
        return self.base + self.per_mac * macs + self.per_element * elements


@dataclass(frozen=True)
class RuntimeModel:
    """One inference runtime on a target: its per-op costs, flash and arena overhead.

    ``ops`` is keyed ``OP.compute`` (``FULLY_CONNECTED.int8``), ``OP`` or ``*.compute`` /
    ``*``, tried in that order; ``op_overhead`` is added per op (dispatch). ``arena_*`` model
    TFLite Micro's arena (:func:`edgekit.estimate.costs.arena_bytes`): its persistent tail,
    ``arena_base + arena_per_tensor x tensors + arena_per_op x ops`` plus, per op,
    ``arena_ops[OP.compute] = [bytes, bytes per output element]`` (per-channel requantization
    data), after a head that holds the activations or, while the allocator plans,
    ``arena_temp_base + arena_temp_per_tensor x tensors`` of temporaries, whichever is larger.
    A runtime without them (the generated C, whose buffers are static) allocates only the
    activations.
    """

    name: str
    description: str
    flash_bytes: int
    op_overhead: float
    ops: dict[str, OpCost]
    cycles_per_instruction: float = 1.0
    arena_base: float | None = None
    arena_per_tensor: float = 0.0
    arena_per_op: float = 0.0
    arena_ops: dict[str, tuple[float, float]] = field(default_factory=dict)
    arena_temp_base: float = 0.0
    arena_temp_per_tensor: float = 0.0
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:  # built in Python too: the same limits as the catalog
        where = f"runtime {self.name!r}"
        for key in RUNTIME_NUMBERS:
            value = getattr(self, key)
            if value is not None:
                _check_number(where, key, value, RUNTIME_LIMITS[key])
        for key, cost in self.ops.items():
            for c in (cost.base, cost.per_mac, cost.per_element):
                _check_number(where, f"ops.{key}", c, RUNTIME_LIMITS["ops"])
        for key, pair in self.arena_ops.items():
            for c in pair:
                _check_number(where, f"arena_ops.{key}", c, RUNTIME_LIMITS["arena_ops"])

    def cost(self, op: str, compute: str) -> tuple[OpCost | None, str]:
        """The cost entry of ``op`` computing in ``compute``, and its key (None, "": free)."""
        for key in (f"{op}.{compute}", op, f"*.{compute}", "*"):
            if key in self.ops:
                return self.ops[key], key
        return None, ""

    @property
    def models_arena(self) -> bool:
        return self.arena_base is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "flash_bytes": self.flash_bytes,
            "op_overhead": _number(self.op_overhead),
            "cycles_per_instruction": _number(self.cycles_per_instruction),
            **(
                {
                    "arena_base": _number(self.arena_base),
                    "arena_per_tensor": _number(self.arena_per_tensor),
                    "arena_per_op": _number(self.arena_per_op),
                    "arena_temp_base": _number(self.arena_temp_base),
                    "arena_temp_per_tensor": _number(self.arena_temp_per_tensor),
                    "arena_ops": {
                        k: [_number(v[0]), _number(v[1])] for k, v in self.arena_ops.items()
                    },
                }
                if self.arena_base is not None
                else {}
            ),
            "ops": {
                k: [_number(c.base), _number(c.per_mac), _number(c.per_element)]
                for k, c in self.ops.items()
            },
            "sources": dict(self.sources),
        }


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
    runtimes: dict[str, RuntimeModel] = field(default_factory=dict)

    def __post_init__(self) -> None:  # built in Python too: the same limits as the catalog
        for key in NUMBERS:
            _check_number(f"target {self.name!r}", key, getattr(self, key), LIMITS[key])

    def cycles_per_mac(self, compute: str) -> float:
        """Cycles per MAC for ``compute`` (``int8``, ``int16`` or ``float32``)."""
        return self.cycles_per_mac_float if compute == "float32" else self.cycles_per_mac_int8

    @property
    def assumptions(self) -> dict[str, str]:
        """The numbers whose source is an assumption rather than a datasheet."""
        return {k: v for k, v in self.sources.items() if v.lower().startswith("assumption")}

    def runtime(self, name: str | None) -> RuntimeModel | None:
        """The runtime model ``name`` (None: the first listed; None if the target has none)."""
        if name is None:
            return next(iter(self.runtimes.values()), None)
        if name not in self.runtimes:
            choices = ", ".join(self.runtimes) or "none: it has no runtime cost model"
            raise EdgekitError(
                f"target {self.name!r} has no runtime {name!r}; choose from {choices}"
            )
        return self.runtimes[name]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            **{k: _number(getattr(self, k)) for k in NUMBERS},
            "sources": dict(self.sources),
            "origin": self.origin,
            "runtimes": {k: rt.to_json() for k, rt in self.runtimes.items()},
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
    unknown = set(entry) - {*NUMBERS, "description", "source", "sources", "runtimes"}
    if unknown:
        raise EdgekitError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"fields are {', '.join(NUMBERS)}, description, source, sources, runtimes"
        )
    values: dict[str, float] = {}
    for key in NUMBERS:
        if key not in entry:
            if key in REQUIRED:
                raise EdgekitError(f"{where} lacks {key}")
            continue
        values[key] = _check_number(where, key, entry[key], LIMITS[key])
    description = entry.get("description", name)
    if not isinstance(description, str):
        raise EdgekitError(f"{where}: description must be a string, got {description!r}")
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
        description=description,
        clock_hz=float(values["clock_hz"]),
        ram_bytes=int(values["ram_bytes"]),
        flash_bytes=int(values["flash_bytes"]),
        cycles_per_mac_int8=float(values["cycles_per_mac_int8"]),
        cycles_per_mac_float=float(values["cycles_per_mac_float"]),
        op_overhead_cycles=float(values.get("op_overhead_cycles", 0.0)),
        sources=resolved,
        origin=origin,
        runtimes=_runtimes(where, entry.get("runtimes", {})),
    )


def _figure(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"


def _check_number(
    where: str, key: str, value: Any, limits: tuple[float, float, bool, str]
) -> float:
    """``value`` of ``key`` as a float, if it is a finite number within ``limits``."""
    low, high, whole, unit = limits
    kind = "a whole number" if whole else "a finite number"
    bounds = f"from {_figure(low)} to {_figure(high)}{unit}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EdgekitError(f"{where}: {key} must be {kind} {bounds}, got {value!r}")
    ok = math.isfinite(value) and low <= value <= high
    if not ok or (whole and not float(value).is_integer()):
        raise EdgekitError(f"{where}: {key} must be {kind} {bounds}, got {value!r}")
    return float(value)


def _runtimes(where: str, section: Any) -> dict[str, RuntimeModel]:
    if not isinstance(section, dict):
        raise EdgekitError(f"{where}: runtimes must be a table of [runtimes.NAME] tables")
    return {name: _runtime(f"{where} runtime {name!r}", name, e) for name, e in section.items()}


def _runtime(where: str, name: str, entry: Any) -> RuntimeModel:
    if not isinstance(entry, dict):
        raise EdgekitError(f"{where} must be a table")
    allowed = {*RUNTIME_NUMBERS, "description", "source", "sources", "ops", "arena_ops"}
    unknown = set(entry) - allowed
    if unknown:
        raise EdgekitError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"fields are {', '.join(sorted(allowed))}"
        )
    for key in ("flash_bytes", "op_overhead"):
        if key not in entry:
            raise EdgekitError(f"{where} lacks {key}")
    values = {
        k: _check_number(where, k, entry[k], RUNTIME_LIMITS[k])
        for k in RUNTIME_NUMBERS
        if k in entry
    }
    ops: dict[str, OpCost] = {}
    raw_ops = entry.get("ops", {})
    if not isinstance(raw_ops, dict):
        raise EdgekitError(f"{where}: ops must be a table of OP = [base, per_mac, per_element]")
    for key, cost in raw_ops.items():
        if not isinstance(cost, list) or len(cost) != 3:
            raise EdgekitError(
                f"{where}: ops.{key} must be [base, per_mac, per_element], got {cost!r}"
            )
        ops[key] = OpCost(
            *(_check_number(where, f"ops.{key}", c, RUNTIME_LIMITS["ops"]) for c in cost)
        )
    raw_arena = entry.get("arena_ops", {})
    if not isinstance(raw_arena, dict):
        raise EdgekitError(f"{where}: arena_ops must be a table of OP = [bytes, per_element]")
    arena_ops: dict[str, tuple[float, float]] = {}
    for key, pair in raw_arena.items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise EdgekitError(
                f"{where}: arena_ops.{key} must be [bytes, per_element], got {pair!r}"
            )
        arena_ops[key] = (
            _check_number(where, f"arena_ops.{key}", pair[0], RUNTIME_LIMITS["arena_ops"]),
            _check_number(where, f"arena_ops.{key}", pair[1], RUNTIME_LIMITS["arena_ops"]),
        )
    sources = entry.get("sources", {})
    if not isinstance(sources, dict):
        raise EdgekitError(f"{where}: sources must be a table of strings")
    default = entry.get("source")
    resolved: dict[str, str] = {}
    keys = [*values, *(f"ops.{k}" for k in ops), *(f"arena_ops.{k}" for k in arena_ops)]
    for key in keys:
        short = key.split(".", 1)[1] if key.startswith(("ops.", "arena_ops.")) else key
        text = sources.get(key, sources.get(short, default))
        if not isinstance(text, str) or not text.strip():
            raise EdgekitError(
                f'{where}: {key} has no source; add sources."{key}" = "measured here: ..." '
                '"datasheet: ..." or "assumption: ..." (every number says where it comes from)'
            )
        if not text.strip().lower().startswith(SOURCE_PREFIXES):
            raise EdgekitError(
                f"{where}: the source of {key} must start with one of "
                f"{', '.join(SOURCE_PREFIXES)} (what kind of figure it is), got {text.strip()!r}"
            )
        resolved[key] = text.strip()
    description = entry.get("description", name)
    if not isinstance(description, str):
        raise EdgekitError(f"{where}: description must be a string, got {description!r}")
    return RuntimeModel(
        name=name,
        description=description,
        flash_bytes=int(values["flash_bytes"]),
        op_overhead=values["op_overhead"],
        ops=ops,
        cycles_per_instruction=values.get("cycles_per_instruction", 1.0),
        arena_base=values.get("arena_base"),
        arena_per_tensor=values.get("arena_per_tensor", 0.0),
        arena_per_op=values.get("arena_per_op", 0.0),
        arena_ops=arena_ops,
        arena_temp_base=values.get("arena_temp_base", 0.0),
        arena_temp_per_tensor=values.get("arena_temp_per_tensor", 0.0),
        sources=resolved,
    )
