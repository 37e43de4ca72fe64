"""Model and layer attributes with Keras 3's behaviour: weights as Variables (live, assignable),
trainable / non-trainable lists, count_params, Sequential.pop, Dense(input_dim=), clone_model,
backend.clear_session and the top-level aliases."""

from __future__ import annotations

import numpy as np
import pytest

import cnnx
from cnnx import layers


def small_model():
    return cnnx.Sequential(
        [
            cnnx.Input((4,)),
            layers.Dense(6, activation="relu", name="hidden"),
            layers.BatchNormalization(name="bn"),
            layers.Dense(3, activation="softmax", name="out"),
        ]
    )


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    return x, y


def test_weights_are_keras_style_variables():
    model = small_model()
    weights = model.weights
    assert [v.path for v in weights] == [
        "hidden/kernel",
        "hidden/bias",
        "bn/gamma",
        "bn/beta",
        "bn/moving_mean",
        "bn/moving_variance",
        "out/kernel",
        "out/bias",
    ]
    assert [v.name for v in weights[:2]] == ["kernel", "bias"]
    assert weights[0].shape == (4, 6) and weights[0].ndim == 2 and weights[0].dtype == "float32"
    for v, array in zip(weights, model.get_weights()):
        assert type(v.numpy()) is np.ndarray
        np.testing.assert_array_equal(v.numpy(), array)
        np.testing.assert_array_equal(np.asarray(v), array)
        assert v.shape == array.shape
    assert model.weights[0] is model.weights[0]  # the same handle each time, as Keras
    assert model.layers[0].weights[0] is model.weights[0]
    assert [v.trainable for v in weights] == [True, True, True, True, False, False, True, True]
    # arithmetic works on the value
    np.testing.assert_array_equal(weights[0] * 2, model.get_weights()[0] * 2)
    np.testing.assert_array_equal(1 - weights[1], 1 - model.get_weights()[1])
    assert weights[0][1, 2] == model.get_weights()[0][1, 2]
    assert "path=hidden/kernel, shape=(4, 6), dtype=float32" in repr(weights[0])


