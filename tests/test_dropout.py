"""Dropout: identity at inference, inverted scaling and a mask with the right rate in training,
reproducible masks from a seed (on any thread count), backward through the same mask,
noise_shape broadcasting, and argument errors."""

import numpy as np
import pytest

import cnnx
from cnnx.layers import Dropout


@pytest.mark.parametrize("shape", [(1, 5, 7, 1), (3, 5, 7, 3), (3, 5, 7, 5), (3, 5)])
def test_identity_at_inference(rng, shape):
    layer = Dropout(0.5)
    x = rng.normal(size=shape).astype(np.float32)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    dy = rng.normal(size=shape).astype(np.float32)
    np.testing.assert_array_equal(layer._core.backward(x, x, dy), dy)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_training_rate_and_exact_scaling(rng, rate):
    layer = Dropout(rate, seed=3)
    x = rng.uniform(0.5, 1.5, size=(16, 32, 32, 3)).astype(np.float32)  # no zeros in x
    y = layer(x, training=True)
    kept = y != 0
    n = x.size
    sigma = np.sqrt(rate * (1 - rate) / n)
    assert abs((1 - kept.mean()) - rate) < 5 * sigma
    scale = np.float32(1) / (np.float32(1) - np.float32(rate))  # computed in float32, as in Keras
    np.testing.assert_array_equal(y[kept], x[kept] * scale)  # kept values scaled exactly
    # Backward goes through the same mask: dx = dy * mask.
    dy = rng.normal(size=x.shape).astype(np.float32)
    dx = layer._core.backward(x, y, dy)
    np.testing.assert_array_equal(dx, np.where(kept, dy * scale, np.float32(0)))


def test_rate_zero_is_identity_in_training(rng):
    x = rng.normal(size=(3, 5, 7, 3)).astype(np.float32)
    np.testing.assert_array_equal(Dropout(0.0)(x, training=True), x)


def test_same_seed_same_mask_and_fresh_masks_per_call(rng):
    x = np.ones((3, 5, 7, 5), np.float32)
    a, b, c = Dropout(0.5, seed=42), Dropout(0.5, seed=42), Dropout(0.5, seed=43)
    ya = a(x, training=True)
    np.testing.assert_array_equal(ya, b(x, training=True))
    assert not np.array_equal(ya, c(x, training=True))
    assert not np.array_equal(ya, a(x, training=True))  # the next call draws a new mask


def test_global_seed_reproducible():
    x = np.ones((4, 6), np.float32)
    out = []
    for _ in range(2):
        cnnx.utils.set_random_seed(7)
        layer = Dropout(0.5)
        out.append(layer(x, training=True))
    np.testing.assert_array_equal(*out)


def test_mask_independent_of_thread_count():
    x = np.ones((8, 32, 32, 16), np.float32)  # large enough for the threaded path
    before = cnnx.get_num_threads()
    try:
        masks = []
        for threads in (1, 2):
            cnnx.set_num_threads(threads)
            masks.append(Dropout(0.3, seed=11)(x, training=True))
    finally:
        cnnx.set_num_threads(before)
    np.testing.assert_array_equal(*masks)


def test_noise_shape_broadcasts(rng):
    x = rng.uniform(0.5, 1.5, size=(3, 5, 7, 8)).astype(np.float32)
    y = Dropout(0.5, noise_shape=(None, 1, 1, 8), seed=1)(x, training=True)
    mask = y / x
    np.testing.assert_allclose(mask, np.broadcast_to(mask[:, :1, :1, :], mask.shape))  # whole channels
    assert 0 < (mask[:, 0, 0, :] == 0).mean() < 1
    y = Dropout(0.5, noise_shape=(1, 5, 7, 1), seed=1)(x, training=True)
    mask = y / x
    np.testing.assert_allclose(mask, np.broadcast_to(mask[:1, :, :, :1], mask.shape))  # shared over batch
    layer = Dropout(0.5, noise_shape=(None, 1, 7, 8), seed=2)
    y = layer(x, training=True)
    dy = rng.normal(size=x.shape).astype(np.float32)
    np.testing.assert_allclose(layer._core.backward(x, y, dy), dy * (y / x), rtol=1e-6)


def test_config_round_trip():
    layer = Dropout(0.25, noise_shape=(None, 1, 1, 4), seed=5)
    config = layer.get_config()
    assert config["rate"] == 0.25 and config["noise_shape"] == (None, 1, 1, 4) and config["seed"] == 5
    clone = Dropout.from_config({**config, "name": "dropout_clone"})
    x = np.ones((2, 3, 3, 4), np.float32)
    np.testing.assert_array_equal(clone(x, training=True), layer(x, training=True))


@pytest.mark.parametrize(
    "make,error,message",
    [
        (
            lambda: Dropout(1.0),
            ValueError,
            r"Dropout 'dropout.*': expected rate to be a float in \[0, 1\), received rate=1",
        ),
        (lambda: Dropout(-0.1), ValueError, r"expected rate to be a float in \[0, 1\), received rate=-0.1"),
        (lambda: Dropout("0.5"), TypeError, r"expected rate to be a number, received rate='0.5'"),
        (
            lambda: Dropout(0.5, noise_shape=(None, 0)),
            ValueError,
            r"expected noise_shape entries to be positive or None",
        ),
        (lambda: Dropout(0.5, noise_shape="x"), TypeError, r"expected noise_shape to be None or a tuple"),
        (
            lambda: Dropout(0.5, seed=-1),
            ValueError,
            r"expected seed to be a non-negative int or None, received seed=-1",
        ),
        (lambda: Dropout(0.5, seed=1.5), TypeError, r"expected seed to be an int"),
    ],
)
def test_invalid_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_noise_shape_checked_at_build():
    with pytest.raises(
        ValueError,
        match=r"expected noise_shape of rank 4 \(batch included\) for input \(None, 5, 7, 3\), "
        r"received noise_shape=\(None, 3\)",
    ):
        Dropout(0.5, noise_shape=(None, 3)).build((5, 7, 3))
    with pytest.raises(ValueError, match=r"expected noise_shape entry 2 to be None, 1 or 7"):
        Dropout(0.5, noise_shape=(None, 1, 6, 3)).build((5, 7, 3))
    layer = Dropout(0.5, noise_shape=(4, 1, 1, 3))
    with pytest.raises(ValueError, match=r"expects batches of 4 \(or None / 1 for any batch\), received a batch of 2"):
        layer(np.ones((2, 5, 7, 3), np.float32), training=True)
