"""Keras' functional API: Input as a symbolic tensor, layers called on KerasTensors, cnnx.Model
(inputs, outputs) built as a core graph; a chain of layers trains bit-identically to the same
layers in a Sequential; residual and concatenated branches train; errors in Keras' words."""

import numpy as np
import pytest

import cnnx
from cnnx import layers as L


def data(rng, n=32, shape=(8, 8, 3)):
    """Images whose label is the channel with the largest mean: learnable by every model here."""
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    y = x.mean(axis=(1, 2)).argmax(axis=-1)
    return x, y


# -- symbolic tensors ---------------------------------------------------------------------------
def test_input_is_a_symbolic_tensor():
    t = cnnx.Input((28, 28, 1), name="pixels")
    assert isinstance(t, cnnx.KerasTensor)
    assert t.shape == (None, 28, 28, 1) and t.dtype == "float32" and t.ndim == 4
    assert L.Input is cnnx.Input
    layer = t._keras_history.operation
    assert isinstance(layer, L.InputLayer) and layer.name == "pixels" and layer.output is t
    assert "KerasTensor shape=(None, 28, 28, 1)" in repr(t)
    with pytest.raises(TypeError, match="symbolic"):
        np.asarray(t)
    with pytest.raises(TypeError, match="unrecognized keyword"):
        cnnx.Input((3,), ragged=True)
    with pytest.raises(ValueError, match="float32"):
        cnnx.Input((3,), dtype="int32")
    assert cnnx.Input(batch_shape=(None, 5)).shape == (None, 5)


def test_sequential_still_takes_input_in_every_form():
    for first in (cnnx.Input((4,)), L.InputLayer((4,))):
        model = cnnx.Sequential([first, L.Dense(2)])
        assert model.output_shape == (None, 2)
    model = cnnx.Sequential()
    model.add(cnnx.Input((4,)))
    model.add(L.Dense(3))
    assert model.output_shape == (None, 3)
    x = L.Dense(2)(cnnx.Input((4,)))
    with pytest.raises(TypeError, match="cnnx.Model\\(inputs, outputs\\)"):
        cnnx.Sequential([x])


def test_layer_call_on_symbolic_tensors_builds_and_records():
    inputs = cnnx.Input((10, 10, 3))
    conv = L.Conv2D(4, 3, strides=2)
    x = conv(inputs)
    assert x.shape == (None, 4, 4, 4)
    assert conv.built and conv.input is inputs and conv.output is x
    assert [w.shape for w in conv.get_weights()] == [(3, 3, 3, 4), (4,)]
    flat = L.Flatten()(x)
    assert flat.shape == (None, 64)
    merged = L.Concatenate()([flat, L.Dense(5)(flat)])
    assert merged.shape == (None, 69)
    # Calling on arrays still computes
    out = conv(np.zeros((2, 10, 10, 3), np.float32))
    assert out.shape == (2, 4, 4, 4)


def test_layer_input_and_output_with_several_calls():
    a, b = cnnx.Input((4,)), cnnx.Input((4,))
    shared = L.Dense(3)
    ya, yb = shared(a), shared(b)
    with pytest.raises(AttributeError, match='multiple inbound nodes, hence the notion of "layer output"'):
        _ = shared.output
    with pytest.raises(AttributeError, match="multiple inbound nodes"):
        _ = shared.input
    assert shared.get_output_at(0) is ya and shared.get_output_at(1) is yb and shared.get_input_at(1) is b
    with pytest.raises(ValueError, match="Asked to get output at node 2, but the operation has only 2 inbound nodes"):
        shared.get_output_at(2)
    with pytest.raises(AttributeError, match="has never been called and thus has no defined output"):
        _ = L.Dense(2).output


# -- cnnx.Model --------------------------------------------------------------------------------------
def chain_layers():
    return [
        L.Conv2D(6, 3, padding="same", activation="relu"),
        L.BatchNormalization(),
        L.MaxPooling2D(2),
        L.Conv2D(8, 3, activation="relu"),
        L.Flatten(),
        L.Dropout(0.3, seed=7),
        L.Dense(3, activation="softmax"),
    ]


