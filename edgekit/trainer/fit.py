"""The trainer: dataset -> splits -> model -> fit -> evaluate -> run directory."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgekit._lazy import require
from edgekit._version import __version__
from edgekit.data import Dataset, Splits, load_dataset, split_dataset
from edgekit.errors import EdgekitError
from edgekit.formats.run_dir import DEFAULT_RUNS_DIR, LATEST, RUN_SCHEMA, Run, open_run
from edgekit.outdirs import check_output_dir, claim_directory, point_symlink, scratch_tempdir
from edgekit.trainer.config import TrainConfig
from edgekit.trainer.model import build_model, compile_model

CALIBRATION_SAMPLES = 1000


def _strategy(distribute: str):
    """The tf.distribute strategy; must be created before any other TensorFlow op."""
    if distribute == "none":
        return None
    tf = require("tensorflow")
    if distribute == "mirrored":
        return tf.distribute.MirroredStrategy()
    if not os.environ.get("TF_CONFIG"):
        raise EdgekitError("--distribute multi-worker needs TF_CONFIG describing the cluster")
    _tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _tf_config() -> dict:
    """``$TF_CONFIG`` parsed (``{}`` when unset); a malformed one is a user error."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as err:
        raise EdgekitError(f"TF_CONFIG is not valid JSON ({err})") from err
    if not isinstance(config, dict) or not all(
        isinstance(config.get(key, {}), dict) for key in ("cluster", "task")
    ):
        raise EdgekitError("TF_CONFIG must be a JSON object whose 'cluster' and 'task' are objects")
    return config


