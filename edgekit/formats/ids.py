"""Token ids against the embeddings that look them up: the manifest's ``ids`` record and the
one check that export, predict and bench make of the user's data.

An ``Embedding`` of ``input_dim`` rows takes ids ``0..input_dim-1``. Past the end, Keras,
LiteRT and onnxruntime fail with a traceback of their own; a negative id is silently wrapped
(``-1`` reads the last row), which no user means. The manifest records, for each model input
an embedding reads, ``{"input": 0, "name": "x", "layer": "emb", "input_dim": 10}`` (the
smallest ``input_dim`` when several read it), so that runners check ids before they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgekit.errors import EdgekitError

if TYPE_CHECKING:
    import numpy as np

IDS_KEY = "ids"


def id_limits(manifest: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The manifest's well-formed ``ids`` records (none for older manifests)."""
    records = (manifest or {}).get(IDS_KEY)
    if not isinstance(records, list):
        return []
    return [
        r for r in records
        if isinstance(r, dict) and isinstance(r.get("input"), int)
        and isinstance(r.get("input_dim"), int) and isinstance(r.get("layer"), str)
    ]  # fmt: skip


def check_ids(
    xs: list[np.ndarray],
    limits: list[dict[str, Any]],
    what: str,
    *,
    columns: list[str] | None = None,
) -> None:
    """Refuse an id an embedding has no row for, in one line naming where it is (the CSV
    column when ``columns`` names the features, else ``x[sample, position]`` or the input's
    name), the id, the layer and its ``input_dim``. ``xs``: one array per model input."""
    import numpy as np

    for limit in limits:
        i, dim = limit["input"], limit["input_dim"]
        if i >= len(xs):
            continue
        x = np.asarray(xs[i])
        with np.errstate(invalid="ignore"):
            bad = (x < 0) | (x >= dim)
        if not bad.any():
            continue
        at = tuple(int(v) for v in np.argwhere(bad)[0])
        value = x[at]
        shown = int(value) if float(value) == int(value) else float(value)
        if columns is not None and x.ndim == 2 and len(columns) == x.shape[1]:
            where = f"column {columns[at[1]]!r} of sample {at[0]} holds id {shown}"
        else:
            name = "x" if len(xs) == 1 else str(limit.get("name") or f"input {i}")
            where = f"{name}[{', '.join(map(str, at))}] is id {shown}"
        more = int(bad.sum()) - 1
        also = f" ({more} more id(s) out of range)" if more else ""
        raise EdgekitError(
            f"{what}: {where}{also}, and layer {limit['layer']!r} (Embedding) takes ids "
            f"0..{dim - 1} (input_dim {dim})"
        )
