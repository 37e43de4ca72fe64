"""cnnx.utils.load_img / img_to_array / array_to_img / save_img: Keras' semantics (shapes, dtypes,
scaling, modes, resizing, cropping, errors), checked against Pillow and NumPy directly."""

from __future__ import annotations

import io
import pathlib
import sys

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

import cnnx  # noqa: E402
from cnnx import ops, utils  # noqa: E402

rng = np.random.default_rng(3)


def opened(path):
    """The image at path, read and closed (format, mode and size kept)."""
    with Image.open(path) as img:
        img.load()
        return img


def resampling(name):
    return getattr(getattr(Image, "Resampling", Image), name)


@pytest.fixture
def rgb_file(tmp_path):
    pixels = rng.integers(0, 256, size=(12, 20, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels, "RGB").save(path)
    return path, pixels


def test_load_img_modes(rgb_file):
    path, pixels = rgb_file
    img = utils.load_img(str(path))
    assert img.mode == "RGB" and img.size == (20, 12)
    np.testing.assert_array_equal(np.asarray(img), pixels)
    assert utils.load_img(pathlib.Path(path)).mode == "RGB"
    gray = utils.load_img(path, color_mode="grayscale")
    assert gray.mode == "L"
    np.testing.assert_array_equal(np.asarray(gray), np.asarray(Image.fromarray(pixels).convert("L")))
    rgba = utils.load_img(path, color_mode="rgba")
    assert rgba.mode == "RGBA" and np.all(np.asarray(rgba)[..., 3] == 255)
    with open(path, "rb") as f:
        from_bytes = utils.load_img(io.BytesIO(f.read()))
    np.testing.assert_array_equal(np.asarray(from_bytes), pixels)


def test_load_img_keeps_16_bit_grayscale(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)).save(path)
    img = utils.load_img(path, color_mode="grayscale")
    assert img.mode in ("I;16", "I")  # not squeezed into 8 bits
    assert utils.img_to_array(img).max() == 40000


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"])
def test_load_img_target_size(rgb_file, interpolation):
    path, pixels = rgb_file
    img = utils.load_img(path, target_size=(6, 8), interpolation=interpolation)
    assert img.size == (8, 6)  # target_size is (height, width)
    expected = Image.fromarray(pixels).resize((8, 6), resampling(interpolation.upper()))
    np.testing.assert_array_equal(np.asarray(img), np.asarray(expected))


@pytest.mark.parametrize("target", [(6, 6), (4, 16), (10, 2)])
def test_load_img_keep_aspect_ratio_crops_the_centre(rgb_file, target):
    path, pixels = rgb_file  # 12 x 20
    h, w = target
    img = utils.load_img(path, target_size=target, keep_aspect_ratio=True)
    assert img.size == (w, h)
    crop_h, crop_w = min(12, 20 * h // w), min(20, 12 * w // h)
    top, left = (12 - crop_h) // 2, (20 - crop_w) // 2
    centre = pixels[top : top + crop_h, left : left + crop_w]
    expected = Image.fromarray(np.ascontiguousarray(centre)).resize((w, h), resampling("NEAREST"))
    np.testing.assert_array_equal(np.asarray(img), np.asarray(expected))


def test_load_img_errors(rgb_file):
    path, _ = rgb_file
    with pytest.raises(ValueError, match='color_mode must be "grayscale", "rgb", or "rgba"'):
        utils.load_img(path, color_mode="bgr")
    with pytest.raises(ValueError, match="Invalid interpolation method area"):
        utils.load_img(path, target_size=(3, 3), interpolation="area")
    with pytest.raises(TypeError, match="path should be path-like or io.BytesIO"):
        utils.load_img(42)
    with pytest.raises(FileNotFoundError):
        utils.load_img(path.with_name("missing.png"))


def test_img_to_array():
    pixels = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    x = utils.img_to_array(img)
    assert x.dtype == np.float32 and x.shape == (5, 7, 3)
    np.testing.assert_array_equal(x, pixels)  # values stay 0-255
    first = utils.img_to_array(img, data_format="channels_first")
    assert first.shape == (3, 5, 7)
    np.testing.assert_array_equal(first, pixels.transpose(2, 0, 1))
    assert utils.img_to_array(img, dtype="uint8").dtype == np.uint8
    gray = Image.fromarray(pixels[..., 0])
    assert utils.img_to_array(gray).shape == (5, 7, 1)
    assert utils.img_to_array(gray, data_format="channels_first").shape == (1, 5, 7)
    with pytest.raises(ValueError, match="data_format"):
        utils.img_to_array(img, data_format="NHWC")
    with pytest.raises(ValueError, match="Unsupported image shape"):
        utils.img_to_array(np.zeros(4))


def test_array_to_img_scales_to_0_255():
    x = rng.uniform(-1.0, 3.0, size=(6, 4, 3))
    img = utils.array_to_img(x)
    assert img.mode == "RGB" and img.size == (4, 6)
    expected = ((x - x.min()) / (x.max() - x.min()) * 255).astype(np.float32).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(img), expected)
    assert np.asarray(img).min() == 0 and np.asarray(img).max() == 255
    assert np.asarray(utils.array_to_img(np.full((2, 2, 3), 7.0))).max() == 0  # a constant image: zeros
    raw = utils.array_to_img(np.full((2, 2, 1), 9.7), scale=False)
    assert raw.mode == "L" and np.all(np.asarray(raw) == 9)  # truncated like astype("uint8")


