"""BatchNormalization over the channels axis: batch statistics and momentum updates in training,
moving statistics at inference, gradients (through the batch statistics) against finite
differences, non-trainable moving weights, thread-count invariance and argument errors."""

import numpy as np
import pytest
from conftest import check_layer_gradients

import cnnx
from cnnx import Sequential
from cnnx.layers import BatchNormalization, Dense

SHAPES = [(1, 5, 7, 3), (3, 5, 7, 1), (3, 5, 7, 5), (3, 5), (2, 4, 6)]
EPS = 1e-3


def np_bn_train(x, gamma, beta, *moving, eps=EPS):
    axes = tuple(range(x.ndim - 1))
    mean, var = x.mean(axis=axes), x.var(axis=axes)  # biased, as Keras
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def np_bn_infer(x, gamma, beta, moving_mean, moving_var, eps=EPS):
    return (x - moving_mean) / np.sqrt(moving_var + eps) * gamma + beta


def make(rng, shape, **kwargs):
    layer = BatchNormalization(**kwargs)
    layer.build(shape[1:])
    c = shape[-1]
    weights = [rng.uniform(0.5, 1.5, c), rng.normal(size=c), rng.normal(size=c), rng.uniform(0.5, 2.0, c)]
    layer.set_weights(weights)
    x = (rng.normal(size=shape) * 2 + 0.5).astype(np.float32)
    return layer, x, [w.astype(np.float32).astype(np.float64) for w in weights]


