"""The candidates ``--quantize auto`` tries, in order of cost, and how each is built.

Each :class:`Candidate` names a recipe (``int8+cle``: int8 after cross-layer equalization), its
size class (``rank``), whether it is meant to be integer-only, how to build it into a file and
when it does not apply. :class:`Search` holds what they are built from and caches what several
share (the equalized model, the debugger's layer errors, SavedModels).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.validate import Reference
from edgekit.exporters.variants import BuildInputs

MORE_CALIBRATION = 2000  # samples, at most, for the "every calibration sample" candidate
FLOAT_LAYER_TRIES = 3  # the worst 1, 2, 3 layers in float
NO_PAIRS = "no Dense -> Dense pair with a ReLU or linear activation to equalize"


@dataclass
class Search:
    """What the candidates are built from, and what the search has built so far."""

    inputs: BuildInputs
    ref: Reference
    scratch: Path
    calibration: np.ndarray  # raw inputs, --calibration-samples of them
    more_calibration: np.ndarray  # raw inputs, the whole calibration set (capped)
    atol: float
    max_drop: float
    integer_only: bool
    built: dict[str, Path] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> tuple[Any, Any]:
        """(Keras model, SavedModel) the integer candidates start from: the core, if any."""
        inp = self.inputs
        if inp.core is not None:
            return inp.core, inp.core_saved_model or inp.core
        return inp.model, inp.saved_model or inp.model

    def taken(self, raw: np.ndarray) -> np.ndarray:
        """Raw inputs -> what the base model takes."""
        affine = self.inputs.affine
        return affine.apply(raw) if affine is not None else np.asarray(raw, np.float32)

    def equalized(self) -> tuple[Any, Any] | None:
        """(model, SavedModel) after cross-layer equalization; None with no pair to equalize."""
        if "equalized" not in self._cache:
            from edgekit.exporters.equalize import dense_pairs, equalize, fresh_copy

            model = self.base[0]
            self._cache["equalized"] = None
            if dense_pairs(fresh_copy(model)):
                equalized, _ = equalize(model)
                self._cache["equalized"] = (equalized, self.saved(equalized, "equalized"))
        return self._cache["equalized"]

    def int8(self, path: Path, saved_model: Any, *, calibration: np.ndarray) -> Path:
        from edgekit.exporters.tflite import to_tflite

        return to_tflite(saved_model, path, variant="int8", calibration=calibration,
                         io_type="int8", affine=self.inputs.affine)  # fmt: skip

    def float_layers(self) -> list[tuple[str, float]]:
        """(TFLite node, error) of the equalized (else base) model's layers, worst first."""
        if "errors" not in self._cache:
            from edgekit.exporters.tflite_tuned import layer_errors

            saved = (self.equalized() or self.base)[1]
            self._cache["errors"] = layer_errors(self.as_saved(saved), self.taken(self.calibration))
        return self._cache["errors"]

    def float_layer_names(self, n: int) -> list[str]:
        """The Keras layers the ``n`` worst TFLite nodes come from."""
        return [_layer_name(node, self.base[0]) for node, _ in self.float_layers()[:n]]

    def saved(self, model, name: str) -> Path:
        from edgekit.exporters.tflite import saved_model_for

        return saved_model_for(model, self.scratch / f"{name}_saved_model")

    def as_saved(self, model_or_dir: Any) -> Path:
        if isinstance(model_or_dir, Path):
            return model_or_dir
        return self.saved(model_or_dir, "base")


@dataclass(frozen=True)
class Candidate:
    """One recipe: ``build`` writes it to a path; ``skip`` says why it does not apply, if so."""

    name: str
    rank: int  # size class: 0 int8 weights (int8, dynamic), 1 int16 or some float, 2 float16
    integer: bool  # meant to be integer-only (so tried with --integer-only)
    build: Callable[[Search, Path], Path]
    skip: Callable[[Search], str | None] = lambda _search: None
    recipe: dict[str, Any] = field(default_factory=dict)


