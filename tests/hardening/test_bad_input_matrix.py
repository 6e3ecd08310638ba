"""The bad-input matrix: every command, fed missing, empty, truncated, corrupt and foreign
files, bad data and absurd flags.

Every case asserts the exit code (2: bad input, 1: a check failed), the one line on stderr that
names the problem, no traceback, and no partial output (the output does not exist and no
``.NAME.*.tmp`` is left anywhere). Most cases run in-process (``main()``); those marked
``sub`` run as real subprocesses, for what only a real process shows (a segfault, a traceback
printed by the interpreter).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest
from onnx.defs import onnx_opset_version

from tests.conftest import cli, run_cli
from tests.hardening import corrupt
from tests.hardening.conftest import copy_run, leftovers, readonly_dir

FAST = ("--warmup", "1", "--runs", "5", "--min-time", "0")
TRAIN = ("train", "--dataset", "synthetic", "--hidden", "2", "--epochs", "1")


class Ctx:
    """The test's working directory, with private copies of a run and an export on demand."""

    def __init__(self, request, tmp_path: Path) -> None:
        self.request = request
        self.dir = tmp_path

    @cached_property
    def run(self) -> Path:
        return copy_run(self.request.getfixturevalue("digits_run"), self.dir / "run")

    @cached_property
    def export(self) -> Path:
        src = self.request.getfixturevalue("small_export_dir")
        return Path(shutil.copytree(src, self.dir / "export"))

    @cached_property
    def ro(self) -> Path:
        return readonly_dir(self.dir)

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def manifest(self, edit: Callable[[dict], None]) -> None:
        path = self.export / "manifest.json"
        obj = json.loads(path.read_text())
        edit(obj)
        path.write_text(json.dumps(obj))


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # "{ro}" is replaced by a read-only directory
    code: int
    message: str  # must be in the last stderr line, "edgekit: error: ..."
    setup: Callable[[Ctx], object] | None = None
    needs: tuple[str, ...] = ()  # "run", "export": private copies made before the command
    absent: tuple[str, ...] = ()  # outputs that must not exist afterwards
    stdout: str = ""  # must be in stdout (exit 1: the table says what failed)
    sub: bool = False  # run as a real subprocess
    progress: bool = False  # bench printed progress lines on stderr before the error
    slow: bool = False  # trains a full model first
    env: tuple[tuple[str, str], ...] = ()  # environment variables for the command
    xfail: str | None = None  # a known bug in a file this suite does not own


# --- small builders -----------------------------------------------------------------------


def text(name: str, content: str | bytes):
    return lambda ctx: ctx.write(name, content)


def npz(name: str, **arrays):
    return lambda ctx: ctx.write(name, corrupt.npz_bytes(**arrays))


def pickled(name: str):
    return lambda ctx: ctx.write(name, corrupt.npz_bytes(x=np.array([[1, "a"]], dtype=object)))


