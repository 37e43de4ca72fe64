"""Tests for cnnx.utils.to_categorical against a numpy reference."""

import numpy as np
import pytest

from cnnx.utils import to_categorical


def np_to_categorical(x, num_classes=None):
    """Reference: rows of the identity; (..., 1) drops the 1 like Keras."""
    x = np.asarray(x, dtype=np.int64)
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x[..., 0]
    if num_classes is None:
        num_classes = int(x.max()) + 1
    return np.eye(num_classes, dtype=np.float32)[x]


@pytest.mark.parametrize("shape", [(), (1,), (7,), (7, 1), (1, 1), (2, 3), (2, 3, 1), (2, 1, 3)])
@pytest.mark.parametrize("num_classes", [None, 10])
def test_matches_reference(shape, num_classes):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, shape)
    result = to_categorical(x, num_classes)
    expected = np_to_categorical(x, num_classes)
    assert result.dtype == np.float32
    assert result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)


def test_keras_docstring_example():
    result = to_categorical([0, 1, 2, 3], num_classes=4)
    np.testing.assert_array_equal(result, np.eye(4, dtype=np.float32))


def test_column_vector_squeezes_last_dim():
    assert to_categorical(np.array([[1], [0], [2]])).shape == (3, 3)


def test_infers_num_classes_from_max():
    assert to_categorical([0, 4]).shape == (2, 5)


@pytest.mark.parametrize(
    "x",
    [
        np.array([0, 9, 3], dtype=np.uint8),  # MNIST labels
        np.array([0, 9, 3], dtype=np.int32),
        np.array([0.0, 9.0, 3.0]),  # whole-number floats
        [0, 9, 3],
    ],
)
def test_accepted_label_types(x):
    np.testing.assert_array_equal(to_categorical(x, 10), np_to_categorical([0, 9, 3], 10))


def test_numpy_integer_num_classes():
    assert to_categorical([1, 2], np.int64(3)).shape == (2, 3)


def test_empty_input_with_num_classes():
    result = to_categorical(np.zeros((0,), dtype=int), 4)
    assert result.shape == (0, 4) and result.dtype == np.float32


@pytest.mark.parametrize(
    "x, num_classes, match",
    [
        ([0, 1.5], None, "Expected integer.*Received"),
        ([0, np.nan], 3, "Expected integer.*Received"),
        (["a", "b"], None, "Expected integer.*Received"),
        ([0, -1], 3, "Expected non-negative.*Received: min value -1"),
        ([0, 3], 3, r"range \[0, 2\] for num_classes=3. Received: max value 3"),
        ([0, 1], 0, "Expected `num_classes` >= 1. Received: num_classes=0"),
        ([], None, "Cannot infer `num_classes`"),
    ],
)
def test_invalid_values_raise_value_error(x, num_classes, match):
    with pytest.raises(ValueError, match=match):
        to_categorical(x, num_classes)


@pytest.mark.parametrize("num_classes", [2.0, "3", True])
def test_non_integer_num_classes_raises_type_error(num_classes):
    with pytest.raises(TypeError, match="Expected `num_classes` to be an integer"):
        to_categorical([0, 1], num_classes)
