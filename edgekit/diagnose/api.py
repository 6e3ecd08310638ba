"""``edgekit.diagnose.diagnose(...)``: each quantized artifact against the Keras model, per layer.

For each artifact: run it on the data with every intermediate tensor kept
(:mod:`~edgekit.diagnose.tflite`, :mod:`~edgekit.diagnose.onnx`), match tensors to the Keras
layers that produced them (:mod:`~edgekit.diagnose.align`), run the float model from each
(:mod:`~edgekit.diagnose.chain`), measure (:mod:`~edgekit.diagnose.layer`) and explain
(:mod:`~edgekit.diagnose.explain`). Anchors: TFLite's QuantizationDebugger (per-op error
against the float op on the same inputs), onnxruntime's ``qdq_loss_debug`` (every activation
as a graph output) and Polygraphy's layerwise comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import metrics
from edgekit.diagnose.align import choose, weight_types
from edgekit.diagnose.chain import ONE_INPUT, FloatChain
from edgekit.diagnose.explain import Context, explain
from edgekit.diagnose.graph import Capture
from edgekit.diagnose.layer import LayerReport, live_channels, measure
from edgekit.diagnose.reference import SOURCE, reference_kind, reference_model
from edgekit.diagnose.result import ArtifactDiagnosis, Diagnosis
from edgekit.diagnose.weights import weight_findings
from edgekit.errors import EdgekitError
from edgekit.formats.manifest import beside, input_quantization, load_manifest, manifest_file

FLOAT_VARIANTS = ("float32", "onnx-float32")
MAX_SAMPLES = 1000  # of the data, the first ones: enough for every statistic here
# Every layer's output is held for every sample, several times over (the float references,
# the artifact's captured tensors, the continued float runs in float64): the samples are
# capped so that this stays within MEMORY_BUDGET, whatever the layers' widths.
MEMORY_BUDGET = 192 << 20
COPIES = 12  # of each layer output per sample, counted generously
MIN_SAMPLES = 32


def samples_within_memory(chain: FloatChain, n: int) -> int:
    """How many of ``n`` samples diagnose can hold every layer's output for within
    :data:`MEMORY_BUDGET` (at least :data:`MIN_SAMPLES`, at most ``n``)."""
    values = sum(int(np.prod(chain.shape(i), dtype=np.int64)) for i in range(len(chain.names)))
    per_sample = max(1, values) * 8 * COPIES
    return int(min(n, max(MIN_SAMPLES, MEMORY_BUDGET // per_sample)))


def _tflite(path: Path, feed: np.ndarray) -> Capture:
    from edgekit.diagnose.tflite import capture_tflite

    return capture_tflite(path, feed)


def _onnx(path: Path, feed: np.ndarray) -> Capture:
    from edgekit.diagnose.onnx import capture_onnx

    return capture_onnx(path, feed)


CAPTURES: dict[str, Callable[[Path, np.ndarray], Capture]] = {"tflite": _tflite, "onnx": _onnx}


@dataclass(frozen=True)
class _Export:
    directory: Path
    manifest: dict[str, Any]
    entries: list[dict[str, Any]]


def _quantized(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["variant"] not in FLOAT_VARIANTS]


def _pick_variant(entries: list[dict[str, Any]], variant: str | None) -> list[dict[str, Any]]:
    if variant is None:
        return entries
    chosen = [e for e in entries if e["variant"] == variant]
    if not chosen:
        valid = ", ".join(e["variant"] for e in entries)
        raise EdgekitError(f"unknown variant {variant!r}; choose from {valid}")
    return chosen


def _nothing_to_diagnose(where: Path, variants: list[str], *, one: bool = False) -> EdgekitError:
    what = "a float artifact" if one else "every artifact is float"
    return EdgekitError(
        f"{where}: nothing to diagnose: {what} ({', '.join(variants)}); "
        "export a quantized one with --quantize int8 (or --onnx-quantize static)"
    )


def _resolve(target: str | Path, variant: str | None) -> _Export:
    path = Path(target)
    if not path.exists():
        raise EdgekitError(f"{path}: no such file or directory")
    if path.is_dir():
        if not manifest_file(path).exists() and (path / "run.json").is_file():
            path = path / "export"  # a run directory: its default export
        manifest = load_manifest(path)
        quantized = _quantized(manifest["artifacts"])
        if not quantized:
            raise _nothing_to_diagnose(path, [a["variant"] for a in manifest["artifacts"]])
        return _Export(path, manifest, _pick_variant(quantized, variant))
    entry = beside(path)
    if not entry:
        raise EdgekitError(
            f"{path}: no manifest.json beside it lists this file (or the file changed since); "
            "diagnose takes an export directory or an artifact in one"
        )
    if not _quantized([entry]):
        raise _nothing_to_diagnose(path, [entry["variant"]], one=True)
    return _Export(
        path.parent, load_manifest(manifest_file(path.parent)), _pick_variant([entry], variant)
    )


def _source_model(export: _Export, model: str | Path | None) -> FloatChain:
    """The Keras model the export came from: ``model``, or the manifest's source file beside
    the export directory (a run's ``model.keras``), checked against the recorded sha256."""
    from edgekit.exporters.source import model_digest
    from edgekit.formats.keras_file import load_model_file

    source = export.manifest.get("source") or {}
    if model is not None:
        found = Path(model)
        if not found.exists():
            raise EdgekitError(f"{found}: no such model file (--model)")
    else:
        name = source.get("file")
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise EdgekitError(
                f"{export.directory}: the manifest names no source model; pass --model FILE"
            )
        places = [export.directory.resolve().parent, export.directory.resolve()]
        near = next((d / name for d in places if (d / name).exists()), None)
        if near is None:
            raise EdgekitError(
                f"{export.directory}: cannot find its source model {name} (looked in "
                f"{' and '.join(str(d) for d in places)}); pass --model FILE"
            )
        found = near
    if source.get("sha256") and model_digest(found) != source["sha256"]:
        raise EdgekitError(
            f"{found}: not the model {export.directory} was exported from (sha256 differs); "
            "export it again, or pass the source with --model"
        )
    return FloatChain(load_model_file(found), found)


def _one_input_one_output(export: _Export) -> None:
    """Refuse, before any data is read, an export of a model with several inputs or outputs
    (its manifest lists them): the float chain diagnose runs has one of each."""

    def listed(names: list[str], what: str) -> str:
        return f"{len(names)} {what}{'s' if len(names) != 1 else ''} ({', '.join(names)})"

    m = export.manifest
    entry = export.entries[0]
    ins = m.get("model_inputs") or [str(t.get("name")) for t in entry.get("inputs") or []]
    outs = m.get("model_outputs") or [str(t.get("name")) for t in entry.get("outputs") or []]
    if len(ins) > 1 or len(outs) > 1:
        source = (m.get("source") or {}).get("file") or "its model"
        raise EdgekitError(
            f"{export.directory}: {ONE_INPUT}; {source} has {listed(ins, 'input')} and "
            f"{listed(outs, 'output')}"
        )


def _features(export: _Export, data: str | Path | None) -> tuple[np.ndarray, str]:
    from edgekit.exporters.source import read_features

    if data is None:
        name = (export.manifest.get("validation") or {}).get("data") or "test.npz"
        path = export.directory / str(name)
        if not path.is_file():
            raise EdgekitError(f"{export.directory}: no {name} in it; pass --data FILE.npz")
        return read_features(path, "test"), path.name
    path = Path(data)
    if path.suffix.lower() == ".csv":
        from edgekit.data.files import load_csv

        return np.asarray(load_csv(path).x, np.float32), path.name
    if path.suffix.lower() != ".npz":
        raise EdgekitError(f"{path}: --data takes a .npz (array 'x') or a .csv file")
    return read_features(path, "test"), path.name


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values)))) if values.size else 0.0