@pytest.mark.parametrize("shape", SHAPES)
def test_training_uses_batch_statistics_and_moves_averages(rng, shape):
    layer, x, (gamma, beta, mm, mv) = make(rng, shape, momentum=0.9)
    y = layer(x, training=True)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(y, np_bn_train(x64, gamma, beta), rtol=1e-4, atol=1e-4)
    axes = tuple(range(x.ndim - 1))
    _, _, new_mm, new_mv = layer.get_weights()
    np.testing.assert_allclose(new_mm, mm * 0.9 + x64.mean(axis=axes) * 0.1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_mv, mv * 0.9 + x64.var(axis=axes) * 0.1, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_inference_uses_moving_statistics(rng, shape):
    layer, x, weights = make(rng, shape)
    y = layer(x)  # training=False
    np.testing.assert_allclose(y, np_bn_infer(x.astype(np.float64), *weights), rtol=1e-5, atol=1e-5)
    for got, want in zip(layer.get_weights(), weights):  # inference leaves the averages alone
        np.testing.assert_array_equal(got, want.astype(np.float32))
    dy = rng.normal(size=shape).astype(np.float32)
    dx = layer._core.backward(x, y, dy)
    gamma, _, _, mv = weights
    np.testing.assert_allclose(dx, dy * gamma / np.sqrt(mv + EPS), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_backward_training_mode_finite_differences(rng, shape):
    layer, x, _ = make(rng, shape)
    # Moving statistics do not enter the training-mode output: their numeric gradient is 0,
    # matching the zero gradient the layer reports for them.
    check_layer_gradients(rng, layer, x, np_bn_train, rtol=3e-3, atol=3e-3)


@pytest.mark.parametrize("center,scale", [(False, True), (True, False), (False, False)])
def test_center_and_scale_off(rng, center, scale):
    layer = BatchNormalization(center=center, scale=scale)
    layer.build((5, 7, 3))
    assert layer._core.weight_names() == (["gamma"] if scale else []) + (["beta"] if center else []) + [
        "moving_mean",
        "moving_variance",
    ]
    x = (rng.normal(size=(3, 5, 7, 3)) * 3 + 1).astype(np.float32)
    ones, zeros = np.ones(3), np.zeros(3)
    np.testing.assert_allclose(
        layer(x, training=True), np_bn_train(x.astype(np.float64), ones, zeros), rtol=1e-4, atol=1e-4
    )

    def reference(x64, *w):
        w = list(w)
        gamma = w.pop(0) if scale else ones
        beta = w.pop(0) if center else zeros
        return np_bn_train(x64, gamma, beta)

    check_layer_gradients(rng, layer, x, reference, rtol=3e-3, atol=3e-3)


def test_weights_in_keras_order_and_non_trainable(capsys):
    layer = BatchNormalization()
    assert layer.compute_output_shape((None, 5, 7, 6)) == (None, 5, 7, 6)
    assert layer._core.weight_names() == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert layer._core.weight_trainable() == [True, True, False, False]
    gamma, beta, mm, mv = layer.get_weights()
    np.testing.assert_array_equal(gamma, 1)
    np.testing.assert_array_equal(beta, 0)
    np.testing.assert_array_equal(mm, 0)
    np.testing.assert_array_equal(mv, 1)
    model = Sequential([BatchNormalization(input_shape=(4, 4, 8)), Dense(2)])
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 50" in out and "Trainable params: 34" in out and "Non-trainable params: 16" in out


def test_optimizer_leaves_moving_statistics_to_the_layer(rng):
    model = Sequential([BatchNormalization(momentum=0.5, input_shape=(4,)), Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = (rng.normal(size=(8, 4)) * 2 + 3).astype(np.float32)
    model.train_on_batch(x, rng.integers(0, 2, size=8))
    _, _, mm, mv = model.layers[0].get_weights()
    np.testing.assert_allclose(mm, 0.5 * x.astype(np.float64).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(mv, 0.5 + 0.5 * x.astype(np.float64).var(axis=0), rtol=1e-5)


def test_results_independent_of_thread_count(rng):
    x = rng.normal(size=(16, 16, 16, 8)).astype(np.float32)  # 4096 rows: several reduction chunks
    dy = rng.normal(size=x.shape).astype(np.float32)
    before = cnnx.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            cnnx.set_num_threads(threads)
            layer = BatchNormalization()
            y = layer(x, training=True)
            dx = layer._core.backward(x, y, dy)
            results.append([y, dx, *layer._core.get_gradients(), *layer.get_weights()])
    finally:
        cnnx.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_gamma_regularizer_is_kept_and_round_trips():
    layer = BatchNormalization(gamma_regularizer="l2")
    assert layer.get_config()["gamma_regularizer"]["class_name"] == "L2"
    assert layer.get_config()["beta_regularizer"] is None
    clone = BatchNormalization.from_config({**layer.get_config(), "name": "bn_reg_clone"})
    assert clone.get_config()["gamma_regularizer"] == layer.get_config()["gamma_regularizer"]


def test_config_round_trip():
    layer = BatchNormalization(momentum=0.9, epsilon=1e-5, center=False)
    config = layer.get_config()
    clone = BatchNormalization.from_config({**config, "name": "bn_clone"})
    assert {**clone.get_config(), "name": config["name"]} == config


@pytest.mark.parametrize(
    "make,error,message",
    [
        (
            lambda: BatchNormalization(axis=0),
            ValueError,
            r"BatchNormalization '.*': only the channels axis \(axis=-1, channels-last\) is supported, received axis=0",
        ),
        (lambda: BatchNormalization(axis=-2), ValueError, r"only the channels axis .* received axis=-2"),
        (lambda: BatchNormalization(axis="c"), TypeError, r"expected axis to be an int"),
        (lambda: BatchNormalization(momentum=1.5), ValueError, r"expected momentum in \[0, 1\], received momentum=1.5"),
        (lambda: BatchNormalization(epsilon=0), ValueError, r"expected a positive epsilon, received epsilon=0"),
        (lambda: BatchNormalization(gamma_initializer="twos"), ValueError, r"twos"),
        (
            lambda: BatchNormalization(beta_constraint="non_neg"),
            ValueError,
            r"beta_constraint is not supported; expected beta_constraint=None, received beta_constraint='non_neg'",
        ),
        (lambda: BatchNormalization(synchronized=True), ValueError, r"synchronized=True is not supported"),
    ],
)
def test_invalid_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_axis_checked_at_build():
    with pytest.raises(
        ValueError,
        match=r"only the channels axis \(axis=-1, channels-last\) is supported, "
        r"received axis=1 for input of rank 4",
    ):
        BatchNormalization(axis=1).build((5, 7, 3))
    assert BatchNormalization(axis=3).compute_output_shape((5, 7, 3)) == (None, 5, 7, 3)
