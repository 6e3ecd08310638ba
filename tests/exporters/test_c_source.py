"""``export --c-source``: the generated C compiles strictly and reproduces its model.

int8 with ``--c-rounding litert``: every output of ``<prefix>_predict_int8`` equals
ai_edge_litert's builtin int8 kernels (no delegate) on the whole test set (the default,
TensorFlow Lite Micro's kernels, is tested in test_c_tflm.py). float32: within 1e-5 of Keras.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.exporters.c.litert import tflite_int8_outputs
from edgekit.exporters.c.tflite_math import quantize_multiplier
from edgekit.exporters.c.validate import validate_c_source
from edgekit.exporters.c_source import to_c_source
from tests.conftest import cli

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
GCC = ["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"]

HARNESS = """#include <stdio.h>
#include "{p}_model.h"

/* harness f|q IN OUT: one {p}_predict[_int8] call per sample of IN, outputs to OUT */
int main(int argc, char **argv)
{{
    FILE *in, *out;
    if (argc != 4 || (in = fopen(argv[2], "rb")) == NULL || (out = fopen(argv[3], "wb")) == NULL) {{
        return 2;
    }}
    if (argv[1][0] == 'q') {{
#ifdef {P}_INPUT_ZERO_POINT
        int8_t x[{P}_INPUT_SIZE], y[{P}_OUTPUT_SIZE];
        while (fread(x, sizeof x, 1, in) == 1) {{
            if ({p}_predict_int8(x, y) != 0) return 1;
            fwrite(y, sizeof y, 1, out);
        }}
#else
        return 3;
#endif
    }} else {{
        float x[{P}_INPUT_SIZE], y[{P}_OUTPUT_SIZE];
        while (fread(x, sizeof x, 1, in) == 1) {{
            if ({p}_predict(x, y) != 0) return 1;
            fwrite(y, sizeof y, 1, out);
        }}
    }}
    fclose(in);
    fclose(out);
    return 0;
}}
"""


def build(export_dir, prefix, tmp_path, *, flags=()):
    """The model with HARNESS, linked without -lm: neither the int8 nor the float C needs libm."""
    harness = tmp_path / f"{prefix}_main.c"
    harness.write_text(HARNESS.format(p=prefix, P=prefix.upper()), encoding="utf-8")
    exe = tmp_path / f"{prefix}_main{'_'.join(f.strip('-_') for f in flags)}"
    cmd = [*GCC, *flags, f"-I{export_dir}", str(export_dir / f"{prefix}_model.c"), str(harness)]
    done = subprocess.run([*cmd, "-o", str(exe)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return exe


def run(exe, x, tmp_path, *, int8):
    dtype = np.int8 if int8 else np.float32
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    np.ascontiguousarray(x, dtype).tofile(src)
    done = subprocess.run([str(exe), "q" if int8 else "f", str(src), str(dst)])
    assert done.returncode == 0
    return np.fromfile(dst, dtype).reshape(len(x), -1)


@pytest.fixture(scope="module")
def c_exports(digits_run, binary_run, regression_run, runs_dir):
    """Each run exported with --c-source int8 and with --c-source float32."""
    import edgekit

    out = {}
    for name, run_ in (("digits", digits_run), ("binary", binary_run), ("reg", regression_run)):
        out[name, "int8"] = edgekit.export(
            run_.path, c_source="int8", c_prefix=f"{name}8", out=runs_dir / f"{name}_c_int8",
            c_rounding="litert",
        )  # fmt: skip
        out[name, "float32"] = edgekit.export(
            run_.path, c_source="float32", c_prefix=name, out=runs_dir / f"{name}_c_float"
        )
    return out


def quantize(x, q):
    """q = clip(round(x / scale + zero_point)), one scale or one per feature."""
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    scale = np.asarray(q["scale"], np.float32)
    zero_point = np.asarray(q["zero_point"], np.float32)
    return np.clip(np.round(x / scale + zero_point), -128, 127).astype(np.int8)


@pytest.mark.parametrize("name", ["digits", "binary", "reg"])
def test_int8_c_equals_the_tflite_builtin_kernels(c_exports, name, tmp_path):
    result = c_exports[name, "int8"]
    info = result.manifest["c_source"]
    x = np.load(result.path / "test.npz")["x"]
    exe = build(result.path, f"{name}8", tmp_path)
    # raw features -> int8 as a device does: the manifest's per-feature parameters (the model's
    # normalization folded in), which predict() applies too
    assert info["feature_quantization"] == result.artifacts[-1]["inputs"][0]["quantization"]
    q = quantize(x, info["feature_quantization"])
    got = run(exe, q, tmp_path, int8=True)
    want = tflite_int8_outputs(result.path / "model.int8.tflite", q, kernels="builtin")
    assert got.shape == want.shape == (len(x), info["output_size"])
    assert np.array_equal(got, want)  # every output of the whole test set, bit for bit
    v = info["validation"]
    assert v["passed"] and v["exact"] == v["outputs"] == got.size and v["max_lsb_diff"] == 0
    assert "c-source" not in result.failed_variants
    assert f"{v['exact']}/{v['outputs']} int8 outputs identical" in result.table()
    # the float API quantizes and dequantizes like edgekit's runners do
    y = run(exe, x.reshape(len(x), -1), tmp_path, int8=False)
    qo = info["output_quantization"]
    deq = (want.astype(np.float32) - qo["zero_point"]) * np.float32(qo["scale"])
    assert np.array_equal(y, deq.astype(np.float32))


@pytest.mark.parametrize("name", ["digits", "binary", "reg"])
def test_every_int8_code_path_gives_the_same_outputs(c_exports, name, tmp_path):
    """The int8 C picks its rounding and its FULLY_CONNECTED loop by what the compiler
    targets (SSE2's CVTSS2SI or portable C; VNNI's byte dot products or int16): every build
    gives the same outputs, bit for bit, through both the float and the int8 API."""
    result = c_exports[name, "int8"]
    x = np.load(result.path / "test.npz")["x"]
    x = x.reshape(len(x), -1).astype(np.float32)
    q = quantize(x, result.manifest["c_source"]["feature_quantization"])
    builds = {"default": ()}
    builds["portable rounding"] = ("-U__SSE2__",) if platform.machine() == "x86_64" else ()
    builds["-O3 -march=native"] = ("-O3", "-march=native")
    got = {}
    for what, flags in builds.items():
        exe = build(result.path, f"{name}8", tmp_path, flags=flags)
        got[what] = (run(exe, x, tmp_path, int8=False), run(exe, q, tmp_path, int8=True))
    for what, (y, yq) in got.items():
        assert np.array_equal(y.view(np.uint32), got["default"][0].view(np.uint32)), what
        assert np.array_equal(yq, got["default"][1]), what


@pytest.mark.parametrize("name", ["digits", "binary", "reg"])
def test_float_c_matches_keras(c_exports, name, tmp_path):
    result = c_exports[name, "float32"]
    data = np.load(result.path / "test.npz")
    exe = build(result.path, name, tmp_path)
    got = run(exe, data["x"].reshape(len(data["x"]), -1), tmp_path, int8=False)
    ref = data["reference"].reshape(len(got), -1)
    assert float(np.max(np.abs(got - ref))) <= 1e-5
    v = result.manifest["c_source"]["validation"]
    assert v["passed"] and v["max_abs_diff"] <= 1e-5
    assert result.manifest["c_source"]["from"] == "model.keras"


def test_generated_code_is_self_contained(c_exports):
    for (name, variant), result in c_exports.items():
        prefix = f"{name}8" if variant == "int8" else name
        source = (result.path / f"{prefix}_model.c").read_text()
        header = (result.path / f"{prefix}_model.h").read_text()
        assert not re.search(r"\b(malloc|calloc|realloc|free)\s*\(", source)
        includes = set(re.findall(r"#include <([^>]+)>", source + header))
        # arm_acle.h, xmmintrin.h: the compiler's intrinsics, only for Arm DSP cores and x86;
        # no math.h: no libm, ever
        assert includes <= {"stdint.h", "stddef.h", "arm_acle.h", "xmmintrin.h"}
        assert ("arm_acle.h" in includes) == (variant == "int8")
        if variant == "int8":
            dsp = source.index("#if defined(__arm__) && defined(__ARM_FEATURE_SIMD32)")
            assert dsp < source.index("#include <arm_acle.h>") < source.index("#endif", dsp)
        up = prefix.upper()
        assert f"#define {up}_INPUT_SIZE " in header and f"#define {up}_OUTPUT_SIZE " in header
        assert f"int {prefix}_predict(const float *input, float *output);" in header
        has_int8 = f"int {prefix}_predict_int8(const int8_t *input, int8_t *output);" in header
        assert has_int8 == (variant == "int8")


def test_two_models_link_into_one_program(c_exports, tmp_path):
    digits, reg = c_exports["digits", "int8"].path, c_exports["reg", "float32"].path
    main = tmp_path / "both.c"
    main.write_text(
        '#include "digits8_model.h"\n#include "reg_model.h"\n'
        "int main(void)\n{\n"
        "    float a[DIGITS8_INPUT_SIZE] = {0}, b[DIGITS8_OUTPUT_SIZE];\n"
        "    float c[REG_INPUT_SIZE] = {0}, d[REG_OUTPUT_SIZE];\n"
        "    return digits8_predict(a, b) + reg_predict(c, d) + digits8_predict(0, b) + 1;\n"
        "}\n",
        encoding="utf-8",
    )
    exe = tmp_path / "both"
    cmd = [*GCC, f"-I{digits}", f"-I{reg}", str(main), str(digits / "digits8_model.c"),
           str(reg / "reg_model.c"), "-o", str(exe)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert subprocess.run([str(exe)]).returncode == 0  # 0 + 0 + (-1) + 1: NULL is refused


def test_the_labels_are_arrays_in_the_header_binary_ones_too(c_exports, tmp_path):
    """Multiclass: one label per output. Binary (one probability output): both labels, with
    a LABEL_COUNT of 2 and a comment saying which label the probability is of."""
    digits, binary = c_exports["digits", "float32"], c_exports["binary", "int8"]
    labels = {"digits": digits.manifest["labels"], "binary8": binary.manifest["labels"]}
    assert labels == {"digits": [str(i) for i in range(10)], "binary8": ["0", "1"]}
    header = (binary.path / "binary8_model.h").read_text()
    assert " * Output 0: the probability of 1 (below 0.5: 0)." in header
    assert "#define BINARY8_LABEL_COUNT 2" in header
    assert "extern const char *const binary8_labels[BINARY8_LABEL_COUNT];" in header
    digits_header = (digits.path / "digits_model.h").read_text()
    assert "extern const char *const digits_labels[DIGITS_OUTPUT_SIZE];" in digits_header
    main = tmp_path / "labels.c"
    main.write_text(
        '#include <stdio.h>\n#include "digits_model.h"\n#include "binary8_model.h"\n'
        "int main(void)\n{\n    int i;\n"
        '    for (i = 0; i < DIGITS_OUTPUT_SIZE; i++) printf("%s ", digits_labels[i]);\n'
        '    for (i = 0; i < BINARY8_LABEL_COUNT; i++) printf("%s ", binary8_labels[i]);\n'
        "    return 0;\n}\n",
        encoding="utf-8",
    )
    exe = tmp_path / "labels"
    cmd = [*GCC, f"-I{digits.path}", f"-I{binary.path}", str(main),
           str(digits.path / "digits_model.c"), str(binary.path / "binary8_model.c"),
           "-o", str(exe)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shown = subprocess.run([str(exe)], capture_output=True, text=True).stdout
    assert shown == "0 1 2 3 4 5 6 7 8 9 0 1 "


ACTIVATIONS = ("relu", "relu6", "tanh", "sigmoid", "elu", "selu", "gelu", "swish", "linear")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_in_int8_and_float(activation, tmp_path):
    """Fused RELU/RELU6, TANH, LOGISTIC, GELU, DEQUANTIZE-ELU-QUANTIZE, selu's six ops and
    swish's LOGISTIC+MUL: each int8 output equals TFLite's; float within 1e-5 of Keras."""
    import keras

    from edgekit.exporters.tflite import to_tflite
    from edgekit.trainer.model import build_model

    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    scale, offset = np.array([1, 3, 0.5, 2, 1]), np.array([0, 2, -1, 5, 0])
    x = (rng.normal(size=(200, 5)) * scale + offset).astype(np.float32)
    x_test = (rng.normal(size=(300, 5)) * scale * 1.5 + offset).astype(np.float32)
    task = ("multiclass", "binary", "regression")[ACTIVATIONS.index(activation) % 3]
    model = build_model(input_shape=[5], task=task, n_classes=3, hidden=[8, 6],
                        activation=activation, x_train=x, y_train=rng.normal(size=200))  # fmt: skip
    tflite = to_tflite(model, tmp_path / "m.int8.tflite", variant="int8", calibration=x)
    c8 = to_c_source(None, tmp_path, variant="int8", prefix="q", tflite=tflite, rounding="litert")
    v = validate_c_source(c8, x_test, tflite=tflite)
    assert v["passed"], v
    assert v["exact"] == v["outputs"] == 300 * c8.output_size
    cf = to_c_source(model, tmp_path, variant="float32", prefix="f")
    v = validate_c_source(cf, x_test, reference=model.predict(x_test, verbose=0), atol=1e-5)
    assert v["passed"], v


def test_quantize_multiplier_is_tflites():
    assert quantize_multiplier(0.5) == (2**30, 0)
    assert quantize_multiplier(1.0) == (2**30, 1)
    assert quantize_multiplier(0.75 * 2**-8) == (3 * 2**29, -8)
    assert quantize_multiplier(1 - 2**-40) == (2**30, 1)  # rounds up to 2**31: halved
    assert quantize_multiplier(2**-40) == (0, 0)  # below 2**-31: flushed to zero
    assert quantize_multiplier(0.0) == (0, 0)


def test_cli_export_c_source(digits_run, tmp_path):
    code, out, err = cli(
        "export", str(digits_run.path), "--c-source", "int8", "--out", str(tmp_path / "c")
    )
    assert code == 0 and all(line.startswith("[") for line in err.splitlines()), err
    assert "C source (int8, from model.int8.tflite): edgekit_model.h, edgekit_model.c" in out
    files = {p.name for p in (tmp_path / "c").iterdir()}
    assert {"edgekit_model.h", "edgekit_model.c", "model.int8.tflite"} <= files


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--c-source", "int8", "--c-prefix", "my-model"],
         "--c-prefix must be a C identifier (letters, digits and _, not starting with a digit, "
         "not a C keyword), got 'my-model'"),
        (["--c-source", "float32", "--c-prefix", "int"],
         "--c-prefix must be a C identifier (letters, digits and _, not starting with a digit, "
         "not a C keyword), got 'int'"),
        (["--c-source", "int8", "--quantize", "int8", "--io-type", "uint8"],
         "--c-source int8 works on int8 tensors; it cannot be combined with --io-type uint8"),
        (["--c-source", "int4"],
         "Invalid value for '--c-source': 'int4' is not one of 'float32', 'int8'."),
    ],
)  # fmt: skip
def test_bad_c_options(digits_run, tmp_path, argv, message):
    code, out, err = cli("export", str(digits_run.path), *argv, "--out", str(tmp_path / "x"))
    assert (code, out) == (2, "")
    assert err == f"edgekit: error: {message}\n"
    assert not (tmp_path / "x").exists()


def test_unsupported_model_parts_are_named(tmp_path, digits_export):
    import keras

    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softplus", name="d")(inputs))
    with pytest.raises(EdgekitError) as err:
        to_c_source(model, tmp_path, variant="float32")
    assert str(err.value) == (
        "activation 'softplus' (layer 'd') is not supported by --c-source float32; supported: "
        "relu, relu6, tanh, sigmoid, elu, selu, gelu, silu, linear, softmax"
    )
    with pytest.raises(EdgekitError) as err:
        to_c_source(
            None, tmp_path, variant="int8", tflite=digits_export.path / "model.int16x8.tflite"
        )
    assert str(err.value) == (
        f"{digits_export.path / 'model.int16x8.tflite'}: the model's input is float32; "
        "--c-source int8 needs int8 input and output (export with --io-type int8, the default)"
    )


KERNELS = Path(str(files("edgekit.exporters.c") / "kernels"))  # where the package reads them
STUB_HEADER = """#include <stdint.h>
#define EK_INPUT_SIZE 3
#define EK_OUTPUT_SIZE 2
{int8}
int ek_predict(const float *input, float *output);
int ek_predict_int8(const int8_t *input, int8_t *output);
"""


@pytest.mark.parametrize("name", ["ek_int8.c", "ek_float.c"])
def test_shipped_kernels_compile_on_their_own(name, tmp_path):
    """The C kernels are real C99: strict gcc compiles each file as shipped."""
    done = subprocess.run(
        [*GCC, "-c", str(KERNELS / name), "-o", str(tmp_path / "k.o")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("int8", [True, False])
def test_shipped_harness_compiles_on_its_own(int8, tmp_path):
    """harness.c as shipped, against a stand-in ek_model.h (the int8 one defines the zero point)."""
    zero_point = "#define EK_INPUT_ZERO_POINT (0)" if int8 else ""
    (tmp_path / "ek_model.h").write_text(STUB_HEADER.format(int8=zero_point), encoding="utf-8")
    done = subprocess.run(
        [*GCC, f"-I{tmp_path}", "-c", str(KERNELS / "harness.c"), "-o", str(tmp_path / "h.o")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_kernel_sections_and_fill():
    from edgekit.exporters.c.templates import fill, sections, select

    int8 = sections("ek_int8.c")
    names = list(int8)
    for section in int8.values():  # a section only calls sections above it
        assert all(names.index(dep) < names.index(section.name) for dep in section.uses)
    assert [s.name for s in select("ek_int8.c", {"mul"})] == [
        "srdhm",
        "rdbpot",
        "mbqm",
        "clamp",
        "mul",
    ]
    assert "ek:" not in "".join(s.text for s in int8.values())
    text = "ek_f(EK_SIZE, EK_N); /* @NOTE@ */"
    filled = fill(text, "my", slots={"NOTE": "ek_x @A@"}, macros={"EK_N": "7"})
    assert filled == "my_f(MY_SIZE, 7); /* ek_x @A@ */"  # inserted text is not rescanned
    with pytest.raises(KeyError):
        fill(text, "my")  # @NOTE@ has no value
    with pytest.raises(KeyError):
        fill(text, "my", slots={"NOTE": "", "OTHER": ""})  # no @OTHER@ in the text


def test_no_compiler_says_the_c_is_not_validated(digits_run, tmp_path, monkeypatch):
    """Without a C compiler the export still succeeds, and says plainly that the C is unchecked."""
    import edgekit.toolchain

    monkeypatch.setattr(edgekit.toolchain, "find_compiler", lambda: None)
    out_dir = tmp_path / "c"
    code, out, err = cli(
        "export", str(digits_run.path), "--c-source", "int8", "--out", str(out_dir)
    )
    assert code == 0 and all(line.startswith("[") for line in err.splitlines()), err
    reason = "no C compiler found (set CC, or install gcc or clang)"
    assert f"\nC source NOT validated: {reason}\n" in out
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["c_source"]["validation"] == {
        "passed": None,
        "validated": False,
        "reason": reason,
    }
    assert (out_dir / "edgekit_model.c").is_file()
