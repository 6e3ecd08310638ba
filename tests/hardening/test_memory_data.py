"""Data files under 1 MB cannot make edgekit allocate gigabytes (issue 13).

An ``.npz`` is a zip: its members' sizes are checked from the zip directory (together at most
32x the file, or 32 MiB) and every ``.npy`` header against its member before anything is
read, by every command that takes one (``predict``, ``bench --data``, ``export --data``). What
passes those checks is bounded: a file under 1 MB unpacks to at most ~32 MB, and the commands
stay within 500 MB of what they need for a small file; ``predict``, whose rows cost a few
hundred bytes each, refuses millions of them in one line rather than take gigabytes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from tests.conftest import cli
from tests.hardening.memory_files import (
    LIMIT_MB,
    MB,
    compressed_npz,
    peak_mb,
    save_tiny_keras,
)
from tests.hardening.test_hostile_files import deflate_bomb, first_line, npy_declaring, zip_of


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The tiny 4 -> 6 -> 3 model, its .tflite, a small data file and hostile ones."""
    import edgekit

    base = tmp_path_factory.mktemp("data")
    model = save_tiny_keras(base / "tiny.keras")
    rng = np.random.default_rng(0)
    np.savez(base / "small.npz", x=rng.normal(size=(200, 4)).astype(np.float32),
             y=rng.integers(0, 3, 200))  # fmt: skip
    export = edgekit.export(model, data=base / "small.npz", out=base / "export")
    bomb = deflate_bomb(base / "bomb.npz", "x.npy",
                        b"\x93NUMPY\x02\x00" + (1 << 30).to_bytes(4, "little"), 900 * MB)  # fmt: skip
    (base / "header.npz").write_bytes(zip_of({"x.npy": npy_declaring((10**6, 10**6))}))
    return {
        "model": model,
        "tflite": Path(export.path) / "model.float32.tflite",
        "small": base / "small.npz",
        "bomb": bomb,
        "header": base / "header.npz",
        "zeros": compressed_npz(base / "zeros.npz", 1_300_000, features=4),  # 31.6 MB
    }


def _commands(files: dict[str, Path], data: Path, out: Path) -> dict[str, tuple[str, ...]]:
    return {
        "predict": ("predict", str(files["tflite"]), str(data), "--out", str(out) + ".csv"),
        "bench": ("bench", str(files["tflite"]), "--data", str(data), "--runs", "3"),
        "export": ("export", str(files["model"]), "--data", str(data), "--out", str(out)),
    }


@pytest.mark.parametrize("command", ["predict", "bench", "export"])
@pytest.mark.parametrize("case", ["bomb", "header"])
def test_every_command_refuses_a_hostile_npz_in_one_line(files, tmp_path, command, case):
    argv = _commands(files, files[case], tmp_path / "out")[command]
    code, _, err = cli(*argv)
    assert code == 2 and err.count("\n") == 1, err
    if case == "bomb":
        assert err.startswith(f"edgekit: error: {files[case]}: refused: an .npz whose members "
                              "unpack to 900.0 MiB from ")  # fmt: skip
    else:
        assert err.startswith(f"edgekit: error: {files[case]}: not a valid .npz file (x.npy: its "
                              "header declares 1000000x1000000 x 4 bytes = 4,000,000,000,000 "
                              "bytes, the member holds 16)")  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_weights_in_an_npz_inside_a_keras_file_are_checked(files, tmp_path):
    """A ``.keras`` may hold ``model.weights.npz``; its size is the member's, not a file's."""
    from edgekit.formats.keras_file import check_keras_file

    with zipfile.ZipFile(files["model"]) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members.pop("model.weights.h5")
    weights = io.BytesIO()
    np.savez(weights, **{f"w{i}": np.zeros(8, np.float32) for i in range(4)})
    members["model.weights.npz"] = weights.getvalue()
    path = tmp_path / "npz-weights.keras"
    path.write_bytes(zip_of(members))
    assert check_keras_file(path)["class_name"] == "Functional"
    members["model.weights.npz"] = zip_of({"w.npy": npy_declaring((10**6,))})
    path.write_bytes(zip_of(members))
    with pytest.raises(EdgekitError) as info:
        check_keras_file(path)
    assert first_line(info.value).startswith(f"{path}:model.weights.npz: not a valid .npz file (")


def test_predict_refuses_more_rows_than_its_allowance(files, monkeypatch):
    """1.3 million samples of zeros in a file under 1 MB: ~500 MB of rows, about what the
    default allowance is. With a 16 MiB floor they are refused in one line, not half-built."""
    import edgekit.predict.api as api

    monkeypatch.setattr(api, "PREDICT_FLOOR_BYTES", 16 * MB)
    code, stdout, err = cli("predict", str(files["tflite"]), str(files["zeros"]))
    assert (code, stdout) == (2, "") and err.count("\n") == 1, err
    allowance = api.predict_allowance(files["tflite"], files["zeros"])
    assert allowance < 64 * MB
    assert err == (
        f"edgekit: error: {files['tflite']}: refused: predicting on {files['zeros']} needed "
        f"more than the {allowance / MB:.1f} MiB of memory edgekit allows for a model and an "
        "input of their size (the model's tensors, or the number of samples, far exceed the "
        "files)\n"
    )


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_peak_memory_on_hostile_data_stays_within_500_mb_of_a_small_file(files, tmp_path):
    for command in ("predict", "bench", "export"):
        small = _commands(files, files["small"], tmp_path / f"{command}-small")[command]
        code, base, err = peak_mb(*small, cwd=tmp_path)
        assert code == 0, err[-2000:]
        for case, want in (("bomb", {2}), ("zeros", {0, 2} if command == "predict" else {0})):
            argv = _commands(files, files[case], tmp_path / f"{command}-{case}")[command]
            code, peak, err = peak_mb(*argv, cwd=tmp_path)
            assert code in want, (argv, err[-2000:])
            assert code == 0 or (err.count("\n") == 1 and "refused" in err), err
            assert peak < base + LIMIT_MB, (argv, peak, base)
            print(f"edgekit {command} {case}.npz: exit {code}, {peak:.0f} MB "
                  f"(small.npz: {base:.0f} MB)")  # fmt: skip
