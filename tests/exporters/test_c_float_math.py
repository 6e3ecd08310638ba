"""The float C's own math (``ek_float.c``): accurate, and no libm on the microcontroller.

``--c-source float32`` writes exp, expm1, tanh, erf and sqrt as static functions of its own,
so the code calls no libm function: on newlib, ``expf`` alone would link ``errno`` and its
reentrancy structure (``impure_data``, ``_impure_ptr``) into the firmware's RAM. Here the
functions are compiled from the shipped ``ek_float.c`` and compared with numpy (float64) on
a dense grid of float32 inputs; a float C model with every one of them is cross-compiled for
``qemu:cortex-m4`` with the emulated device's own build, and its symbols must hold none of
newlib's errno machinery (a control build with ``expf`` must).
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

KERNELS = Path(str(files("edgekit.exporters.c") / "kernels"))
FUNCTIONS = ("exp", "expm1", "tanh", "erf", "sqrt")
DRIVER = """#include "ek_float.c"

/* y[i] = f(x[i]) for the function numbered `which` (FUNCTIONS in the test) */
void ek_test_map(int which, const float *x, float *y, long n);
void ek_test_map(int which, const float *x, float *y, long n)
{
    long i;
    for (i = 0; i < n; ++i) {
        switch (which) {
        case 0: y[i] = ek_expf(x[i]); break;
        case 1: y[i] = ek_expm1f(x[i]); break;
        case 2: y[i] = ek_tanhf(x[i]); break;
        case 3: y[i] = ek_erff(x[i]); break;
        default: y[i] = ek_sqrtf(x[i]); break;
        }
    }
}
"""
# the most ulp (of the correctly rounded result) each may be off; measured over all 2^32
# float32 inputs: exp 0.95, expm1 1.48, tanh 1.44, erf 1.23, sqrt 0.75
MAX_ULP = {"exp": 1.5, "expm1": 2.0, "tanh": 2.0, "erf": 2.0, "sqrt": 1.0}
# and the relative error, where the result is a normal float: 2 ulp at most
MAX_RELATIVE = 2.0**-22


@pytest.fixture(scope="module")
def ek_math(tmp_path_factory):
    """``f(name, x)``: ek_float.c's function ``name`` on the float32 array ``x``."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    build = tmp_path_factory.mktemp("ek_math")
    (build / "driver.c").write_text(DRIVER, encoding="utf-8")
    library = build / "libekmath.so"
    cmd = ["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2", "-fPIC",
           "-shared", f"-I{KERNELS}", str(build / "driver.c"), "-o", str(library)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # and no -lm: nothing to resolve from libm
    lib = ctypes.CDLL(str(library))
    pointer = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
    lib.ek_test_map.argtypes = [ctypes.c_int, pointer, pointer, ctypes.c_long]
    lib.ek_test_map.restype = None

    def call(name: str, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        y = np.empty_like(x)
        lib.ek_test_map(FUNCTIONS.index(name), x, y, x.size)
        return y

    return call


def _reference(name: str, x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    if name == "erf":
        return np.frompyfunc(math.erf, 1, 1)(x).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return {"exp": np.exp, "expm1": np.expm1, "tanh": np.tanh, "sqrt": np.sqrt}[name](x)


def _grid(name: str) -> np.ndarray:
    """Finite float32 inputs where the function is not yet constant: every 997th bit pattern
    of that range (all binades, subnormals included) and a fine uniform grid."""
    lo, hi = {"exp": (-104.0, 89.0), "expm1": (-18.0, 89.0), "tanh": (-10.0, 10.0),
              "erf": (-4.5, 4.5), "sqrt": (0.0, 3.4e38)}[name]  # fmt: skip
    bits = np.arange(0, 2**32, 997, dtype=np.uint64).astype(np.uint32).view(np.float32)
    bits = bits[np.isfinite(bits) & (bits >= lo) & (bits <= hi)]
    if name == "erf":  # math.erf runs in Python: a sparser sample of the bit patterns
        bits = bits[::4]
    uniform = np.linspace(lo, min(hi, 100.0), 200_001, dtype=np.float32)
    return np.concatenate([bits, uniform])


def _ulp(ref: np.ndarray) -> np.ndarray:
    """The float32 ulp at each reference value: 2^(e - 24) for |ref| in [2^(e-1), 2^e)."""
    _, e = np.frexp(np.abs(ref))
    return np.maximum(np.ldexp(1.0, e - 24), 2.0**-149)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_within_a_few_ulp_of_numpy(ek_math, name):
    x = _grid(name)
    got = ek_math(name, x).astype(np.float64)
    ref = _reference(name, x)
    with np.errstate(over="ignore"):
        exact = ref.astype(np.float32).astype(np.float64)
    finite = np.isfinite(exact)  # exp, expm1 past 88.72: both must overflow to +inf
    assert np.array_equal(got[~finite], exact[~finite])
    got, ref, x = got[finite], ref[finite], x[finite]
    ulp = np.abs(got - ref) / _ulp(ref)
    worst = int(np.argmax(ulp))
    assert ulp[worst] <= MAX_ULP[name], f"{name}({x[worst]!r}): {ulp[worst]:.2f} ulp"
    normal = np.abs(ref) >= 2.0**-126
    relative = np.abs(got - ref)[normal] / np.abs(ref[normal])
    assert float(relative.max()) <= MAX_RELATIVE
    assert x.size > 500_000


INF, NAN = float("inf"), float("nan")
SPECIAL = {  # input -> output (NaN: any NaN; a zero's sign counts)
    "exp": [(NAN, NAN), (INF, INF), (-INF, 0.0), (89.0, INF), (88.8, INF), (-0.0, 1.0),
            (-104.5, 0.0), (-103.0, 1.4e-45), (-88.0, 6.0546014e-39)],
    "expm1": [(NAN, NAN), (INF, INF), (-INF, -1.0), (100.0, INF), (-0.0, -0.0), (0.0, 0.0),
              (-20.0, -1.0), (1e-30, 1e-30)],
    "tanh": [(NAN, NAN), (INF, 1.0), (-INF, -1.0), (-0.0, -0.0), (20.0, 1.0), (-20.0, -1.0),
             (1e-30, 1e-30), (1e-45, 1e-45)],
    "erf": [(NAN, NAN), (INF, 1.0), (-INF, -1.0), (-0.0, -0.0), (5.0, 1.0), (-5.0, -1.0),
            (1e-45, 1e-45)],
    "sqrt": [(NAN, NAN), (INF, INF), (-INF, NAN), (-1.0, NAN), (-0.0, -0.0), (0.0, 0.0),
             (4.0, 2.0), (2.0**-148, 2.0**-74), (2.0**126, 2.0**63), (0.25, 0.5)],
}  # fmt: skip


@pytest.mark.parametrize("name", FUNCTIONS)
def test_special_values(ek_math, name):
    x = np.array([a for a, _ in SPECIAL[name]], np.float32)
    want = np.array([b for _, b in SPECIAL[name]], np.float32)
    got = ek_math(name, x)
    for a, g, w in zip(x, got, want, strict=True):
        if np.isnan(w):
            assert np.isnan(g), f"{name}({a}) = {g}"
        else:
            assert g == w and np.signbit(g) == np.signbit(w), f"{name}({a}) = {g!r}, not {w!r}"


ARM = ("arm-none-eabi-gcc", "arm-none-eabi-nm")


def _all_math_model():
    """A Keras model whose float C uses every math function: tanh, sigmoid, ELU, GELU,
    LayerNormalization (sqrt) and softmax."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input(shape=(6,))
    h = keras.layers.Dense(8, activation="tanh")(inputs)
    h = keras.layers.Dense(8, activation="sigmoid")(h)
    h = keras.layers.Dense(8, activation="elu")(h)
    h = keras.layers.LayerNormalization()(h)
    h = keras.layers.Dense(8, activation="gelu")(h)
    outputs = keras.layers.Dense(4, activation="softmax")(h)
    return keras.Model(inputs, outputs)


def _symbols(elf: Path) -> set[str]:
    done = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return {line.split()[-1] for line in done.stdout.splitlines() if line.strip()}


def _newlib_errno(symbols: set[str]) -> set[str]:
    return {s for s in symbols if "impure" in s or "errno" in s}


@pytest.mark.skipif(
    any(shutil.which(t) is None for t in ARM),
    reason=f"needs {' and '.join(ARM)} (gcc-arm-none-eabi, libnewlib-arm-none-eabi)",
)
def test_cortex_m4_firmware_links_no_newlib_errno(tmp_path):
    from edgekit.devices.qemu import BOARDS, build_firmware
    from edgekit.exporters.c_source import to_c_source
    from edgekit.fileio import sha256_file

    model = _all_math_model()
    c = to_c_source(model, tmp_path, variant="float32", prefix="m")
    source = c.source.read_text(encoding="utf-8")
    for name in FUNCTIONS:
        assert f"static float m_{name}f(float x)" in source
    assert "math.h" not in source and not c.needs_libm

    def firmware(where: Path) -> set[str]:
        where.mkdir()
        digests = {p.name: sha256_file(p) for p in c.files}
        info = {**c.to_json(), "paths": c.files, "sha256": digests}  # as the manifest has it
        return _symbols(build_firmware(c.source, info, where, BOARDS["qemu:cortex-m4"]))

    symbols = firmware(tmp_path / "build")
    assert {"m_predict", "ek_mark"} <= symbols  # the model and the harness are linked in
    assert not _newlib_errno(symbols), sorted(_newlib_errno(symbols))
    assert not {"expf", "tanhf", "expm1f", "erff", "sqrtf"} & symbols

    # the control: the same model calling newlib's expf for its sigmoid links errno
    control = source.replace("m_expf(-v)", "expf(-v)").replace(
        "#include <stddef.h>", "#include <math.h>\n#include <stddef.h>"
    )
    assert control != source
    c.source.write_text(control, encoding="utf-8")
    symbols = firmware(tmp_path / "control")
    assert "expf" in symbols and _newlib_errno(symbols)