def _is_chief() -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster."""
    config = _tf_config()
    if not config:
        return True
    task = config.get("task", {})
    cluster = config.get("cluster", {})
    if task.get("type") == "chief":
        return True
    return "chief" not in cluster and task.get("type") == "worker" and task.get("index", 0) == 0


def _check_writable(out: Path) -> None:
    """Fail before training, not after it, when the run directory cannot be written: a
    probe directory is made (and removed) in the nearest existing parent."""
    parent = out.parent
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise EdgekitError(f"cannot write to {parent}: not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".probe", dir=existing))
    except OSError as err:
        raise EdgekitError(f"cannot write to {parent}: {err.strerror or err}") from err


def _inputs(config: TrainConfig) -> list[Path]:
    """The files training reads, which its run directory may neither be nor contain."""
    dataset = Path(config.dataset)
    return [dataset] if dataset.exists() else []


def _run_dir(config: TrainConfig, ds: Dataset) -> Path:
    """The run directory, checked before training: ``--out`` (an existing one only with
    ``--force``, and only one edgekit wrote), else a fresh ``runs/<name>-<time>``."""
    if config.out:
        out = Path(config.out)
        check_output_dir(out, force=config.force, protect=_inputs(config))
        _check_writable(out)
        return out
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = DEFAULT_RUNS_DIR / f"{config.name or ds.name}-{stamp}"
    out, n = base, 1
    while out.exists() or out.is_symlink():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    _check_writable(out)
    return out


def train_from_config(config: TrainConfig) -> Run:
    config = config.validated()
    strategy = _strategy(config.distribute)
    keras = require("keras")
    ds = load_dataset(config.dataset, target=config.target, task=config.task)
    splits = split_dataset(
        ds, val_split=config.val_split, test_split=config.test_split, seed=config.seed
    )
    chief = _is_chief()
    out = _run_dir(config, ds) if chief else None

    keras.utils.set_random_seed(config.seed)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = build_model(
            input_shape=ds.input_shape,
            task=ds.task,
            n_classes=ds.n_classes,
            hidden=config.hidden,
            activation=config.activation,
            dropout=config.dropout,
            x_train=splits.x_train,
            y_train=splits.y_train if ds.task == "regression" else None,
        )
        compile_model(
            model, task=ds.task, optimizer=config.optimizer, learning_rate=config.learning_rate
        )
    start = time.perf_counter()
    if config.distribute == "multi-worker":
        from edgekit.trainer.distributed import evaluate, fit_multi_worker

        history = fit_multi_worker(
            model,
            strategy,
            splits,
            task=ds.task,
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=config.seed,
            patience=config.early_stopping,
        )
        seconds = time.perf_counter() - start
        test_metrics = evaluate(model, splits.x_test, splits.y_test, ds.task)
    else:
        history, seconds, test_metrics = _fit(model, splits, config, ds)
    epochs_run = len(history.get("loss", []))
    info = _run_info(config, ds, splits, model, test_metrics, epochs_run, seconds)
    if not chief:
        return Run(path=None, info=info)
    assert out is not None  # the chief always has a run directory
    # A default-named run whose name another training took meanwhile takes the next one.
    with claim_directory(
        out, force=config.force, protect=_inputs(config), unique=not config.out
    ) as claim:
        _write_run(claim.tmp, model, info, history, splits, config.seed)
    out = claim.final
    if _in_runs_dir(out):
        try:
            point_symlink(LATEST, out)
        except EdgekitError as err:  # the run is written; say why runs/latest is not moved
            print(f"edgekit: note: {err}", file=sys.stderr, flush=True)
    return open_run(out)


def _in_runs_dir(out: Path) -> bool:
    """Whether ``out`` is a run directly under ``./runs/``: only those move ``runs/latest``."""
    return out.resolve().parent == DEFAULT_RUNS_DIR.resolve()


def _fit(model, splits: Splits, config: TrainConfig, ds: Dataset):
    """Keras ``fit`` (single device or MirroredStrategy), then evaluation on the test split.

    On a terminal Keras draws its progress bars; otherwise (a log, a pipe) plain lines say
    what is trained, how each epoch went and what early stopping did
    (:mod:`edgekit.trainer.progress`).
    """
    from edgekit.trainer import progress

    keras = require("keras")
    callbacks: list = []
    stopper = None
    if config.early_stopping:
        stopper = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.early_stopping, restore_best_weights=True
        )
        callbacks.append(stopper)
    terminal = sys.stdout.isatty()
    verbose = 1 if terminal else 0
    if not terminal:
        lines = progress.header(
            dataset=ds.name, task=ds.task, n_train=len(splits.x_train),
            n_val=len(splits.x_val), n_test=len(splits.x_test), input_shape=ds.input_shape,
            model=model, hidden=config.hidden, activation=config.activation,
            epochs=config.epochs, batch_size=config.batch_size, optimizer=config.optimizer,
            learning_rate=config.learning_rate, early_stopping=config.early_stopping,
        )  # fmt: skip
        for line in lines:
            progress.echo(line)
        callbacks.append(progress.epoch_lines(config.epochs))
    start = time.perf_counter()
    history = model.fit(
        splits.x_train,
        splits.y_train,
        validation_data=(splits.x_val, splits.y_val),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=callbacks,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    if stopper is not None and not terminal:
        epochs_run = len(history.history.get("loss", []))
        progress.echo(progress.early_stopping_line(stopper, epochs_run=epochs_run,
                                                   epochs=config.epochs))  # fmt: skip
    scores = model.evaluate(
        splits.x_test,
        splits.y_test,
        batch_size=max(config.batch_size, 256),
        verbose=0,
        return_dict=True,
    )
    test_metrics = {k: float(v) for k, v in scores.items() if k != "compile_metrics"}
    return history.history, seconds, test_metrics


def _run_info(config, ds: Dataset, splits: Splits, model, test_metrics, epochs_run, seconds):
    tf = require("tensorflow")
    keras = require("keras")
    if ds.task == "regression":
        test = {k: test_metrics[k] for k in ("loss", "mae", "rmse") if k in test_metrics}
    else:
        test = {k: test_metrics[k] for k in ("loss", "accuracy") if k in test_metrics}
    return {
        "schema": RUN_SCHEMA,
        "name": config.name or ds.name,
        "task": ds.task,
        "labels": ds.labels,
        # tabular data: the feature columns in the model's order and the label column
        "features": ds.meta.get("features"),
        "target": ds.meta.get("target"),
        "dataset": {
            "name": ds.name,
            "source": ds.source,
            "sha256": ds.sha256,
            "n_train": len(splits.x_train),
            "n_val": len(splits.x_val),
            "n_test": len(splits.x_test),
            "input_shape": ds.input_shape,
        },
        "model": {
            "hidden": config.hidden,
            "activation": config.activation,
            "dropout": config.dropout,
            "params": int(model.count_params()),
        },
        "training": {
            "epochs": config.epochs,
            "epochs_run": epochs_run,
            "seconds": round(seconds, 3),
            "seed": config.seed,
            "batch_size": config.batch_size,
            "optimizer": config.optimizer,
            "learning_rate": config.learning_rate,
            "val_split": config.val_split,
            "test_split": config.test_split,
            "early_stopping": config.early_stopping,
            "distribute": config.distribute,
        },
        "metrics": {"test": test},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "edgekit": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    }


def _write_run(tmp: Path, model, info: dict, history: dict, splits: Splits, seed: int) -> None:
    with scratch_tempdir(tmp / ".scratch"):  # Keras's own temporary files go with the run's
        model.save(tmp / "model.keras")
    (tmp / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (tmp / "history.csv").write_text(_history_csv(history), encoding="utf-8")
    _plot_history(history, tmp / "training.png", title=info["name"])
    data = tmp / "data"
    data.mkdir()
    np.savez(data / "test.npz", x=splits.x_test.astype(np.float32), y=splits.y_test)
    rng = np.random.default_rng(seed)
    n = min(CALIBRATION_SAMPLES, len(splits.x_train))
    idx = rng.choice(len(splits.x_train), size=n, replace=False)
    np.savez(data / "calibration.npz", x=splits.x_train[idx].astype(np.float32))


def _history_csv(history: dict) -> str:
    keys = list(history)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for i in range(len(history.get("loss", []))):
        writer.writerow([i + 1, *(f"{float(history[k][i]):.6g}" for k in keys)])
    return buf.getvalue()


def _plot_history(history: dict, path: Path, *, title: str) -> None:
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot")
    metrics = [k for k in history if not k.startswith("val_") and k != "loss"]
    panels = ["loss", *metrics[:1]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for ax, key in zip(axes[0], panels, strict=False):
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
