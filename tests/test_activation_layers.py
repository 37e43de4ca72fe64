"""Activation layers (Activation, ReLU, LeakyReLU, ELU, Softmax) and the leaky_relu / elu
activation strings: forward against numpy, backward against finite differences (inputs kept at
least 0.05 away from the kinks), the model's softmax and ReLU shortcuts, and argument errors."""

import numpy as np
import pytest
from conftest import check_layer_gradients, np_dense, np_softmax

from cnnx import Sequential
from cnnx.layers import ELU, Activation, Conv2D, Dense, Flatten, LeakyReLU, MaxPooling2D, ReLU, Softmax

SHAPES = [(1, 5, 7, 1), (3, 5, 7, 3), (3, 5, 7, 5), (3, 5)]


def np_leaky(x, slope):
    return np.where(x > 0, x, slope * x)


def np_elu(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def np_relu_general(x, max_value=None, negative_slope=0.0, threshold=0.0):
    above = x if max_value is None else np.minimum(x, max_value)
    return np.where(x > threshold, above, negative_slope * (x - threshold))


REFERENCES = {
    "linear": lambda v: v,
    "relu": lambda v: np.maximum(v, 0.0),
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "tanh": np.tanh,
    "softmax": np_softmax,
    "leaky_relu": lambda v: np_leaky(v, 0.2),  # Keras' default for the string
    "elu": lambda v: np_elu(v, 1.0),
}


def away_from_kinks(rng, shape, kinks=(0.0,), gap=0.05):
    """Normal values moved at least `gap` away from every kink."""
    x = rng.normal(size=shape) * 1.5
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + np.where(x[near] >= k, gap, -gap) * 2
    return x.astype(np.float32)


LAYERS = [
    (lambda: ReLU(), REFERENCES["relu"]),
    (lambda: LeakyReLU(), lambda v: np_leaky(v, 0.3)),
    (lambda: LeakyReLU(negative_slope=0.1), lambda v: np_leaky(v, 0.1)),
    (lambda: ELU(), lambda v: np_elu(v, 1.0)),
    (lambda: ELU(alpha=0.5), lambda v: np_elu(v, 0.5)),
    (lambda: Softmax(), np_softmax),
    (lambda: ReLU(max_value=1.0, negative_slope=0.1, threshold=0.5), lambda v: np_relu_general(v, 1.0, 0.1, 0.5)),
    (lambda: ReLU(max_value=6.0), lambda v: np_relu_general(v, 6.0)),
]
KINKS = (0.0, 0.5, 1.0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", sorted(REFERENCES))
def test_activation_forward_and_backward(rng, shape, activation):
    layer = Activation(activation)
    x = away_from_kinks(rng, shape)
    np.testing.assert_allclose(layer(x), REFERENCES[activation](x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    check_layer_gradients(rng, layer, x, REFERENCES[activation])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("make,reference", LAYERS)
def test_named_layers_forward_and_backward(rng, shape, make, reference):
    layer = make()
    x = away_from_kinks(rng, shape, KINKS)
    y = layer(x)
    assert y.shape == x.shape and layer.count_params() == 0
    np.testing.assert_allclose(y, reference(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    check_layer_gradients(rng, layer, x, reference)


@pytest.mark.parametrize("activation", ["leaky_relu", "elu"])
def test_new_activation_strings_in_dense_and_conv(rng, activation):
    dense = Dense(5, activation=activation)
    x = rng.normal(size=(3, 7)).astype(np.float32)
    dense.build((7,))
    want = REFERENCES[activation](np_dense(x, *dense.get_weights()))
    np.testing.assert_allclose(dense(x), want, rtol=1e-4, atol=1e-5)
    check_layer_gradients(rng, dense, x, lambda x64, k, b: REFERENCES[activation](np_dense(x64, k, b)))
    conv = Conv2D(4, 3, padding="same", activation=activation)
    xc = rng.normal(size=(2, 5, 7, 3)).astype(np.float32)
    plain = Conv2D(4, 3, padding="same")
    plain.build((5, 7, 3))
    conv.build((5, 7, 3))
    plain.set_weights(conv.get_weights())
    np.testing.assert_allclose(conv(xc), REFERENCES[activation](plain(xc).astype(np.float64)), rtol=1e-5, atol=1e-6)


def _train_twice(rng, fused_layers, split_layers, x, y, loss):
    """Trains two models that compute the same function, from the same weights; returns both."""
    models = []
    for layers in (fused_layers, split_layers):
        m = Sequential(layers)
        m.build((None, *x.shape[1:]))
        models.append(m)
    models[1].set_weights(models[0].get_weights())
    for m in models:
        m.compile(optimizer="sgd", loss=loss)
        m.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    return models


def test_softmax_layer_last_matches_fused_softmax(rng):
    """Softmax() or Activation('softmax') last gets the exact p - y shortcut, like Dense(softmax)."""
    x = rng.normal(size=(8, 6)).astype(np.float32)
    y = rng.integers(0, 4, size=8)
    for last in (Softmax(), Activation("softmax")):
        a, b = _train_twice(
            rng, [Dense(4, activation="softmax")], [Dense(4), last], x, y, "sparse_categorical_crossentropy"
        )
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


def test_relu_layer_before_max_pooling_matches_fused_relu(rng):
    """ReLU() between Conv2D and MaxPooling2D (pool applies the ReLU derivative) trains like
    Conv2D(activation='relu') + MaxPooling2D."""
    x = rng.normal(size=(8, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=8)
    fused = [Conv2D(4, 3, activation="relu"), MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")]
    split = [Conv2D(4, 3), ReLU(), MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")]
    a, b = _train_twice(rng, fused, split, x, y, "sparse_categorical_crossentropy")
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-5)


def test_config_round_trip():
    for layer in (Activation("elu"), ReLU(max_value=2.0, threshold=0.1), LeakyReLU(0.1), ELU(0.5), Softmax()):
        config = layer.get_config()
        clone = type(layer).from_config({**config, "name": config["name"] + "_clone"})
        assert {**clone.get_config(), "name": config["name"]} == config
    assert LeakyReLU().get_config()["negative_slope"] == 0.3
    assert LeakyReLU(alpha=0.2).negative_slope == 0.2  # Keras 2's argument name


@pytest.mark.parametrize(
    "make,error,message",
    [
        (
            lambda: Activation("swish2"),
            ValueError,
            r"Activation 'activation.*': unknown activation 'swish2'; expected one of",
        ),
        (lambda: Activation(3), TypeError, r"expected activation to be a string"),
        (
            lambda: LeakyReLU(-0.1),
            ValueError,
            r"LeakyReLU '.*': expected a finite negative_slope >= 0, received negative_slope=-0.1",
        ),
        (lambda: LeakyReLU("a"), TypeError, r"expected negative_slope to be a number"),
        (lambda: ELU(-1.0), ValueError, r"ELU '.*': expected a finite alpha >= 0, received alpha=-1.0"),
        (
            lambda: ReLU(max_value=-1),
            ValueError,
            r"ReLU '.*': expected max_value >= 0 or None, received max_value=-1.0",
        ),
        (lambda: ReLU(threshold=-1), ValueError, r"expected a finite threshold >= 0"),
        (lambda: Softmax(axis=0), ValueError, r"Softmax '.*': expected the last axis \(axis=-1\), received axis=0"),
        (lambda: Softmax(axis=-2), ValueError, r"only the last axis \(axis=-1\) is supported, received axis=-2"),
    ],
)
def test_invalid_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_softmax_axis_checked_at_build():
    with pytest.raises(
        ValueError, match=r"only the last axis \(axis=-1\) is supported, received axis=1 for input of rank 4"
    ):
        Softmax(axis=1).build((5, 7, 3))
    assert Softmax(axis=3).compute_output_shape((5, 7, 3)) == (None, 5, 7, 3)
