"""Models used as layers: an augmentation Sequential inside a Sequential (the TF tutorials'
pattern), a Sequential or functional model called in a functional graph, the same model used
twice (shared weights), a model with branches inside a Sequential. The core knows no nesting:
the nested layers are inlined into the outer model's core graph."""

import numpy as np
import pytest

import cnnx
from cnnx import layers as L


def images(rng, n=24, shape=(8, 8, 3)):
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    return x, x.mean(axis=(1, 2)).argmax(axis=-1)


def test_augmentation_sequential_inside_a_sequential(rng, capsys):
    cnnx.utils.set_random_seed(1)
    augmentation = cnnx.Sequential([L.RandomFlip("horizontal", seed=1), L.RandomRotation(0.1, seed=2)])
    model = cnnx.Sequential(
        [
            cnnx.Input((8, 8, 3)),
            augmentation,
            L.Conv2D(4, 3, activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(3, activation="softmax"),
        ]
    )
    assert model.layers[0] is augmentation and augmentation.input_shape == (None, 8, 8, 3)
    assert model.output_shape == (None, 3)
    assert model.count_params() == 3 * 3 * 3 * 4 + 4 + 4 * 3 + 3
    x, y = images(rng)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # inference skips augmentation; training=True augments (and changes the output)
    conv_only = cnnx.Sequential([cnnx.Input((8, 8, 3)), *model.layers[1:]])
    np.testing.assert_array_equal(model(x), conv_only.predict(x, verbose=0))
    assert not np.array_equal(model(x, training=True), model(x))
    assert not np.array_equal(augmentation(x, training=True), x)
    np.testing.assert_array_equal(augmentation(x), x)
    model.summary()
    out = capsys.readouterr().out
    assert f"{augmentation.name} (Sequential)" in out and "(None, 8, 8, 3)" in out


def test_unbuilt_nested_sequential_is_built_with_the_outer_model(rng):
    inner = cnnx.Sequential([L.Dense(4, activation="relu"), L.Dense(4)])
    model = cnnx.Sequential([inner, L.Dense(2)])
    assert not inner.built
    x = rng.normal(size=(5, 3)).astype(np.float32)
    model.compile("sgd", "mse")
    model.fit(x, np.zeros((5, 2), np.float32), epochs=1, verbose=0)
    assert inner.input_shape == (None, 3) and model.input_shape == (None, 3)
    assert len(model.get_weights()) == 6
    hidden = np.maximum(x @ inner.layers[0].get_weights()[0] + inner.layers[0].get_weights()[1], 0)
    hidden = hidden @ inner.layers[1].get_weights()[0] + inner.layers[1].get_weights()[1]
    out = hidden @ model.layers[1].get_weights()[0] + model.layers[1].get_weights()[1]
    np.testing.assert_allclose(model.predict(x, verbose=0), out, rtol=1e-5, atol=1e-6)


def test_sequential_called_in_a_functional_graph_trains_its_layers(rng):
    block = cnnx.Sequential([L.Conv2D(4, 3, padding="same", activation="relu"), L.Conv2D(3, 1)], name="block")
    inputs = cnnx.Input((8, 8, 3))
    x = block(inputs)
    assert x.shape == (None, 8, 8, 3) and block.input_shape == (None, 8, 8, 3)
    x = L.Add()([x, inputs])
    model = cnnx.Model(inputs, L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(x)))
    assert [layer.name for layer in model.layers][:2] == [inputs._keras_history.operation.name, "block"]
    assert model.count_params() == block.count_params() + 3 * 3 + 3
    before = block.get_weights()
    xs, ys = images(rng)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(xs, ys, epochs=2, verbose=0)
    after = block.get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))
    # the nested model, called alone, computes with the weights the outer model trained
    conv1, conv2 = block.layers
    expected = conv2(conv1(xs))
    np.testing.assert_allclose(block.predict(xs, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_the_same_model_used_twice_shares_its_weights(rng):
    encoder = cnnx.Sequential([cnnx.Input((6,)), L.Dense(6, activation="tanh")], name="encoder")
    inputs = cnnx.Input((6,))
    out = L.Dense(1)(encoder(encoder(inputs)))
    model = cnnx.Model(inputs, out)
    assert model.count_params() == 42 + 7 and len(model.get_weights()) == 4
    w, b = encoder.layers[0].get_weights()
    x = rng.normal(size=(4, 6)).astype(np.float32)
    hw, hb = model.layers[-1].get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0), np.tanh(np.tanh(x @ w + b) @ w + b) @ hw + hb, rtol=1e-5)
    # a Sequential repeating a block shares it too
    twice = cnnx.Sequential([cnnx.Input((6,)), encoder, encoder])
    assert twice.count_params() == 42
    np.testing.assert_allclose(twice.predict(x, verbose=0), np.tanh(np.tanh(x @ w + b) @ w + b), rtol=1e-5)


def test_functional_model_inside_functional_and_sequential(rng):
    def residual_block(name):
        inputs = cnnx.Input((8, 8, 3))
        x = L.Conv2D(3, 3, padding="same", activation="relu")(inputs)
        return cnnx.Model(inputs, L.Add()([x, inputs]), name=name)

    block = residual_block("res")
    assert block._chain_layers() is None  # has a branch
    # inside a Sequential: the Sequential runs as a core graph
    model = cnnx.Sequential(
        [cnnx.Input((8, 8, 3)), block, L.GlobalAveragePooling2D(), L.Dense(3, activation="softmax")]
    )
    x, y = images(rng)
    conv = block.layers[1]
    w = conv.get_weights()[0]
    np.testing.assert_allclose(block.predict(x, verbose=0), conv(x) + x, rtol=1e-5, atol=1e-5)
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.array_equal(w, conv.get_weights()[0])
    # a model with branches after layers of unknown input shape cannot be placed
    with pytest.raises(ValueError, match="has branches or uses a layer again.*start it with Input"):
        cnnx.Sequential([L.Dense(3), residual_block("res2")])
    # inside another functional model
    inputs = cnnx.Input((8, 8, 3))
    outer = cnnx.Model(inputs, L.Flatten()(block(inputs)))
    np.testing.assert_allclose(
        outer.predict(x, verbose=0), block.predict(x, verbose=0).reshape(len(x), -1), rtol=1e-6, atol=1e-6
    )
    with pytest.raises(ValueError, match='Input 0 of layer "res" is incompatible with the layer'):
        block(cnnx.Input((4, 4, 3)))


def test_feature_extractor_from_a_sequential(rng):
    model = cnnx.Sequential(
        [cnnx.Input((6, 6, 1)), L.Conv2D(2, 3, name="c1"), L.Flatten(name="flat"), L.Dense(2, name="out")]
    )
    x = rng.normal(size=(3, 6, 6, 1)).astype(np.float32)
    model.predict(x, verbose=0)
    features = cnnx.Model(model.input, model.get_layer("flat").output)
    assert [layer.name for layer in features.layers][1:] == ["c1", "flat"]
    np.testing.assert_allclose(features.predict(x, verbose=0), model.layers[0](x).reshape(3, -1), rtol=1e-6)
    with pytest.raises(AttributeError, match="has no defined input"):
        _ = cnnx.Sequential([L.Dense(2)]).input


def test_names_of_nested_layers_must_not_clash():
    a = cnnx.Sequential([cnnx.Input((3,)), L.Dense(2, name="dense_x")])
    with pytest.raises(ValueError, match='The name "dense_x" is used 2 times'):
        cnnx.Sequential([cnnx.Input((3,)), L.Dense(3, name="dense_x"), a])
    with pytest.raises(ValueError, match="cannot contain itself"):
        a.add(a)