def test_functional_chain_trains_bit_identically_to_sequential(rng):
    x, y = data(rng, n=48)
    cnnx.utils.set_random_seed(3)
    inputs = cnnx.Input((8, 8, 3))
    h = inputs
    for layer in chain_layers():
        h = layer(h)
    functional = cnnx.Model(inputs, h)
    assert type(functional).__name__ == "Functional" and isinstance(functional, cnnx.models.Model)
    cnnx.utils.set_random_seed(3)
    sequential = cnnx.Sequential([cnnx.Input((8, 8, 3)), *chain_layers()])
    sequential.set_weights(functional.get_weights())
    for model in (functional, sequential):
        model.compile(cnnx.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    hf = functional.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    hs = sequential.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    assert hf.history == hs.history
    for a, b in zip(functional.get_weights(), sequential.get_weights()):
        assert np.array_equal(a, b)
    assert np.array_equal(functional.predict(x, verbose=0), sequential.predict(x, verbose=0))
    assert hf.history["loss"][-1] < hf.history["loss"][0]


def test_model_layers_inputs_outputs_and_get_layer():
    inputs = cnnx.Input((6,), name="features")
    hidden = L.Dense(4, name="hidden")(inputs)
    outputs = L.Dense(2, name="logits")(hidden)
    model = cnnx.Model(inputs=inputs, outputs=outputs, name="tiny")
    assert [layer.name for layer in model.layers] == ["features", "hidden", "logits"]
    assert model.inputs == [inputs] and model.outputs == [outputs]
    assert model.input is inputs and model.output is outputs
    assert model.input_shape == (None, 6) and model.output_shape == (None, 2)
    assert model.get_layer("hidden") is model.layers[1] and model.get_layer(index=-1).name == "logits"
    assert model.count_params() == 6 * 4 + 4 + 4 * 2 + 2
    with pytest.raises(
        ValueError, match="No such layer: nope. Existing layers are: \\['features', 'hidden', 'logits'\\]"
    ):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="Was asked to retrieve layer at index 3 but model only has 3 layers"):
        model.get_layer(index=3)
    with pytest.raises(ValueError, match="Provide only a layer name or a layer index"):
        model.get_layer("hidden", 1)
    with pytest.raises(ValueError, match="Provide either a layer name or layer index at `get_layer`"):
        model.get_layer()
    # a sub-model of the same layers (Keras' feature extraction) shares their weights
    features = cnnx.Model(inputs, hidden)
    x = np.ones((3, 6), np.float32)
    w, b = model.get_layer("hidden").get_weights()
    np.testing.assert_allclose(features.predict(x, verbose=0), x @ w + b, rtol=1e-6)


def test_graph_disconnected_and_other_construction_errors():
    a, b = cnnx.Input((4,)), cnnx.Input((4,))
    out = L.Add()([L.Dense(3)(a), L.Dense(3)(b)])
    with pytest.raises(ValueError, match="Graph disconnected: cannot find parent for tensor"):
        cnnx.Model(a, out)
    with pytest.raises(ValueError, match="cnnx supports one input and one output per model for now; received 2 inputs"):
        cnnx.Model([a, b], out)
    h = L.Dense(3)(a)
    with pytest.raises(ValueError, match="one input and one output per model for now; received 2 outputs"):
        cnnx.Model(a, [h, L.Dense(2)(h)])
    with pytest.raises(ValueError, match="All `inputs` values must be KerasTensors"):
        cnnx.Model(np.zeros((1, 4)), h)
    with pytest.raises(ValueError, match="`outputs` argument cannot be empty"):
        cnnx.Model(a, [])
    with pytest.raises(ValueError, match="made by cnnx.Input"):
        cnnx.Model(h, L.Dense(2)(h))
    c = cnnx.Input((4,))
    with pytest.raises(ValueError, match='The name "twin" is used 2 times in the model'):
        cnnx.Model(c, L.Dense(2, name="twin")(L.Dense(4, name="twin")(c)))
    with pytest.raises(TypeError, match="a KerasTensor or a list of KerasTensors"):
        L.Add()([L.Dense(3)(a), np.zeros((1, 3))])


def test_wrong_shapes_name_the_layer():
    inputs = cnnx.Input((8,))
    with pytest.raises(ValueError, match="conv"):
        L.Conv2D(2, 3, name="conv")(inputs)  # a 1-D sample for a 2-D convolution
    dense = L.Dense(3, name="head")
    dense(cnnx.Input((8,)))
    with pytest.raises(ValueError, match="head"):
        dense(cnnx.Input((5,)))  # built for 8 features
    x = cnnx.Input((4, 4, 2))
    with pytest.raises(ValueError, match="sum_up"):
        L.Add(name="sum_up")([x, L.Conv2D(3, 1)(x)])  # 2 vs 3 channels
    model = cnnx.Model(x, L.Flatten()(x))
    with pytest.raises(ValueError, match="input_layer.*expected shape \\(None, 4, 4, 2\\)"):
        model.predict(np.zeros((2, 4, 4, 3), np.float32), verbose=0)


