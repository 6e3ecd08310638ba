"""The public Python API: real signatures, and the package docstring's example runs as written."""

from __future__ import annotations

import inspect
import textwrap

import pytest

import edgekit


def test_train_and_export_show_their_real_keywords():
    train = inspect.signature(edgekit.train).parameters
    export = inspect.signature(edgekit.export).parameters
    assert "options" not in train and "options" not in export
    assert {"dataset", "hidden", "epochs", "seed", "out", "force"} <= set(train)
    assert {"quantize", "onnx", "c_source", "max_accuracy_drop", "out", "force"} <= set(export)
    assert all(p.kind is p.KEYWORD_ONLY for name, p in export.items() if name != "source")
    assert edgekit.export.__module__ == "edgekit.exporters.api"
    assert edgekit.train.__module__ == "edgekit.trainer.api"


def test_unknown_options_are_a_type_error_as_in_any_python_call():
    with pytest.raises(TypeError, match="epochz"):
        edgekit.train(epochz=3)  # type: ignore[call-arg]


@pytest.mark.slow
def test_the_package_docstring_example_runs(tmp_path):
    doc = edgekit.__doc__ or ""
    block = doc.split("::", 1)[1].split("\n\n", 2)[1]  # the indented example after "::"
    namespace: dict = {"edgekit": edgekit}
    exec(textwrap.dedent(block), namespace)  # it trains on digits into runs/, then exports
    result = namespace["result"]
    assert result.passed
    assert result.manifest_path.is_file()
    assert [a["variant"] for a in result.artifacts] == ["int8"]
    assert namespace["run"].metrics["test"]["accuracy"] > 0.9
