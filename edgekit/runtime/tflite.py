"""TensorFlow Lite runner on ai_edge_litert (XNNPACK on by default), no TensorFlow needed."""

from __future__ import annotations

import contextlib

import numpy as np

from edgekit._lazy import require
from edgekit.errors import EdgekitError
from edgekit.runtime.base import Runner, RuntimeUnavailable, TensorInfo


def tensor_info(detail: dict) -> TensorInfo:
    """An interpreter tensor detail -> :class:`TensorInfo` (``-1`` for a dynamic batch)."""
    shape = [int(d) for d in detail.get("shape_signature", detail["shape"])]
    if shape and shape[0] <= 0:
        shape[0] = -1
    scale, zero_point = detail.get("quantization", (0.0, 0))
    dtype = np.dtype(detail["dtype"]).name
    quant = None
    if scale and np.dtype(detail["dtype"]).kind != "f":
        quant = {"scale": float(scale), "zero_point": int(zero_point)}
    return TensorInfo(name=detail["name"], shape=shape, dtype=dtype, quantization=quant)


class TFLiteRunner(Runner):
    runtime = "tflite"

    def load(self) -> None:
        if self.device != "cpu":
            raise RuntimeUnavailable("the tflite runtime runs on the CPU only")
        interpreter_mod = require("ai_edge_litert.interpreter")
        from edgekit.formats.tflite_graph import CorruptFlatbuffer, check_tflite

        # an unreadable file is left to the runtime, which refuses it in its own words
        with contextlib.suppress(CorruptFlatbuffer):
            check_tflite(self.path)  # declared sizes against the file, before LiteRT allocates
        try:
            self.interpreter = interpreter_mod.Interpreter(
                model_path=str(self.path), num_threads=self.threads
            )
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise EdgekitError(f"{self.path}: cannot load the TFLite model ({err})") from err
        details_in = self.interpreter.get_input_details()
        details_out = self.interpreter.get_output_details()
        if len(details_in) != 1 or len(details_out) != 1:
            raise EdgekitError(f"{self.path}: edgekit runs models with one input and one output")
        self._in_index = details_in[0]["index"]
        self._out_index = details_out[0]["index"]
        self.inputs = [tensor_info(details_in[0])]
        self.outputs = [tensor_info(details_out[0])]
        self._batch = int(details_in[0]["shape"][0])
        signature = details_in[0].get("shape_signature", details_in[0]["shape"])
        if len(signature) and int(signature[0]) > 0:  # traced with a fixed batch size
            self.fixed_batch = int(signature[0])
        # Bound once: `call`/`bind` are what bench times, so they do no attribute lookups.
        self._set, self._invoke = self.interpreter.set_tensor, self.interpreter.invoke
        self._get = self.interpreter.get_tensor

    def prepare(self, x: np.ndarray):
        feed = super().prepare(x)
        if feed.shape[0] != self._batch:
            self.check_batch(feed.shape[0])
            self.interpreter.resize_tensor_input(self._in_index, list(feed.shape), strict=True)
            self.interpreter.allocate_tensors()
            self._batch = feed.shape[0]
        return feed

    def call(self, feed: np.ndarray) -> np.ndarray:
        self._set(self._in_index, feed)
        self._invoke()
        return self._get(self._out_index)

    def bind(self, feed: np.ndarray):
        set_tensor, invoke, get_tensor = self._set, self._invoke, self._get
        index_in, index_out = self._in_index, self._out_index

        def run() -> np.ndarray:
            set_tensor(index_in, feed)
            invoke()
            return get_tensor(index_out)

        return run