def test_variables_are_live_and_assign_writes_through():
    model = small_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    kernel = model.get_layer("out").kernel  # Keras' attribute for the weight
    assert kernel is model.weights[-2] and model.get_layer("out").bias is model.weights[-1]
    assert model.get_layer("bn").moving_mean.path == "bn/moving_mean"
    assert not hasattr(model.get_layer("bn"), "kernel") and not hasattr(layers.Dense(2), "kernel")
    before = kernel.numpy()
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not np.array_equal(kernel.numpy(), before)  # the handle sees training's updates
    np.testing.assert_array_equal(kernel.numpy(), model.get_weights()[-2])

    zero = np.zeros(kernel.shape, dtype=np.float32)
    kernel.assign(zero)
    model.weights[-1].assign(np.array([0.0, np.log(2.0), 0.0], dtype=np.float32))
    np.testing.assert_array_equal(model.get_layer("out").get_weights()[0], zero)
    # a zero kernel: the output is the softmax of the bias, whatever the input
    np.testing.assert_allclose(model.predict(x[:2], verbose=0), [[0.25, 0.5, 0.25]] * 2, rtol=1e-6)
    model.weights[-1].assign_add(np.ones(3))
    np.testing.assert_allclose(model.weights[-1].numpy(), [1.0, 1 + np.log(2.0), 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match=r"variable.shape=\(6, 3\), Received: value.shape=\(3, 6\)"):
        kernel.assign(np.zeros((3, 6)))


def test_trainable_and_non_trainable_weights():
    model = small_model()
    assert [v.path for v in model.trainable_weights] == [
        "hidden/kernel",
        "hidden/bias",
        "bn/gamma",
        "bn/beta",
        "out/kernel",
        "out/bias",
    ]
    assert [v.path for v in model.non_trainable_weights] == ["bn/moving_mean", "bn/moving_variance"]
    model.get_layer("hidden").trainable = False
    assert [v.path for v in model.non_trainable_weights] == [
        "hidden/kernel",
        "hidden/bias",
        "bn/moving_mean",
        "bn/moving_variance",
    ]
    assert model.get_layer("hidden").trainable_weights == []
    assert model.get_layer("hidden").weights[0].trainable  # the variable's own flag, as Keras
    model.trainable = False
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == 8
    assert layers.Dense(2).weights == []  # not built yet


def test_count_params():
    model = small_model()
    expected = (4 * 6 + 6) + 4 * 6 + (6 * 3 + 3)
    assert model.count_params() == expected
    assert model.get_layer("bn").count_params() == 24  # moving statistics count, as in Keras
    assert sum(layer.count_params() for layer in model.layers) == expected
    assert sum(v.size for v in model.weights) == expected
    with pytest.raises(ValueError, match="count_params"):
        layers.Dense(3).count_params()


def test_pop_removes_the_last_layer():
    model = small_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    hidden = model.get_layer("hidden").get_weights()
    out_weights = model.get_layer("out").get_weights()
    removed = model.pop()
    assert removed.name == "out" and [layer.name for layer in model.layers] == ["hidden", "bn"]
    assert model.output_shape == (None, 6)
    assert model.count_params() == 30 + 24
    # the removed layer keeps its weights; the remaining layers keep theirs
    for a, b in zip(removed.get_weights(), out_weights):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.get_layer("hidden").get_weights(), hidden):
        np.testing.assert_array_equal(a, b)
    assert model.predict(x[:5], verbose=0).shape == (5, 6)
    with pytest.raises(ValueError, match="compile"):
        model.fit(x, y, epochs=1, verbose=0)  # compile again after pop
    model.add(layers.Dense(2, activation="softmax", name="new_head"))
    assert model.output_shape == (None, 2)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, y[:, :2], epochs=1, verbose=0)
    assert model.predict(x[:3], verbose=0).shape == (3, 2)


def test_pop_keeps_the_symbolic_graph_usable():
    """The keras-io Sequential guide: pop, then a feature extractor from layer outputs."""
    model = cnnx.Sequential(
        [
            cnnx.Input((10, 10, 1)),
            layers.Conv2D(4, 3, activation="relu", name="c1"),
            layers.Conv2D(4, 3, activation="relu", name="c2"),
            layers.Flatten(name="flat"),
        ]
    )
    assert model.output.shape == (None, 144)
    model.pop()
    assert len(model.layers) == 2 and model.output.shape == (None, 6, 6, 4)
    extractor = cnnx.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers][-1:])
    x = np.random.default_rng(1).normal(size=(2, 10, 10, 1)).astype(np.float32)
    np.testing.assert_allclose(extractor.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    model.add(layers.GlobalAveragePooling2D(name="gap"))
    assert model.output.shape == (None, 4)


def test_pop_errors_and_nested():
    inner = cnnx.Sequential([layers.Dense(3, name="i1")], name="inner")
    model = cnnx.Sequential([cnnx.Input((2,)), layers.Dense(3, name="d0"), inner])
    assert model.pop() is inner
    assert [layer.name for layer in model.layers] == ["d0"]
    assert inner.layers[0].get_weights()[0].shape == (3, 3)
    assert model.pop().name == "d0"
    with pytest.raises(IndexError, match="no layers to remove"):
        model.pop()
    with pytest.raises(IndexError):
        cnnx.Sequential().pop()
    with pytest.raises(TypeError, match="rebuild"):
        cnnx.Sequential([layers.Dense(2)]).pop(rebuild="yes")


def test_dense_input_dim_and_input_shape():
    model = cnnx.Sequential([layers.Dense(5, input_dim=3, name="a"), layers.Dense(2)])
    assert model.input_shape == (None, 3) and model.output_shape == (None, 2)
    assert model.get_layer("a").get_weights()[0].shape == (3, 5)
    also = cnnx.Sequential([layers.Dense(5, input_shape=(3,)), layers.Dense(2)])
    assert also.input_shape == (None, 3)
    # Keras: input_dim wins over input_shape
    assert cnnx.Sequential([layers.Dense(1, input_dim=4, input_shape=(7,))]).input_shape == (None, 4)
    with pytest.raises(TypeError, match="Unrecognized keyword arguments"):
        layers.Dense(2, input_dims=3)


def test_clone_model():
    model = small_model()
    clone = cnnx.models.clone_model(model)
    assert isinstance(clone, cnnx.Sequential) and clone is not model
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert clone.get_config() == model.get_config()
    assert not np.array_equal(clone.get_weights()[0], model.get_weights()[0])  # fresh weights, as Keras
    clone.set_weights(model.get_weights())
    x, _ = data(4)
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)

    inputs = cnnx.Input((4,))
    functional = cnnx.Model(inputs, layers.Dense(2, name="f")(layers.Dense(3, name="e")(inputs)))
    fclone = cnnx.models.clone_model(functional)
    assert [layer.name for layer in fclone.layers] == [layer.name for layer in functional.layers]
    assert fclone.count_params() == functional.count_params()

    renamed = cnnx.models.clone_model(
        model, clone_function=lambda layer: type(layer).from_config({**layer.get_config(), "name": "c_" + layer.name})
    )
    assert [layer.name for layer in renamed.layers] == ["c_hidden", "c_bn", "c_out"]
    with pytest.raises(ValueError, match="input_tensors"):
        cnnx.models.clone_model(model, input_tensors=[cnnx.Input((4,))])


