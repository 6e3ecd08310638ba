"""ONNX Runtime runner: CPU, CUDA and TensorRT execution providers where present."""

from __future__ import annotations

import contextlib

import numpy as np

from edgekit._lazy import require
from edgekit.errors import EdgekitError
from edgekit.runtime.base import Runner, RuntimeUnavailable, TensorInfo

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
}


def providers_for(device: str, available: list[str]) -> list[str]:
    """Execution providers for ``device`` (``cpu`` or ``gpu``), best first."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "gpu":
        gpu = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
        if not gpu:
            raise RuntimeUnavailable(
                "no CUDA execution provider in this onnxruntime "
                f"(available: {', '.join(available)}); install onnxruntime-gpu on a machine with an NVIDIA GPU"
            )
        return [*gpu, "CPUExecutionProvider"]
    raise EdgekitError(f"unknown device {device!r} for onnxruntime; choose cpu or gpu")


def _info(arg) -> TensorInfo:
    shape = [d if isinstance(d, int) else -1 for d in arg.shape]
    if shape:
        shape[0] = -1
    return TensorInfo(name=arg.name, shape=shape, dtype=_ORT_TYPES.get(arg.type, arg.type))


class OnnxRuntimeRunner(Runner):
    runtime = "onnxruntime"

    def load(self) -> None:
        from edgekit.formats.onnx_wire import MalformedOnnx, read_onnx

        # an unreadable file is left to the runtime, which refuses it in its own words
        with contextlib.suppress(MalformedOnnx):
            read_onnx(self.path)  # tensors' dims against their data, external data inside
        ort = require("onnxruntime")
        ort.set_default_logger_severity(3)
        providers = providers_for(self.device, ort.get_available_providers())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=opts, providers=providers
            )
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types
            first = (str(err).splitlines() or [type(err).__name__])[0]
            raise EdgekitError(f"{self.path}: cannot load the ONNX model ({first})") from err
        if self.device == "gpu" and not any(
            p in self.session.get_providers()
            for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        ):
            raise RuntimeUnavailable("onnxruntime could not start its CUDA execution provider here")
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        if len(ins) != 1 or len(outs) != 1:
            raise EdgekitError(
                f"{self.path}: edgekit runs models with one input and one output; this one has "
                f"inputs {[i.name for i in ins]}"
            )
        self.inputs, self.outputs = [_info(ins[0])], [_info(outs[0])]
        self._in_name, self._out_names = ins[0].name, [outs[0].name]
        self._run = self.session.run

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def prepare(self, x: np.ndarray) -> dict[str, np.ndarray]:
        # The feed is the ready-made input dict, so `call` does nothing but run.
        return {self._in_name: super().prepare(x)}

    def call(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self._run(self._out_names, feed)[0]

    def bind(self, feed: dict[str, np.ndarray]):
        run, names = self._run, self._out_names
        return lambda: run(names, feed)
