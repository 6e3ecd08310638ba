"""Training progress as plain lines, for runs whose stdout is not a terminal (CI logs, pipes).

A terminal gets Keras's progress bars; a log gets a header (dataset, split sizes, model,
parameters), one line per epoch (loss, metrics, validation metrics, seconds) and the
early-stopping outcome, each line flushed as it happens.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from edgekit._lazy import require

Echo = Callable[[str], None]


def echo(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def header(*, dataset: str, task: str, n_train: int, n_val: int, n_test: int,
           input_shape: list[int], model: Any, hidden: list[int], activation: str,
           epochs: int, batch_size: int, optimizer: str, learning_rate: float,
           early_stopping: int | None) -> list[str]:  # fmt: skip
    """The lines that say what is about to be trained."""
    width = model.outputs[0].shape[-1]
    out_act = getattr(model.layers[-1], "activation", None)
    out_name = getattr(out_act, "__name__", "linear")
    layers = " -> ".join(
        [f"input {'x'.join(map(str, input_shape))}", *(f"{u} {activation}" for u in hidden),
         f"{width} {'linear' if out_name in ('linear', 'None') else out_name}"]
    )  # fmt: skip
    stop = f", early stopping (patience {early_stopping})" if early_stopping else ""
    return [
        f"dataset {dataset} ({task}): {n_train:,} train, {n_val:,} validation, "
        f"{n_test:,} test samples",
        f"model: {layers}; {int(model.count_params()):,} parameters",
        f"training: up to {epochs} epochs, batch {batch_size}, {optimizer} "
        f"(learning rate {learning_rate:g}){stop}",
    ]


def _metrics(logs: dict[str, Any]) -> str:
    def loss_first(keys: list[str]) -> list[str]:
        return sorted(keys, key=lambda k: k.removeprefix("val_") != "loss")

    train = loss_first([k for k in logs if not k.startswith("val_") and k != "learning_rate"])
    val = loss_first([k for k in logs if k.startswith("val_")])
    return ", ".join(f"{k} {float(logs[k]):.4f}" for k in [*train, *val])


def epoch_lines(epochs: int, out: Echo = echo) -> Any:
    """A Keras callback printing one line per epoch through ``out``."""
    keras = require("keras")
    callback: Any = keras.callbacks.Callback

    class EpochLines(callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds = time.perf_counter() - getattr(self, "_start", time.perf_counter())
            out(f"epoch {epoch + 1}/{epochs}: {_metrics(logs or {})} ({seconds:.1f} s)")

    return EpochLines()


def early_stopping_line(stopper: Any, *, epochs_run: int, epochs: int) -> str:
    """What early stopping did: stopped at which epoch, and whose weights the model keeps."""
    best = getattr(stopper, "best", None)
    best_epoch = getattr(stopper, "best_epoch", None)
    best_text = (
        f"best val_loss {float(best):.4f} at epoch {int(best_epoch) + 1}"
        if best is not None and best_epoch is not None and epochs_run
        else "no best epoch"
    )
    if getattr(stopper, "stopped_epoch", 0) and epochs_run < epochs:
        return (
            f"early stopping: stopped after epoch {epochs_run} ({stopper.patience} epochs "
            f"without val_loss improvement); {best_text}, whose weights the model keeps"
        )
    return f"early stopping: not triggered in {epochs_run} epochs; {best_text}"
