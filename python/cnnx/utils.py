"""Utilities, as in `keras.utils`: one-hot encoding, global seeding, image folders as datasets,
image files and arrays (`load_img`, `img_to_array`, `array_to_img`, `save_img`; Pillow) and a
picture of a model (`plot_model`; matplotlib, no Graphviz)."""

import operator
import random

import numpy as np

from ._image_utils import array_to_img, img_to_array, load_img, save_img
from ._plot_model import plot_model
from .data import ImageDataset, PyDataset, Sequence, image_dataset_from_directory
from .planning import plan

__all__ = [
    "to_categorical",
    "set_random_seed",
    "image_dataset_from_directory",
    "ImageDataset",
    "plan",
    "load_img",
    "img_to_array",
    "array_to_img",
    "save_img",
    "plot_model",
    "PyDataset",
    "Sequence",
]


def to_categorical(x, num_classes=None):
    """Converts a class vector (integers) to binary class matrix.

    E.g. for use with `categorical_crossentropy`.

    Args:
        x: Array-like with class values to be converted into a matrix
            (integers from 0 to `num_classes - 1`). Floats are accepted
            only if they hold whole numbers.
        num_classes: Total number of classes. If `None`, this would be
            inferred as `max(x) + 1`.

    Returns:
        A float32 array: a one-hot encoding of the input, with a new
        trailing dimension of size `num_classes`. An input of shape
        `(..., 1)` drops that last dimension first, as in Keras.

    Raises:
        ValueError: if `x` holds non-integer or negative values, or values
            `>= num_classes`.
        TypeError: if `num_classes` is not an integer.

    Example:

    >>> a = cnnx.utils.to_categorical([0, 1, 2, 3], num_classes=4)
    >>> print(a)
    [[1. 0. 0. 0.]
     [0. 1. 0. 0.]
     [0. 0. 1. 0.]
     [0. 0. 0. 1.]]
    """
    labels = _as_int_labels(x)
    input_shape = labels.shape
    # Keras squeezes a trailing 1, so (n, 1) column vectors give (n, c).
    if len(input_shape) > 1 and input_shape[-1] == 1:
        input_shape = input_shape[:-1]
    labels = labels.reshape(-1)

    if num_classes is None:
        if labels.size == 0:
            raise ValueError(
                "Cannot infer `num_classes` from an empty input. "
                "Expected non-empty `x` or an explicit `num_classes`. "
                f"Received: x with shape {np.shape(x)}"
            )
        num_classes = int(labels.max()) + 1
    else:
        num_classes = _as_count(num_classes)
        if labels.size and labels.max() >= num_classes:
            raise ValueError(
                "Expected class values in the range "
                f"[0, {num_classes - 1}] for num_classes={num_classes}. "
                f"Received: max value {int(labels.max())}"
            )

    categorical = np.zeros((labels.size, num_classes), dtype="float32")
    categorical[np.arange(labels.size), labels] = 1.0
    return categorical.reshape(input_shape + (num_classes,))


def _as_int_labels(x):
    """Returns `x` as a non-negative int64 array, or raises ValueError."""
    array = np.asarray(x)
    if array.dtype.kind in "iub":
        labels = array.astype("int64")
    elif array.dtype.kind == "f":
        # Whole-number floats (e.g. labels read from a CSV) are fine;
        # anything else would be silently truncated by a cast.
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            bad = array[~np.isfinite(array) | (array != np.round(array))]
            raise ValueError(f"Expected integer class values in `x`. Received: non-integer value {bad.flat[0]!r}")
        labels = array.astype("int64")
    else:
        raise ValueError(f"Expected integer class values in `x`. Received: x with dtype {array.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"Expected non-negative class values in `x`. Received: min value {int(labels.min())}")
    return labels


def _as_count(num_classes):
    if isinstance(num_classes, bool):
        raise TypeError(f"Expected `num_classes` to be an integer. Received: num_classes={num_classes!r}")
    try:
        value = operator.index(num_classes)
    except TypeError:
        raise TypeError(
            "Expected `num_classes` to be an integer. "
            f"Received: num_classes={num_classes!r} "
            f"(of type {type(num_classes).__name__})"
        ) from None
    if value < 1:
        raise ValueError(f"Expected `num_classes` >= 1. Received: num_classes={num_classes!r}")
    return value


def set_random_seed(seed):
    """Sets all random seeds (Python, NumPy, and the cnnx core).

    Seeds the generator of the compiled cnnx core, and also Python's
    `random` and NumPy's global generator so that data preparation done
    with them is reproducible too, as with `keras.utils.set_random_seed`.

    Args:
        seed: Integer, the random seed to use, in `[0, 2**32 - 1]`
            (the range NumPy's global generator accepts).

    Raises:
        TypeError: if `seed` is not an integer.
        ValueError: if `seed` is out of range.
    """
    if isinstance(seed, bool):
        raise TypeError(f"Expected `seed` to be an integer. Received: seed={seed!r}")
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TypeError(
            f"Expected `seed` to be an integer. Received: seed={seed!r} (of type {type(seed).__name__})"
        ) from None
    if not 0 <= seed < 2**32:
        raise ValueError(f"Expected `seed` in the range [0, 2**32 - 1]. Received: seed={seed}")
    # Imported here so that `cnnx.utils` stays importable (and its pure
    # Python parts testable) without the compiled extension; importing
    # first also means a missing extension seeds nothing at all.
    from . import _core

    _core.set_random_seed(int(seed))
    random.seed(seed)
    np.random.seed(seed)
