"""AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D: forward against numpy (average
pooling with "same" padding does not count padded positions, as in Keras/TF), backward against
finite differences, shapes and argument errors."""

import numpy as np
import pytest
from conftest import check_layer_gradients, distinct_values, pad_amounts

from cnnx.layers import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D


def np_avg_pool(x, pool=(2, 2), strides=None, padding="valid"):
    x = np.asarray(x, np.float64)
    strides = strides or pool
    n, h, w, c = x.shape
    oh, pt, pb = pad_amounts(h, pool[0], strides[0], 1, padding)
    ow, pl, pr = pad_amounts(w, pool[1], strides[1], 1, padding)
    pads = ((0, 0), (pt, pb), (pl, pr), (0, 0))
    xp, ones = np.pad(x, pads), np.pad(np.ones_like(x), pads)
    total, count = np.zeros((n, oh, ow, c)), np.zeros((n, oh, ow, c))
    for ky in range(pool[0]):
        for kx in range(pool[1]):
            window = (
                slice(None),
                slice(ky, ky + (oh - 1) * strides[0] + 1, strides[0]),
                slice(kx, kx + (ow - 1) * strides[1] + 1, strides[1]),
                slice(None),
            )
            total += xp[window]
            count += ones[window]
    return total / count


CASES = [
    # n, h, w, c, pool, strides, padding
    (1, 5, 7, 1, (2, 2), None, "valid"),
    (3, 5, 7, 3, (2, 2), None, "same"),
    (3, 5, 7, 5, (3, 3), (2, 2), "valid"),  # overlapping windows
    (3, 5, 7, 5, (3, 3), (1, 1), "same"),
    (1, 5, 7, 3, (2, 3), (2, 3), "same"),
    (3, 5, 7, 1, (5, 7), None, "valid"),
]


@pytest.mark.parametrize("n,h,w,c,pool,strides,padding", CASES)
def test_average_pooling_forward_and_backward(rng, n, h, w, c, pool, strides, padding):
    layer = AveragePooling2D(pool, strides=strides, padding=padding)
    x = rng.normal(size=(n, h, w, c)).astype(np.float32)
    got = layer(x)
    want = np_avg_pool(x, pool, strides, padding)
    assert got.shape == want.shape and layer.count_params() == 0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    check_layer_gradients(rng, layer, x, lambda x64: np_avg_pool(x64, pool, strides, padding))


def test_average_pooling_same_excludes_padding():
    x = np.ones((1, 5, 7, 1), np.float32)
    np.testing.assert_array_equal(AveragePooling2D(2, padding="same")(x), 1.0)  # not diluted by zeros
    assert AveragePooling2D((2, 2), padding="same").compute_output_shape((5, 7, 3)) == (None, 3, 4, 3)
    assert AveragePooling2D(2).compute_output_shape((5, 7, 3)) == (None, 2, 3, 3)


@pytest.mark.parametrize("shape", [(1, 5, 7, 1), (3, 5, 7, 3), (3, 5, 7, 5)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_average_pooling(rng, shape, keepdims):
    layer = GlobalAveragePooling2D(keepdims=keepdims)
    x = rng.normal(size=shape).astype(np.float32)
    reference = lambda x64: x64.mean(axis=(1, 2), keepdims=keepdims)  # noqa: E731
    np.testing.assert_allclose(layer(x), reference(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    check_layer_gradients(rng, layer, x, reference)


@pytest.mark.parametrize("shape", [(1, 5, 7, 1), (3, 5, 7, 3), (3, 5, 7, 5)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_max_pooling(rng, shape, keepdims):
    layer = GlobalMaxPooling2D(keepdims=keepdims)
    x = distinct_values(rng, shape).astype(np.float32)  # no ties within finite-difference reach
    reference = lambda x64: x64.max(axis=(1, 2), keepdims=keepdims)  # noqa: E731
    np.testing.assert_array_equal(layer(x), reference(x))
    check_layer_gradients(rng, layer, x, reference)


def test_global_max_pooling_ties_go_to_first_pixel():
    layer = GlobalMaxPooling2D()
    x = np.ones((1, 2, 2, 1), np.float32)
    y = layer(x, training=True)
    dx = layer._core.backward(x, y, np.ones_like(y))
    np.testing.assert_array_equal(dx.reshape(-1), [1, 0, 0, 0])


def test_shapes_and_config_round_trip():
    for layer, shape in (
        (GlobalAveragePooling2D(), (None, 3)),
        (GlobalMaxPooling2D(keepdims=True), (None, 1, 1, 3)),
        (AveragePooling2D(3, strides=2, padding="same"), (None, 3, 4, 3)),
    ):
        assert layer.compute_output_shape((5, 7, 3)) == shape
        config = layer.get_config()
        clone = type(layer).from_config({**config, "name": config["name"] + "_clone"})
        assert clone.compute_output_shape((5, 7, 3)) == shape


@pytest.mark.parametrize(
    "make,error,message",
    [
        (
            lambda: AveragePooling2D(0),
            ValueError,
            r"AveragePooling2D '.*': expected positive pool_size, received pool_size=\(0, 0\)",
        ),
        (
            lambda: AveragePooling2D(2, strides=(1, -1)),
            ValueError,
            r"expected positive strides, received strides=\(1, -1\)",
        ),
        (
            lambda: AveragePooling2D(2, padding="full"),
            ValueError,
            r"expected padding 'valid' or 'same', received padding='full'",
        ),
        (lambda: AveragePooling2D("2"), TypeError, r"expected pool_size to be an int or a tuple of 2 ints"),
        (lambda: AveragePooling2D(2, data_format="channels_first"), ValueError, r"cnnx is channels-last"),
        (
            lambda: GlobalMaxPooling2D(data_format="channels_first"),
            ValueError,
            r"GlobalMaxPooling2D '.*': cnnx is channels-last",
        ),
    ],
)
def test_invalid_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("layer", [AveragePooling2D(2), GlobalAveragePooling2D(), GlobalMaxPooling2D()])
def test_rank_checked_at_build(layer):
    with pytest.raises(
        ValueError,
        match=r"expected input of rank 4 \(batch, height, width, channels\), "
        r"received shape \(None, 5, 7\)",
    ):
        layer.build((5, 7))


def test_average_pooling_input_smaller_than_pool():
    with pytest.raises(ValueError, match=r"is smaller than pool_size \(3, 3\) with padding='valid'"):
        AveragePooling2D(3).build((2, 5, 1))


@pytest.mark.parametrize("core_class", ["MaxPooling2D", "AveragePooling2D"])
def test_core_refuses_zero_strides(core_class):
    """The core took a stride of 0 for "same as the pool size" (Keras' None); only an unset
    stride means that now, so a caller of the core cannot get stride 2 by passing 0."""
    from cnnx import _core

    with pytest.raises(ValueError, match=r"expected positive strides, received strides=\(0, 2\)"):
        getattr(_core, core_class)("p", (2, 2), (0, 2), "valid")
