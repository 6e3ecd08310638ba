"""Scale-out on tf.distribute: MirroredStrategy locally, and two real workers on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import subprocess
import sys

import pytest

import edgekit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mirrored_strategy_trains(tmp_path):
    run = edgekit.train(dataset="synthetic", hidden=[16], epochs=10, distribute="mirrored", out="m")
    assert run.info["training"]["distribute"] == "mirrored"
    assert run.metrics["test"]["accuracy"] >= 0.75


@pytest.mark.slow
def test_two_workers_train_one_model(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    procs = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "edgekit",
                    "train",
                    "--dataset",
                    "synthetic",
                    "--hidden",
                    "16",
                    "--epochs",
                    "8",
                    "--distribute",
                    "multi-worker",
                    "--out",
                    "mw",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=tmp_path,
            )
        )
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        outputs.append(out)
    chief, worker = outputs
    assert "run directory:" in chief and "worker finished" in worker
    # All-reduced gradients keep the replicas identical: both evaluate the same weights.
    chief_test = re.search(r"test \(200 samples\): (.*)", chief).group(1)
    worker_test = re.search(r"test: (.*)", worker).group(1)
    assert chief_test == worker_test
    info = json.loads((tmp_path / "mw" / "run.json").read_text())
    assert info["training"]["distribute"] == "multi-worker"
    assert info["metrics"]["test"]["accuracy"] >= 0.75
    with open(tmp_path / "mw" / "history.csv") as fh:
        losses = [float(row["loss"]) for row in csv.DictReader(fh)]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert edgekit.export(tmp_path / "mw", out=tmp_path / "e").passed
