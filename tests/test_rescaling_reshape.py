"""Rescaling and Reshape: forward against numpy, backward, -1 inference and clear errors."""

import numpy as np
import pytest
from conftest import check_layer_gradients

from cnnx.layers import Rescaling, Reshape


@pytest.mark.parametrize("shape", [(1, 5, 7, 1), (3, 5, 7, 3), (3, 5, 7, 5), (3, 5)])
@pytest.mark.parametrize("scale,offset", [(1 / 255, 0.0), (2.0, -1.0), (-0.5, 0.25)])
def test_rescaling(rng, shape, scale, offset):
    layer = Rescaling(scale, offset=offset)
    x = rng.normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(layer(x), x.astype(np.float64) * scale + offset, rtol=1e-6, atol=1e-6)
    check_layer_gradients(rng, layer, x, lambda x64: x64 * scale + offset)
    assert layer.count_params() == 0


@pytest.mark.parametrize(
    "shape,target,out",
    [
        ((3, 5, 7, 3), (35, 3), (35, 3)),
        ((1, 5, 7, 5), (-1,), (175,)),
        ((3, 5, 7, 1), (7, -1), (7, 5)),
        ((3, 30), (2, 3, 5), (2, 3, 5)),
    ],
)
def test_reshape(rng, shape, target, out):
    layer = Reshape(target)
    x = rng.normal(size=shape).astype(np.float32)
    y = layer(x, training=True)
    np.testing.assert_array_equal(y, x.reshape(shape[0], *out))
    assert layer.output_shape == (None, *out)
    dy = rng.normal(size=y.shape).astype(np.float32)
    np.testing.assert_array_equal(layer._core.backward(x, y, dy), dy.reshape(shape))


def test_config_round_trip():
    for layer in (Rescaling(0.5, offset=1.0), Reshape((-1, 3))):
        config = layer.get_config()
        clone = type(layer).from_config({**config, "name": config["name"] + "_clone"})
        assert {**clone.get_config(), "name": config["name"]} == config


@pytest.mark.parametrize(
    "make,error,message",
    [
        (lambda: Rescaling("a"), TypeError, r"Rescaling '.*': expected scale to be a number, received scale='a'"),
        (lambda: Rescaling(float("nan")), ValueError, r"expected a finite scale"),
        (lambda: Rescaling(1.0, offset=float("inf")), ValueError, r"expected a finite offset"),
        (
            lambda: Reshape((-1, -1)),
            ValueError,
            r"Reshape '.*': expected at most one -1 in target_shape, received target_shape=\(-1, -1\)",
        ),
        (
            lambda: Reshape((0, 3)),
            ValueError,
            r"expected target_shape dimensions to be positive or -1, received target_shape=\(0, 3\)",
        ),
        (lambda: Reshape("3"), TypeError, r"expected target_shape to be a tuple of ints"),
        (lambda: Reshape(()), ValueError, r"expected a non-empty target_shape"),
    ],
)
def test_invalid_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_reshape_element_count_checked_at_build():
    with pytest.raises(
        ValueError,
        match=r"Reshape '.*': expected target_shape with as many elements as the input "
        r"\(5, 7, 3\) \(105 per sample\), received target_shape=\(7, 2\) \(14 elements\)",
    ):
        Reshape((7, 2)).build((5, 7, 3))
    with pytest.raises(
        ValueError,
        match=r"cannot reshape input \(5, 7, 3\) \(105 elements per sample\) to "
        r"target_shape=\(-1, 2\): expected 105 to be divisible by 2",
    ):
        Reshape((-1, 2)).build((5, 7, 3))
