"""The error-per-layer plot: one line per artifact over the model's layers, log scale."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from edgekit._lazy import require

if TYPE_CHECKING:
    from edgekit.diagnose.result import ArtifactDiagnosis

FLOOR = 1e-6  # log axes cannot show 0: an exact layer is drawn here


def error_plot(results: list[ArtifactDiagnosis]) -> bytes:
    """PNG bytes: the error each layer adds (top) and the error against the float model
    (bottom), per artifact; the legend sits outside, to the right."""
    require("matplotlib")
    from matplotlib.figure import Figure

    names: list[str] = []
    for result in results:
        for report in result.in_model_order():
            if report.layer not in names:
                names.append(report.layer)
    x_of = {name: i for i, name in enumerate(names)}
    width = max(10.0, 1.1 * len(names) + 6.0)  # the legend takes the right third
    fig = Figure(figsize=(width, 6.4), dpi=110, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    markers = "osD^vP*X"
    for i, result in enumerate(results):
        layers = result.in_model_order()
        xs = [x_of[r.layer] for r in layers]
        style = {"marker": markers[i % len(markers)], "linewidth": 1.4, "markersize": 6}
        worst = result.worst
        label = f"{result.variant} ({result.artifact})"
        if worst is not None and worst.error > FLOOR:
            label += f", worst: {worst.layer}"
        top.plot(xs, [max(r.error, FLOOR) for r in layers], label=label, **style)
        bottom.plot(xs, [max(r.rmse_rel, FLOOR) for r in layers], **style)
    top.set_title("Error each layer adds (carried to the model output)")
    top.set_ylabel("RMSE / output range")
    bottom.set_title("Error against the float Keras model (cumulative)")
    bottom.set_ylabel("RMSE / tensor range")
    for axis, key in ((top, "error"), (bottom, "rmse_rel")):
        peak = max((getattr(r, key) for res in results for r in res.layers), default=FLOOR)
        axis.set_yscale("log")
        axis.set_ylim(FLOOR / 3, max(peak * 3, FLOOR * 100))
        axis.grid(True, which="major", alpha=0.3)
        axis.axhline(FLOOR, color="0.6", linestyle=":", linewidth=1)
    top.plot([], [], color="0.6", linestyle=":", label=f"{FLOOR:g} or less (no error)")
    tilt = len(names) > 5
    bottom.set_xticks(
        range(len(names)), names, rotation=30 if tilt else 0, ha="right" if tilt else "center"
    )
    bottom.set_xlim(-0.4, len(names) - 0.6)
    top.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
