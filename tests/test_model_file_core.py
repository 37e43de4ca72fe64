"""The model side of the model file in the C++ core (src/cpp/io): cnnx::load_model and
cnnx::save_model, reached through the bindings _core.load_model / _core.save_model. A file the
Python package saves loads in the core, and one the core saves loads in Python, for every layer
class, with the same predictions, weights, optimizer state and configuration text."""

import json

import numpy as np
import pytest

import cnnx
from cnnx import _core, layers, optimizers, regularizers, saving
from cnnx.layers import Input


def seq(shape, *items, name=None):
    return cnnx.Sequential([Input(shape), *items], name=name)


def merged(cls, **kwargs):
    """A functional model whose merge layer reads three tensors (two for Subtract)."""
    inputs = Input((4, 4, 3), name="input_layer")
    a = layers.Conv2D(3, 1, name="left")(inputs)
    b = layers.Conv2D(3, 1, activation="relu", name="right")(inputs)
    out = cls(**kwargs)([a, b] if cls is layers.Subtract else [a, b, inputs])
    return cnnx.Model(inputs, layers.Flatten()(out))


# One model per layer class, with non-default arguments where the class has them. Values are
# ones the core keeps exactly (float32, factors as [lower, upper]), so that the configuration
# the core writes is the text Python writes.
MODELS = {
    "Conv2D": lambda: seq(
        (6, 6, 2),
        layers.Conv2D(
            3,
            (3, 2),
            strides=(1, 2),
            padding="same",
            activation="tanh",
            use_bias=False,
            kernel_initializer="he_normal",
            kernel_regularizer=regularizers.L1L2(0.25, 0.5),
        ),
    ),
    "DepthwiseConv2D": lambda: seq(
        (6, 6, 2), layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", dilation_rate=2, bias_regularizer="l1")
    ),
    "SeparableConv2D": lambda: seq(
        (7, 7, 2),
        layers.SeparableConv2D(4, 3, strides=2, depth_multiplier=2, activation="relu", pointwise_regularizer="l2"),
    ),
    "MaxPooling2D": lambda: seq((6, 6, 2), layers.MaxPooling2D(3, strides=2, padding="same")),
    "AveragePooling2D": lambda: seq((6, 6, 2), layers.AveragePooling2D((2, 3))),
    "GlobalAveragePooling2D": lambda: seq((6, 6, 2), layers.GlobalAveragePooling2D(keepdims=True)),
    "GlobalMaxPooling2D": lambda: seq((6, 6, 2), layers.GlobalMaxPooling2D()),
    "Flatten": lambda: seq((6, 6, 2), layers.Flatten(), layers.Dense(2)),
    "Dense": lambda: seq((5,), layers.Dense(4, activation="sigmoid", bias_regularizer=regularizers.L2(0.25))),
    "Dropout": lambda: seq((3, 5), layers.Dropout(0.25, noise_shape=(None, 1, 5), seed=3)),
    "BatchNormalization": lambda: seq(
        (6, 6, 2), layers.BatchNormalization(momentum=0.5, epsilon=0.125, center=False, gamma_regularizer="l2")
    ),
    "Activation": lambda: seq((5,), layers.Activation("softmax")),
    "ReLU": lambda: seq((5,), layers.ReLU(max_value=1.5, negative_slope=0.125, threshold=0.25)),
    "LeakyReLU": lambda: seq((5,), layers.LeakyReLU(0.25)),
    "ELU": lambda: seq((5,), layers.ELU(0.75)),
    "Softmax": lambda: seq((5,), layers.Softmax()),
    "Rescaling": lambda: seq((5,), layers.Rescaling(0.5, offset=-1.0)),
    "Reshape": lambda: seq((6, 6, 2), layers.Reshape((-1, 4))),
    "Resizing": lambda: seq((6, 6, 2), layers.Resizing(4, 5, interpolation="nearest", crop_to_aspect_ratio=True)),
    "RandomFlip": lambda: seq((6, 6, 2), layers.RandomFlip("horizontal", seed=5)),
    "RandomRotation": lambda: seq((6, 6, 2), layers.RandomRotation((-0.25, 0.125), fill_mode="nearest", seed=1)),
    "RandomTranslation": lambda: seq(
        (6, 6, 2), layers.RandomTranslation((-0.125, 0.25), (-0.5, 0.5), fill_mode="constant", fill_value=0.5)
    ),
    "RandomZoom": lambda: seq((6, 6, 2), layers.RandomZoom((-0.25, 0.25))),
    "RandomContrast": lambda: seq((6, 6, 2), layers.RandomContrast((0.125, 0.25), value_range=(0.0, 1.0), seed=9)),
    "Add": lambda: merged(layers.Add),
    "Subtract": lambda: merged(layers.Subtract),
    "Multiply": lambda: merged(layers.Multiply),
    "Average": lambda: merged(layers.Average),
    "Maximum": lambda: merged(layers.Maximum),
    "Minimum": lambda: merged(layers.Minimum),
    "Concatenate": lambda: merged(layers.Concatenate, axis=-2),
}