def _layers(
    capture: Capture, chain: FloatChain, ref: list[np.ndarray], task: str
) -> list[LayerReport]:
    """A :class:`LayerReport` per layer the capture holds a tensor of, in model order.

    Each layer's float twin runs on the artifact's own input to it (the tensor of the layer
    reported before it), and the float model continues from both to the output."""
    static = capture.static
    weights = weight_types(capture, chain)
    out_range = float(ref[-1].max() - ref[-1].min()) or 1.0
    n = len(ref[0])
    reports: list[LayerReport] = []
    before, before_real = 0, ref[0]
    for position, tensor in choose(capture, chain, ref, static=static).items():
        real = tensor.real()
        if position == 0:
            isolated = ref[0]
        else:
            isolated = chain.run(before + 1, before_real, position + 1).reshape(n, -1)
        carried = chain.run(position + 1, real).reshape(n, -1)
        carried_iso = chain.run(position + 1, isolated).reshape(n, -1)
        report = measure(
            layer=chain.names[position],
            kind=chain.kind(position),
            position=position,
            tensor=tensor,
            isolated=isolated.astype(np.float64),
            reference=ref[position],
            error=_rms(carried - carried_iso) / out_range,
            downstream=metrics.top1_agreement(carried, ref[-1], task),
        )
        findings = None
        if position > 0:
            findings = weight_findings(chain.layers[position], live_channels(ref[position - 1]))
        ctx = Context(
            static=static,
            weights=weights.get(position, "float32"),
            previous=reports[-1] if reports else None,
            findings=findings,
        )
        report.sentence = explain(report, ctx)
        reports.append(report)
        before, before_real = position, real
    return reports