def half_of(src: Callable[[Ctx], Path], name: str | None = None):
    """``src`` cut in half (in place, or into ``name``)."""

    def setup(ctx: Ctx) -> None:
        path = src(ctx)
        data = path.read_bytes()
        (ctx.dir / name if name else path).write_bytes(data[: len(data) // 2])

    return setup


def copy_of(src: Callable[[Ctx], Path], name: str):
    return lambda ctx: shutil.copy(src(ctx), ctx.dir / name)


def in_run(rel: str, content: bytes | str | Callable[[], bytes]):
    def setup(ctx: Ctx) -> None:
        data = content() if callable(content) else content
        path = ctx.run / rel
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)

    return setup


def in_export(rel: str, content: bytes | str):
    def setup(ctx: Ctx) -> None:
        path = ctx.export / rel
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    return setup


def manifest(edit: Callable[[dict], None]):
    return lambda ctx: ctx.manifest(edit)


def first_artifact(**fields):
    return manifest(lambda m: m["artifacts"][0].update(fields))


def both(*setups):
    def setup(ctx: Ctx) -> None:
        for s in setups:
            s(ctx)

    return setup


def symlink_out(ctx: Ctx) -> None:
    outside = ctx.write("outside.tflite", (ctx.export / "model.float32.tflite").read_bytes())
    (ctx.export / "evil.tflite").symlink_to(outside)
    ctx.manifest(lambda m: m["artifacts"][0].update(file="evil.tflite"))


def tflite(ctx: Ctx) -> Path:
    return ctx.export / "model.float32.tflite"


def onnx(ctx: Ctx) -> Path:
    return ctx.export / "model.float32.onnx"


def bench_json(name: str, **row_fields):
    row = {
        "artifact": "model.float32.tflite", "variant": "float32", "runtime": "tflite",
        "device": "cpu", "threads": 1, "batch": 1, "status": "ok",
        "latency_ms": {"p50": 0.01, "p95": 0.02}, "samples_ms": [0.01] * 20,
    }  # fmt: skip
    row.update(row_fields)
    return text(name, json.dumps({"schema": "edgekit.bench/1", "results": [row]}))


GOOD_BENCH = bench_json("good.json")
X = np.zeros((5, 8, 8), np.float32)
Y = np.arange(5) % 10

# --- the matrix ---------------------------------------------------------------------------

CASES = [
    # train: CSV
    Case("train-csv-missing", ("train", "--dataset", "missing.csv"), 2,
         "missing.csv: no such file", absent=("runs",)),
    Case("train-csv-empty", ("train", "--dataset", "empty.csv"), 2,
         "empty.csv: the CSV file is empty", text("empty.csv", ""), absent=("runs",)),
    Case("train-csv-header-only", ("train", "--dataset", "h.csv"), 2,
         "h.csv: the CSV file has a header but no data rows", text("h.csv", "a,b,y\n")),
    Case("train-csv-truncated", ("train", "--dataset", "cut.csv"), 2,
         "cut.csv: line 4 has 2 fields, the header has 3",
         text("cut.csv", "a,b,y\n1,2,0\n3,4,1\n5,")),
    Case("train-csv-corrupt-bytes", ("train", "--dataset", "bin.csv"), 2,
         "bin.csv: not a UTF-8 text CSV file", text("bin.csv", b"a,b\n\xff\xfe\x00\x9c\n")),
    Case("train-csv-nan", ("train", "--dataset", "nan.csv"), 2,
         "nan.csv: line 2, column 'b' is nan", text("nan.csv", "a,b,y\n1,nan,0\n3,4,1\n")),
    Case("train-csv-inf", ("train", "--dataset", "inf.csv"), 2,
         "inf.csv: line 3, column 'a' is -inf", text("inf.csv", "a,b,y\n1,2,0\n-inf,4,1\n")),
    Case("train-csv-text-feature", ("train", "--dataset", "t.csv"), 2,
         "t.csv: line 2, column 'b': 'high' is not a number (feature columns must be numeric)",
         text("t.csv", "a,b,y\n1,high,0\n3,4,1\n")),
    Case("train-csv-single-class", ("train", "--dataset", "one.csv"), 2,
         "one.csv: the target has a single class ('1'); classification needs at least two",
         text("one.csv", "a,b,y\n1,2,1\n3,4,1\n")),
    Case("train-csv-no-such-column", ("train", "--dataset", "ok.csv", "--target", "label"), 2,
         "ok.csv: no column named 'label'; columns are a, b, y",
         text("ok.csv", "a,b,y\n1,2,0\n3,4,1\n")),
    Case("train-wrong-format", ("train", "--dataset", "data.parquet"), 2,
         "data.parquet: unsupported dataset file type '.parquet'; use .csv or .npz",
         text("data.parquet", b"PAR1")),
    # train: NPZ
    Case("train-npz-missing", ("train", "--dataset", "missing.npz"), 2,
         "missing.npz: no such file"),
    Case("train-npz-empty", ("train", "--dataset", "e.npz"), 2,
         "e.npz: not a valid .npz file (not a zip archive)", text("e.npz", b"")),
    Case("train-npz-truncated", ("train", "--dataset", "cut.npz"), 2,
         "cut.npz: not a valid .npz file",
         half_of(lambda ctx: ctx.write("cut.npz", corrupt.npz_bytes(x=X, y=Y)))),
    Case("train-npz-not-npy", ("train", "--dataset", "z.npz"), 2,
         "z.npz: not a valid .npz file",
         text("z.npz", corrupt.zip_bytes({"x.npy": b"not an array", "y.npy": b"nor this"}))),
    Case("train-npz-pickle", ("train", "--dataset", "p.npz"), 2,
         "p.npz: holds pickled objects, which edgekit refuses to load", pickled("p.npz")),
    Case("train-npz-nan", ("train", "--dataset", "n.npz"), 2, "n.npz: x contains NaN or inf",
         npz("n.npz", x=np.array([[1.0, np.nan], [2.0, 3.0]]), y=np.array([0, 1]))),
    # one line only: numpy's "overflow encountered in cast" warning came first, before the fix
    Case("train-npz-beyond-float32", ("train", "--dataset", "big.npz"), 2,
         "big.npz: x contains NaN or inf",
         npz("big.npz", x=np.full((4, 2), 1e300), y=np.array([0, 1, 0, 1])), sub=True),
    Case("train-npz-inf-target", ("train", "--dataset", "i.npz"), 2,
         "i.npz: the targets contain NaN or inf",
         npz("i.npz", x=np.ones((4, 2)), y=np.array([0.5, 1.5, np.inf, 2.5]))),
    Case("train-npz-string-features", ("train", "--dataset", "s.npz"), 2,
         "s.npz: x must be numeric, got dtype <U1",
         npz("s.npz", x=np.array([["a", "b"], ["c", "d"]]), y=np.array([0, 1]))),
    Case("train-npz-wrong-keys", ("train", "--dataset", "k.npz"), 2,
         "k.npz: expected arrays x and y, or x_train, y_train, x_test and y_test; found a, b",
         npz("k.npz", a=np.ones((4, 2)), b=np.zeros(4))),
    Case("train-npz-wrong-shape", ("train", "--dataset", "v.npz"), 2,
         "v.npz: x must have samples along its first axis and at least one feature; got shape "
         "[4]", npz("v.npz", x=np.ones(4), y=np.array([0, 1, 0, 1]))),
    Case("train-npz-label-count", ("train", "--dataset", "l.npz"), 2,
         "l.npz: targets must be one value per sample: got shape [2] for 4 samples",
         npz("l.npz", x=np.ones((4, 2)), y=np.array([0, 1]))),
    Case("train-npz-feature-count", ("train", "--dataset", "f.npz"), 2,
         "f.npz: x_test has feature shape [3], but x has [2]",
         npz("f.npz", x_train=np.ones((4, 2)), y_train=np.array([0, 1, 0, 1]),
             x_test=np.ones((4, 3)), y_test=np.array([0, 1, 0, 1]))),
    Case("train-npz-single-class", ("train", "--dataset", "o.npz"), 2,
         "o.npz: the target has a single class ('0'); classification needs at least two",
         npz("o.npz", x=np.ones((4, 2)), y=np.zeros(4, np.int64))),
    # train: flags and recipes
    Case("train-epochs-negative", ("train", "--epochs", "-1"), 2,
         "--epochs must be at least 1, got -1"),
    Case("train-batch-zero", ("train", "--batch-size", "0"), 2,
         "--batch-size must be at least 1, got 0"),
    Case("train-learning-rate-nan", ("train", "--learning-rate", "nan"), 2,
         "--learning-rate must be a finite number, got nan"),
    Case("train-dropout-one", ("train", "--dropout", "1"), 2,
         "--dropout must be in [0, 1), got 1.0"),
    Case("train-hidden-negative", ("train", "--hidden", "16,-8"), 2,
         "--hidden sizes must be positive integers, got 16,-8"),
    Case("train-task-unknown", ("train", "--task", "clustering"), 2,
         "Invalid value for '--task': 'clustering' is not one of"),
    Case("train-recipe-missing", ("train", "nope.toml"), 2, "nope.toml: no such recipe file"),
    Case("train-recipe-corrupt", ("train", "bad.toml"), 2, "bad.toml: not a valid TOML recipe",
         text("bad.toml", "hidden = [8\n")),
    Case("train-recipe-wrong-type", ("train", "r.toml"), 2,
         "r.toml: --epochs must be an integer, got 'ten'", text("r.toml", 'epochs = "ten"\n')),
    # a traceback before the fix (Path(5)): kept as a real process
    Case("train-recipe-dataset-number", ("train", "r.toml"), 2,
         "r.toml: --dataset must be a name or a path, got 5", text("r.toml", "dataset = 5\n"),
         sub=True),
    # a traceback from Keras after the dataset was loaded, before the fix
    Case("train-recipe-epochs-inf", ("train", "r.toml"), 2,
         "r.toml: --epochs must be an integer, got inf", text("r.toml", "epochs = inf\n")),
    # tracebacks (JSONDecodeError, AttributeError) before the fix, even without --distribute
    Case("train-tf-config-not-json", (*TRAIN, "--out", "o"), 2,
         "TF_CONFIG is not valid JSON (Expecting property name", env=(("TF_CONFIG", "{"),),
         absent=("o",)),
    Case("train-tf-config-not-an-object", (*TRAIN, "--out", "o"), 2,
         "TF_CONFIG must be a JSON object whose 'cluster' and 'task' are objects",
         env=(("TF_CONFIG", '{"task": []}'),), absent=("o",), sub=True),
    Case("train-out-parent-is-a-file", (*TRAIN, "--out", "file/run"), 2,
         "cannot write to file: not a directory", text("file", "x"), absent=("file/run",)),
    Case("train-out-read-only", (*TRAIN, "--out", "{ro}/edgekit-run"), 2, "cannot write to {ro}",
         absent=("{ro}/edgekit-run",)),
    Case("train-out-exists", (*TRAIN, "--out", "out"), 2,
         "out already exists; pass --force to overwrite it", text("out/keep", "mine")),
    # export: model files
    Case("export-keras-missing", ("export", "nothing.keras"), 2,
         "nothing.keras: no such file or directory"),
    Case("export-keras-empty", ("export", "e.keras"), 2,
         "e.keras: not a .keras model file (corrupt or of another format)", text("e.keras", b""),
         absent=("e_export",)),
    Case("export-keras-truncated", ("export", "run", "--out", "o"), 2,
         "run/model.keras: not a .keras model file (corrupt or of another format)",
         half_of(lambda ctx: ctx.run / "model.keras"), absent=("o",)),
    Case("export-keras-foreign-zip", ("export", "z.keras"), 2,
         "z.keras: cannot load the model (KeyError: \"There is no item named 'config.json'",
         text("z.keras", corrupt.zip_bytes({"hello.txt": b"hi"})), absent=("z_export",)),
    Case("export-keras-lambda", ("export", "lambda.keras"), 2,
         "lambda.keras: refused: the model contains a Lambda layer, whose Python code edgekit "
         "will not run (safe mode)",
         lambda ctx: shutil.copy(ctx.request.getfixturevalue("lambda_model"), ctx.dir),
         absent=("lambda_export",)),
    Case("export-wrong-format", ("export", "run/history.csv"), 2,
         "run/history.csv: export takes a run directory, a .keras or .h5 model file, or a SavedModel "
         "directory", needs=("run",)),
    # export: the run directory
    Case("export-run-json-corrupt", ("export", "run", "--out", "o"), 2,
         "run/run.json: not a valid run.json", in_run("run.json", "{"), absent=("o",)),
    Case("export-run-json-wrong-schema", ("export", "run", "--out", "o"), 2,
         "run/run.json: not an edgekit run (schema edgekit.run/1 expected)",
         in_run("run.json", '{"schema": "edgekit.export/1"}'), absent=("o",)),
    Case("export-test-npz-truncated", ("export", "run", "--out", "o"), 2,
         "run/data/test.npz: not a valid .npz file",
         half_of(lambda ctx: ctx.run / "data/test.npz"), absent=("o",)),
    Case("export-test-npz-pickle", ("export", "run", "--out", "o"), 2,
         "run/data/test.npz: holds pickled objects, which edgekit refuses to load",
         in_run("data/test.npz", lambda: corrupt.npz_bytes(x=np.array([[1]], dtype=object))),
         absent=("o",)),
    Case("export-calibration-pickle", ("export", "run", "--quantize", "int8", "--out", "o"), 2,
         "run/data/calibration.npz: holds pickled objects, which edgekit refuses to load",
         in_run("data/calibration.npz",
                lambda: corrupt.npz_bytes(x=np.array([[1]], dtype=object))), absent=("o",)),
    Case("export-test-feature-count", ("export", "run", "--out", "o"), 2,
         "test data has feature shape [3], the model takes [8, 8]",
         in_run("data/test.npz", lambda: corrupt.npz_bytes(x=np.ones((5, 3), np.float32),
                                                           y=Y)), absent=("o",)),
    # exit 1 ("validation failed") on meaningless numbers, before the fix
    Case("export-test-nan", ("export", "run", "--out", "o"), 2,
         "run/data/test.npz: 'x' contains NaN, inf or values too large for float32",
         in_run("data/test.npz", lambda: corrupt.npz_bytes(x=X + np.nan, y=Y)), absent=("o",)),
    # tracebacks before the fix
    Case("export-test-label-count", ("export", "run", "--out", "o"), 2,
         "run/data/test.npz: 'y' must hold one number per sample of 'x' (5), got int64 [3]",
         in_run("data/test.npz", lambda: corrupt.npz_bytes(x=X, y=Y[:3])), absent=("o",)),
    Case("export-test-empty", ("export", "run", "--out", "o"), 2,
         "run/data/test.npz: 'x' must be a non-empty numeric array of shape [samples, "
         "features...], got float32 [0, 8, 8]",
         in_run("data/test.npz", lambda: corrupt.npz_bytes(x=X[:0], y=Y[:0])), absent=("o",)),
    # silently replaced by random inputs before the fix
    Case("export-test-without-x", ("export", "run", "--out", "o"), 2,
         "run/data/test.npz: no array 'x' (the test inputs); it has y",
         in_run("data/test.npz", lambda: corrupt.npz_bytes(y=Y)), absent=("o",)),
    # a segfault of the TFLite converter (the whole process) before the fix
    Case("export-calibration-inf", ("export", "run", "--quantize", "int8", "--out", "o"), 2,
         "run/data/calibration.npz: 'x' contains NaN, inf or values too large for float32",
         in_run("data/calibration.npz", lambda: corrupt.npz_bytes(x=X + np.inf)),
         absent=("o",), sub=True),
    Case("export-test-beyond-float32", ("export", "run", "--out", "o"), 2,
         "run/data/test.npz: 'x' contains NaN, inf or values too large for float32",
         in_run("data/test.npz", lambda: corrupt.npz_bytes(x=np.full((5, 8, 8), 1e300), y=Y)),
         absent=("o",)),
    Case("export-calibration-feature-count",
         ("export", "run", "--quantize", "int8", "--out", "o"), 2,
         "calibration data has feature shape [3], the model takes [8, 8]",
         in_run("data/calibration.npz", lambda: corrupt.npz_bytes(x=np.ones((5, 3)))),
         absent=("o",)),
    # export: flags and outputs
    Case("export-opset-too-high", ("export", "run", "--onnx", "--opset", "99", "--out", "o"), 2,
         f"--opset must be between 13 and {onnx_opset_version()} (the installed onnx), got 99", needs=("run",), absent=("o",)),
    Case("export-opset-negative", ("export", "run", "--onnx", "--opset", "-1", "--out", "o"), 2,
         f"--opset must be between 13 and {onnx_opset_version()} (the installed onnx), got -1", needs=("run",), absent=("o",)),
    Case("export-calibration-samples-negative",
         ("export", "run", "--quantize", "int8", "--calibration-samples", "-5", "--out", "o"), 2,
         "--calibration-samples must be at least 1, got -5", needs=("run",), absent=("o",)),
    Case("export-atol-nan", ("export", "run", "--atol", "nan", "--out", "o"), 2,
         "--atol must be non-negative, got nan", needs=("run",), absent=("o",)),
    Case("export-max-drop-negative", ("export", "run", "--max-accuracy-drop", "-5", "--out", "o"),
         2, "--max-accuracy-drop must be non-negative, got -5.0", needs=("run",), absent=("o",)),
    Case("export-unknown-variant", ("export", "run", "--quantize", "int4", "--out", "o"), 2,
         "unknown variant 'int4'; choose from float32, float16, dynamic, int8, int16x8, auto or all",
         needs=("run",), absent=("o",)),
    Case("export-c-prefix-invalid",
         ("export", "run", "--c-source", "float32", "--c-prefix", "my model", "--out", "o"), 2,
         "--c-prefix must be a C identifier", needs=("run",), absent=("o",)),
    Case("export-out-parent-is-a-file", ("export", "run", "--out", "file/o"), 2,
         "cannot write to file: not a directory", text("file", "x"), needs=("run",),
         absent=("file/o",)),
    Case("export-out-read-only", ("export", "run", "--out", "{ro}/edgekit-export"), 2,
         "cannot write to {ro}", needs=("run",), absent=("{ro}/edgekit-export",)),
    Case("export-out-exists", ("export", "run", "--out", "o"), 2,
         "o already exists; pass --force to overwrite it", text("o/keep", "x"), needs=("run",)),
    Case("export-validation-fails", ("export", "run", "--atol", "0", "--out", "o"), 1,
         "validation failed for float32", needs=("run",), stdout="NO (max_abs_diff <= 0)",
         progress=True),
    # bench: artifact files (a runtime that cannot load one is an error row: exit 1)
    Case("bench-missing", ("bench", "nope.tflite"), 2, "nope.tflite: no such file or directory"),
    Case("bench-wrong-format", ("bench", "m.pt"), 2,
         "m.pt: unknown artifact type '.pt'; edgekit benchmarks", text("m.pt", b"x")),
    Case("bench-tflite-empty", ("bench", "e.tflite", *FAST), 1, "1 measurement(s) failed",
         text("e.tflite", b""), stdout="not a TensorFlow Lite flatbuffer", progress=True),
    Case("bench-tflite-truncated", ("bench", "cut.tflite", *FAST), 1, "1 measurement(s) failed",
         half_of(tflite, "cut.tflite"), stdout="cannot load the TFLite model", progress=True),
    Case("bench-tflite-foreign", ("bench", "png.tflite", *FAST), 1, "1 measurement(s) failed",
         text("png.tflite", b"\x89PNG\r\n\x1a\n" + bytes(64)),
         stdout="not a TensorFlow Lite flatbuffer", progress=True),
    Case("bench-onnx-truncated", ("bench", "cut.onnx", *FAST), 1, "1 measurement(s) failed",
         half_of(onnx, "cut.onnx"), stdout="cannot load the ONNX model", progress=True),
    Case("bench-onnx-foreign", ("bench", "t.onnx", *FAST), 1, "1 measurement(s) failed",
         copy_of(tflite, "t.onnx"), stdout="cannot load the ONNX model", progress=True),
    # bench: manifest.json
    Case("bench-manifest-empty", ("bench", "export"), 2,
         "export/manifest.json: not a valid manifest.json", in_export("manifest.json", "")),
    Case("bench-manifest-truncated", ("bench", "export"), 2,
         "export/manifest.json: not a valid manifest.json",
         half_of(lambda ctx: ctx.export / "manifest.json")),
    Case("bench-manifest-wrong-schema", ("bench", "export"), 2,
         "export/manifest.json: not an edgekit export manifest",
         in_export("manifest.json", '{"schema": "edgekit.bench/1", "results": []}')),
    Case("bench-manifest-bad-task", ("bench", "export"), 2,
         "export/manifest.json: task 'clustering' is not one of binary, multiclass, regression",
         manifest(lambda m: m.update(task="clustering"))),
    Case("bench-manifest-lists-missing-file", ("bench", "export"), 2,
         "export/manifest.json: lists gone.tflite, which does not exist",
         first_artifact(file="gone.tflite")),
    Case("bench-manifest-escape-dotdot", ("bench", "export"), 2,
         "export/manifest.json: artifact file '../outside.tflite' points outside export",
         both(text("outside.tflite", b"TFL3"), first_artifact(file="../outside.tflite")),
         sub=True),
    Case("bench-manifest-escape-absolute", ("bench", "export"), 2,
         "export/manifest.json: artifact file '/etc/hostname' points outside export",
         first_artifact(file="/etc/hostname")),
    Case("bench-manifest-escape-symlink", ("bench", "export"), 2,
         "export/manifest.json: artifact file 'evil.tflite' points outside export", symlink_out),
    Case("bench-manifest-nul-byte", ("bench", "export"), 2,
         "export/manifest.json: artifact file 'a\\x00b.tflite'", first_artifact(file="a\0b.tflite")),
    # bench: test data
    Case("bench-test-npz-pickle", ("bench", "export"), 2,
         "export/test.npz: holds pickled objects, which edgekit refuses to load",
         in_export("test.npz", corrupt.npz_bytes(x=np.array([[1]], dtype=object)))),
    Case("bench-test-npz-truncated", ("bench", "export"), 2,
         "export/test.npz: not a valid .npz file",
         half_of(lambda ctx: ctx.export / "test.npz")),
    Case("bench-data-missing", ("bench", "export", "--data", "nope.npz"), 2,
         "nope.npz: no such file", needs=("export",)),
    # measured as if fine before the fix (NaN accuracy and latency of NaN inputs)
    Case("bench-data-nan", ("bench", "export", "--data", "d.npz", *FAST), 2,
         "d.npz: 'x' contains NaN or inf", npz("d.npz", x=X + np.nan, y=Y), needs=("export",)),
    Case("bench-data-inf", ("bench", "export/model.int8.tflite", "--data", "d.npz", *FAST), 2,
         "d.npz: 'x' contains NaN or inf", npz("d.npz", x=X - np.inf, y=Y), needs=("export",)),
    Case("bench-data-pickle", ("bench", "export", "--data", "p.npz"), 2,
         "p.npz: holds pickled objects, which edgekit refuses to load",
         pickled("p.npz"), needs=("export",)),
    Case("bench-data-feature-count", ("bench", "export", "--data", "d.npz"), 2,
         "d.npz: 'x' has samples of shape [10], model.float32.tflite takes [batch, 8, 8]",
         npz("d.npz", x=np.zeros((5, 10), np.float32), y=Y), needs=("export",)),
    # error rows with a numpy broadcasting error, before the fix
    Case("bench-data-label-shape", ("bench", "export", "--data", "d.npz", *FAST), 2,
         "d.npz: 'y' must hold one label or target per sample, got shape [5, 2]",
         npz("d.npz", x=X, y=np.zeros((5, 2))), needs=("export",)),
    # an error row (the worker's traceback) before the fix
    Case("bench-data-truncated-array",
         ("bench", "export/model.float32.tflite", "--data", "d.npz", *FAST), 2,
         "d.npz: not a valid .npz file (x.npy: its header declares",
         text("d.npz", corrupt.npz_truncated_array()), needs=("export",)),
    Case("bench-data-unsupported-compression", ("bench", "export", "--data", "d.npz"), 2,
         "d.npz: not a valid .npz file",
         text("d.npz", corrupt.npz_unsupported_compression(x=X)), needs=("export",)),
    # bench: flags
    Case("bench-threads-zero", ("bench", "export", "--threads", "0"), 2,
         "--threads takes integers >= 1, got 0", needs=("export",)),
    Case("bench-batch-negative", ("bench", "export", "--batch", "-1"), 2,
         "--batch takes integers >= 1, got -1", needs=("export",)),
    Case("bench-runs-zero", ("bench", "export", "--runs", "0"), 2,
         "--runs takes an integer >= 1, got 0", needs=("export",)),
    Case("bench-warmup-negative", ("bench", "export", "--warmup", "-1"), 2,
         "--warmup takes an integer >= 0, got -1", needs=("export",)),
    Case("bench-repeat-zero", ("bench", "export", "--repeat", "0"), 2,
         "--repeat takes an integer >= 1, got 0", needs=("export",)),
    Case("bench-timeout-zero", ("bench", "export", "--timeout", "0"), 2,
         "--timeout takes seconds > 0, got 0.0", needs=("export",)),
    Case("bench-min-time-nan", ("bench", "export", "--min-time", "nan"), 2,
         "--min-time takes seconds >= 0 and below half the timeout", needs=("export",)),
    Case("bench-max-regression-negative", ("bench", "export", "--max-regression", "-5"), 2,
         "--max-regression must be a percentage >= 0, got -5.0", needs=("export",)),
    Case("bench-budget-not-a-number", ("bench", "export", "--budget", "p95_ms<=abc"), 2,
         "malformed --budget 'p95_ms<=abc': 'abc' is not a number", needs=("export",)),
    Case("bench-budget-unknown-metric", ("bench", "export", "--budget", "latency<1"), 2,
         "unknown metric 'latency' in --budget 'latency<1'", needs=("export",)),
    Case("bench-baseline-corrupt", ("bench", "export", "--baseline", "b.json"), 2,
         "b.json: not a valid bench JSON file", text("b.json", "{"), needs=("export",)),
    Case("bench-baseline-wrong-schema", ("bench", "export", "--baseline", "export/manifest.json"),
         2, "export/manifest.json: not an edgekit bench file", needs=("export",)),
    # 2**32 threads: an error row (TypeError in the runtime's binding). 100000 would crash
    # LiteRT (SIGSEGV) and hang onnxruntime, which a test must not do to a shared machine.
    Case("bench-threads-absurd",
         ("bench", "export/model.float32.tflite", "--threads", "4294967296", *FAST), 2,
         "--threads", needs=("export",), progress=True),
    Case("bench-json-parent-is-a-file",
         ("bench", "export/model.float32.tflite", *FAST, "--json", "file/b.json"), 2,
         "cannot write file/b.json: Not a directory", text("file", "x"), needs=("export",),
         progress=True),
    Case("bench-markdown-read-only",
         ("bench", "export/model.float32.tflite", *FAST, "--markdown", "{ro}/b.md"), 2,
         "cannot write {ro}/b.md", needs=("export",), absent=("{ro}/b.md",), progress=True),
    Case("bench-budget-violated",
         ("bench", "export/model.float32.tflite", *FAST, "--budget", "size_kb<=0.001"), 1,
         "1 budget check(s) violated", needs=("export",), stdout="budget violations:",
         progress=True),
    # inspect
    Case("inspect-missing", ("inspect", "nope.tflite"), 2, "nope.tflite: no such file"),
    Case("inspect-directory", ("inspect", "export"), 2,
         "export: is a directory; inspect takes one .tflite, .onnx or .keras file",
         needs=("export",)),
    Case("inspect-tflite-empty", ("inspect", "e.tflite"), 2,
         "e.tflite: not a TensorFlow Lite flatbuffer", text("e.tflite", b"")),
    Case("inspect-tflite-truncated", ("inspect", "cut.tflite"), 2,
         "cut.tflite: cannot read the TFLite model", half_of(tflite, "cut.tflite")),
    Case("inspect-onnx-empty", ("inspect", "e.onnx"), 2,
         "e.onnx: not a valid ONNX model (no graph)", text("e.onnx", b"")),
    Case("inspect-onnx-truncated", ("inspect", "cut.onnx"), 2,
         "cut.onnx: not a valid ONNX model", half_of(onnx, "cut.onnx")),
    Case("inspect-onnx-foreign", ("inspect", "t.onnx"), 2, "t.onnx: not a valid ONNX model",
         copy_of(tflite, "t.onnx")),
    # MemoryError (or minutes of zero-filling) before the fix
    Case("inspect-onnx-varint-string", ("inspect", "v.onnx"), 2,
         "v.onnx: not a valid ONNX model (a string field has the wrong wire type)",
         text("v.onnx", corrupt.onnx_varint_string()), sub=True),
    # TypeError before the fix
    Case("inspect-onnx-varint-message", ("inspect", "m.onnx"), 2,
         "m.onnx: not a valid ONNX model (a message field has the wrong wire type)",
         text("m.onnx", corrupt.onnx_varint_message())),
    Case("inspect-keras-corrupt", ("inspect", "c.keras"), 2,
         "c.keras: not a .keras model file (corrupt or of another format)",
         text("c.keras", b"PK\x03\x04 not really")),
    Case("inspect-keras-lambda", ("inspect", "lambda.keras"), 2,
         "lambda.keras: refused: the model contains a Lambda layer",
         lambda ctx: shutil.copy(ctx.request.getfixturevalue("lambda_model"), ctx.dir)),
    Case("inspect-unknown-type", ("inspect", "m.pb"), 2,
         "m.pb: unknown artifact type '.pb'; edgekit inspects .tflite, .onnx and .keras files",
         text("m.pb", b"x")),
    # estimate
    Case("estimate-missing", ("estimate", "nope.tflite", "--target", "cortex-m4"), 2,
         "nope.tflite: no such file"),
    Case("estimate-tflite-truncated", ("estimate", "cut.tflite", "--target", "cortex-m4"), 2,
         "cut.tflite: not a valid TensorFlow Lite model (truncated or corrupt flatbuffer)",
         half_of(tflite, "cut.tflite")),
    Case("estimate-tflite-foreign", ("estimate", "o.tflite", "--target", "cortex-m4"), 2,
         "o.tflite: not a TensorFlow Lite flatbuffer", copy_of(onnx, "o.tflite")),
    # IndexError before the fix
    Case("estimate-tflite-bad-tensor-index", ("estimate", "b.tflite", "--target", "cortex-m4"), 2,
         "b.tflite: not a valid TensorFlow Lite model (operator 0 (SHAPE) refers to tensor "
         "9999; the graph has", lambda ctx: corrupt.tflite_with_bad_tensor_index(
             tflite(ctx), ctx.dir / "b.tflite"), sub=True),
    Case("estimate-onnx-truncated", ("estimate", "cut.onnx", "--target", "cortex-m4"), 2,
         "cut.onnx: not a valid ONNX model", half_of(onnx, "cut.onnx")),
    Case("estimate-unknown-target", ("estimate", "export/model.int8.tflite", "--target",
                                     "arduino"), 2, "unknown target 'arduino'; choose from",
         needs=("export",)),
    Case("estimate-no-target", ("estimate", "export/model.int8.tflite"), 2,
         "estimate needs --target NAME; choose from", needs=("export",)),
    Case("estimate-keras", ("estimate", "lambda.keras", "--target", "rpi4"), 2,
         "lambda.keras: unknown model type '.keras'; edgekit estimates .tflite and .onnx files",
         text("lambda.keras", b"x")),
    Case("estimate-does-not-fit", ("estimate", "export/model.int8.tflite", "--target", "tiny"), 1,
         "model.int8.tflite does not fit tiny: RAM and flash",
         text("edgekit.toml", "[targets.tiny]\nclock_hz = 1e6\nram_bytes = 16\n"
                   "flash_bytes = 16\ncycles_per_mac_int8 = 1\ncycles_per_mac_float = 1\n"
                   "[targets.tiny.sources]\nclock_hz = 'assumption: test'\n"
                   "ram_bytes = 'assumption: test'\nflash_bytes = 'assumption: test'\n"
                   "cycles_per_mac_int8 = 'assumption: test'\n"
                   "cycles_per_mac_float = 'assumption: test'\n"), needs=("export",),
         stdout="DOES NOT FIT"),
    # compare
    Case("compare-missing", ("compare", "good.json", "nope.json"), 2, "nope.json: no such file",
         GOOD_BENCH),
    Case("compare-empty", ("compare", "good.json", "e.json"), 2,
         "e.json: not a valid bench JSON file", both(GOOD_BENCH, text("e.json", ""))),
    Case("compare-truncated", ("compare", "good.json", "cut.json"), 2,
         "cut.json: not a valid bench JSON file",
         both(GOOD_BENCH, half_of(lambda ctx: ctx.dir / "good.json", "cut.json"))),
    Case("compare-wrong-schema", ("compare", "export/manifest.json", "good.json"), 2,
         "export/manifest.json: not an edgekit bench file (schema edgekit.bench/1 expected)",
         GOOD_BENCH, needs=("export",)),
    Case("compare-row-missing-field", ("compare", "good.json", "bad.json"), 2,
         "bad.json: results[0]: missing field 'device'",
         both(GOOD_BENCH, text("bad.json", json.dumps(
             {"schema": "edgekit.bench/1", "results": [{"artifact": "a", "runtime": "tflite"}]})))),
    # TypeError before the fix
    Case("compare-samples-not-a-list", ("compare", "good.json", "bad.json"), 2,
         "bad.json: results[0]: 'samples_ms' must be a list of numbers",
         both(GOOD_BENCH, bench_json("bad.json", samples_ms=5)), sub=True),
    # compared as -200% "faster" before the fix
    Case("compare-negative-latency", ("compare", "good.json", "bad.json"), 2,
         "bad.json: results[0]: 'latency_ms' holds a negative latency",
         both(GOOD_BENCH, bench_json("bad.json", latency_ms={"p50": -1.0}))),
    # a ZeroDivisionError in report before the fix
    Case("compare-batch-zero", ("compare", "good.json", "bad.json"), 2,
         "bad.json: results[0]: 'batch' must be an integer >= 1",
         both(GOOD_BENCH, bench_json("bad.json", batch=0))),
    Case("compare-max-regression-negative", ("compare", "good.json", "good.json",
                                             "--max-regression", "-5"), 2,
         "--max-regression must be a percentage >= 0, got -5.0", GOOD_BENCH),
    Case("compare-nothing-in-common", ("compare", "good.json", "other.json"), 2,
         "the two bench results have no measurement in common",
         both(GOOD_BENCH, bench_json("other.json", artifact="other.tflite"))),
    Case("compare-regression", ("compare", "good.json", "slow.json"), 1,
         "1 regression(s) beyond 10%: model.float32.tflite (tflite, threads=1, batch=1)",
         both(GOOD_BENCH, bench_json("slow.json", latency_ms={"p50": 0.05},
                                     samples_ms=[0.05] * 20)), stdout="regression"),
    # report
    Case("report-missing", ("report", "nope.json"), 2, "nope.json: no such file",
         absent=("report",)),
    Case("report-corrupt", ("report", "c.json"), 2, "c.json: not a valid bench JSON file",
         text("c.json", b"\x00\xff"), absent=("report",)),
    Case("report-no-results", ("report", "n.json"), 2, "n.json: holds no results to report",
         text("n.json", '{"schema": "edgekit.bench/1", "results": []}'), absent=("report",)),
    Case("report-out-parent-is-a-file", ("report", "good.json", "--out", "file/r"), 2,
         "cannot write the report to file/r: Not a directory", both(GOOD_BENCH, text("file", "x"))),
    Case("report-out-read-only", ("report", "good.json", "--out", "{ro}/edgekit-report"), 2,
         "cannot write the report to {ro}/edgekit-report", GOOD_BENCH,
         absent=("{ro}/edgekit-report",)),
    Case("report-out-is-a-file", ("report", "good.json", "--out", "f"), 2,
         "Invalid value for '--out': Directory 'f' is a file.", both(GOOD_BENCH, text("f", "x"))),
    # demo
    Case("demo-extra-argument", ("demo", "now"), 2, "Got unexpected extra argument (now)",
         absent=("runs",)),
    Case("demo-runs-is-a-file", ("demo",), 2, "cannot write to runs: not a directory",
         text("runs", "not a directory"), stdout="edgekit demo 1/3: training", slow=True),
]  # fmt: skip


def _param(case: Case):
    marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
    if case.sub or case.slow:
        marks.append(pytest.mark.slow)
    return pytest.param(case, id=case.id, marks=marks)


def test_the_matrix_is_large_and_covers_every_command():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 40
    commands = {c.argv[0] for c in CASES}
    assert commands >= {"train", "export", "bench", "inspect", "estimate", "compare", "report",
                        "demo"}  # fmt: skip


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case: Case, request, tmp_path, monkeypatch):
    ctx = Ctx(request, tmp_path)
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    for name in case.needs:
        getattr(ctx, name)
    if case.setup is not None:
        case.setup(ctx)
    fill = {"ro": str(ctx.ro)} if any("{ro}" in a for a in (*case.argv, *case.absent)) else {}
    argv = [a.format(**fill) for a in case.argv]
    before = set(tmp_path.rglob("*"))

    if case.sub:
        proc = run_cli(*argv, cwd=tmp_path)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        code, out, err = cli(*argv)

    print(f"exit {code}\nstdout:\n{out}\nstderr:\n{err}")  # shown when the case fails
    assert "Traceback" not in out + err, err
    lines = err.splitlines()
    assert lines, f"nothing on stderr (exit {code})"
    assert lines[-1].startswith("edgekit: error: "), err
    assert case.message.format(**fill) in lines[-1]
    assert code == case.code, err
    if case.progress:  # bench's and export's progress lines ("[1/2] ...") may come first
        assert all(line.startswith("[") for line in lines[:-1] if line.strip()), err
    else:
        assert len(lines) == 1, err
    if case.code == 2 and not (case.progress or case.stdout):
        assert out == ""
    assert case.stdout in out
    for rel in case.absent:
        assert not Path(tmp_path, rel.format(**fill)).exists(), rel
    assert leftovers(tmp_path) == []
    if case.code == 2:  # bad input writes nothing at all (reads leave the tree as it was)
        new = set(tmp_path.rglob("*")) - before
        assert not new, sorted(str(p.relative_to(tmp_path)) for p in new)


