"""Multi-worker training with ``tf.distribute.MultiWorkerMirroredStrategy``.

Keras 3's ``model.fit`` does not run under this strategy (keras-team/keras#20585: batches
arrive as ``PerReplica`` values it cannot convert), so this module drives the same model with
a small custom loop: ``strategy.run`` computes each replica's gradients on its shard of the
global batch, and the Keras optimizer all-reduces them in its cross-replica merge step.
Validation and early stopping (with best-weight restore) follow ``fit``'s semantics.
"""

from __future__ import annotations

import numpy as np

from edgekit import metrics as task_metrics
from edgekit._lazy import require


def _loss(task: str):
    keras = require("keras")
    if task == "binary":
        return keras.losses.BinaryCrossentropy(reduction=None)
    if task == "multiclass":
        return keras.losses.SparseCategoricalCrossentropy(reduction=None)
    return keras.losses.MeanSquaredError(reduction=None)


def evaluate(model, x: np.ndarray, y: np.ndarray, task: str, batch: int = 1024) -> dict:
    """Loss and task metrics computed on this worker alone (no collectives)."""
    outputs = np.concatenate(
        [np.asarray(model(x[i : i + batch], training=False)) for i in range(0, len(x), batch)]
    )
    target = y.reshape(-1, 1) if task != "multiclass" else y
    loss = float(np.mean(np.asarray(_loss(task)(target, outputs))))
    return {"loss": loss, **task_metrics.task_metrics(outputs, y, task)}


def fit_multi_worker(
    model,
    strategy,
    splits,
    *,
    task: str,
    epochs: int,
    batch_size: int,
    seed: int,
    patience: int | None,
) -> dict[str, list[float]]:
    """Train ``model`` (built and compiled in ``strategy.scope()``); returns a fit-like history."""
    tf = require("tensorflow")
    loss_fn = _loss(task)
    optimizer = model.optimizer
    y_train = splits.y_train if task == "multiclass" else splits.y_train.reshape(-1, 1)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = (
        tf.data.Dataset.from_tensor_slices((splits.x_train, y_train))
        .shuffle(len(splits.x_train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .with_options(options)
    )
    dist_dataset = strategy.experimental_distribute_dataset(dataset)

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            per_example = loss_fn(y, model(x, training=True))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=batch_size)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def train_step(x, y):
        per_replica = strategy.run(replica_step, args=(x, y))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    history: dict[str, list[float]] = {}
    best, best_weights, waited = np.inf, None, 0
    for _ in range(epochs):
        losses = [float(train_step(x, y)) for x, y in dist_dataset]
        val = evaluate(model, splits.x_val, splits.y_val, task)
        for key, value in {
            "loss": float(np.mean(losses)),
            **{f"val_{k}": v for k, v in val.items()},
        }.items():
            history.setdefault(key, []).append(value)
        if patience:
            if val["loss"] < best:
                best, best_weights, waited = val["loss"], model.get_weights(), 0
            else:
                waited += 1
                if waited >= patience:
                    break
    if patience and best_weights is not None:
        model.set_weights(best_weights)
    return history
