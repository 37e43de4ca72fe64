"""MaxPooling2D: forward against numpy, backward against finite differences (no ties)."""

import numpy as np
import pytest
from conftest import distinct_values, np_max_pool, numeric_grad, sample_indices

from cnnx.layers import MaxPooling2D

CASES = [
    # n, h, w, c, pool, strides, padding
    (1, 7, 7, 3, (2, 2), None, "valid"),  # the article's 7 -> 3
    (3, 5, 7, 1, (2, 2), None, "valid"),
    (3, 5, 7, 2, (2, 2), None, "same"),
    (2, 7, 5, 3, (3, 3), (2, 2), "valid"),  # overlapping windows
    (2, 7, 5, 3, (3, 3), (1, 1), "same"),
    (1, 6, 9, 17, (2, 3), (2, 3), "same"),
]


@pytest.mark.parametrize("n,h,w,c,pool,strides,padding", CASES)
def test_forward_matches_numpy(rng, n, h, w, c, pool, strides, padding):
    layer = MaxPooling2D(pool, strides=strides, padding=padding)
    x = rng.normal(size=(n, h, w, c)).astype(np.float32)
    got = layer(x)
    want = np_max_pool(x, pool, strides, padding)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("n,h,w,c,pool,strides,padding", CASES)
def test_backward_finite_differences(rng, n, h, w, c, pool, strides, padding):
    layer = MaxPooling2D(pool, strides=strides, padding=padding)
    x64 = distinct_values(rng, (n, h, w, c), spacing=0.01)
    x = x64.astype(np.float32)
    y = layer(x, training=True)
    r = rng.normal(size=y.shape)
    dx = layer._core.backward(x, y, r.astype(np.float32))

    def loss():
        return float((np_max_pool(x64, pool, strides, padding) * r).sum())

    idx = sample_indices(rng, x64.size, count=40)
    np.testing.assert_allclose(dx.reshape(-1)[idx], numeric_grad(loss, x64, idx, eps=1e-4), rtol=1e-4, atol=1e-4)
    # Every output's gradient lands on exactly one input.
    np.testing.assert_allclose(dx.sum(), r.sum(), rtol=1e-4)


def test_article_shapes():
    layer = MaxPooling2D(2)
    assert layer.compute_output_shape((None, 7, 7, 128)) == (None, 3, 3, 128)
    assert MaxPooling2D(2).compute_output_shape((28, 28, 32)) == (None, 14, 14, 32)
    assert MaxPooling2D((2, 2), padding="same").compute_output_shape((21, 28, 3)) == (None, 11, 14, 3)
    assert layer.count_params() == 0


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_nan_propagates_through_every_path(padding):
    # 2x2/stride 2 "valid" takes the vectorised fast path, "same" on an odd size the general one.
    x = np.zeros((1, 5, 5, 3), np.float32)
    x[0, 1, 1, 0] = np.nan  # tap 3 of window (0, 0) in channel 0
    x[0, 0, 3, 2] = np.nan  # tap 1 of window (0, 1) in channel 2
    y = MaxPooling2D(2, padding=padding)(x)
    assert np.isnan(y[0, 0, 0, 0]) and np.isnan(y[0, 0, 1, 2])
    assert np.isfinite(y[0, 0, 0, 1:]).all()
