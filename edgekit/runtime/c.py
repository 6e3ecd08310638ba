"""The ``c`` runtime: the standalone C of ``export --c-source``, compiled here and called natively.

The runner's path is the generated ``<prefix>_model.c`` inside an export directory, whose
``manifest.json`` ``c_source`` entry describes it. :meth:`CRunner.build` compiles it with the
system C compiler (``$CC``, ``cc``, ``gcc`` or ``clang``; ``-std=c99 -O3``, and
``-march=native`` where the compiler accepts it) together with a
small harness into a shared library; the runner then calls it through :mod:`ctypes`.

What is timed is ``<prefix>_predict`` (real values in and out, the int8 code quantizes and
dequantizes inside it), so rows compare with the other runtimes' rows and accuracy and
max |diff| come from the same call. A batch of B is B calls, one sample each, in a C loop;
:meth:`CRunner.time_native` times it with ``clock_gettime(CLOCK_MONOTONIC)`` in C, so no
Python or ctypes overhead is in the measurement. The C is single-threaded (threads=1 only).
``size_bytes`` is the compiled model's code and constants (the ``.text``, ``.rodata`` and
``.data`` sections of ``<prefix>_model.o``): what it takes in flash, on this machine's
instruction set.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.formats.manifest import c_source_digests, first_shape, read_verified
from edgekit.runtime.base import Runner, RuntimeUnavailable, TensorInfo
from edgekit.toolchain import NO_COMPILER, find_compiler, object_footprint, run_compiler

BUILD_TIMEOUT = 300.0
# -ffp-contract=off: no fused multiply-adds (clang contracts by default), so the float C
# computes what the export validated
CFLAGS = ["-std=c99", "-O3", "-ffp-contract=off"]
# and this CPU's instruction set (x86 VNNI: the int8 C's byte dot products); a compiler that
# refuses it, or cannot build with it, gets the portable build (CRunner.build)
NATIVE = ["-march=native"]

WRAPPER = r"""/* edgekit bench harness around {p}_predict: batches and a native timing loop. */
#define _POSIX_C_SOURCE 199309L
#include <time.h>

#include "{p}_model.h"

#define EK_API __attribute__((visibility("default")))

EK_API int ek_predict_batch(const float *x, float *y, long n)
{{
    long i;
    for (i = 0; i < n; ++i) {{
        int rc = {p}_predict(x + i * {N_IN}, y + i * {N_OUT});
        if (rc != 0) {{
            return rc;
        }}
    }}
    return 0;
}}

static long long ek_ns(const struct timespec *a, const struct timespec *b)
{{
    return (long long)(b->tv_sec - a->tv_sec) * 1000000000LL + (long long)(b->tv_nsec - a->tv_nsec);
}}

/* warmup untimed batches, then timed batches until at least min_calls and min_ns have
 * passed (or max_calls / max_ns); ns[k] = nanoseconds of batch k. Returns the count, or
 * -1 if {p}_predict failed. */
