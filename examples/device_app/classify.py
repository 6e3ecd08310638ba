#!/usr/bin/env python3
"""A device app: classify raw inputs with an edgekit export, without edgekit.

It needs only ai_edge_litert, numpy and the export directory (manifest.json + .tflite). The
manifest says the model's task, labels and the quantization of its input and output, so the
app quantizes raw features and dequantizes outputs itself, exactly as a phone or
Raspberry Pi app would.

    python classify.py EXPORT_DIR INPUTS.npz [--variant int8] [--limit 10]

INPUTS.npz holds an array ``x`` of raw features (e.g. the export's own test.npz).

This app reads ``manifest.json`` with its own few lines on purpose, instead of edgekit's reader
(``edgekit.formats.manifest.load_manifest``): it shows that a device needs nothing of edgekit,
only the documented format (the schema, the file names kept inside the export directory, each
tensor's quantization).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path, PurePosixPath

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def load_artifact(export_dir: Path, variant: str) -> tuple[dict, dict]:
    manifest = json.loads((export_dir / "manifest.json").read_text())
    if manifest.get("schema") != "edgekit.export/1":
        sys.exit(f"{export_dir}: not an edgekit export")
    for art in manifest["artifacts"]:
        if art["variant"] == variant and art["format"] == "tflite":
            name = PurePosixPath(art["file"])
            if name.is_absolute() or ".." in name.parts:  # never leave the export directory
                sys.exit(f"{export_dir}: refusing file name {art['file']!r}")
            if not art["validation"]["passed"]:
                sys.exit(f"{variant} failed validation at export time; refusing to use it")
            return manifest, art
    sys.exit(f"no TFLite variant {variant!r} in {export_dir}")


def quantize(x: np.ndarray, tensor: dict) -> np.ndarray:
    """q = clip(round(x / scale + zero_point)): one scale for the tensor, or one per feature
    (``"axis": -1``, over the flattened features of a sample) when the export folded the
    model's input normalization into the quantization."""
    q = tensor["quantization"]
    dtype = np.dtype(tensor["dtype"])
    if q is None:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    scale = np.asarray(q["scale"], np.float32)
    zero_point = np.asarray(q["zero_point"], np.float32)
    flat = x.reshape(len(x), -1)
    quantized = np.clip(np.round(flat / scale + zero_point), info.min, info.max)
    return quantized.astype(dtype).reshape(x.shape)


def dequantize(y: np.ndarray, tensor: dict) -> np.ndarray:
    q = tensor["quantization"]
    if q is None:
        return y.astype(np.float32)
    return (y.astype(np.float32) - q["zero_point"]) * q["scale"]


def classify(export_dir: Path, x: np.ndarray, variant: str = "int8") -> list[tuple[str, float]]:
    """(label, score) for every row of raw features ``x``."""
    manifest, art = load_artifact(export_dir, variant)
    interpreter = Interpreter(model_path=str(export_dir / art["file"]))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], [len(x), *inp["shape"][1:]])
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], quantize(x, art["inputs"][0]))
    interpreter.invoke()
    y = dequantize(interpreter.get_tensor(out["index"]), art["outputs"][0])
    labels, task = manifest["labels"], manifest["task"]
    if task == "regression":
        return [("value", float(v)) for v in y.reshape(-1)]
    if task == "binary":
        p = y.reshape(-1)
        return [(labels[int(v > 0.5)], float(v if v > 0.5 else 1 - v)) for v in p]
    return [(labels[int(i)], float(row[i])) for row, i in zip(y, y.argmax(1), strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("inputs", type=Path)
    parser.add_argument("--variant", default="int8")
    parser.add_argument("--limit", type=int, default=10)
    args = parser.parse_args()
    with np.load(args.inputs, allow_pickle=False) as data:
        x = data["x"][: args.limit].astype(np.float32)
    for i, (label, score) in enumerate(classify(args.export_dir, x, args.variant)):
        print(f"{i}: {label} ({score:.3f})")


if __name__ == "__main__":
    main()
