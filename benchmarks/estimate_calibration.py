"""Measured against estimated: TFLM's smallest arena and the emulated Cortex-M4's instructions.

For each model (digits and MNIST MLPs of several widths, relu/tanh/sigmoid), trained for a few
epochs and exported in subprocesses (``--mcu --quantize float32,int8`` with ``--c-source
int8``, and ``--c-source float32`` in a second export):

* **arena**: the smallest arena the PyPI ``tflite-micro`` interpreter accepts
  (:func:`edgekit.runtime.tflm.smallest_arena`, probes in child processes; the 64-bit host
  build) against ``estimate(...).arena_bytes`` (the activation plan plus the ``tflm``
  runtime's persistent-overhead terms in ``edgekit/estimate/targets.toml``);
* **instructions**: edgekit's C cross-compiled for ``qemu:cortex-m4`` and traced
  (:func:`edgekit.devices.qemu.run_on_qemu`, exact instructions per inference, the mean over
  the traced samples) against the ``c`` runtime's per-op cost model; and the TFLM + CMSIS-NN
  anchors of issue 14 (measured elsewhere, that build cannot be made here) against the
  ``tflm`` runtime's.

Prints one table per quantity (model, measured, estimated, ratio estimated / measured) and
writes ``results/estimate_calibration.json`` (with each model's per-op work, so that
``tests/estimate/test_calibration.py`` re-prices the recorded measurements with the catalog
as it is). The goal: every arena ratio in [1, 1.25], every instruction ratio in [0.8, 1.25].

``--fit`` refits the coefficients (the C's per-op costs per compute type and TFLM's
FULLY_CONNECTED to the anchors by non-negative least squares on the relative error; the TFLM
arena terms as the smallest overhead that covers every measurement, a linear program), prints
them as TOML and the tables as they would be with them; ``--fit --write`` puts them into
``edgekit/estimate/targets.toml`` (the sources stay as written). After a kernel change:

    python benchmarks/estimate_calibration.py --work DIR --fit --write
    python benchmarks/estimate_calibration.py --work DIR      # records results/

Measurements are cached in ``--work``: an export is redone when the sha256 of the sources that
generate its C changes (``ek_int8.c`` or ``ek_float.c``, its skeleton, its writer, the
harness), the C's instruction counts are keyed by the sha256 of the generated C (the kernels
are pasted into it) and the harness, the arenas by the sha256 of the ``.tflite``. The results
record the sha256 of ``ek_int8.c`` and ``ek_float.c`` the C was generated from.

    python benchmarks/estimate_calibration.py [--work DIR] [--fit [--write]] [--quick]
        [--only NAMES] [--variants int8|float32]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import mnist_path, table, write_result

from edgekit.estimate.costs import price_recorded

REPO = Path(__file__).resolve().parents[1]
EXPORTER = REPO / "edgekit" / "exporters" / "c"
KERNEL = {"int8": "kernels/ek_int8.c", "float32": "kernels/ek_float.c"}
# the files whose text makes the C of each variant (and so its instruction count)
C_SOURCES = {
    "int8": ("kernels/ek_int8.c", "kernels/model_int8.c.in", "kernels/harness.c", "int8_*.py"),
    "float32": ("kernels/ek_float.c", "kernels/model_float.c.in", "kernels/harness.c",
                "float_writer.py"),
}  # fmt: skip
VARIANTS = ("int8", "float32")
BOUND = 1.25

# name -> (dataset, hidden widths, activation)
MODELS: dict[str, tuple[str, list[int], str]] = {
    "digits 64-8-10": ("digits", [8], "relu"),
    "digits 64-16-10": ("digits", [16], "relu"),
    "digits 64-32-10": ("digits", [32], "relu"),
    "digits 64-64-10": ("digits", [64], "relu"),
    "digits 64-32-16-10": ("digits", [32, 16], "relu"),
    "digits 64-16-10 tanh": ("digits", [16], "tanh"),
    "digits 64-16-10 sigmoid": ("digits", [16], "sigmoid"),
    "mnist 784-32-10": ("mnist", [32], "relu"),
    "mnist 784-64-32-10": ("mnist", [64, 32], "relu"),
    "mnist 784-128-10": ("mnist", [128], "relu"),
}
QUICK = ("digits 64-16-10", "digits 64-16-10 tanh", "digits 64-64-10")

# Issue 14's TFLM + CMSIS-NN counts on the emulated Cortex-M4 (mps2-an386), instructions per
# inference, int8: measured in another session; the build cannot be made here.
TFLM_ANCHORS = {
    "mnist 784-128-10": 207_015,
    "mnist 784-64-32-10": 113_653,
    "digits 64-64-10": 21_311,
}
# The same session's counts for edgekit's C (an older C than this one's): for reference only.
C_ANCHORS = {"mnist 784-128-10": 292_849, "mnist 784-64-32-10": 155_334, "digits 64-64-10": 18_803}

# What --fit fits, per runtime: op key -> the free components (the others keep the catalog's
# value). SOFTMAX's per-element cost includes the output's conversion (always 10 classes here,
# so the two cannot be told apart); INPUT is the conversion of the float features the C takes.
C_FIT: dict[str, dict[str, tuple[str, ...]]] = {
    "int8": {
        "FULLY_CONNECTED.int8": ("base", "per_mac", "per_element"),
        "SOFTMAX.int8": ("per_element",),
        "TANH.int8": ("per_element",),
        "LOGISTIC.int8": ("per_element",),
        "INPUT.int8": ("per_element",),
    },
    "float32": {
        "FULLY_CONNECTED.float32": ("base", "per_mac", "per_element"),
        "SOFTMAX.float32": ("per_element",),
        "TANH.float32": ("per_element",),
        "LOGISTIC.float32": ("per_element",),
        "INPUT.float32": ("per_element",),
    },
}
TFLM_FIT = {"FULLY_CONNECTED.int8": ("per_mac", "per_element")}
# TFLM's float kernels (CMSIS-NN has none) are priced like edgekit's float C: an assumption
TFLM_LIKE_C = ("FULLY_CONNECTED.float32", "SOFTMAX.float32", "TANH.float32", "LOGISTIC.float32")
COMPONENTS = ("base", "per_mac", "per_element")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def c_key(variant: str) -> str:
    """The sha256 of the sources that generate ``variant``'s C, names and texts."""
    h = hashlib.sha256()
    for pattern in C_SOURCES[variant]:
        for path in sorted(EXPORTER.glob(pattern)):
            h.update(path.relative_to(EXPORTER).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _edgekit(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise SystemExit(f"edgekit {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def make_exports(work: Path, name: str, *, epochs: int) -> dict[str, Path]:
    """Train ``name`` and export it twice (int8 C, float32 C); reuse what is there while the
    C's sources are unchanged (``<export>.calibration.json`` beside it says which)."""
    dataset, hidden, activation = MODELS[name]
    slug = name.replace(" ", "_")
    run = work / slug
    data = str(mnist_path()) if dataset == "mnist" else dataset
    if not (run / "model.keras").is_file():
        _edgekit("train", "--dataset", data, "--hidden", ",".join(map(str, hidden)),
                 "--activation", activation, "--epochs", str(epochs if dataset == "digits" else 1),
                 "--seed", "0", "--out", str(run), "--force")  # fmt: skip
    exports = {}
    for variant, quantize, suffix in (
        ("int8", "float32,int8", "int8"),
        ("float32", "float32", "f32"),
    ):
        if variant not in VARIANTS:
            continue
        out = work / f"{slug}-{suffix}"
        stamp = work / f"{slug}-{suffix}.calibration.json"  # export --force keeps only its own
        for _ in range(3):  # again if the sources changed while it exported
            key = c_key(variant)
            if (stamp.is_file() and json.loads(stamp.read_text())["c_sources_sha256"] == key
                    and (out / "manifest.json").is_file()):  # fmt: skip
                break
            kernel = sha256(EXPORTER / KERNEL[variant])
            _edgekit("export", str(run), "--mcu", "--quantize", quantize, "--c-source", variant,
                     "--out", str(out), "--force")  # fmt: skip
            if c_key(variant) == key:
                stamp.write_text(json.dumps({"c_sources_sha256": key, "kernel_sha256": kernel}))
                break
        else:
            raise SystemExit(f"{EXPORTER} keeps changing; measure when it is still")
        exports[variant] = out
    return exports


def _cached(path: Path, compute):
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    path.write_text(json.dumps(value))
    return value


def measure(work: Path, name: str, exports: dict[str, Path], *, trace: int) -> dict:
    """Arenas of both .tflite files (TFLM), instructions of both C files (QEMU), cached."""
    import numpy as np

    from edgekit.devices.qemu import run_on_qemu
    from edgekit.runtime.tflm import smallest_arena

    slug = name.replace(" ", "_")
    out: dict = {}
    for variant, export in exports.items():
        tfl = (export / f"model.{variant}.tflite").read_bytes()
        tsha = hashlib.sha256(tfl).hexdigest()
        arena = _cached(work / f"{slug}.{variant}.arena-{tsha[:16]}.json",
                        lambda tfl=tfl: {"arena": smallest_arena(tfl)})  # fmt: skip
        out[f"arena_{variant}"] = arena["arena"]

        def count(export=export) -> dict:
            with np.load(export / "test.npz") as data:
                x = np.asarray(data["x"], np.float32)[:trace]
            run = run_on_qemu(export / "edgekit_model.c", x.reshape(len(x), -1),
                              trace_samples=trace)  # fmt: skip
            return {"mean": round(sum(run.instructions) / len(run.instructions)),
                    "samples": list(run.instructions)}  # fmt: skip

        # keyed by the C itself (the kernels are pasted into it) and the harness it runs in
        key = hashlib.sha256((export / "edgekit_model.c").read_bytes()
                             + (EXPORTER / "kernels" / "harness.c").read_bytes()).hexdigest()  # fmt: skip
        c = _cached(work / f"{slug}.{variant}.c-{key[:16]}.json", count)
        stamp = json.loads((work / f"{export.name}.calibration.json").read_text())
        out[f"instructions_c_{variant}"] = c["mean"]
        out[f"instructions_c_{variant}_samples"] = c["samples"]
        out[f"kernel_sha256_{variant}"] = stamp["kernel_sha256"]
        out[f"c_sources_sha256_{variant}"] = stamp["c_sources_sha256"]
    return out


def check_fits(work: Path, rows: dict) -> list[str]:
    """Probe TFLM with each model's estimated arena (cached per .tflite and size); record it."""
    from edgekit.runtime.tflm import arena_fits

    failed = []
    for name, r in rows.items():
        for v in VARIANTS:
            tfl = Path(r["tflite"][v]).read_bytes()
            size = r["estimated"][f"arena_{v}"]
            tag = f"{hashlib.sha256(tfl).hexdigest()[:16]}-{size}"
            slug = name.replace(" ", "_")
            fits = _cached(work / f"{slug}.{v}.fits-{tag}.json",
                           lambda tfl=tfl, size=size: {"fits": arena_fits(tfl, size)})  # fmt: skip
            r["measured"][f"arena_fits_estimate_{v}"] = fits["fits"]
            if not fits["fits"]:
                failed.append(f"{name} {v}")
    return failed


def op_work(exports: dict[str, Path]) -> dict:
    """Each variant's per-op work (what the cost models price), tensors and activation plan."""
    from dataclasses import asdict

    from edgekit.estimate import estimate

    out: dict = {}
    for variant, export in exports.items():
        e = estimate(export / f"model.{variant}.tflite", target="cortex-m4", runtime="tflm")
        out[variant] = {
            "activation_bytes": e.activation_bytes,
            "tensors": e.tensors,
            "ops": [asdict(w) for w in e.work],
        }
    return out


def _features(runtime, ops: list, free: dict[str, tuple[str, ...]]) -> tuple[dict, float]:
    """Instructions of ``ops`` on ``runtime`` split into the free coefficients' multipliers
    (``{(key, component): amount}``) and the rest (a constant, the catalog's coefficients)."""
    from edgekit.estimate.catalog import OpCost
    from edgekit.estimate.costs import instructions

    cols: dict = {}
    fixed = 0.0
    for w in ops:
        key = f"{w.op}.{w.compute}"
        if key not in free and w.real:
            key = runtime.cost(w.op, w.compute)[1] or key
        if key not in free:
            fixed += instructions(runtime, w)
            continue
        fixed += runtime.op_overhead if w.real else 0.0
        known = runtime.ops.get(key, OpCost(0.0, 0.0, 0.0))
        amounts = {"base": 1.0, "per_mac": w.macs, "per_element": w.elements}
        for comp in COMPONENTS:
            if comp in free[key]:
                cols[(key, comp)] = cols.get((key, comp), 0.0) + amounts[comp]
            else:
                fixed += getattr(known, comp) * amounts[comp]
    return cols, fixed


def nnls_relative(rows: list[tuple[dict, float, float]]) -> dict:
    """Non-negative coefficients minimizing the relative error: rows (columns, fixed, target)."""
    import numpy as np
    from scipy.optimize import nnls

    names = sorted({k for cols, _, _ in rows for k in cols})
    a = np.array([[cols.get(k, 0.0) / y for k in names] for cols, _, y in rows])
    b = np.array([(y - fixed) / y for _, fixed, y in rows])
    scale = np.maximum(np.abs(a).max(axis=0), 1e-12)  # columns of like size for the solver
    x, _ = nnls(a / scale, b)
    return dict(zip(names, (x / scale).tolist(), strict=True))


def with_ops(runtime, coefficients: dict):
    """``runtime`` with the fitted op coefficients in place."""
    import dataclasses

    from edgekit.estimate.catalog import OpCost

    ops = dict(runtime.ops)
    for (key, comp), value in coefficients.items():
        known = ops.get(key, OpCost(0.0, 0.0, 0.0))
        ops[key] = dataclasses.replace(known, **{comp: value})
    return dataclasses.replace(runtime, ops=ops)


def fit_c(rows: dict, runtime) -> dict:
    from edgekit.estimate.costs import OpWork

    coefficients: dict = {}
    for variant in VARIANTS:
        data = []
        for r in rows.values():
            ops = [OpWork(**w) for w in r["work"][variant]["ops"]]
            cols, fixed = _features(runtime, ops, C_FIT[variant])
            data.append((cols, fixed, float(r["measured"][f"instructions_c_{variant}"])))
        coefficients.update(nnls_relative(data))
    return coefficients


def fit_tflm(rows: dict, runtime) -> dict:
    from edgekit.estimate.costs import OpWork

    data = []
    for name, anchor in TFLM_ANCHORS.items():
        if name in rows:
            ops = [OpWork(**w) for w in rows[name]["work"]["int8"]["ops"]]
            cols, fixed = _features(runtime, ops, TFLM_FIT)
            data.append((cols, fixed, float(anchor)))
    return nnls_relative(data) if len(data) >= 2 else {}


ARENA_TERMS = ("base", "tensor", "op", "fc", "channel", "temp_base", "temp_tensor")


def _arena_terms(work: dict) -> dict[str, float]:
    from edgekit.estimate.costs import OpWork

    ops = [OpWork(**o) for o in work["ops"] if o["real"]]
    fc = [o for o in ops if o.op == "FULLY_CONNECTED" and o.compute == "int8"]
    return {"base": 1.0, "tensor": float(work["tensors"]), "op": float(len(ops)),
            "fc": float(len(fc)), "channel": float(sum(o.elements for o in fc)),
            "temp_base": 1.0, "temp_tensor": float(work["tensors"])}  # fmt: skip


def fit_arena(rows: dict, runtime):
    """TFLM's arena: the persistent tail (base, per tensor, per op, per int8 FULLY_CONNECTED
    and per output channel of it) and the head's planning temporaries (base, per tensor).

    The smallest overhead that covers every measurement: minimize the sum of estimated /
    measured subject to estimated >= measured (a linear program); a model's head is its
    activations or its temporaries, whichever is larger, so that choice is iterated."""
    import dataclasses

    import numpy as np
    from scipy.optimize import linprog

    cases = [(r["work"][v], float(r["measured"][f"arena_{v}"]))
             for r in rows.values() for v in VARIANTS]  # fmt: skip
    temps = {"temp_base", "temp_tensor"}
    head_is_activations = [w["activation_bytes"] >= 1024 for w, _ in cases]  # a first guess
    x = np.zeros(len(ARENA_TERMS))
    for _ in range(20):
        a, b = [], []
        for (w, measured), act in zip(cases, head_is_activations, strict=True):
            terms = _arena_terms(w)
            a.append([0.0 if (act and k in temps) else terms[k] for k in ARENA_TERMS])
            b.append(measured - (w["activation_bytes"] if act else 0.0))
        am, bm = np.array(a), np.array(b)
        measured = np.array([m for _, m in cases])
        done = linprog((am / measured[:, None]).sum(axis=0), A_ub=-am, b_ub=-bm,
                       bounds=[(0, None)] * len(ARENA_TERMS), method="highs")  # fmt: skip
        if not done.success:
            raise SystemExit(f"the arena fit failed: {done.message}")
        x = done.x
        coef = dict(zip(ARENA_TERMS, x.tolist(), strict=True))
        new = [w["activation_bytes"] >= coef["temp_base"] + coef["temp_tensor"] * w["tensors"]
               for w, _ in cases]  # fmt: skip
        if new == head_is_activations:
            break
        head_is_activations = new
    coef = dict(zip(ARENA_TERMS, x.tolist(), strict=True))
    return dataclasses.replace(
        runtime,
        arena_base=coef["base"],
        arena_per_tensor=coef["tensor"],
        arena_per_op=coef["op"],
        arena_ops={"FULLY_CONNECTED.int8": (coef["fc"], coef["channel"])},
        arena_temp_base=coef["temp_base"],
        arena_temp_per_tensor=coef["temp_tensor"],
    )


CATALOG = REPO / "edgekit" / "estimate" / "targets.toml"
SECTION = "targets.cortex-m4.runtimes"


def fitted_sections(tflm, c, *, arena: bool) -> dict[str, dict[str, str]]:
    """The fitted figures as TOML values, per catalog section."""

    def ops(runtime, keys) -> dict[str, str]:
        out = {}
        for key in keys:
            cost = runtime.ops[key]
            out[f'"{key}"'] = (
                f"[{', '.join(_num(v) for v in (cost.base, cost.per_mac, cost.per_element))}]"
            )
        return out

    sections: dict[str, dict[str, str]] = {}
    if arena:
        sections[f"{SECTION}.tflm"] = {
            k: _num(getattr(tflm, k))
            for k in ("arena_base", "arena_per_tensor", "arena_per_op", "arena_temp_base",
                      "arena_temp_per_tensor")
        }  # fmt: skip
        sections[f"{SECTION}.tflm.arena_ops"] = {
            f'"{k}"': f"[{_num(v[0])}, {_num(v[1])}]" for k, v in tflm.arena_ops.items()
        }
    tflm_keys = [*TFLM_FIT, *(TFLM_LIKE_C if "float32" in VARIANTS else ())]
    sections[f"{SECTION}.tflm.ops"] = ops(tflm, tflm_keys)
    sections[f"{SECTION}.c.ops"] = ops(c, [k for v in VARIANTS for k in C_FIT[v]])
    return sections


def write_catalog(path: Path, sections: dict[str, dict[str, str]]) -> None:
    """Replace the values of ``sections`` in the TOML file ``path`` (each key must be there:
    its source says what the figure is, and a new figure needs one written by hand)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    current, seen = "", set()
    for n, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
            continue
        key = stripped.split("=", 1)[0].strip() if "=" in stripped else ""
        if current in sections and key in sections[current]:
            lines[n] = f"{key} = {sections[current][key]}\n"
            seen.add((current, key))
    missing = [f"[{s}] {k}" for s, values in sections.items() for k in values if (s, k) not in seen]
    if missing:
        raise SystemExit(f"{path} lacks {', '.join(missing)}: add them (with a source) first")
    path.write_text("".join(lines), encoding="utf-8")


def _num(value: float) -> str:
    return f"{value:.4g}" if value < 1000 else f"{round(value)}"


# -------------------------------------------------------------------------------------- tables


def tables(rows: dict, tflm, c) -> tuple[str, dict]:
    """The three tables, and the ratios (to record)."""

    def ratio(est: float, meas: float) -> float:
        return round(est / meas, 4)

    arena_rows, c_rows, tflm_rows = [], [], []
    ratios: dict = {"arena": {}, "c": {}, "tflm": {}}
    for name, r in rows.items():
        m = r["measured"]
        for v in VARIANTS:
            ins_tflm, arena = price_recorded(r["work"][v], tflm)
            ins_c, _ = price_recorded(r["work"][v], c)
            q = ratio(arena, m[f"arena_{v}"])
            ratios["arena"][f"{name} {v}"] = q
            arena_rows.append([f"{name} {v}", f"{r['work'][v]['activation_bytes']:,}",
                               f"{m[f'arena_{v}']:,}", f"{arena:,}", f"{q:.3f}"])  # fmt: skip
            meas = m[f"instructions_c_{v}"]
            q = ratio(ins_c, meas)
            ratios["c"][f"{name} {v}"] = q
            c_rows.append([f"{name} {v}", f"{meas:,}", f"{round(ins_c):,}", f"{q:.3f}"])
            if v == "int8" and name in TFLM_ANCHORS:
                q = ratio(ins_tflm, TFLM_ANCHORS[name])
                ratios["tflm"][f"{name} int8"] = q
                tflm_rows.append([f"{name} int8", f"{TFLM_ANCHORS[name]:,}",
                                  f"{round(ins_tflm):,}", f"{q:.3f}"])  # fmt: skip
    text = "\n".join([
        "TFLM arena (bytes; measured: smallest arena tflite-micro accepts, 64-bit host build)",
        table(["model", "activations", "measured", "estimated", "ratio"], arena_rows),
        "",
        "edgekit's C on qemu:cortex-m4 (instructions per inference; measured: QEMU trace)",
        table(["model", "measured", "estimated", "ratio"], c_rows),
        "",
        "TFLM + CMSIS-NN on the emulated Cortex-M4 (measured elsewhere: issue 14's counts)",
        table(["model", "measured", "estimated", "ratio"], tflm_rows),
    ])  # fmt: skip
    return text, ratios


def within(ratios: dict) -> list[str]:
    """The ratios outside the goals."""
    bad = [f"arena {k}: {v}" for k, v in ratios["arena"].items() if not 1.0 <= v <= BOUND]
    for what in ("c", "tflm"):
        bad += [f"{what} {k}: {v}" for k, v in ratios[what].items() if not 1 / BOUND <= v <= BOUND]
    return bad


def main() -> None:
    global VARIANTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="keep runs, exports, measurements here (reused)")
    parser.add_argument("--epochs", type=int, default=3, help="digits training epochs")
    parser.add_argument("--trace", type=int, default=4, help="traced samples per C model")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--only", help="comma-separated model names (of MODELS) to run")
    parser.add_argument("--fit", action="store_true", help="refit and print the coefficients")
    parser.add_argument(
        "--write",
        action="store_true",
        help="with --fit: write them into edgekit/estimate/targets.toml",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="int8, float32 or both (results/ are written for both only)",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write results/")
    args = parser.parse_args()
    both, VARIANTS = VARIANTS, tuple(v for v in VARIANTS if v in args.variants.split(","))
    from edgekit.estimate import get_target

    work = args.work or Path(tempfile.mkdtemp(prefix="edgekit-calibration-"))
    work.mkdir(parents=True, exist_ok=True)
    names = list(QUICK if args.quick else MODELS)
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
    rows: dict[str, dict] = {}
    for name in names:
        exports = make_exports(work, name, epochs=args.epochs)
        rows[name] = {
            "measured": measure(work, name, exports, trace=args.trace),
            "work": op_work(exports),
            "tflite": {v: str(exports[v] / f"model.{v}.tflite") for v in exports},
        }
        print(f"measured {name}", file=sys.stderr)

    runtimes = get_target("cortex-m4").runtimes
    tflm, c = runtimes["tflm"], runtimes["c"]
    text, ratios = tables(rows, tflm, c)
    print(text)
    bad = within(ratios)
    print("\nall within the goals" if not bad else "\noutside the goals: " + "; ".join(bad))
    for r in rows.values():
        r["estimated"] = {}
        for v in VARIANTS:
            ins_tflm, arena = price_recorded(r["work"][v], tflm)
            r["estimated"][f"arena_{v}"] = arena
            r["estimated"][f"instructions_c_{v}"] = round(price_recorded(r["work"][v], c)[0])
            r["estimated"][f"instructions_tflm_{v}"] = round(ins_tflm)
    if not args.fit:  # TFLM allocates and runs each model in the estimated arena
        failed = check_fits(work, rows)
        print("TFLM runs every model in the estimated arena" if not failed
              else f"TFLM did not run in the estimated arena: {', '.join(failed)}")  # fmt: skip
    if args.fit:
        fitted_c = with_ops(c, fit_c(rows, c))
        fitted_tflm = with_ops(tflm, fit_tflm(rows, tflm))
        if both == VARIANTS:  # the arena is fitted on both variants' .tflite files only
            fitted_tflm = fit_arena(rows, fitted_tflm)
        if "float32" in VARIANTS:
            fitted_tflm = with_ops(fitted_tflm, {
                (k, comp): getattr(fitted_c.ops[k], comp) for k in TFLM_LIKE_C
                for comp in COMPONENTS
            })  # fmt: skip
        sections = fitted_sections(fitted_tflm, fitted_c, arena=both == VARIANTS)
        print("\n--fit (--write puts these in edgekit/estimate/targets.toml):")
        for section, values in sections.items():
            print(f"\n[{section}]")
            print("\n".join(f"{k} = {v}" for k, v in values.items()))
        text, fitted = tables(rows, fitted_tflm, fitted_c)
        print("\nwith the fitted coefficients:\n" + text)
        bad = within(fitted)
        print("\nall within the goals" if not bad else "\noutside the goals: " + "; ".join(bad))
        if args.write:
            write_catalog(CATALOG, sections)
            print(f"\nwrote the coefficients into {CATALOG}; run again without --fit to record")
    kernels = {v: {r["measured"][f"kernel_sha256_{v}"] for r in rows.values()} for v in VARIANTS}
    now = {v: sha256(EXPORTER / KERNEL[v]) for v in VARIANTS}
    stale = [KERNEL[v] for v in VARIANTS if kernels[v] != {now[v]}]
    if stale:
        print(f"\n{', '.join(stale)} changed while measuring: run it again", file=sys.stderr)
    if not args.no_save and not args.fit and not stale and both == VARIANTS:
        path = write_result("estimate_calibration", {
            "goal": {"arena": [1.0, BOUND], "instructions": [round(1 / BOUND, 3), BOUND]},
            "kernel_sha256": now,
            "c_sources_sha256": {v: c_key(v) for v in VARIANTS},
            "tflm_anchors": TFLM_ANCHORS,
            "c_anchors_issue14": C_ANCHORS,
            "ratios": ratios,
            "models": {
                name: {"model": dict(zip(("dataset", "hidden", "activation"), MODELS[name],
                                         strict=True)),
                       **{k: v for k, v in r.items() if k != "tflite"}}
                for name, r in rows.items()
            },
        })  # fmt: skip
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