EK_API long ek_time(const float *x, float *y, long batch, long warmup, long min_calls,
                    long long min_ns, long long max_ns, long max_calls, long long *ns)
{{
    struct timespec start, t0, t1;
    long k, n = 0;
    for (k = 0; k < warmup; ++k) {{
        if (ek_predict_batch(x, y, batch) != 0) {{
            return -1;
        }}
    }}
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {{
        long long elapsed;
        int rc;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = ek_predict_batch(x, y, batch);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (rc != 0) {{
            return -1;
        }}
        ns[n++] = ek_ns(&t0, &t1);
        elapsed = ek_ns(&start, &t1);
        if ((n >= min_calls && elapsed >= min_ns) || n >= max_calls || elapsed >= max_ns) {{
            return n;
        }}
    }}
}}
"""


def c_source_entry(path: Path) -> dict[str, Any]:
    """The ``c_source`` entry of the manifest beside ``path`` (the generated ``.c``)."""
    from edgekit.formats.manifest import MANIFEST_NAME, load_manifest
    from edgekit.formats.manifest import c_source_entry as entry

    manifest = path.parent / MANIFEST_NAME
    if not manifest.is_file():
        raise EdgekitError(
            f"{path}: the c runtime needs the export's manifest.json beside the .c file "
            "(export with --c-source float32|int8)"
        )
    obj = load_manifest(manifest)
    info = entry(manifest, obj)
    if info is None:
        raise EdgekitError(f"{manifest}: holds no C source (export with --c-source float32|int8)")
    if path.name not in info["files"]:
        raise EdgekitError(f"{path}: not the C source that {manifest} lists ({info['files']})")
    return {**info, "manifest": obj}


class CRunner(Runner):
    """The generated C (``export --c-source``), compiled with ``-O3`` (``-march=native``) and
    called natively."""

    runtime = "c"

    def __init__(self, path, **options: Any) -> None:
        super().__init__(path, **options)
        self._build_dir: Path | None = None
        self._library: Path | None = None
        self.compiler: str | None = None
        self.cflags: list[str] = []
        self._info: dict[str, Any] = {}

    def _check(self) -> dict[str, Any]:
        if self.device != "cpu":
            raise RuntimeUnavailable("the c runtime runs on the CPU only")
        if self.threads != 1:
            raise RuntimeUnavailable(
                f"the generated C runs on one thread; threads={self.threads} does not apply"
            )
        info = c_source_entry(self.path)
        self._info = info
        self.prefix = str(info["prefix"])
        self.variant = str(info["variant"])
        self.input_size, self.output_size = int(info["input_size"]), int(info["output_size"])
        manifest, origin = info["manifest"], info.get("from")
        in_shape = first_shape(manifest, "inputs", prefer=origin) or [-1, self.input_size]
        out_shape = first_shape(manifest, "outputs", prefer=origin) or [-1, self.output_size]
        if int(np.prod(in_shape[1:])) != self.input_size:
            in_shape = [-1, self.input_size]
        self.inputs = [TensorInfo(name="input", shape=in_shape, dtype="float32")]
        self.outputs = [TensorInfo(name="output", shape=out_shape, dtype="float32")]
        return info

    def build(self) -> Path:
        """Compile the model and the harness into a shared library (once); returns it.

        Only the C files that export wrote are compiled: each is checked against the sha256
        the manifest's ``c_source`` entry records (an entry without them is refused: export
        again), and its prefix must be a C identifier.
        """
        if self._library is not None:
            return self._library
        self._check()
        info = self._info
        cc = find_compiler()
        if cc is None:
            raise RuntimeUnavailable(NO_COMPILER)
        header = self.path.parent / f"{self.prefix}_model.h"
        if not header.is_file():
            raise EdgekitError(f"{header}: no such file (the header of {self.path.name})")
        build = Path(tempfile.mkdtemp(prefix="edgekit-c-"))
        self._build_dir = build
        # What is compiled is a copy of the C files in the private build directory, each
        # checked against the sha256 that export recorded (read once: what is checked is what
        # is compiled), and nothing from the export directory is on the include path.
        where = self.path.parent / "manifest.json"
        digests = c_source_digests(info, where=where)
        for path in info["paths"]:
            (build / path.name).write_bytes(read_verified(path, digests[path.name], where=where))
        source = build / self.path.name
        if not (build / header.name).is_file():
            raise EdgekitError(f"{where}: 'c_source' does not list {header.name}")
        wrapper = build / "ek_bench.c"
        wrapper.write_text(
            WRAPPER.format(p=self.prefix, N_IN=self.input_size, N_OUT=self.output_size),
            encoding="utf-8",
        )
        model_o, library = build / "model.o", build / "libek_model.so"
        try:
            self._compile(cc, [*CFLAGS, *NATIVE], build, source, wrapper, library)
        except EdgekitError:  # no -march=native here, or an assembler older than the CPU
            self._compile(cc, list(CFLAGS), build, source, wrapper, library)
        self.compiler = cc
        with contextlib.suppress(OSError, struct.error, ValueError, IndexError):
            self.size_bytes = object_footprint(model_o)
        self._library = library
        return library

    def _compile(
        self, cc: str, flags: list[str], build: Path, source: Path, wrapper: Path, library: Path
    ) -> None:
        model_o, wrapper_o = build / "model.o", build / "ek_bench.o"
        common = [*flags, "-fPIC", "-fvisibility=hidden", "-iquote", str(build)]
        for cmd in (
            [cc, *common, "-c", str(source), "-o", str(model_o)],
            [cc, *common, "-c", str(wrapper), "-o", str(wrapper_o)],
            [cc, "-shared", str(model_o), str(wrapper_o), "-o", str(library), "-lm"],
        ):
            run_compiler(cmd, what=self.path.name, timeout=BUILD_TIMEOUT)
        self.cflags = flags

    def load(self) -> None:
        library = self.build()
        lib = ctypes.CDLL(str(library))
        fp, lp = ctypes.c_void_p, ctypes.c_long
        self._predict = lib.ek_predict_batch
        self._predict.argtypes = [fp, fp, lp]
        self._predict.restype = ctypes.c_int
        self._time = lib.ek_time
        self._time.argtypes = [fp, fp, lp, lp, lp, ctypes.c_longlong, ctypes.c_longlong, lp, fp]
        self._time.restype = lp
        self._lib = lib

    def close(self) -> None:
        if self._build_dir is not None:
            shutil.rmtree(self._build_dir, ignore_errors=True)
            self._build_dir = None

    def check_features(self, x: np.ndarray) -> np.ndarray:
        """Any sample shape with the model's element count (C takes it flattened, C order)."""
        x = np.asarray(x)
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != self.input_size:
            raise EdgekitError(
                f"{self.path.name}: input has shape {list(x.shape)}, the model takes "
                f"[batch, {', '.join(map(str, self.input.shape[1:]))}]"
            )
        return x.astype(np.float32, copy=False)

    def prepare(self, x: np.ndarray) -> np.ndarray:
        x = self.check_features(x)
        return np.ascontiguousarray(x.reshape(len(x), self.input_size), dtype=np.float32)

    def call(self, feed: np.ndarray) -> np.ndarray:
        out = np.empty((len(feed), self.output_size), dtype=np.float32)
        rc = self._predict(feed.ctypes.data, out.ctypes.data, len(feed))
        if rc != 0:
            raise EdgekitError(f"{self.prefix}_predict returned {rc}")
        return out.reshape(len(feed), *[d if d > 0 else 1 for d in self.output.shape[1:]])

    def bind(self, feed: np.ndarray):
        out = np.empty((len(feed), self.output_size), dtype=np.float32)
        predict, x_ptr, y_ptr, n = self._predict, feed.ctypes.data, out.ctypes.data, len(feed)
        return lambda: predict(x_ptr, y_ptr, n)

    def time_native(
        self,
        feed: np.ndarray,
        *,
        warmup: int,
        runs: int,
        min_time: float,
        max_time: float,
        max_samples: int,
    ) -> list[int]:
        """Nanoseconds per batch (``len(feed)`` calls), timed in C; like ``time_calls``."""
        out = np.empty((len(feed), self.output_size), dtype=np.float32)
        ns = np.zeros(max_samples, dtype=np.int64)
        count = self._time(
            feed.ctypes.data, out.ctypes.data, len(feed), warmup, runs,
            int(min_time * 1e9), int(max_time * 1e9), max_samples, ns.ctypes.data,
        )  # fmt: skip
        if count < 0:
            raise EdgekitError(f"{self.prefix}_predict failed while timing")
        return ns[:count].tolist()
