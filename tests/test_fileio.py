"""Atomic writes and safe readers."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_text, load_json
from edgekit.outdirs import atomic_directory, point_symlink
from edgekit.runtime.base import TensorInfo


def test_atomic_directory_appears_whole_or_not_at_all(tmp_path):
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "out") as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(tmp_path / "out") as tmp:
        (tmp / "whole.bin").write_bytes(b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (tmp_path / "out" / "whole.bin").read_bytes() == b"x"


def test_atomic_directory_force_replaces_only_when_complete(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "run.json").write_text('{"schema": "edgekit.run/1"}')
    (tmp_path / "out" / "model.keras").write_text("old")
    with (
        pytest.raises(EdgekitError, match="out already exists; pass --force"),
        atomic_directory(tmp_path / "out"),
    ):
        pass
    with pytest.raises(KeyboardInterrupt), atomic_directory(tmp_path / "out", force=True) as tmp:
        (tmp / "new").write_text("new")
        raise KeyboardInterrupt
    assert (tmp_path / "out" / "model.keras").read_text() == "old"
    with atomic_directory(tmp_path / "out", force=True) as tmp:
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_unwritable_parent_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")  # unwritable even for root
    with (
        pytest.raises(EdgekitError, match=r"cannot write to .*file"),
        atomic_directory(tmp_path / "file" / "out"),
    ):
        pass


def test_atomic_write_and_symlink(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    assert (tmp_path / "a.txt").read_text() == "two"
    (tmp_path / "r1").mkdir()
    (tmp_path / "r2").mkdir()
    point_symlink(tmp_path / "runs" / "latest", tmp_path / "r1")
    point_symlink(tmp_path / "runs" / "latest", tmp_path / "r2")
    assert (tmp_path / "runs" / "latest").resolve() == (tmp_path / "r2").resolve()
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["latest"]


def test_load_json_errors(tmp_path):
    with pytest.raises(EdgekitError, match=r"nope.json: no such file"):
        load_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(EdgekitError, match=r"bad.json: not a valid JSON file"):
        load_json(tmp_path / "bad.json")


def test_int8_quantize_round_trip():
    info = TensorInfo("x", [-1, 3], "int8", {"scale": 0.5, "zero_point": -10})
    q = info.quantize(np.array([[0.0, 1.0, 1000.0]]))
    np.testing.assert_array_equal(q, [[-10, -8, 127]])  # clipped to the int8 range
    np.testing.assert_allclose(info.dequantize(q), [[0.0, 1.0, 68.5]])
    u = TensorInfo("x", [-1, 1], "uint8", {"scale": 0.25, "zero_point": 128})
    np.testing.assert_array_equal(u.quantize(np.array([[-40.0]])), [[0]])


def test_scratch_tempdir_catches_library_temporary_files_and_is_removed(tmp_path):
    """Keras's saving calls tempfile.mkdtemp(); an interrupt there left a tmp* directory in
    $TMPDIR. Inside scratch_tempdir it lands in a directory edgekit removes."""
    import tempfile

    from edgekit.outdirs import scratch_tempdir

    before = tempfile.gettempdir()
    with scratch_tempdir(tmp_path / ".scratch") as scratch:
        made = tempfile.mkdtemp()
        assert made.startswith(str(scratch))
    assert not (tmp_path / ".scratch").exists()
    assert tempfile.gettempdir() == before
