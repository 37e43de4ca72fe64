"""Resizing: tf.image.resize semantics (half-pixel centres, no antialiasing). Upscaling against
Pillow's BILINEAR (which equals plain bilinear when enlarging), downscaling against a numpy
half-pixel-centre reference (Pillow antialiases when shrinking), nearest, crop_to_aspect_ratio,
the backward as the transpose (gradient check), and argument errors."""

import numpy as np
import pytest
from conftest import check_layer_gradients

from cnnx.layers import Resizing

Image = pytest.importorskip("PIL.Image")


def np_resize_axis(size, out, interpolation, offset=0, crop=None):
    crop = size if crop is None else crop
    o = np.arange(out, dtype=np.float64)
    if interpolation == "nearest":
        i = np.minimum(np.floor((o + 0.5) * crop / out).astype(int), crop - 1)
        return i + offset, i + offset, np.zeros(out)
    s = (o + 0.5) * crop / out - 0.5
    f = np.floor(s)
    lo = np.clip(f.astype(int), 0, crop - 1) + offset
    hi = np.clip(f.astype(int) + 1, 0, crop - 1) + offset
    return lo, hi, s - f


def np_resize(x, height, width, interpolation="bilinear", box=None):
    """Separable half-pixel-centre resize of x [n, h, w, c] (float64); box = (top, left, ch, cw)."""
    n, h, w, c = x.shape
    top, left, ch, cw = box or (0, 0, h, w)
    ylo, yhi, fy = np_resize_axis(h, height, interpolation, top, ch)
    xlo, xhi, fx = np_resize_axis(w, width, interpolation, left, cw)
    x = np.asarray(x, np.float64)
    fx = fx[None, None, :, None]
    top_row = x[:, ylo][:, :, xlo] * (1 - fx) + x[:, ylo][:, :, xhi] * fx
    bottom = x[:, yhi][:, :, xlo] * (1 - fx) + x[:, yhi][:, :, xhi] * fx
    fy = fy[None, :, None, None]
    return top_row * (1 - fy) + bottom * fy


