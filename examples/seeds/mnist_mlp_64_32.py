"""The seeds' smaller MNIST MLP (Dense 64, Dense 32, Dense 10), end to end, int8 for an MCU.

The same with the CLI:
    edgekit train models/mnist_mlp_64_32.toml --dataset ../shared/datasets/mnist.npz --out runs/m64
    edgekit export runs/m64 --quantize int8 --c-array
    edgekit bench runs/m64/export
"""

import _flow

import edgekit
from edgekit.bench import run_bench

args = _flow.options(__doc__, dataset="../shared/datasets/mnist.npz")
run = edgekit.train(
    _flow.RECIPES / "mnist_mlp_64_32.toml",
    dataset=args.dataset,
    epochs=args.epochs,
    out=args.out,
    force=True,
)
result = edgekit.export(run.path, quantize=["int8"], c_array=True, force=True)
_flow.report(run, result, run_bench([result.path]))
