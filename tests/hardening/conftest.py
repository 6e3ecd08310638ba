"""Fixtures for the hardening tests: private copies of a trained run and a small export,
a directory nothing can be written to, and checks for leftovers and stray workers."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

# What a small export directory keeps of the session's full digits export.
SMALL_EXPORT = ("model.float32.tflite", "model.int8.tflite", "model.float32.onnx")


@pytest.fixture(scope="session")
def small_export_dir(digits_export, tmp_path_factory) -> Path:
    """float32 + int8 TFLite and float32 ONNX of the digits run, with manifest and test.npz."""
    src = digits_export.path
    dst = tmp_path_factory.mktemp("small") / "export"
    dst.mkdir()
    for name in (*SMALL_EXPORT, "test.npz"):
        shutil.copy(src / name, dst / name)
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["file"] in SMALL_EXPORT]
    manifest.pop("c_source", None)
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return dst


@pytest.fixture(scope="session")
def lambda_model(tmp_path_factory) -> Path:
    """A ``.keras`` model with a Lambda layer: Python code that safe mode must not run."""
    import keras

    inputs = keras.Input((4,), name="features")
    doubled = keras.layers.Lambda(lambda t: t * 2.0, name="doubled")(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(doubled)
    path = tmp_path_factory.mktemp("lambda") / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def copy_run(run, dst: Path) -> Path:
    """A private copy of a trained run directory (without its export), free to damage."""
    shutil.copytree(run.path, dst, ignore=shutil.ignore_patterns("export"))
    return dst


def readonly_dir(base: Path) -> Path:
    """A directory in which creating anything fails, for root too.

    Permission bits do not stop root, so as root this is ``/sys`` (sysfs refuses new
    entries); otherwise a directory with mode 0555.
    """
    if os.geteuid() != 0:
        ro = base / "read-only"
        ro.mkdir()
        ro.chmod(0o555)
        return ro
    if sys.platform.startswith("linux") and Path("/sys/kernel").is_dir():
        return Path("/sys")
    pytest.skip("no directory is read-only for root here")


def leftovers(*roots: Path) -> list[Path]:
    """Temporary files and directories of atomic writes (``.NAME.*.tmp`` / ``.old``)."""
    found = []
    for root in roots:
        for path in Path(root).rglob(".*"):
            if path.name.endswith((".tmp", ".old")):
                found.append(path)
    return found


def bench_workers(tag: str) -> list[int]:
    """Running ``edgekit.bench.worker`` processes whose environment holds ``tag`` (set in
    the bench under test, inherited by its workers; zombies excluded)."""
    marker = tag.encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"edgekit.bench.worker" in cmdline and state != "Z" and marker in environ:
            pids.append(int(entry.name))
    return pids
