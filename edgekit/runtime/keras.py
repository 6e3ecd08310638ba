"""The Keras reference runner (needs the ``train`` extra): a compiled ``tf.function`` call."""

from __future__ import annotations

import contextlib

import numpy as np

from edgekit._lazy import require
from edgekit.runtime.base import Runner, RuntimeUnavailable, TensorInfo


class KerasRunner(Runner):
    runtime = "keras"

    def load(self) -> None:
        tf = require("tensorflow")
        from edgekit.formats.keras_file import load_keras_model

        if self.device == "gpu":
            if not tf.config.list_physical_devices("GPU"):
                raise RuntimeUnavailable("TensorFlow sees no GPU here")
            self._tf_device = "/GPU:0"
        elif self.device == "cpu":
            self._tf_device = "/CPU:0"
            # Once TensorFlow has run something in this process, the thread count is fixed
            # (RuntimeError). bench measures each row in a fresh process, where it applies.
            with contextlib.suppress(RuntimeError):
                tf.config.threading.set_intra_op_parallelism_threads(self.threads)
        else:
            raise RuntimeUnavailable(f"the keras runtime runs on cpu or gpu, not {self.device}")
        self.model = load_keras_model(self.path)
        in_shape = [-1, *[int(d) for d in self.model.inputs[0].shape[1:]]]
        out_shape = [-1, *[int(d) for d in self.model.outputs[0].shape[1:]]]
        self.inputs = [TensorInfo(name=self.model.inputs[0].name, shape=in_shape, dtype="float32")]
        self.outputs = [
            TensorInfo(name=self.model.outputs[0].name, shape=out_shape, dtype="float32")
        ]
        model = self.model

        @tf.function(reduce_retracing=True)
        def forward(x):
            return model(x, training=False)

        self._forward = forward
        self._tf = tf

    def prepare(self, x: np.ndarray):
        with self._tf.device(self._tf_device):
            return self._tf.constant(super().prepare(x))

    def call(self, feed) -> np.ndarray:
        with self._tf.device(self._tf_device):
            return self._forward(feed).numpy()