@pytest.mark.parametrize("shape,size", [((2, 4, 5, 3), (9, 13)), ((1, 3, 3, 1), (8, 8)), ((2, 5, 7, 2), (10, 7))])
def test_upscale_matches_pillow_bilinear(rng, shape, size):
    x = rng.uniform(0, 255, size=shape).astype(np.float32)
    y = Resizing(*size)(x)
    assert y.shape == (shape[0], *size, shape[3])
    for i in range(shape[0]):
        for ch in range(shape[3]):
            ref = np.asarray(Image.fromarray(x[i, :, :, ch], mode="F").resize((size[1], size[0]), Image.BILINEAR))
            np.testing.assert_allclose(y[i, :, :, ch], ref, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(y, np_resize(x, *size), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape,size", [((2, 9, 13, 3), (4, 5)), ((1, 8, 8, 1), (3, 3)), ((2, 10, 7, 2), (5, 7))])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_downscale_and_nearest_against_numpy(rng, shape, size, interpolation):
    x = rng.uniform(0, 255, size=shape).astype(np.float32)
    y = Resizing(*size, interpolation=interpolation)(x, training=True)  # same in training
    np.testing.assert_allclose(y, np_resize(x, *size, interpolation), rtol=1e-5, atol=1e-4)


def test_nearest_upscale_matches_pillow(rng):
    x = rng.uniform(0, 255, size=(1, 4, 6, 1)).astype(np.float32)
    y = Resizing(8, 12, interpolation="nearest")(x)  # exact 2x: no rounding ties
    ref = np.asarray(Image.fromarray(x[0, :, :, 0], mode="F").resize((12, 8), Image.NEAREST))
    np.testing.assert_array_equal(y[0, :, :, 0], ref)


@pytest.mark.parametrize(
    "shape,size,box",
    [
        ((1, 10, 20, 2), (5, 5), (0, 5, 10, 10)),  # wide input, square target: centre columns
        ((2, 21, 8, 1), (4, 8), (8, 0, 4, 8)),  # tall input, wide target
        ((1, 9, 9, 3), (3, 6), (2, 0, 4, 9)),  # int(9 * 3 / 6) = 4 rows, start int(5 / 2) = 2
    ],
)
def test_crop_to_aspect_ratio(rng, shape, size, box):
    x = rng.uniform(0, 1, size=shape).astype(np.float32)
    y = Resizing(*size, crop_to_aspect_ratio=True)(x)
    np.testing.assert_allclose(y, np_resize(x, *size, box=box), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "shape,size,interpolation",
    [
        ((2, 4, 5, 3), (7, 9), "bilinear"),
        ((2, 9, 7, 2), (4, 3), "bilinear"),
        ((1, 5, 5, 1), (8, 3), "nearest"),
    ],
)
def test_backward_is_the_transpose(rng, shape, size, interpolation):
    layer = Resizing(*size, interpolation=interpolation)
    x = rng.normal(size=shape).astype(np.float32)
    check_layer_gradients(rng, layer, x, lambda x64: np_resize(x64, *size, interpolation))


def test_shape_and_config():
    layer = Resizing(6, 4, interpolation="nearest", crop_to_aspect_ratio=True)
    layer.build((None, 10, 12, 3))
    assert layer.output_shape == (None, 6, 4, 3) and layer.count_params() == 0
    config = layer.get_config()
    assert config["height"] == 6 and config["width"] == 4 and config["interpolation"] == "nearest"
    clone = Resizing.from_config({**config, "name": "resizing_clone"})
    assert {**clone.get_config(), "name": config["name"]} == config


@pytest.mark.parametrize(
    "make,error,message",
    [
        (
            lambda: Resizing(0, 4),
            ValueError,
            r"Resizing '.*': expected positive height and width, received height=0, width=4",
        ),
        (
            lambda: Resizing(4, 4, interpolation="bicubic"),
            ValueError,
            r"expected interpolation to be 'bilinear' or 'nearest', received interpolation='bicubic'",
        ),
        (lambda: Resizing(4.5, 4), TypeError, r"expected height to be an int, received height=4.5"),
        (lambda: Resizing(4, 4, pad_to_aspect_ratio=True), ValueError, r"pad_to_aspect_ratio is not supported"),
        (lambda: Resizing(4, 4, data_format="channels_first"), ValueError, r"cnnx is channels-last"),
    ],
)
def test_invalid_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_rank_checked_at_build():
    with pytest.raises(
        ValueError, match=r"expected images of shape \(height, width, channels\), received input \(None, 12\)"
    ):
        Resizing(3, 3).build((12,))


def test_preprocessing_takes_a_single_image_like_keras():
    """Keras' image preprocessing layers, and a Sequential of them, take one (h, w, c) image."""
    import cnnx
    from cnnx import layers

    img = np.random.default_rng(0).random((40, 50, 3)).astype(np.float32) * 255
    pipeline = cnnx.Sequential([layers.Resizing(20, 20), layers.Rescaling(1 / 255)])
    one = pipeline(img)
    assert one.shape == (20, 20, 3)
    np.testing.assert_array_equal(one, pipeline(img[None])[0])
    assert layers.RandomFlip("horizontal")(img, training=True).shape == (40, 50, 3)
    assert cnnx.Sequential([layers.RandomRotation(0.2)])(img, training=True).shape == (40, 50, 3)
    with pytest.raises(ValueError, match="expected"):  # a model with other layers still needs a batch
        cnnx.Sequential([layers.Resizing(8, 8), layers.Conv2D(2, 3)])(img)


def test_preprocessing_model_runs_on_other_image_sizes_like_keras():
    """A Sequential of preprocessing layers built on 64x64 images still runs on 32x32 ones, as
    Keras' does (the TF data-augmentation tutorial relies on it); other models stay strict."""
    import cnnx
    from cnnx import layers

    rng = np.random.default_rng(1)
    scale = cnnx.Sequential([layers.Rescaling(0.5), layers.RandomFlip("horizontal")])
    scale(rng.random((1, 64, 64, 3), dtype=np.float32))
    small = rng.random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(scale(small), small * 0.5)
    assert scale(small, training=True).shape == (2, 32, 32, 3)
    conv = cnnx.Sequential([layers.Conv2D(2, 3)])
    conv(rng.random((1, 16, 16, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="expected shape"):
        conv(small)
