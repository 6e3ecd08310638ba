"""The seeds' binary classifier on make_classification (Dense 64, Dense 32, Dense 1 sigmoid).

The same with the CLI:
    edgekit train models/binary_mlp.toml --out runs/binary
    edgekit export runs/binary --quantize all --onnx --onnx-quantize dynamic
    edgekit bench runs/binary/export --budget "accuracy_drop<=1"
"""

import _flow

import edgekit
from edgekit.bench import run_bench

args = _flow.options(__doc__, dataset=None)
run = edgekit.train(_flow.RECIPES / "binary_mlp.toml", epochs=args.epochs, out=args.out, force=True)
result = edgekit.export(
    run.path, quantize=["all"], onnx=True, onnx_quantize=["dynamic"], force=True
)
_flow.report(run, result, run_bench([result.path], budgets=["accuracy_drop<=1"]))
