"""Saving graph models: functional, nested and shared-layer models round-trip through the .cnnx
file (format version 2) with identical predictions and optimizer state; plain Sequential
files stay version 1 and version-1 files written before graphs existed still load; the
reader refuses malformed graph configs (missing or out-of-range references, cycles, too many
calls) with a ValueError naming the file."""

import json
import pathlib
import struct

import numpy as np
import pytest
from conftest import file_checksum

import cnnx
from cnnx import layers as L
from cnnx import saving

V1_FILES = sorted((pathlib.Path(__file__).parent / "data" / "format_v1").glob("*.cnnx"))
CORPUS = sorted((pathlib.Path(__file__).parent.parent / "fuzz" / "corpus").glob("*.cnnx"))


def images(rng, n=16):
    x = rng.normal(size=(n, 8, 8, 3)).astype(np.float32)
    return x, x.mean(axis=(1, 2)).argmax(axis=-1)


def residual(name="residual"):
    inputs = cnnx.Input((8, 8, 3))
    x = L.Conv2D(3, 3, padding="same", activation="relu")(inputs)
    x = L.BatchNormalization()(x)
    x = L.Add()([x, inputs])
    x = L.Concatenate()([x, L.Conv2D(2, 1)(inputs)])
    x = L.GlobalAveragePooling2D()(x)
    return cnnx.Model(inputs, L.Dense(3, activation="softmax")(x), name=name)


def header(path):
    raw = pathlib.Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n])


def metadata(path):
    return header(path)["__metadata__"]


def trained(model, rng, epochs=2):
    x, y = images(rng)
    model.compile(cnnx.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=8, epochs=epochs, verbose=0)
    return model


def assert_same_model(a, b, rng):
    x, y = images(rng, n=8)
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    assert [w.shape for w in a.get_weights()] == [w.shape for w in b.get_weights()]
    # optimizer state restored: one more step moves both models the same way
    a.train_on_batch(x, y)
    b.train_on_batch(x, y)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)


def test_functional_round_trip(tmp_path, rng):
    cnnx.utils.set_random_seed(1)
    model = trained(residual(), rng)
    path = tmp_path / "residual.cnnx"
    model.save(path)
    meta = metadata(path)
    assert meta["format_version"] == "2"
    assert json.loads(meta["model_config"])["class_name"] == "Functional"
    loaded = cnnx.models.load_model(path)
    assert isinstance(loaded, cnnx.models.Functional) and loaded.name == "residual"
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.get_config() == model.get_config()
    assert_same_model(model, loaded, rng)
    uncompiled = cnnx.models.load_model(path, compile=False)
    assert not uncompiled.compiled


def test_nested_and_shared_round_trip(tmp_path, rng):
    cnnx.utils.set_random_seed(2)
    # (a random augmentation's generator state is not saved: a deterministic layer keeps the
    # training steps comparable)
    preprocess = cnnx.Sequential([L.Rescaling(0.5)], name="preprocess")
    encoder = cnnx.Sequential([cnnx.Input((8, 8, 3)), L.Conv2D(3, 3, padding="same", activation="tanh")], name="enc")
    inputs = cnnx.Input((8, 8, 3))
    x = encoder(encoder(preprocess(inputs)))  # one model used twice: shared weights
    x = residual("inner")(x)  # a functional model inside a functional model
    model = trained(cnnx.Model(inputs, x, name="outer"), rng)
    path = tmp_path / "nested.cnnx"
    model.save(path)
    loaded = cnnx.models.load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == ["InputLayer", "Sequential", "Sequential", "Functional"]
    enc = loaded.get_layer("enc")
    assert len(enc._inbound_nodes) == 2 and loaded.count_params() == model.count_params()
    assert_same_model(model, loaded, rng)