def _no_more_calibration(s: Search) -> str | None:
    if len(s.more_calibration) > len(s.calibration):
        return None
    return f"the calibration set has {len(s.more_calibration)} samples, all used by int8"


def _no_pairs(s: Search) -> str | None:
    return None if s.equalized() is not None else NO_PAIRS


def _has_pairs(s: Search) -> str | None:
    return "int8+cle+bias corrects the equalized model" if s.equalized() is not None else None


def _bias(base: str) -> Callable[[Search, Path], Path]:
    def build(s: Search, path: Path) -> Path:
        from edgekit.exporters.bias_correction import correct_biases

        if base not in s.built:
            raise EdgekitError(f"bias correction needs the {base} candidate, which failed")
        model = (s.equalized() or s.base)[0] if base == "int8+cle" else s.base[0]
        corrected = correct_biases(model, s.built[base], s.taken(s.calibration))
        return s.int8(path, s.saved(corrected, base + "-bias"), calibration=s.calibration)

    return build


def _int16(s: Search, path: Path, *, equalized: bool) -> Path:
    from edgekit.exporters.tflite_tuned import to_int16_tflite

    saved = (s.equalized() or s.base)[1] if equalized else s.base[1]
    return to_int16_tflite(s.as_saved(saved), path, calibration=s.taken(s.calibration))


def _float_layers(n: int) -> Callable[[Search, Path], Path]:
    def build(s: Search, path: Path) -> Path:
        from edgekit.exporters.tflite_tuned import to_tflite_with_float_layers

        nodes = [node for node, _ in s.float_layers()[:n]]
        saved = s.as_saved((s.equalized() or s.base)[1])
        return to_tflite_with_float_layers(saved, path, calibration=s.taken(s.calibration),
                                           nodes=nodes)  # fmt: skip

    return build


def _too_few_layers(n: int) -> Callable[[Search], str | None]:
    def skip(s: Search) -> str | None:
        have = len(s.float_layers())
        return None if have >= n else f"the model has {have} quantized layers"

    return skip


def _float(variant: str) -> Callable[[Search, Path], Path]:
    """A float-compute variant of the whole model (normalization inside): raw float input."""

    def build(s: Search, path: Path) -> Path:
        from edgekit.exporters.tflite import to_tflite

        return to_tflite(s.inputs.saved_model or s.inputs.model, path, variant=variant)

    return build


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("int8", 0, True, lambda s, p: s.int8(p, s.base[1], calibration=s.calibration)),
    Candidate(
        "int8+calibration", 0, True,
        lambda s, p: s.int8(p, s.base[1], calibration=s.more_calibration),
        _no_more_calibration, {"calibration": "all"},
    ),
    Candidate(
        "int8+cle", 0, True,
        lambda s, p: s.int8(p, (s.equalized() or s.base)[1], calibration=s.calibration),
        _no_pairs, {"equalization": True},
    ),
    Candidate("int8+cle+bias", 0, True, _bias("int8+cle"), _no_pairs,
              {"equalization": True, "bias_correction": True}),
    Candidate("int8+bias", 0, True, _bias("int8"), _has_pairs, {"bias_correction": True}),
    Candidate("int16x8", 1, True, lambda s, p: _int16(s, p, equalized=False)),
    Candidate("int16x8+cle", 1, True, lambda s, p: _int16(s, p, equalized=True), _no_pairs,
              {"equalization": True}),
    *(
        Candidate(f"int8+float{n}", 1, False, _float_layers(n), _too_few_layers(n),
                  {"float_layers": n})
        for n in range(1, FLOAT_LAYER_TRIES + 1)
    ),
    Candidate("dynamic", 0, False, _float("dynamic")),
    Candidate("float16", 2, False, _float("float16")),
)  # fmt: skip


def _layer_name(node: str, model) -> str:
    """The Keras layer a TFLite tensor name comes from (``model_1/dense_0_1/MatMul;...``)."""
    first = node.split(";")[0]
    for layer in sorted(model.layers, key=lambda layer: -len(layer.name)):
        if re.search(rf"(^|/){re.escape(layer.name)}(_\d+)?/", first):
            return str(layer.name)
    return first
