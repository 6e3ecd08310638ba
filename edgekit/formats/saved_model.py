"""SavedModel directories: the graph checked before TensorFlow loads or runs any of it, then
wrapped in a Keras model (:func:`load_saved_model`).

A SavedModel is a program: its serving function may hold any TensorFlow op, and loading it
(then calling it to convert or validate) runs them. Ops that touch the file system or call
back into Python are refused here, by name, before ``tf.saved_model.load``: a model for the
edge multiplies and adds, and one that writes ``~/.bashrc`` while it is exported is not one.

Every node is checked: the main graph's and every library function's, reached from the
serving signatures, from initializers or from nothing. The one exception is the saver's own
pair (``saver_def``'s save and restore functions, which every SavedModel carries and which
``SaveV2``/``RestoreV2`` its variables): loading restores variables by itself and never calls
them, so what only they reach is not run.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgekit._lazy import require
from edgekit.errors import EdgekitError
from edgekit.formats.keras_file import SAVED_MODEL_FILE

MAX_GRAPH_BYTES = 256 << 20

# Ops that read, write, list or map files, write summaries, or run Python.
REFUSED_OPS = frozenset(
    {
        # files
        "WriteFile", "ReadFile", "MatchingFiles", "ImmutableConst", "Save", "SaveV2",
        "SaveSlices", "MergeV2Checkpoints", "Restore", "RestoreV2", "RestoreSlice",
        "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
        "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "TFRecordReader",
        "TFRecordReaderV2", "TextLineReader", "TextLineReaderV2", "WholeFileReader",
        "WholeFileReaderV2", "LMDBReader", "IdentityReader", "IdentityReaderV2",
        "ReaderReadV2", "ReaderRead", "TFRecordDataset", "TFRecordDatasetV2",
        "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2", "TextLineDataset",
        "SaveDataset", "SaveDatasetV2", "DatasetToTFRecord", "ExperimentalDatasetToTFRecord",
        "SnapshotDataset", "SnapshotDatasetV2", "LoadDataset", "CSVDataset",
        "ExperimentalCSVDataset", "LMDBDataset", "ExperimentalLMDBDataset", "SqlDataset",
        "ExperimentalSqlDataset", "MatchingFilesDataset", "ExperimentalMatchingFilesDataset",
        "DecodeProtoV2",
        # summaries (they write event files)
        "CreateSummaryFileWriter", "CreateSummaryDbWriter", "SummaryWriter",
        "WriteSummary", "WriteScalarSummary", "WriteHistogramSummary", "WriteImageSummary",
        "WriteAudioSummary", "WriteGraphSummary", "WriteRawProtoSummary", "FlushSummaryWriter",
        "CloseSummaryWriter", "ImportEvent",
        # Python
        "PyFunc", "PyFuncStateless", "EagerPyFunc",
    }
)  # fmt: skip


def _called(node: Any, library: dict[str, Any]) -> Iterable[str]:
    """The library functions a node calls: as its op, or through a ``func`` attribute
    (``StatefulPartitionedCall``'s ``f``, ``While``'s ``body``, ``If``'s branches...)."""
    if node.op in library:
        yield node.op
    for value in node.attr.values():
        if value.HasField("func"):
            yield value.func.name
        elif value.HasField("list"):
            yield from (f.name for f in value.list.func)


def _closure(nodes: Iterable[Any], library: dict[str, Any]) -> set[str]:
    """Every library function the nodes reach, through calls within calls."""
    seen: set[str] = set()
    todo = [name for node in nodes for name in _called(node, library)]
    while todo:
        name = todo.pop()
        if name in seen or name not in library:
            continue
        seen.add(name)
        todo.extend(n for node in library[name].node_def for n in _called(node, library))
    return seen


def refused_ops(meta_graph: Any) -> list[tuple[str, str]]:
    """``(op, where)`` for every refused op the meta graph could run (see the module)."""
    graph = meta_graph.graph_def
    library = {f.signature.name: f for f in graph.library.function}
    saver = meta_graph.saver_def
    saver_nodes = {
        name.split(":")[0].lstrip("^")
        for name in (saver.save_tensor_name, saver.restore_op_name)
        if name
    }
    main = [n for n in graph.node if n.name not in saver_nodes]
    saver_only = _closure((n for n in graph.node if n.name in saver_nodes), library)
    saver_only -= _closure(main, library)
    checked = [(node, "the graph") for node in main]
    for name, function in library.items():
        if name not in saver_only:
            checked += [(node, f"function {name}") for node in function.node_def]
    return [(node.op, where) for node, where in checked if node.op in REFUSED_OPS]


def check_saved_model(path: str | Path) -> None:
    """Refuse, in one line, a SavedModel directory whose graph reads or writes files or runs
    Python (:data:`REFUSED_OPS`), or one too large or corrupt to parse."""
    from edgekit.formats.sizes import human_bytes

    path = Path(path)
    graph_file = path / SAVED_MODEL_FILE
    try:
        size = graph_file.stat().st_size
        if size > MAX_GRAPH_BYTES:
            raise EdgekitError(
                f"{path}: refused: its {SAVED_MODEL_FILE} is {human_bytes(size)} (edgekit reads "
                f"at most {human_bytes(MAX_GRAPH_BYTES)}; a feedforward model's weights belong "
                "in variables/)"
            )
        data = graph_file.read_bytes()
    except OSError as err:
        raise EdgekitError(f"{graph_file}: cannot read it ({err.strerror or err})") from err
    require("tensorflow")
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as err:
        raise EdgekitError(
            f"{path}: cannot load the SavedModel ({graph_file.name} is corrupt)"
        ) from err
    found: dict[str, str] = {}
    for meta_graph in saved.meta_graphs:
        for op, where in refused_ops(meta_graph):
            found.setdefault(op, where)
    if found:
        ops = ", ".join(f"{op} (in {where})" for op, where in sorted(found.items()))
        raise EdgekitError(
            f"{path}: refused: the SavedModel's graph holds ops that read or write files or run "
            f"Python, which edgekit will not run: {ops}"
        )


def load_saved_model(path: str | Path) -> Any:
    """A Keras model that calls the SavedModel's serving signature, after
    :func:`check_saved_model`.

    One input is named ``features``; several keep the signature's names (the ``.npz`` given
    to ``--data`` names its arrays after them). Several outputs keep the signature's names
    too (``output_0``, ``output_1`` from ``model.export``), each through an ``Identity``."""
    path = Path(path)
    from edgekit.formats.keras_file import load_allowance, memory_refusal
    from edgekit.isolation import is_out_of_memory, memory_allowance

    check_saved_model(path)  # before TensorFlow runs any of it
    tf = require("tensorflow")
    keras = require("keras")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    allowance = load_allowance(size, size)
    try:
        with memory_allowance(allowance):  # what loading may add (variables, constants)
            loaded = tf.saved_model.load(str(path))
    except Exception as err:  # a corrupt graph: TensorFlow's own error types
        if is_out_of_memory(err):
            raise memory_refusal(path, allowance) from err
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise EdgekitError(f"{path}: cannot load the SavedModel ({first})") from err
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    endpoint = next((n for n in ("serving_default", "serve") if n in signatures), None)
    if endpoint is None:
        raise EdgekitError(
            f"{path}: the SavedModel has no serving signature (serving_default or serve); "
            f"it has {', '.join(signatures) or 'none'}"
        )
    args, kwargs = signatures[endpoint].structured_input_signature
    # The placeholders' order is the model's input order; the structured dict's is not (it
    # changes from one process to the next).
    flat = [t.name.split(":")[0] for t in signatures[endpoint].inputs]
    if set(kwargs) <= set(flat):
        kwargs = {name: kwargs[name] for name in flat if name in kwargs}
    if args or not kwargs:
        raise EdgekitError(
            f"{path}: the SavedModel's {endpoint} signature takes no named inputs; edgekit "
            "exports signatures of named tensors (as model.export and tf.saved_model.save "
            "write them)"
        )
    for name, spec in kwargs.items():
        if spec.shape.rank is None or spec.shape.rank < 1:
            raise EdgekitError(
                f"{path}: the SavedModel's input {name!r} has no batch dimension ({spec.shape})"
            )
    if len(kwargs) == 1:
        (spec,) = kwargs.values()
        inputs = keras.Input(shape=tuple(spec.shape[1:]), name="features", dtype=spec.dtype.name)
        layer = keras.layers.TFSMLayer(str(path), call_endpoint=endpoint, name="saved_model")
        outputs = layer(inputs)
        model_inputs: Any = inputs
    else:
        named = {
            name: keras.Input(shape=tuple(spec.shape[1:]), name=name, dtype=spec.dtype.name)
            for name, spec in kwargs.items()
        }
        outputs = _saved_model_call(keras)(str(path), call_endpoint=endpoint, name="saved_model")(
            named
        )
        model_inputs = list(named.values())
    if isinstance(outputs, dict):
        if len(outputs) == 1:
            outputs = next(iter(outputs.values()))
        else:
            # A signature's outputs are a protobuf map, in no order: by name, numbers as
            # numbers (output_2 before output_10, as model.export numbers them).
            order = sorted(outputs, key=_natural)
            outputs = [keras.layers.Identity(name=str(k))(outputs[k]) for k in order]
    return keras.Model(model_inputs, outputs, name=path.name)


def _natural(name: str) -> list[Any]:
    import re

    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(name))]


def _saved_model_call(keras: Any) -> Any:
    """``TFSMLayer`` for a signature of several named inputs: it passes them by name (the
    plain layer passes one positional argument, which such a signature does not take)."""

    class SavedModelCall(keras.layers.TFSMLayer):
        def call(self, inputs, training=False):
            return self.call_endpoint_fn(**inputs)

    return SavedModelCall