def test_demo_says_which_check_failed_in_one_line(monkeypatch):
    """``edgekit demo`` joined the characters of the bench's one-line summary with "; "
    ("1; ; m; e; a; s; ..."), found reading the code the matrix exercises."""
    from types import SimpleNamespace

    import edgekit.bench
    import edgekit.exporters
    import edgekit.trainer

    run = SimpleNamespace(
        metrics={"test": {"accuracy": 0.9}}, path=Path("runs/demo"),
        info={"dataset": {"n_test": 1}, "model": {"params": 1}, "training": {"seconds": 0.1}},
    )  # fmt: skip
    export = SimpleNamespace(passed=True, path=Path("e"), manifest_path=Path("e/m.json"),
                             table=lambda: "")  # fmt: skip
    bench = SimpleNamespace(passed=False, table=lambda: "",
                            problems=lambda: "1 measurement(s) failed")  # fmt: skip
    monkeypatch.setattr(edgekit.trainer, "train", lambda **kw: run)
    monkeypatch.setattr(edgekit.exporters, "export", lambda *a, **kw: export)
    monkeypatch.setattr(edgekit.bench, "run_bench", lambda *a, **kw: bench)
    code, _, err = cli("demo")
    assert (code, err) == (1, "edgekit: error: 1 measurement(s) failed\n")
