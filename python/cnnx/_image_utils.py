"""Keras' image helpers (``keras.utils.load_img``, ``img_to_array``, ``array_to_img``,
``save_img``) with Keras' arguments, defaults, dtypes and errors, on Pillow (optional:
``pip install cnnx[images]``). Images are (height, width, channels) float32 arrays unless a
``data_format="channels_first"`` or ``dtype`` says otherwise."""

from __future__ import annotations

import io
import os
import pathlib
import warnings
from typing import Any

import numpy as np

__all__ = ["load_img", "img_to_array", "array_to_img", "save_img"]

# Keras' interpolation names for load_img -> Pillow's resampling filters.
_RESAMPLING = {
    "nearest": "NEAREST",
    "bilinear": "BILINEAR",
    "bicubic": "BICUBIC",
    "hamming": "HAMMING",
    "box": "BOX",
    "lanczos": "LANCZOS",
}


def _pil(who: str) -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            f"Could not import PIL.Image. The use of `{who}` requires PIL (Pillow, an optional dependency of "
            "cnnx). Install it with: pip install cnnx[images]  (or: pip install pillow)"
        ) from None
    return Image


def _data_format(data_format: Any) -> str:
    if data_format is None:
        return "channels_last"
    value = str(data_format).lower()
    if value not in ("channels_first", "channels_last"):
        raise ValueError(
            "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
            f"Received: data_format={data_format}"
        )
    return value


def _resampling(image_module: Any, name: str) -> Any:
    holder = getattr(image_module, "Resampling", image_module)  # Pillow >= 9.1 has the enum
    return getattr(holder, _RESAMPLING[name])


def load_img(
    path: Any,
    color_mode: str = "rgb",
    target_size: Any = None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
) -> Any:
    """Loads an image file into a PIL Image, as ``keras.utils.load_img``.

    Args:
        path: path of the image file (str, bytes or ``pathlib.Path``) or an ``io.BytesIO``.
        color_mode: ``"grayscale"``, ``"rgb"`` or ``"rgba"``. Grayscale keeps 16- and 32-bit
            grayscale images as they are (modes ``"I;16"``, ``"I"``) and converts others to 8 bits.
        target_size: ``None`` (the file's size) or ``(height, width)``.
        interpolation: resampling filter used when the size changes: ``"nearest"``,
            ``"bilinear"``, ``"bicubic"``, ``"hamming"``, ``"box"`` or ``"lanczos"``.
        keep_aspect_ratio: crop the centre of the image to the target's aspect ratio before
            resizing, so nothing is stretched.

    Returns:
        A ``PIL.Image.Image``; ``img_to_array`` turns it into an array.
    """
    Image = _pil("load_img")
    if isinstance(path, io.BytesIO):
        img = Image.open(path)
    elif isinstance(path, (pathlib.Path, bytes, str)):
        if isinstance(path, pathlib.Path):
            path = str(path.resolve())
        # Read the whole file first, so no file handle stays open behind the lazy PIL image.
        with open(path, "rb") as f:
            img = Image.open(io.BytesIO(f.read()))
    else:
        raise TypeError(f"path should be path-like or io.BytesIO, not {type(path)}")

    if color_mode == "grayscale":
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif color_mode in ("rgb", "rgba"):
        mode = color_mode.upper()
        if img.mode != mode:
            img = img.convert(mode)
    else:
        raise ValueError('color_mode must be "grayscale", "rgb", or "rgba"')

    if target_size is None:
        return img
    height, width = (int(v) for v in target_size)
    if img.size == (width, height):
        return img
    if interpolation not in _RESAMPLING:
        raise ValueError(
            f"Invalid interpolation method {interpolation} specified. Supported methods are {', '.join(_RESAMPLING)}"
        )
    resample = _resampling(Image, interpolation)
    if not keep_aspect_ratio:
        return img.resize((width, height), resample)
    # The largest centred box with the target's aspect ratio (integer arithmetic, as Keras).
    src_w, src_h = img.size
    crop_h = min(src_h, (src_w * height) // width)
    crop_w = min(src_w, (src_h * width) // height)
    left, top = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    return img.resize((width, height), resample, box=(left, top, left + crop_w, top + crop_h))


def img_to_array(img: Any, data_format: Any = None, dtype: Any = None) -> np.ndarray:
    """A PIL Image (or anything ``np.asarray`` accepts) as a rank-3 array: (height, width,
    channels), or (channels, height, width) with ``data_format="channels_first"``; grayscale
    images get a channel axis of 1. ``dtype`` defaults to float32 (pixel values unchanged:
    0-255 for 8-bit images)."""
    data_format = _data_format(data_format)
    x = np.asarray(img, dtype=dtype or "float32")
    if x.ndim == 3:
        return x.transpose(2, 0, 1) if data_format == "channels_first" else x
    if x.ndim == 2:
        return x[None] if data_format == "channels_first" else x[:, :, None]
    raise ValueError(f"Unsupported image shape: {x.shape}")


def array_to_img(x: Any, data_format: Any = None, scale: bool = True, dtype: Any = None) -> Any:
    """A rank-3 array (one image) as a PIL Image: 1 channel gives mode ``"L"`` (or ``"I"``,
    32-bit, when values exceed 255), 3 ``"RGB"``, 4 ``"RGBA"``. With ``scale=True`` the values
    are first mapped linearly so that the minimum is 0 and the maximum 255 (a constant image
    becomes all 0); otherwise they are cast to uint8 as they are."""
    data_format = _data_format(data_format)
    Image = _pil("array_to_img")
    x = np.array(x, dtype=dtype or "float32")  # a copy: scaled in place below
    if x.ndim != 3:
        raise ValueError(f"Expected image array to have rank 3 (single image). Got array with shape: {x.shape}")
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        peak = np.max(x)
        if peak != 0:
            x /= peak
        x *= 255
    channels = x.shape[2]
    if channels == 4:
        return Image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return Image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:  # beyond 8 bits: a 32-bit signed grayscale image
            return Image.fromarray(x[:, :, 0].astype("int32"), "I")
        return Image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"Unsupported channel number: {channels}")


def save_img(
    path: Any, x: Any, data_format: Any = None, file_format: Any = None, scale: bool = True, **kwargs: Any
) -> None:
    """Writes an image array (see ``array_to_img``) to ``path`` (a path or a file object).
    The format comes from ``file_format`` or else the file name's extension (``jpg`` means
    JPEG); an RGBA image saved as JPEG is converted to RGB with a warning, as in Keras.
    ``kwargs`` go to ``PIL.Image.Image.save`` (e.g. ``quality=95``)."""
    data_format = _data_format(data_format)
    if file_format is None and isinstance(path, (str, pathlib.Path, os.PathLike)):
        file_format = pathlib.Path(path).suffix[1:].lower()
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format == "jpeg":
        warnings.warn("The JPEG format does not support RGBA images, converting to RGB.", stacklevel=2)
        img = img.convert("RGB")
    img.save(path, format=file_format or None, **kwargs)