def test_layer_used_twice_shares_its_weights(rng):
    inputs = cnnx.Input((5,))
    shared = L.Dense(5, activation="tanh", name="shared")
    out = L.Dense(2, name="head")(shared(shared(inputs)))
    model = cnnx.Model(inputs, out)
    assert [layer.name for layer in model.layers].count("shared") == 1
    assert model.count_params() == 30 + 12 and len(model.get_weights()) == 4
    x = rng.normal(size=(4, 5)).astype(np.float32)
    w, b = (a.astype(np.float64) for a in shared.get_weights())
    hw, hb = model.get_layer("head").get_weights()
    expected = np.tanh(np.tanh(x @ w + b) @ w + b) @ hw + hb
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    model.compile("sgd", "mse")
    before = shared.get_weights()[0].copy()
    model.fit(x, rng.normal(size=(4, 2)).astype(np.float32), epochs=2, verbose=0)
    assert not np.array_equal(before, shared.get_weights()[0])


def residual_model(filters=3):
    inputs = cnnx.Input((8, 8, filters))
    x = L.Conv2D(filters, 3, padding="same", activation="relu")(inputs)
    x = L.Conv2D(filters, 3, padding="same")(x)
    x = L.Add()([x, inputs])
    x = L.ReLU()(x)
    x = L.GlobalAveragePooling2D()(x)
    return cnnx.Model(inputs, L.Dense(3, activation="softmax")(x), name="residual")


def test_residual_block_trains(rng):
    cnnx.utils.set_random_seed(5)
    x, y = data(rng, n=64)
    model = residual_model()
    model.compile(cnnx.optimizers.Adam(0.02), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    evaluated = model.evaluate(x, y, verbose=0)
    assert np.isfinite(evaluated).all()


def test_concatenation_trains(rng):
    cnnx.utils.set_random_seed(6)
    x, y = data(rng, n=64)
    inputs = cnnx.Input((8, 8, 3))
    a = L.Conv2D(4, 1, activation="relu")(inputs)
    b = L.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x_ = L.concatenate([a, b, inputs])
    assert x_.shape == (None, 8, 8, 11)
    x_ = L.GlobalAveragePooling2D()(x_)
    model = cnnx.Model(inputs, L.Dense(3, activation="softmax")(x_))
    model.compile(cnnx.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=16, epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]


def test_summary_of_a_graph_has_connected_to(capsys):
    model = residual_model()
    model.summary()
    out = capsys.readouterr().out
    assert 'Model: "residual"' in out
    assert "Connected to" in out
    header = next(line for line in out.splitlines() if "Layer (type)" in line)
    assert header.index("Output Shape") < header.index("Param #") < header.index("Connected to")
    row = next(line for line in out.splitlines() if "(Add)" in line)
    assert "conv2d" in row and "[0][0], input_layer" in row
    assert "│ input_layer" in out and "(InputLayer)" in out
    assert f"Total params: {model.count_params():,}" in out
    # a functional chain prints as Keras prints it: three columns
    inputs = cnnx.Input((4,))
    cnnx.Model(inputs, L.Dense(2)(L.Dense(3)(inputs))).summary()
    assert "Connected to" not in capsys.readouterr().out


def test_config_round_trip_rebuilds_the_graph(rng):
    model = residual_model()
    config = model.get_config()
    assert [entry["class_name"] for entry in config["layers"]] == [
        "InputLayer",
        "Conv2D",
        "Conv2D",
        "Add",
        "ReLU",
        "GlobalAveragePooling2D",
        "Dense",
    ]
    add = config["layers"][3]
    (arg,) = add["inbound_nodes"][0]["args"]
    input_name = config["layers"][0]["name"]
    assert [t["config"]["keras_history"] for t in arg] == [[config["layers"][2]["name"], 0, 0], [input_name, 0, 0]]
    assert config["input_layers"] == [input_name, 0, 0]
    assert config["output_layers"] == [config["layers"][-1]["name"], 0, 0]
    rebuilt = cnnx.Model.from_config(config)
    assert isinstance(rebuilt, cnnx.models.Functional)
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
    rebuilt.set_weights(model.get_weights())
    x, _ = data(rng, n=5)
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0))
    assert rebuilt.get_config() == config


def test_calling_a_model_on_arrays(rng):
    inputs = cnnx.Input((6, 6, 1))
    x = L.RandomFlip("horizontal", seed=3)(inputs)
    model = cnnx.Model(inputs, L.Flatten()(x))
    images = rng.normal(size=(16, 6, 6, 1)).astype(np.float32)
    np.testing.assert_array_equal(model(images), images.reshape(16, -1))
    flipped = model(images, training=True).reshape(images.shape)
    is_flip = [np.array_equal(f, i[:, ::-1]) for f, i in zip(flipped, images)]
    is_same = [np.array_equal(f, i) for f, i in zip(flipped, images)]
    assert all(a or b for a, b in zip(is_flip, is_same)) and any(is_flip) and any(is_same)


def test_subclassing_model_is_refused():
    class MyModel(cnnx.Model):
        def __init__(self):
            super().__init__()

    with pytest.raises(TypeError, match="subclassing cnnx.Model"):
        MyModel()