def layer_classes():
    return {
        name
        for name in layers.__all__
        if name not in ("Layer", "Input", "InputLayer") and isinstance(getattr(layers, name), type)
    }


def test_every_layer_class_has_a_model_and_a_core_mapping():
    assert set(MODELS) == layer_classes()
    assert set(_core.model_file_layer_classes()) == layer_classes()
    assert saving._layer_classes() == layer_classes()


def sample(model, rng, n=3):
    return rng.uniform(-1.0, 1.0, size=(n, *model.input_shape[1:])).astype(np.float32)


def core_weights(handle):
    return {(layer.name, w): a for layer in handle.layers for w, a in zip(layer.weight_names(), layer.get_weights())}


def python_weights(model):
    return {
        (layer.name, w): a
        for layer in model._flat_layers()
        for w, a in zip(layer._core.weight_names(), layer.get_weights())
    }


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=str(key))


def randomize(model, rng):
    """Weights away from their initial values (BatchNormalization's statistics included)."""
    model.set_weights([rng.uniform(0.5, 1.5, size=w.shape).astype(np.float32) for w in model.get_weights()])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_python_file_loads_in_the_core(tmp_path, rng, name):
    model = MODELS[name]()
    randomize(model, rng)
    path = tmp_path / "python.cnnx"
    model.save(path)
    handle = _core.load_model(str(path), True)
    x = sample(model, rng)
    np.testing.assert_array_equal(handle.predict(x, 256), model.predict(x, verbose=0))
    assert_same_weights(core_weights(handle), python_weights(model))
    assert handle.name == model.name
    # The core writes back the configuration text Python wrote.
    again = tmp_path / "core.cnnx"
    _core.save_model(handle, str(again))
    _, before = saving.read_file(path)
    _, after = saving.read_file(again)
    assert after["model_config"] == before["model_config"]
    assert after["format_version"] == before["format_version"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_core_file_loads_in_python(tmp_path, rng, name):
    model = MODELS[name]()
    randomize(model, rng)
    model.build()
    path = tmp_path / "core.cnnx"
    _core.save_model(model._core, str(path))  # the core model Python drives, saved by the core
    loaded = cnnx.models.load_model(path)
    x = sample(model, rng)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert_same_weights(python_weights(loaded), python_weights(model))
    for original in model._flat_layers():  # as JSON: tuples and lists alike
        assert json.dumps(loaded.get_layer(original.name).get_config()) == json.dumps(original.get_config())


def test_core_save_keeps_float32_values_and_factor_pairs(tmp_path):
    """What the core cannot keep word for word (it holds float32 values and [lower, upper]
    factors) it writes in a form that loads as the same layer."""
    model = seq(
        (6, 6, 1),
        layers.Rescaling(1 / 255),
        layers.RandomRotation(0.1),
        layers.RandomZoom(0.2, 0.1),
        layers.RandomTranslation(0.1, (0.0, 0.2)),
    )
    model.build()
    path = tmp_path / "m.cnnx"
    _core.save_model(model._core, str(path))
    _, meta = saving.read_file(path)
    configs = [entry["config"] for entry in json.loads(meta["model_config"])["layers"]]
    assert configs[0]["scale"] == 0.003921569  # the float32 of 1/255, written in its shortest form
    assert np.float32(configs[0]["scale"]) == np.float32(1 / 255)
    assert configs[1]["factor"] == [-0.1, 0.1]
    assert configs[2]["height_factor"] == [-0.2, 0.2] and configs[2]["width_factor"] == [-0.1, 0.1]
    assert configs[3]["height_factor"] == [-0.1, 0.1] and configs[3]["width_factor"] == [0.0, 0.2]
    loaded = cnnx.models.load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]


