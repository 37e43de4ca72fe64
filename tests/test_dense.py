"""Dense and Flatten: forward against numpy, backward against finite differences."""

import numpy as np
import pytest
from conftest import check_layer_gradients, np_activation, np_dense

from cnnx.layers import Dense, Flatten


@pytest.mark.parametrize("n,fin,units", [(1, 1, 1), (3, 7, 5), (2, 1152, 100), (5, 17, 33)])
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_forward_matches_numpy(rng, n, fin, units, activation):
    layer = Dense(units, activation=activation)
    x = rng.normal(size=(n, fin)).astype(np.float32)
    layer.build((fin,))
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, rng.normal(size=units)])
    want = np_activation(activation, np_dense(x, *layer.get_weights()))
    np.testing.assert_allclose(layer(x), want, rtol=1e-4, atol=1e-5)


def test_applies_to_last_axis(rng):
    layer = Dense(4)
    x = rng.normal(size=(2, 3, 5, 6)).astype(np.float32)
    got = layer(x)
    assert got.shape == (2, 3, 5, 4)
    np.testing.assert_allclose(got, np_dense(x, *layer.get_weights()), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("shape", [(1, 3), (3, 7), (2, 3, 5)])
def test_backward_finite_differences(rng, activation, shape):
    layer = Dense(5, activation=activation)
    x = rng.normal(size=shape).astype(np.float32)
    layer.build(shape[1:])
    layer.set_weights([layer.get_weights()[0], rng.normal(size=5)])
    check_layer_gradients(
        rng, layer, x, lambda x64, k, b: np_activation(activation, np_dense(x64, k, b)), rtol=1e-3, atol=1e-3
    )


def test_flatten_order_and_backward(rng):
    layer = Flatten()
    x = rng.normal(size=(3, 2, 4, 5)).astype(np.float32)
    y = layer(x, training=True)
    np.testing.assert_array_equal(y, x.reshape(3, -1))  # NHWC order, as Keras
    dy = rng.normal(size=y.shape).astype(np.float32)
    np.testing.assert_array_equal(layer._core.backward(x, y, dy), dy.reshape(x.shape))
    assert layer.output_shape == (None, 40)
