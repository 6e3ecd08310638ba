"""The seeds' MNIST MLP (Flatten, Dense 128 relu, Dense 10 softmax, Adam, 5 epochs), end to end.

The same with the CLI:
    edgekit train models/mnist_mlp.toml --dataset ../shared/datasets/mnist.npz --out runs/mnist
    edgekit export runs/mnist --quantize float32,int8 --onnx
    edgekit bench runs/mnist/export --batch 1,32
"""

import _flow

import edgekit
from edgekit.bench import run_bench

args = _flow.options(__doc__, dataset="../shared/datasets/mnist.npz")
run = edgekit.train(
    _flow.RECIPES / "mnist_mlp.toml",
    dataset=args.dataset,
    epochs=args.epochs,
    out=args.out,
    force=True,
)
result = edgekit.export(run.path, quantize=["float32", "int8"], onnx=True, force=True)
_flow.report(run, result, run_bench([result.path], batch=[1, 32]))