# -- graphs: nested models, shared layers, trainable ----------------------------------------------
def nested_model():
    """A Sequential holding an augmentation Sequential, a functional residual block used twice
    (shared weights) and a frozen Dense."""
    aug = cnnx.Sequential([layers.RandomFlip("horizontal", seed=1)], name="augment")
    inputs = Input((6, 6, 4), name="block_in")
    y = layers.Conv2D(4, 3, padding="same", activation="relu", name="block_conv")(inputs)
    block = cnnx.Model(inputs, layers.Add(name="block_add")([inputs, y]), name="block")
    frozen = layers.Dense(3, name="frozen", trainable=False)
    return seq(
        (6, 6, 2),
        aug,
        layers.Conv2D(4, 1, name="widen"),
        block,
        block,
        layers.GlobalAveragePooling2D(name="pool"),
        frozen,
        layers.Dense(2, activation="softmax", name="head"),
        name="outer",
    )


def test_nested_and_shared_models_both_ways(tmp_path, rng):
    model = nested_model()
    path = tmp_path / "python.cnnx"
    model.save(path)
    handle = _core.load_model(str(path), True)
    x = sample(model, rng, 4)
    expected = model.predict(x, verbose=0)
    np.testing.assert_array_equal(handle.predict(x, 256), expected)
    # inlined into one flat graph: the block's layers once each, called twice
    assert [layer.name for layer in handle.layers] == [layer.name for layer in model._flat_layers()]
    assert handle.node_count == 1 + 1 + 1 + 2 * 2 + 3
    assert [layer.trainable for layer in handle.layers] == [layer.name != "frozen" for layer in handle.layers]

    again = tmp_path / "core.cnnx"
    _core.save_model(handle, str(again))
    _, meta = saving.read_file(again)
    assert meta["format_version"] == "2"
    config = json.loads(meta["model_config"])
    assert config["class_name"] == "Functional" and config["config"]["name"] == "outer"
    loaded = cnnx.models.load_model(again)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    assert loaded.get_layer("frozen").trainable is False
    assert_same_weights(python_weights(loaded), python_weights(model))


def test_a_chain_is_written_as_version_1_and_a_graph_as_version_2(tmp_path):
    chain = seq((4,), layers.Dense(3), layers.Dense(2))
    chain.build()
    _core.save_model(chain._core, str(tmp_path / "chain.cnnx"))
    assert saving.read_file(tmp_path / "chain.cnnx")[1]["format_version"] == "1"
    shared = layers.Dense(4)
    twice = seq((4,), shared, shared)
    twice.build()
    _core.save_model(twice._core, str(tmp_path / "twice.cnnx"))
    _, meta = saving.read_file(tmp_path / "twice.cnnx")
    assert meta["format_version"] == "2"
    (entry,) = [e for e in json.loads(meta["model_config"])["config"]["layers"] if e["class_name"] == "Dense"]
    assert [node["args"][0]["config"]["keras_history"] for node in entry["inbound_nodes"]] == [
        [json.loads(meta["model_config"])["config"]["input_layers"][0], 0, 0],
        [shared.name, 0, 0],
    ]
    loaded = cnnx.models.load_model(tmp_path / "twice.cnnx")
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), twice.predict(x, verbose=0))


