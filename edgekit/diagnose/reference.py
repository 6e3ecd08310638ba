"""Which float model each artifact is compared with, layer by layer.

Usually the source model. An ``auto`` artifact whose chosen recipe equalized the model
(cross-layer equalization, :mod:`edgekit.exporters.equalize`) holds each hidden unit at another
scale, the function unchanged: its tensors are compared with the equalized float model, the one
it was quantized from, or every rescaled unit would count as error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SOURCE = "source"


def _equalized(model: Any) -> Any:
    from edgekit.exporters.equalize import equalize

    return equalize(model)[0]


# recipe flag in the manifest's auto record -> (reference kind, the float model it quantized)
RECIPES: dict[str, tuple[str, Callable[[Any], Any]]] = {"equalization": ("equalized", _equalized)}
TRANSFORMS = dict(RECIPES.values())


def reference_kind(entry: dict[str, Any]) -> str:
    """``"source"``, or the kind of model the artifact was built from (``"equalized"``)."""
    auto = entry.get("auto")
    if not isinstance(auto, dict):
        return SOURCE
    chosen = auto.get("chosen")
    for tried in auto.get("tried") or []:
        if isinstance(tried, dict) and tried.get("name") == chosen:
            recipe = tried.get("recipe")
            if isinstance(recipe, dict):
                for flag, (kind, _) in RECIPES.items():
                    if recipe.get(flag):
                        return kind
    return SOURCE


def reference_model(model: Any, kind: str) -> Any:
    return model if kind == SOURCE else TRANSFORMS[kind](model)