def test_array_to_img_modes_and_errors():
    assert utils.array_to_img(rng.random((3, 3, 4))).mode == "RGBA"
    assert utils.array_to_img(rng.random((3, 3, 1))).mode == "L"
    deep = utils.array_to_img(np.full((3, 3, 1), 1000.0), scale=False)
    assert deep.mode == "I" and np.asarray(deep).max() == 1000
    first = rng.random((3, 5, 4))
    assert utils.array_to_img(first, data_format="channels_first").size == (4, 5)
    with pytest.raises(ValueError, match="Expected image array to have rank 3"):
        utils.array_to_img(np.zeros((1, 2, 2, 3)))
    with pytest.raises(ValueError, match="Unsupported channel number: 2"):
        utils.array_to_img(np.zeros((2, 2, 2)))


def test_round_trip_and_save_img(tmp_path):
    pixels = rng.integers(0, 256, size=(9, 11, 3)).astype(np.float32)
    path = tmp_path / "out.png"
    utils.save_img(path, pixels, scale=False)
    back = utils.img_to_array(utils.load_img(path))
    np.testing.assert_array_equal(back, pixels)
    # a file object needs file_format
    buffer = io.BytesIO()
    utils.save_img(buffer, pixels, file_format="png", scale=False)
    np.testing.assert_array_equal(utils.img_to_array(utils.load_img(io.BytesIO(buffer.getvalue()))), pixels)
    # .jpg means JPEG; keyword arguments go to Pillow
    utils.save_img(str(tmp_path / "out.jpg"), pixels, quality=95)
    assert opened(tmp_path / "out.jpg").format == "JPEG"
    with pytest.warns(UserWarning, match="JPEG format does not support RGBA"):
        utils.save_img(tmp_path / "alpha.jpeg", rng.random((4, 4, 4)))
    assert opened(tmp_path / "alpha.jpeg").mode == "RGB"
    # channels_first arrays are written as images of the right size
    utils.save_img(tmp_path / "first.png", rng.random((3, 5, 7)), data_format="channels_first")
    assert opened(tmp_path / "first.png").size == (7, 5)


def test_keras_tutorial_prediction_pipeline(rgb_file):
    """The TensorFlow image-classification tutorial's last step, with only its imports changed."""
    path, _ = rgb_file
    keras = cnnx
    model = keras.Sequential(
        [
            keras.layers.Input((12, 20, 3)),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(4),
        ]
    )
    img = keras.utils.load_img(path, target_size=(12, 20))
    img_array = keras.utils.img_to_array(img)
    img_array = keras.ops.expand_dims(img_array, 0)  # Create a batch
    predictions = model.predict(img_array, verbose=0)
    score = keras.ops.softmax(predictions[0])
    assert score.shape == (4,)
    assert 0 <= np.argmax(score) < 4 and 0 < 100 * np.max(score) <= 100
    np.testing.assert_allclose(score.numpy().sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(score), score)


def test_clear_import_error_without_pillow(monkeypatch, rgb_file):
    path, pixels = rgb_file
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` now fails
    with pytest.raises(ImportError, match=r"`load_img` requires PIL.*pip install cnnx\[images\]"):
        utils.load_img(path)
    with pytest.raises(ImportError, match="`array_to_img` requires PIL"):
        utils.array_to_img(pixels)
    with pytest.raises(ImportError, match="`array_to_img` requires PIL"):
        utils.save_img(path, pixels)