def test_sequential_files(tmp_path, rng):
    plain = trained(cnnx.Sequential([cnnx.Input((8, 8, 3)), L.Flatten(), L.Dense(3, activation="softmax")]), rng)
    plain.save(tmp_path / "plain.cnnx")
    assert metadata(tmp_path / "plain.cnnx")["format_version"] == "1"  # older cnnx still reads it
    cnnx.utils.set_random_seed(3)
    shared = L.Dense(5, activation="tanh", name="shared")
    block = cnnx.Sequential([shared], name="block")
    model = cnnx.Sequential(
        [
            cnnx.Input((5,)),
            cnnx.Sequential([L.Dense(5, name="first")], name="wrapper"),
            block,
            block,
            L.Dense(2, activation="softmax", name="head"),
        ],
        name="stack",
    )
    x = rng.normal(size=(8, 5)).astype(np.float32)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, rng.integers(0, 2, 8), epochs=1, verbose=0)
    model.save(tmp_path / "stack.cnnx")
    meta = metadata(tmp_path / "stack.cnnx")
    assert meta["format_version"] == "2" and json.loads(meta["model_config"])["class_name"] == "Sequential"
    loaded = cnnx.models.load_model(tmp_path / "stack.cnnx")
    assert isinstance(loaded, cnnx.Sequential) and loaded.layers[1] is loaded.layers[2]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.count_params() == model.count_params()


def test_frozen_layers_round_trip(tmp_path, rng):
    cnnx.utils.set_random_seed(4)
    model = residual()
    model.layers[1].trainable = False
    trained(model, rng)
    model.save(tmp_path / "frozen.cnnx")
    loaded = cnnx.models.load_model(tmp_path / "frozen.cnnx")
    assert loaded.layers[1].trainable is False
    names = header(tmp_path / "frozen.cnnx")
    assert not any(key.startswith(f"optimizer/{model.layers[1].name}/") for key in names)
    assert any(key.startswith(f"optimizer/{model.layers[-1].name}/") for key in names)
    assert_same_model(model, loaded, rng)


@pytest.mark.parametrize("path", V1_FILES, ids=[p.stem for p in V1_FILES])
def test_version_1_files_still_load(path, rng):
    assert metadata(path)["format_version"] == "1"
    if metadata(path)["contents"] == "weights":
        model = cnnx.Sequential.from_config(
            json.loads(metadata(V1_FILES[0])["model_config"])  # conv_pool_adam: the same architecture
        )
        model.build()
        model.load_weights(path)
        return
    model = cnnx.models.load_model(path)
    assert isinstance(model, cnnx.Sequential)
    x = rng.random((2, *model.input_shape[1:]), dtype=np.float32)
    assert np.isfinite(model.predict(x, verbose=0)).all()


@pytest.mark.parametrize("path", [p for p in CORPUS if "weights" not in p.stem], ids=lambda p: p.stem)
def test_the_fuzz_seeds_load(path, rng):
    model = cnnx.models.load_model(path)
    x = rng.random((2, *model.input_shape[1:]), dtype=np.float32)
    assert np.isfinite(model.predict(x, verbose=0)).all()
    assert metadata(path)["format_version"] == ("2" if saving._is_graph(model) else "1")


def test_two_models_with_one_name_cannot_be_saved(tmp_path):
    one = cnnx.Sequential([L.Dense(2)], name="twin")
    two = cnnx.Sequential([L.Dense(2)], name="twin")
    model = cnnx.Sequential([cnnx.Input((2,)), one, two])
    with pytest.raises(ValueError, match="two different layers or models are named 'twin'"):
        model.save(tmp_path / "twins.cnnx")


