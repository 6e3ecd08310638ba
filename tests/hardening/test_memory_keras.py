"""Keras models under 1 MB cannot make edgekit allocate gigabytes (issue 13).

Every layer's weights are sized from the config exactly as Keras builds them, before Keras
builds anything (a ``kernel_size`` of 5000 is 5000x5000 in a ``Conv2D``); a layer that cannot
be sized (no build shape, an unknown class, code, a vocabulary read from a file) is refused,
not counted as nothing. Loading itself runs under a memory allowance, so what the checks
cannot see (an ``.h5`` model, whose config has no build shapes) is refused in one line too,
and ``inspect`` loads the model in a child process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgekit.errors import EdgekitError
from tests.conftest import REPO, cli
from tests.hardening.memory_files import LIMIT_MB, MB, peak_mb, save_tiny_keras
from tests.hardening.test_hostile_files import _dense, first_line, with_config


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory) -> Path:
    """A 4 -> 6 -> 3 functional model, saved unfitted (fixed weights)."""
    return save_tiny_keras(tmp_path_factory.mktemp("keras") / "tiny.keras")


def _replace_layer(class_name: str, extra: dict, build):
    """Make the tiny model's hidden layer a ``class_name`` layer; ``build``: its input shape,
    or a whole ``build_config`` (a dict), or None for none."""

    def edit(config):
        layer = _dense(config, "hidden")
        layer["class_name"] = class_name
        layer["config"] = {"name": "hidden", "trainable": True, "dtype": "float32", **extra}
        if build is None:
            del layer["build_config"]
        else:
            layer["build_config"] = build if isinstance(build, dict) else {"input_shape": build}

    return edit


def _zoo():
    import keras

    L = keras.layers

    def chain(shape, *layers, two=False):
        inputs = keras.Input(shape, name="x")
        h = inputs
        for layer in layers:
            h = layer(h, h) if two else layer(h)
        return keras.Model(inputs, h)

    def attention():
        q, v = keras.Input((5, 6), name="q"), keras.Input((4, 6), name="v")
        a = L.Attention(use_scale=True, score_mode="concat", name="at")([q, v])
        return keras.Model([q, v], [a, L.AdditiveAttention(name="aa")([q, v])])

    def nested():
        inner = keras.Sequential([keras.Input((6,)), L.Dense(4, name="i1"), L.Dense(2, name="i2")],
                                 name="inner")  # fmt: skip
        inputs = keras.Input((6,), name="x")
        return keras.Model(inputs, L.Dense(3, name="o")(inner(inputs) + 1.0))

    return {
        "dense": lambda: chain((6,), L.Dense(5, name="a"), L.Dense(3, use_bias=False, name="b")),
        "dense-lora": lambda: chain((6,), L.Dense(5, lora_rank=2, name="a")),
        "conv1d": lambda: chain((9, 3), L.Conv1D(4, 3, name="c")),
        "conv2d-groups": lambda: chain((9, 9, 4), L.Conv2D(4, 3, name="c"),
                                       L.Conv2D(4, (2, 3), groups=2, name="g")),
        "conv3d": lambda: chain((5, 5, 5, 2), L.Conv3D(2, 3, name="c")),
        "conv2d-channels-first": lambda: chain(
            (3, 9, 9), L.Conv2D(4, 3, data_format="channels_first", name="c")),
        "conv-transpose": lambda: chain((9, 9, 3), L.Conv2DTranspose(4, 3, name="c"),
                                        L.Reshape((121, 4), name="r"),
                                        L.Conv1DTranspose(2, 2, name="d")),
        "depthwise": lambda: chain((9, 9, 3), L.DepthwiseConv2D(3, depth_multiplier=2, name="c"),
                                   L.Reshape((49, 6), name="r"), L.DepthwiseConv1D(3, name="d")),
        "separable": lambda: chain((9, 9, 3), L.SeparableConv2D(5, 3, depth_multiplier=2,
                                                                name="c"),
                                   L.Reshape((49, 5), name="r"), L.SeparableConv1D(5, 3, name="d")),
        "conv-lstm": lambda: chain((2, 6, 6, 2), L.ConvLSTM2D(3, 3, name="c")),
        "rnn": lambda: chain((5, 6), L.LSTM(4, return_sequences=True, name="l"),
                             L.GRU(3, return_sequences=True, name="g"),
                             L.GRU(2, reset_after=False, return_sequences=True, name="g2"),
                             L.SimpleRNN(2, name="s")),
        "bidirectional": lambda: chain((5, 6), L.Bidirectional(
            L.LSTM(3, name="f"), backward_layer=L.GRU(2, go_backwards=True, name="b"),
            name="bi")),
        "time-distributed": lambda: chain((5, 6), L.TimeDistributed(L.Dense(3, name="d"),
                                                                    name="td")),
        "stacked-cells": lambda: chain((5, 6), L.RNN(L.StackedRNNCells(
            [L.LSTMCell(7, name="c1"), L.GRUCell(3, name="c2")]), name="st")),
        "norms": lambda: chain((5, 6), L.BatchNormalization(axis=1, name="bn"),
                               L.LayerNormalization(axis=[1, 2], name="ln"),
                               L.GroupNormalization(groups=2, name="gn"),
                               L.RMSNormalization(name="rms"), L.Normalization(name="no")),
        "prelu": lambda: chain((4, 4, 3), L.PReLU(shared_axes=[1, 2], name="p"),
                               L.PReLU(name="q")),
        "mha": lambda: chain((5, 6), L.MultiHeadAttention(2, 4, value_dim=3, output_shape=(7,),
                                                          name="m"), two=True),
        "gqa": lambda: chain((5, 8), L.GroupQueryAttention(4, 4, 2, name="g"), two=True),
        "einsum": lambda: chain((5, 6), L.EinsumDense("abc,cd->abd", output_shape=(5, 7),
                                                      bias_axes="d", name="e"),
                                L.EinsumDense("abc,bcd->ad", output_shape=(2,), name="f"),
                                L.EinsumDense("...b,bc->...c", output_shape=4, bias_axes="c",
                                              name="g")),
        "embedding": lambda: chain((5,), L.Embedding(20, 3, lora_rank=2, name="em")),
        "reversible-embedding": lambda: chain((5,), L.ReversibleEmbedding(
            20, 3, tie_weights=False, name="re")),
        "stft": lambda: chain((256, 1), L.STFTSpectrogram(frame_length=30, frame_step=16,
                                                          name="s")),
        "spectral-norm": lambda: chain((6,), L.SpectralNormalization(L.Dense(3, name="d"),
                                                                     name="sn")),
        "dtypes": lambda: chain((6,), L.Dense(5, dtype="mixed_float16", name="a"),
                                L.Dense(2, dtype="float64", name="b")),
        "weightless": lambda: chain((8, 8, 3), L.MaxPooling2D(name="mp"),
                                    L.UpSampling2D(name="up"), L.Dropout(0.1, seed=1, name="dr"),
                                    L.Flatten(name="f"), L.Dense(2, name="d")),
        "attention": attention,
        "nested-and-ops": nested,
    }  # fmt: skip


ZOO = sorted([
    "dense", "dense-lora", "conv1d", "conv2d-groups", "conv3d", "conv2d-channels-first",
    "conv-transpose", "depthwise", "separable", "conv-lstm", "rnn", "bidirectional",
    "time-distributed", "stacked-cells", "norms", "prelu", "mha", "gqa", "einsum", "embedding",
    "reversible-embedding", "stft", "spectral-norm", "dtypes", "weightless", "attention",
    "nested-and-ops",
])  # fmt: skip


@pytest.mark.parametrize("name", ZOO)
def test_declared_weights_are_exactly_what_keras_builds(tmp_path, name):
    from edgekit.formats.keras_config import declared
    from edgekit.formats.keras_file import check_keras_file

    model = _zoo()[name]()
    found = declared(json.loads(model.to_json()))
    assert (found.weights, found.unsized, found.refused) == (model.count_params(), [], None)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    check_keras_file(path)  # its weights file holds what its config declares


def test_the_zoo_list_is_the_zoo():
    assert sorted(_zoo()) == ZOO


def test_every_keras_layer_class_is_sized_or_known_weightless():
    import inspect

    import keras

    from edgekit.formats import keras_config as kc

    layers = {name for name in dir(keras.layers)
              if inspect.isclass(getattr(keras.layers, name))
              and issubclass(getattr(keras.layers, name), keras.layers.Layer)}  # fmt: skip
    known = set(kc.SIZERS) | kc.WEIGHTLESS | kc.SAFE_MODE_REFUSED | kc.CODE_LAYERS
    assert sorted(layers - known) == []
    assert not set(kc.SIZERS) & kc.WEIGHTLESS


OUT = 3 * (6 + 1)  # the tiny model's output layer: 6 -> 3
CAP = "(edgekit loads at most 100,000,000)"
HOSTILE = {
    "conv2d-int-kernel": (_replace_layer(
        "Conv2D", {"filters": 10, "kernel_size": 5000, "padding": "same"}, [None, 1, 1, 1]),
        f"its config declares {10 * 5000 * 5000 + 10 + OUT:,} weights {CAP}"),
    "conv3d-int-kernel": (_replace_layer(
        "Conv3D", {"filters": 1, "kernel_size": 700, "padding": "same"}, [None, 1, 1, 1, 1]),
        f"its config declares {700**3 + 1 + OUT:,} weights {CAP}"),
    "conv-lstm": (_replace_layer(
        "ConvLSTM2D", {"filters": 2000, "kernel_size": 3}, [None, 2, 4, 4, 8]),
        f"its config declares {9 * 8 * 8000 + 9 * 2000 * 8000 + 8000 + OUT:,} weights {CAP}"),
    "batchnorm-axis": (_replace_layer("BatchNormalization", {"axis": 1}, [None, 50_000_000, 8]),
                       f"its config declares {4 * 50_000_000 + OUT:,} weights {CAP}"),
    "dense-lora": (_replace_layer("Dense", {"units": 6, "lora_rank": 10_000_000}, [None, 4]),
                   f"its config declares {4 * 6 + 6 + 10_000_000 * 10 + OUT:,} weights {CAP}"),
    "stft": (_replace_layer("STFTSpectrogram", {"frame_length": 20000, "frame_step": 1,
                                                "fft_length": 20000}, [None, 40000, 1]),
             f"its config declares {2 * 20000 * 10001 + OUT:,} weights {CAP}"),
    "mha-output-shape": (_replace_layer(
        "MultiHeadAttention", {"num_heads": 1, "key_dim": 1, "output_shape": [20000, 20000]},
        {"shapes_dict": {"query_shape": [None, 2, 8], "value_shape": [None, 2, 8]}}),
        f"its config declares {3 * 9 + 2 * 20000**2 + OUT:,} weights {CAP}"),
    "einsum": (_replace_layer(
        "EinsumDense", {"equation": "ab,bcd->acd", "output_shape": [20000, 20000]}, [None, 4]),
        f"its config declares {4 * 20000**2 + OUT:,} weights {CAP}"),
    "stacked-cells": (_replace_layer("RNN", {"cell": {"class_name": "StackedRNNCells", "config": {
        "cells": [{"class_name": "LSTMCell", "config": {"units": 10_000}},
                  {"class_name": "LSTMCell", "config": {"units": 10_000}}]}}}, [None, 5, 4]),
        f"its config declares {4 * 10**4 * (4 + 10**4 + 1) + 4 * 10**4 * (2 * 10**4 + 1) + OUT:,}"
        f" weights {CAP}"),
    "gqa": (_replace_layer(
        "GroupQueryAttention", {"head_dim": 4096, "num_query_heads": 64,
                                "num_key_value_heads": 64},
        {"shapes_dict": {"query_shape": [None, 2, 4], "value_shape": [None, 2, 4]}}),
        f"its config declares {64 * 4096 * 5 * 3 + 64 * 4096 * 4 + 4 + OUT:,} weights, but its "
        "model.weights.h5 holds"),
    "no-build-config": (_replace_layer("Dense", {"units": 10**6}, None),
                        "in its config, layer 'hidden' (Dense) has no build_config, so its "
                        "weights cannot be sized; edgekit loads only models whose weights it "
                        "can check against the file first"),
    "jax-layer": (_replace_layer("JaxLayer", {"call_fn": "f"}, [None, 4]),
                  "in its config, layer 'hidden' (JaxLayer) runs code whose weights cannot be "
                  "sized from its config;"),
    "vocabulary-file": (_replace_layer("StringLookup", {"vocabulary": "/dev/zero"}, [None, 4]),
                        "in its config, layer 'hidden' (StringLookup) reads its vocabulary from "
                        "a file ('/dev/zero');"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_configs_are_refused_before_keras_builds_anything(tmp_path, tiny_keras, case):
    from edgekit.formats.keras_file import check_keras_file, load_keras_model

    edit, message = HOSTILE[case]
    path = with_config(tiny_keras, tmp_path / f"{case}.keras", edit)
    assert path.stat().st_size < 100_000
    for read in (check_keras_file, load_keras_model):
        with pytest.raises(EdgekitError) as info:
            read(path)
        assert first_line(info.value).startswith(f"{path}: refused: {message}"), case


def test_a_class_keras_could_build_but_edgekit_cannot_size_is_refused_once_keras_is_here(
    tmp_path, tiny_keras
):
    """An unknown class is checked against Keras itself when it is imported (in the process
    that loads): one Keras would build is refused; one it cannot find builds nothing, and
    the loader names it as a custom layer."""
    from edgekit.formats.keras_file import check_keras_file, load_keras_model

    def internal(config):
        _replace_layer(
            "IndexLookup",
            {
                "max_tokens": 10**9,
                "num_oov_indices": 1,
                "mask_token": None,
                "oov_token": "x",
                "vocabulary_dtype": "string",
            },
            [None, 4],
        )(config)
        _dense(config, "hidden")["module"] = "keras.src.layers.preprocessing.index_lookup"

    path = with_config(tiny_keras, tmp_path / "internal.keras", internal)
    check_keras_file(path)  # light: no Keras here
    with pytest.raises(EdgekitError) as info:
        load_keras_model(path)
    assert first_line(info.value) == (
        f"{path}: refused: in its config, layer 'hidden' (IndexLookup) is a Keras class whose "
        "weights edgekit cannot size; edgekit loads only models whose weights it can check "
        "against the file first"
    )
    path = with_config(tiny_keras, tmp_path / "custom.keras",
                       _replace_layer("HugeDense", {"units": 10**6}, [None, 4]))  # fmt: skip
    check_keras_file(path)
    with pytest.raises(EdgekitError) as info:
        load_keras_model(path)
    assert first_line(info.value).startswith(
        f"{path}: layer 'hidden' (HugeDense) is a custom layer, which edgekit does not export; "
    )
    assert "; Keras cannot load it without its Python class" in first_line(info.value)


@pytest.mark.parametrize("command", ["inspect", "export"])
def test_the_cli_refuses_them_in_one_line(tmp_path, tiny_keras, command):
    path = with_config(tiny_keras, tmp_path / "conv.keras", HOSTILE["conv2d-int-kernel"][0])
    code, out, err = cli(command, str(path))
    assert (code, out) == (2, "")
    assert err == f"edgekit: error: {path}: refused: {HOSTILE['conv2d-int-kernel'][1]}\n"


@pytest.fixture(scope="module")
def huge_h5(tmp_path_factory, tiny_keras) -> Path:
    """The tiny model as ``.h5``, its config edited to a 10^4 -> 10^5 Dense (4 GB of weights).
    An ``.h5`` config has no build shapes: nothing but the allowance bounds its load."""
    import h5py
    import keras

    path = tmp_path_factory.mktemp("h5") / "huge.h5"
    keras.models.load_model(tiny_keras).save(path)
    with h5py.File(path, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        config["config"]["layers"][0]["config"]["batch_shape"] = [None, 10_000]
        _dense(config, "hidden")["config"]["units"] = 100_000
        h5.attrs["model_config"] = json.dumps(config)
    assert path.stat().st_size < 100_000
    return path


def test_loading_is_bounded_by_an_allowance(huge_h5):
    from edgekit.formats.keras_file import load_allowance, load_model_file
    from edgekit.formats.sizes import human_bytes

    size = huge_h5.stat().st_size
    assert load_allowance(size, size) == (256 << 20) + 6 * size
    assert load_allowance(100 * size, size) == (256 << 20) + 6 * 4 * size  # 4x the file, at most
    with pytest.raises(EdgekitError) as info:
        load_model_file(huge_h5)
    assert first_line(info.value) == (
        f"{huge_h5}: refused: loading it needed more than the "
        f"{human_bytes(load_allowance(size, size))} of memory edgekit allows a model of its size "
        "(its layers allocate far more than its file holds)"
    )
    shutil.copy(huge_h5, huge_h5.with_name("again.h5"))
    with pytest.raises(EdgekitError):  # the limit was restored: the same refusal, not a crash
        load_model_file(huge_h5.with_name("again.h5"))


def test_inspect_loads_the_model_in_a_child(tiny_keras, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from edgekit.inspect import inspect_artifact
        info = inspect_artifact({str(tiny_keras)!r})
        print(info.params, info.details["all_params"], "tensorflow" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.stdout.split() == ["51", "51", "False"], proc.stderr[-2000:]


@pytest.mark.parametrize(("body", "message"), [
    ("import os; os.abort()", "the child process reading it was killed by SIGABRT"),
    ("raise MemoryError('no room')", "ran out of memory (the child process reading it died)"),
    ("raise SystemExit(5)", "the child process reading it failed (no message)"),
    ("from edgekit.errors import EdgekitError\n"
     "from edgekit.isolation import child_main\n"
     "def work():\n    raise EdgekitError('x.keras: refused:\\n  spread over lines')\n"
     "raise SystemExit(child_main(work))", "x.keras: refused: spread over lines"),
])  # fmt: skip
def test_a_child_that_fails_is_one_line(tmp_path, monkeypatch, body, message):
    from edgekit.isolation import run_child

    (tmp_path / "edgekit_test_child.py").write_text(body + "\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(EdgekitError) as info:
        run_child("edgekit_test_child", [], what="x.keras", timeout=60)
    expected = message if message.startswith("x.keras") else f"x.keras: {message}"
    assert first_line(info.value) == expected


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_peak_memory_of_hostile_keras_files_stays_within_500_mb_of_a_tiny_model(
    tmp_path, tiny_keras, huge_h5
):
    """TensorFlow's import alone is ~650 MB, so the bound is over the tiny model's peak."""
    conv = with_config(tiny_keras, tmp_path / "conv.keras", HOSTILE["conv2d-int-kernel"][0])
    code, base, err = peak_mb("inspect", str(tiny_keras), cwd=tmp_path)
    assert code == 0, err[-2000:]
    print(f"baseline: edgekit inspect tiny.keras: {base:.0f} MB")
    for argv in (("inspect", str(conv)), ("export", str(conv)),
                 ("export", str(huge_h5), "--tflite", "--out", str(tmp_path / "out"))):  # fmt: skip
        assert Path(argv[1]).stat().st_size < 1 * MB
        code, peak, err = peak_mb(*argv, cwd=tmp_path)
        assert code == 2 and err.count("\n") == 1 and "refused" in err, (argv, err[-2000:])
        assert peak < base + LIMIT_MB, (argv, peak, base)
        print(f"edgekit {argv[0]} {Path(argv[1]).name}: {peak:.0f} MB")
