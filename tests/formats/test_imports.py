"""The formats layer is light: importing it loads neither numpy nor TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

LIGHT = [
    "edgekit.formats.manifest",
    "edgekit.formats.run_dir",
    "edgekit.formats.npz",
    "edgekit.formats.onnx_wire",
    "edgekit.formats.onnx_layers",
    "edgekit.formats.arena",
    "edgekit.formats.keras_file",
    "edgekit",
    "edgekit.bench",
    "edgekit.runtime",
    "edgekit.exporters",
    "edgekit.trainer",
    "edgekit.data",
    "edgekit.estimate",
    "edgekit.inspect",
    "edgekit.report",
    "edgekit.devices",
]


@pytest.mark.parametrize("module", LIGHT)
def test_importing_loads_no_numpy(module):
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in ('numpy', 'tensorflow', 'keras', 'onnxruntime') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_lazy_packages_still_list_and_load_their_names():
    import edgekit.formats.run_dir
    import edgekit.runtime

    assert "open_runner" in dir(edgekit.runtime)
    assert edgekit.runtime.open_runner.__module__ == "edgekit.runtime.registry"
    from edgekit.trainer import Run

    assert Run is edgekit.formats.run_dir.Run
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = edgekit.runtime.nope  # type: ignore[attr-defined]