# -- the hardened reader on graph configs --------------------------------------------------------
def rewrite(blob, edit):
    """The same file with model_config changed by `edit` (a function of the parsed config)."""
    n = int.from_bytes(blob[:8], "little")
    header, data = json.loads(blob[8 : 8 + n]), blob[8 + n :]
    meta = header.pop("__metadata__")
    config = json.loads(meta["model_config"])
    edit(config)
    meta = {k: v for k, v in meta.items() if k != "sha256"}
    meta["model_config"] = json.dumps(config)
    header["__metadata__"] = meta
    header["__metadata__"]["sha256"] = file_checksum(header, data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    cnnx.utils.set_random_seed(5)
    path = tmp_path_factory.mktemp("graph") / "g.cnnx"
    residual().save(path)
    return path.read_bytes()


def layer(config, class_name, index=0):
    return [e for e in config["config"]["layers"] if e["class_name"] == class_name][index]


def first_arg(entry, call=0):
    return entry["inbound_nodes"][call]["args"][0]


def set_history(t, value):
    t["config"]["keras_history"] = value


def make_cycle(c):
    conv = layer(c, "Conv2D")
    set_history(first_arg(conv), [layer(c, "BatchNormalization")["name"], 0, 0])


def many_calls(c):
    conv = layer(c, "Conv2D")
    conv["inbound_nodes"] = conv["inbound_nodes"] * 4097


BAD_GRAPHS = [
    ("missing-layer", lambda c: set_history(first_arg(layer(c, "Conv2D")), ["ghost", 0, 0]), "does not exist"),
    (
        "node-out-of-range",
        lambda c: set_history(first_arg(layer(c, "Conv2D")), [c["config"]["layers"][0]["name"], 1, 0]),
        "does not exist",
    ),
    (
        "tensor-index",
        lambda c: set_history(first_arg(layer(c, "Conv2D")), [c["config"]["layers"][0]["name"], 0, 1]),
        "keras_history",
    ),
    (
        "bool-index",
        lambda c: set_history(first_arg(layer(c, "Conv2D")), [c["config"]["layers"][0]["name"], False, 0]),
        "keras_history",
    ),
    ("tensor-config-not-object", lambda c: first_arg(layer(c, "Conv2D")).update(config="x"), "keras_history"),
    ("cycle", make_cycle, "cycle"),
    ("duplicate-name", lambda c: c["config"]["layers"][2].update(name=c["config"]["layers"][1]["name"]), "used twice"),
    ("unknown-class", lambda c: layer(c, "Add").update(class_name="Lambda"), "unknown layer class 'Lambda'"),
    ("kwargs", lambda c: layer(c, "Add")["inbound_nodes"][0].update(kwargs={"mask": None}), "'kwargs': {}"),
    ("two-args", lambda c: layer(c, "Add")["inbound_nodes"][0]["args"].append(1), "one argument"),
    (
        "input-not-inputlayer",
        lambda c: c["config"].update(input_layers=[layer(c, "Conv2D")["name"], 0, 0]),
        "must refer to an InputLayer",
    ),
    (
        "two-outputs",
        lambda c: c["config"].update(output_layers=[c["config"]["output_layers"]] * 2),
        "one input and one output",
    ),
    ("output-out-of-range", lambda c: c["config"]["output_layers"].__setitem__(1, 3), "does not exist"),
    (
        "inputlayer-with-calls",
        lambda c: c["config"]["layers"][0].update(inbound_nodes=layer(c, "Conv2D")["inbound_nodes"]),
        "no inbound nodes",
    ),
    (
        "huge-batch-shape",
        lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, 2**20, 2**20, 3]),
        "elements",
    ),
    ("many-calls", many_calls, "4097 layer calls|at most 4096"),
    ("layers-not-list", lambda c: c["config"].update(layers={}), "non-empty list"),
    ("wrong-top", lambda c: c.update(class_name="Dense"), "'Sequential' or 'Functional'"),
]


@pytest.mark.parametrize("edit,match", [b[1:] for b in BAD_GRAPHS], ids=[b[0] for b in BAD_GRAPHS])
def test_malformed_graph_configs_are_refused(tmp_path, graph_file, edit, match):
    bad = tmp_path / "bad.cnnx"
    bad.write_bytes(rewrite(graph_file, edit))
    with pytest.raises(ValueError, match=match) as info:
        cnnx.models.load_model(bad)
    assert str(info.value).startswith(f"cannot load {str(bad)!r}")


def test_a_shared_layer_called_out_of_order_is_replayed(tmp_path, rng):
    """Keras' replay: a layer's later call may read a layer listed after it (A(B(A(x))))."""
    cnnx.utils.set_random_seed(6)
    inputs = cnnx.Input((4,))
    a, b = L.Dense(4, activation="tanh", name="a"), L.Dense(4, activation="tanh", name="b")
    model = cnnx.Model(inputs, a(b(a(inputs))))
    path = tmp_path / "aba.cnnx"
    model.save(path)
    loaded = cnnx.models.load_model(path)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
