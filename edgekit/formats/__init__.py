"""The on-disk formats every stage shares, each spelled once, below all the stages.

=================  ===========================================================================
module             format
=================  ===========================================================================
``manifest``       ``manifest.json`` (``edgekit.export/1``): schema, writer, the one reader
``run_dir``        a run directory and its ``run.json`` (``edgekit.run/1``): :class:`Run`
``npz``            ``.npz`` headers read without numpy; loading without pickles
``csv_table``      CSV inputs (``predict``, ``bench --data``): header, numeric columns
``keras_file``     ``.keras`` files loaded in safe mode (no Lambda code runs)
``tflite_graph``   the TFLite flatbuffer, read through the schema that ships with LiteRT
``onnx_wire``      the ONNX protobuf wire format, decoded without the ``onnx`` package
``onnx_layers``    the dense layers of a decoded ONNX graph
``layers``         :class:`LayerInfo`, a dense layer as ``inspect`` and ``estimate`` see it
``arena``          the tensor-arena planner (how TFLite Micro packs activation buffers)
=================  ===========================================================================

Every module imports only the standard library and :mod:`edgekit.errors`/:mod:`edgekit.fileio`
at import time (numpy and TensorFlow load inside the functions that need them), so the light
bench parent, a board with the core install and a device app can read them all. This package
imports nothing from the stages above it (an import contract in ``pyproject.toml`` checks it).
"""
