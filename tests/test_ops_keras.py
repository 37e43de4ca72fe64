"""cnnx.ops against keras.ops itself (whatever backend Keras runs on; TensorFlow in CI): the same
calls, the same values. Skipped when Keras is not installed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import skip_interop_if_disabled

skip_interop_if_disabled()
with warnings.catch_warnings():
    # TensorFlow and its dependencies warn about their own deprecations on import
    warnings.simplefilter("ignore", DeprecationWarning)
    keras = pytest.importorskip("keras")

from cnnx import ops  # noqa: E402

rng = np.random.default_rng(11)
X = rng.normal(size=(3, 5)).astype(np.float32)
XI = np.array([[1, 2], [3, 4]], dtype=np.int32)
P = (np.exp(X) / np.exp(X).sum(-1, keepdims=True)).astype(np.float32)
T = np.eye(5, dtype=np.float32)[[0, 3, 4]]
IMG = np.arange(84, dtype=np.float32).reshape(1, 6, 7, 2)

CASES = {
    "softmax": lambda m: m.softmax(X, axis=0),
    "log_softmax": lambda m: m.log_softmax(X),
    "sigmoid": lambda m: m.sigmoid(X),
    "relu": lambda m: m.relu(X),
    "one_hot": lambda m: m.one_hot(np.array([0, 2, -1]), 3),
    "one_hot_axis0": lambda m: m.one_hot(np.array([0, 2]), 3, axis=0),
    "expand_dims": lambda m: m.expand_dims(X, -1),
    "squeeze": lambda m: m.squeeze(X[None], 0),
    "argmax": lambda m: m.argmax(X, axis=-1),
    "argmin": lambda m: m.argmin(X),
    "max": lambda m: m.max(X, axis=1, keepdims=True),
    "min": lambda m: m.min(X, axis=-2),
    "sum": lambda m: m.sum(XI),
    "mean": lambda m: m.mean(XI, axis=0),
    "ones": lambda m: m.ones((2, 3)),
    "zeros_like": lambda m: m.zeros_like(XI),
    "cast": lambda m: m.cast(X, "int32"),
    "reshape": lambda m: m.reshape(X, (5, 3)),
    "transpose": lambda m: m.transpose(X),
    "concatenate": lambda m: m.concatenate([X, X], axis=-1),
    "stack": lambda m: m.stack([X, X], axis=1),
    "exp": lambda m: m.exp(X),
    "log": lambda m: m.log(np.abs(X)),
    "sqrt": lambda m: m.sqrt(np.abs(X)),
    "square": lambda m: m.square(XI),
    "abs": lambda m: m.abs(X),
    "clip": lambda m: m.clip(X, -0.5, 0.5),
    "where": lambda m: m.where(X > 0, X, 0.0),
    "arange": lambda m: m.arange(0.0, 1.0, 0.25),
    "matmul": lambda m: m.matmul(X, X.T),
    "divide": lambda m: m.divide(XI, XI + 1),
    "maximum": lambda m: m.maximum(X, 0.0),
    "equal": lambda m: m.equal(XI, 2),
    "categorical_crossentropy": lambda m: m.categorical_crossentropy(T, P),
    "categorical_crossentropy_logits": lambda m: m.categorical_crossentropy(T, X, from_logits=True),
    "sparse_categorical_crossentropy": lambda m: m.sparse_categorical_crossentropy(np.array([0, 3, 4]), P),
    "binary_crossentropy": lambda m: m.binary_crossentropy(T, P),
    "binary_crossentropy_logits": lambda m: m.binary_crossentropy(T, X, from_logits=True),
    "top_k_values": lambda m: m.top_k(X, 2)[0],
    "top_k_indices": lambda m: m.top_k(X, 2)[1],
    "resize_bilinear_down": lambda m: m.image.resize(IMG, (3, 5)),
    "resize_bilinear_up": lambda m: m.image.resize(IMG, (9, 11)),
    "resize_nearest": lambda m: m.image.resize(IMG, (4, 5), interpolation="nearest"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_keras_ops(name):
    expected = keras.ops.convert_to_numpy(CASES[name](keras.ops))
    got = CASES[name](ops).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