def test_functional_replay_follows_keras_order(tmp_path, rng):
    """A layer shared at two depths, A(B(A(x))), waits for its input: the replay finishes and the
    graph computes what Python's does; the core writes the layers in Python's (Keras') order."""
    inputs = Input((5,), name="input_layer")
    a, b = layers.Dense(5, name="a"), layers.Dense(5, activation="tanh", name="b")
    out = layers.Concatenate(name="cat")([a(b(a(inputs))), inputs])
    model = cnnx.Model(inputs, out)
    path = tmp_path / "m.cnnx"
    model.save(path)
    handle = _core.load_model(str(path), False)
    x = sample(model, rng)
    np.testing.assert_array_equal(handle.predict(x, 256), model.predict(x, verbose=0))
    _core.save_model(handle, str(tmp_path / "again.cnnx"))
    assert saving.read_file(tmp_path / "again.cnnx")[1]["model_config"] == saving.read_file(path)[1]["model_config"]


# -- compiled models: optimizer state survives both ways ------------------------------------------
OPTIMIZERS = {
    "sgd": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optimizers.Adam(0.01, clipnorm=1.0),
    "adamw": lambda: optimizers.AdamW(0.01),
    "rmsprop": lambda: optimizers.RMSprop(0.01, momentum=0.5, clipvalue=0.5),
    "adagrad": lambda: optimizers.Adagrad(0.1, global_clipnorm=2.0),
}


def trainable_model():
    model = seq(
        (6, 6, 2),
        layers.Conv2D(4, 3, activation="relu"),
        layers.BatchNormalization(),
        layers.Flatten(),
        layers.Dense(8, activation="relu", kernel_regularizer="l2"),
        layers.Dense(3, activation="softmax"),
    )
    model.layers[1].trainable = False  # not updated: no optimizer slots for it
    return model


