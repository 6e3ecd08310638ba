"""Training options and TOML recipes (flat keys named like the ``edgekit train`` flags)."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import EdgekitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ACTIVATIONS = ("relu", "relu6", "tanh", "sigmoid", "elu", "selu", "gelu", "swish", "linear")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
DISTRIBUTE = ("none", "mirrored", "multi-worker")
# The type of each option: TOML recipes and Python callers pass values that click never saw.
_INTS = ("epochs", "batch_size", "seed", "early_stopping")
_FLOATS = ("dropout", "learning_rate", "val_split", "test_split")
_PATHS = ("dataset", "out")
_STRINGS = ("name", "target", "task", "activation", "optimizer", "distribute")


@dataclass
class TrainConfig:
    """Every option of ``edgekit train``. The defaults are the ``digits_mlp`` recipe."""

    name: str | None = None
    dataset: str = "digits"
    target: str | None = None
    task: str = "auto"
    hidden: list[int] = field(default_factory=lambda: [64])
    activation: str = "relu"
    dropout: float = 0.0
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    val_split: float = 0.1
    test_split: float = 0.2
    early_stopping: int | None = None
    seed: int = 0
    distribute: str = "none"
    out: str | None = None
    force: bool = False

    def override(self, **values) -> TrainConfig:
        """A copy with the given (non-None) values replaced; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise EdgekitError(f"unknown training option(s): {', '.join(unknown)}")
        changes = {k: _checked(k, v) for k, v in values.items() if v is not None}
        try:
            return dataclasses.replace(self, **changes).validated()
        except (TypeError, ValueError) as err:
            raise EdgekitError(f"invalid training option: {err}") from err

    def validated(self) -> TrainConfig:
        if not self.hidden or any(int(h) <= 0 for h in self.hidden):
            raise EdgekitError(
                f"--hidden sizes must be positive integers, got {','.join(map(str, self.hidden))}"
            )
        self.hidden = [int(h) for h in self.hidden]
        if self.activation not in ACTIVATIONS:
            raise EdgekitError(
                f"unknown activation {self.activation!r}; choose from {', '.join(ACTIVATIONS)}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise EdgekitError(
                f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}"
            )
        if self.distribute not in DISTRIBUTE:
            raise EdgekitError(
                f"unknown --distribute {self.distribute!r}; choose from {', '.join(DISTRIBUTE)}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise EdgekitError(f"--dropout must be in [0, 1), got {self.dropout}")
        for flag, value in (("--val-split", self.val_split), ("--test-split", self.test_split)):
            if not 0.0 < value < 1.0:
                raise EdgekitError(f"{flag} must be between 0 and 1 (exclusive), got {value}")
        if self.epochs < 1:
            raise EdgekitError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise EdgekitError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise EdgekitError(f"--learning-rate must be positive, got {self.learning_rate}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise EdgekitError(f"--early-stopping must be at least 1, got {self.early_stopping}")
        return self


def _checked(key: str, value):
    """``value`` as option ``key`` takes it, or a one-line error naming the option."""
    flag = "--" + key.replace("_", "-")

    def integral(v) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if key in _INTS:
        if not integral(value):
            raise EdgekitError(f"{flag} must be an integer, got {value!r}")
        return int(value)
    if key in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise EdgekitError(f"{flag} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise EdgekitError(f"{flag} must be a finite number, got {value!r}")
        return float(value)
    if key in _PATHS:
        if not isinstance(value, (str, os.PathLike)):
            raise EdgekitError(f"{flag} must be a name or a path, got {value!r}")
        return os.fspath(value)
    if key in _STRINGS and not isinstance(value, str):
        raise EdgekitError(f"{flag} must be a string, got {value!r}")
    if key == "hidden":
        if not isinstance(value, (list, tuple)) or not all(integral(h) for h in value):
            raise EdgekitError(f"{flag} must be a list of integers, got {value!r}")
        return [int(h) for h in value]
    if key == "force" and not isinstance(value, bool):
        raise EdgekitError(f"{flag} must be true or false, got {value!r}")
    return value


def load_recipe(path: str | Path) -> TrainConfig:
    """Read a TOML recipe: flat keys named like the flags (``hidden = [128]``, ``epochs = 5``)."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such recipe file")
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise EdgekitError(f"{path}: not a valid TOML recipe ({err})") from err
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"out", "force"}
    unknown = sorted(set(values) - names)
    if unknown:
        raise EdgekitError(
            f"{path}: unknown recipe key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}"
        )
    values.setdefault("name", path.stem)
    try:
        return TrainConfig().override(**values)
    except EdgekitError as err:
        raise EdgekitError(f"{path}: {err}") from err
