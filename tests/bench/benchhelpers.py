"""Helpers shared by the bench tests (imported as ``benchhelpers``)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import BENCH_HIDDEN as HIDDEN  # noqa: F401
from tests.conftest import cli, run_cli  # noqa: F401  (re-exported for the bench tests)

FEATURES = 64  # digits: 8x8 images
CLASSES = 10
# Keep the bench quick in tests: a handful of timed calls, no minimum time.
FAST = ["--warmup", "2", "--runs", "20", "--min-time", "0"]


def manifest(export: Path) -> dict:
    return json.loads((export / "manifest.json").read_text())


def write_manifest(export: Path, obj: dict) -> None:
    (export / "manifest.json").write_text(json.dumps(obj))


def rehash(export: Path, name: str) -> None:
    """Record the current sha256 of ``name`` in the manifest: a file bench must not refuse
    as changed since export (the tests that damage an artifact on purpose)."""
    import hashlib

    obj = manifest(export)
    digest = hashlib.sha256((export / name).read_bytes()).hexdigest()
    for art in obj["artifacts"]:
        if art["file"] == name:
            art["sha256"] = digest
    if name in obj.get("c_source", {}).get("sha256", {}):
        obj["c_source"]["sha256"][name] = digest
    write_manifest(export, obj)


def noisy_run(seed: int, n: int = 2000, scale: float = 1.0, p50: float = 0.05):
    """Per-call latencies (ms) of a noisy machine: log-normal jitter, 3% spikes of 2-10x and
    a slow drift of +-4% over the run; seeded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base = p50 * rng.lognormal(0.0, 0.25, n)
    spikes = rng.random(n) < 0.03
    base[spikes] *= rng.uniform(2, 10, spikes.sum())
    drift = 1 + 0.04 * np.sin(np.linspace(0, rng.uniform(1, 6), n) + rng.uniform(0, 6))
    return base * drift * scale


def corrupt_input_type(src: Path, dst: Path) -> Path:
    """A valid flatbuffer whose int8 input tensor claims to be float32.

    LiteRT accepts the file, then aborts the whole process (SIGABRT) while preparing the
    graph: a real crash from a corrupt model, which bench must isolate.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(src.read_bytes(), 0))
    graph = model.subgraphs[0]
    graph.tensors[int(graph.inputs[0])].type = schema.TensorType.FLOAT32
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst


# The CLI helpers are the suite's own (tests/conftest.py).
run_edgekit = run_cli