def step(core, x, y):
    return core.train_step(x, y, np.arange(len(x), dtype=np.int64))


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_optimizer_state_survives_both_ways(tmp_path, rng, opt):
    model = trainable_model()
    model.compile(OPTIMIZERS[opt](), "categorical_crossentropy", metrics=["accuracy", "top_k_categorical_accuracy"])
    x = rng.normal(size=(8, 6, 6, 2)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    model.class_names = ["cat", "dog", "émeu"]
    path = tmp_path / "python.cnnx"
    model.save(path)

    handle = _core.load_model(str(path), True)
    assert handle.compiled and handle.optimizer_iterations == 4
    assert handle.metric_names == ["accuracy", "top_k_categorical_accuracy"]
    assert handle.class_names == ["cat", "dog", "émeu"]
    again = tmp_path / "core.cnnx"
    _core.save_model(handle, str(again))
    _, before = saving.read_file(path)
    _, after = saving.read_file(again)
    for key in ("model_config", "optimizer_iterations", "class_names"):
        assert after[key] == before[key], key
    if opt != "adamw":  # the core has one Adam; AdamW's config comes back as Adam with weight_decay
        assert after["compile_config"] == before["compile_config"]
    resumed = cnnx.models.load_model(again)
    assert resumed.class_names == ["cat", "dog", "émeu"]
    assert resumed.optimizer.iterations == 4

    # One more step in each: the Python model, the core's load of Python's file, and Python's
    # load of the core's file land on the same weights (same loss, metrics, optimizer state).
    results = [step(core, x, y) for core in (model._core, handle, resumed._core)]
    assert results[0] == results[1] == results[2]
    expected = python_weights(model)
    assert_same_weights(core_weights(handle), expected)
    assert_same_weights(python_weights(resumed), expected)


def test_compile_false_and_schedules(tmp_path):
    model = seq((4,), layers.Dense(2))
    schedule = optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    model.compile(optimizers.SGD(schedule), "mse")
    model.fit(np.ones((4, 4), np.float32), np.zeros((4, 2), np.float32), epochs=1, verbose=0)
    path = tmp_path / "m.cnnx"
    model.save(path)
    with pytest.raises(ValueError, match=r"'ExponentialDecay' is not supported by the C\+\+ loader") as info:
        _core.load_model(str(path), True)
    assert str(info.value).startswith(f"{path}: ")
    handle = _core.load_model(str(path), False)  # uncompiled is always possible
    assert not handle.compiled
    _core.save_model(handle, str(tmp_path / "plain.cnnx"))
    assert "compile_config" not in saving.read_file(tmp_path / "plain.cnnx")[1]


# -- the core's loader refuses bad files as the Python loader does ---------------------------------
@pytest.fixture
def good(tmp_path):
    model = seq((4,), layers.Dense(3, name="d1"), layers.Dense(2, name="d2"))
    model.compile("adam", "mse")
    model.fit(np.ones((4, 4), np.float32), np.zeros((4, 2), np.float32), epochs=1, verbose=0)
    path = tmp_path / "good.cnnx"
    model.save(path)
    return saving.read_file(path)


def rewrite(tmp_path, file, tensors=None, **meta):
    tensors0, meta0 = file
    meta1 = {k: v for k, v in meta0.items() if k not in ("format", "format_version")}
    meta1.update({k: v for k, v in meta.items() if k != "format_version"})
    path = tmp_path / "bad.cnnx"
    saving.write_file(path, tensors if tensors is not None else tensors0, meta1, meta.get("format_version", "1"))
    return str(path)


def config_with(layers_json, input_shape=(None, 4)):
    return json.dumps({"name": "m", "input_shape": list(input_shape), "layers": layers_json})


@pytest.mark.parametrize(
    "error,config,match",
    [
        (TypeError, [{"class_name": "Dense", "config": {"units": "2"}}], r"layer 'dense' \(Dense\): expected units"),
        (TypeError, [{"class_name": "Dense", "config": {"units": 2, "use_bias": 1}}], "expected use_bias to be"),
        (TypeError, [{"class_name": "Dense", "config": {"units": 2, "kernel_constraint": None}}], "kernel_constraint"),
        (ValueError, [{"class_name": "Dense", "config": {"units": 0}}], "units"),
        (ValueError, [{"class_name": "Dense", "config": {"units": 2, "activation": "swish"}}], "swish"),
        (ValueError, [{"class_name": "Dense", "config": {"units": 2, "kernel_regularizer": "l3"}}], "regularizer"),
        (ValueError, [{"class_name": "Dropout", "config": {"rate": 0.5, "noise_shape": [None, -1]}}], "noise_shape"),
        (ValueError, [{"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3}}], "Conv2D"),
        (TypeError, [{"class_name": "Reshape", "config": {}}], "missing required argument 'target_shape'"),
        (ValueError, [{"class_name": "Flatten", "config": {"data_format": "channels_first"}}], "channels-last"),
        (ValueError, [{"class_name": "Add", "config": {}}], "merge layer should be called on a list"),
    ],
)
def test_bad_layer_arguments_are_refused_naming_the_layer(tmp_path, good, error, config, match):
    path = rewrite(tmp_path, good, model_config=config_with(config))
    with pytest.raises(error, match=match) as info:
        _core.load_model(path, False)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("model_config", '{"layers": 5}', "expected 'layers' to be a list"),
        ("model_config", '{"name": "m", "input_shape": [null, 4]}', "cannot build a model with no layers"),
        ("model_config", '{"layers": [{"class_name": "Dense", "config": {"units": 2}}]}', "input shape is unknown"),
        ("model_config", '{"layers": [{"class_name": "Layer", "config": {}}]}', "unknown layer class 'Layer'"),
        ("model_config", config_with([{"class_name": "Dense", "config": {"units": 2**40}}]), "units within"),
        ("model_config", '{"layers": ' + json.dumps([{"class_name": "Flatten"}] * 5000) + "}", "5000 layers"),
        ("model_config", "[" * 100 + "]" * 100, "model_config is nested more than 32 levels"),
        ("model_config", "not json", "model_config is not valid JSON"),
        ("compile_config", '{"optimizer": "adam", "loss": "mse"}', "expected 'optimizer'"),
        ("compile_config", '{"optimizer": {"class_name": "Adamax"}, "loss": {"class_name": "X"}}', "optimizer class"),
        ("class_names", "5", "class_names: expected a JSON list"),
        ("optimizer_iterations", "-1", "optimizer_iterations"),
        ("contents", "weights", "not a whole model"),
    ],
)
def test_bad_configs_are_refused_before_building(tmp_path, good, key, value, match):
    path = rewrite(tmp_path, good, **{key: value})
    with pytest.raises(ValueError, match=match) as info:
        _core.load_model(path, True)
    assert str(info.value).startswith(f"{path}: ")
    with pytest.raises(ValueError, match=match):
        cnnx.models.load_model(path)  # the same check, reached from Python


def test_a_cycle_in_a_functional_config_is_refused(tmp_path, good):
    def tensor(name):
        return {"class_name": "__keras_tensor__", "config": {"keras_history": [name, 0, 0]}}

    def entry(name, reads):
        return {"class_name": "Dense", "name": name, "config": {"name": name, "units": 4}, "inbound_nodes": reads}

    config = {
        "class_name": "Functional",
        "config": {
            "name": "loop",
            "layers": [
                {"class_name": "InputLayer", "name": "in", "config": {"batch_shape": [None, 4]}, "inbound_nodes": []},
                entry("a", [{"args": [tensor("b")], "kwargs": {}}]),
                entry("b", [{"args": [tensor("a")], "kwargs": {}}]),
            ],
            "input_layers": ["in", 0, 0],
            "output_layers": ["b", 0, 0],
        },
    }
    path = rewrite(tmp_path, good, model_config=json.dumps(config), format_version="2")
    with pytest.raises(ValueError, match="the layer calls form a cycle"):
        _core.load_model(path, False)


def test_weights_are_assigned_by_name_with_their_shapes_checked(tmp_path, good):
    tensors, _ = good
    wrong = dict(tensors, **{"weights/d2/kernel": np.zeros((3, 5), np.float32)})
    path = rewrite(tmp_path, good, tensors=wrong)
    with pytest.raises(ValueError, match=r"layer 'd2' \(Dense\): expected weight 'kernel' of shape \(3, 2\), "):
        _core.load_model(path, False)
    # (another tensor keeps the floats the file holds above what the config builds)
    missing = {k: v for k, v in tensors.items() if k != "weights/d1/bias"}
    missing["weights/elsewhere/w"] = np.zeros(8, np.float32)
    path = rewrite(tmp_path, good, tensors=missing)
    with pytest.raises(ValueError, match=r"no weights for layer 'd1' \(bias\)"):
        _core.load_model(path, False)


def test_the_parameter_budget_is_the_weights_the_file_holds(tmp_path, good):
    """A config asking for more weights than the file holds is refused before they exist."""
    tensors, _ = good
    config = config_with([{"class_name": "Dense", "config": {"name": "d1", "units": 1 << 24}}])
    path = rewrite(tmp_path, good, model_config=config)
    with pytest.raises(ValueError, match="d1"):
        _core.load_model(path, False)


def test_missing_files_are_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        _core.load_model(str(tmp_path / "nothere.cnnx"), True)