def test_aliases():
    assert cnnx.Input is cnnx.layers.Input
    assert isinstance(cnnx.Input((3,)), cnnx.KerasTensor)
    assert cnnx.layers.InputLayer is not None and isinstance(
        cnnx.Input((3,))._keras_history.operation, cnnx.layers.InputLayer
    )
    assert cnnx.models.Model is cnnx.Model and cnnx.models.Sequential is cnnx.Sequential
    assert callable(cnnx.models.load_model) and callable(cnnx.models.clone_model)
    assert callable(cnnx.utils.set_random_seed) and callable(cnnx.utils.to_categorical)
    for name in ("load_img", "img_to_array", "array_to_img", "save_img", "plot_model"):
        assert name in cnnx.utils.__all__ and callable(getattr(cnnx.utils, name))


def test_clear_session_restarts_names():
    layers.Dense(1)
    cnnx.backend.clear_session()
    model = cnnx.Sequential([cnnx.Input((2,)), layers.Dense(1)])
    assert model.name == "sequential" and model.layers[0].name == "dense"
    cnnx.backend.clear_session(free_memory=False)
    assert layers.Dense(1).name == "dense"


def test_add_after_training_rebuilds_as_keras():
    model = small_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    kept = model.get_weights()
    model.add(layers.Dense(2, name="extra"))
    assert model.output_shape == (None, 2) and not model.compiled
    for a, b in zip(model.get_weights(), kept):
        np.testing.assert_array_equal(a, b)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y[:, :2], epochs=1, verbose=0)


def test_calling_a_model_gives_arrays_with_numpy_method():
    """TensorFlow's beginner quickstart: model(x).numpy(), then a softmax of that."""
    keras = cnnx
    model = small_model()
    x, _ = data(2)
    predictions = model(x[:1]).numpy()
    assert type(predictions) is np.ndarray and predictions.shape == (1, 3)
    np.testing.assert_allclose(predictions, model.predict(x[:1], verbose=0), rtol=1e-6)
    probs = keras.ops.softmax(predictions).numpy()
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)
    hidden = model.get_layer("hidden")(x)
    assert isinstance(hidden, np.ndarray) and hidden.numpy().shape == (2, 6)
    assert layers.Dense(2)(x).numpy().shape == (2, 2)  # a layer on its own, built on first use
    assert model(x, training=True).numpy().shape == (2, 3)