class _References:
    """The float chain and its layer outputs on ``x`` for each reference kind, built once."""

    def __init__(self, source: FloatChain, x: np.ndarray) -> None:
        self.source, self.x = source, x
        self._built: dict[str, tuple[FloatChain, list[np.ndarray]]] = {}

    def get(self, kind: str) -> tuple[FloatChain, list[np.ndarray]]:
        if kind not in self._built:
            model = reference_model(self.source.model, kind)
            chain = self.source if kind == SOURCE else FloatChain(model, f"{kind} model")
            self._built[kind] = (chain, chain.outputs(self.x))
        return self._built[kind]


def _one(
    path: Path, entry: dict[str, Any], references: _References, task: str
) -> ArtifactDiagnosis:
    from edgekit.runtime import open_runner

    kind = reference_kind(entry)
    chain, ref = references.get(kind)
    x = references.x

    with open_runner(path, input_quantization=input_quantization(entry)) as runner:
        feed = runner.input.quantize(runner.check_features(x))
    capture = CAPTURES[entry["format"]](path, feed)
    reports = _layers(capture, chain, ref, task)
    output = next(t for t in capture.tensors if t.is_output).real()
    return ArtifactDiagnosis(
        artifact=path.name,
        variant=entry["variant"],
        kind="static" if capture.static else "weights",
        samples=len(x),
        top1_agreement=metrics.top1_agreement(output, ref[-1], task),
        max_abs_diff=metrics.max_abs_diff(output, ref[-1]),
        reference=kind,
        layers=sorted(reports, key=lambda r: (-r.error, r.position)),
    )


def diagnose(
    target: str | Path,
    *,
    variant: str | None = None,
    data: str | Path | None = None,
    model: str | Path | None = None,
    samples: int = MAX_SAMPLES,
) -> Diagnosis:
    """Compare each quantized artifact of an export directory (or one artifact in it) with
    its Keras model, layer by layer (``edgekit diagnose``). ``model``: the source model, when
    it is not beside the export directory; ``data``: inputs (default: the export's test data);
    ``samples``: how many of them to use, the first ones::

        d = diagnose("runs/latest/export")
        d.results[0].worst.sentence   # 'dense_0: one channel spans 181x the others; ...'
        d.save_plot()                 # runs/latest/export/diagnose.png
    """
    export = _resolve(target, variant)
    _one_input_one_output(export)
    x, data_name = _features(export, data)
    if samples < 1:
        raise EdgekitError(f"samples must be at least 1, got {samples}")
    x = x[:samples]
    chain = _source_model(export, model)
    if tuple(x.shape[1:]) != chain.shape(0):
        raise EdgekitError(
            f"{data_name}: features have shape {list(x.shape[1:])}, the model takes "
            f"{list(chain.shape(0))}"
        )
    x = x[: samples_within_memory(chain, len(x))]  # a very wide model: fewer samples
    from edgekit._lazy import silenced

    references = _References(chain, x)
    with silenced(2):
        results = [
            _one(export.directory / e["file"], e, references, export.manifest["task"])
            for e in export.entries
        ]
    return Diagnosis(
        export=export.directory.resolve(),
        task=export.manifest["task"],
        samples=len(x),
        data=data_name,
        results=results,
    )
