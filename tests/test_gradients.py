"""Whole-model gradients: the training step's parameter gradients (with the fused paths --
softmax + cross-entropy, ReLU folded into the following max-pool, bias and ReLU in the GEMM
epilogue) against central differences of a float64 numpy model."""

import numpy as np
import pytest
from conftest import np_activation, np_conv2d, np_dense, np_max_pool, numeric_grad, sample_indices

import cnnx
from cnnx import Sequential
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D


def np_forward(x, weights, pool_padding):
    k1, b1, k2, b2, w, b = weights
    h = np_activation("relu", np_conv2d(x, k1, b1, (1, 1), "same"))
    h = np_max_pool(h, (2, 2), None, pool_padding)
    h = np_activation("relu", np_conv2d(h, k2, b2, (2, 2), "valid"))
    return np_softmax_dense(h.reshape(len(h), -1), w, b)


def np_softmax_dense(h, w, b):
    return np_activation("softmax", np_dense(h, w, b))


@pytest.mark.parametrize("pool_padding,sparse", [("valid", False), ("same", True)])
def test_train_step_gradients(rng, pool_padding, sparse):
    model = Sequential(
        [
            Input((9, 7, 2)),
            Conv2D(4, 3, padding="same", activation="relu"),
            MaxPooling2D(2, padding=pool_padding),
            Conv2D(5, 2, strides=2, activation="relu"),
            Flatten(),
            Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=cnnx.optimizers.SGD(learning_rate=0.0),
        loss="sparse_categorical_crossentropy" if sparse else "categorical_crossentropy",
    )
    weights = [w + rng.normal(scale=0.1, size=w.shape) for w in model.get_weights()]
    model.set_weights(weights)
    x = rng.normal(size=(3, 9, 7, 2)).astype(np.float32)
    labels = np.array([0, 2, 1])
    y = labels if sparse else np.eye(3)[labels]
    model.train_on_batch(x, y)  # lr = 0: gradients computed, weights unchanged
    grads = [g for layer in model.layers for g in layer._core.get_gradients()]
    w64 = [w.astype(np.float64) for w in model.get_weights()]
    x64 = x.astype(np.float64)
    onehot = np.eye(3)[labels]

    def loss():
        p = np_forward(x64, w64, pool_padding)
        return float(-(onehot * np.log(p)).sum(axis=1).mean())

    for arr, got in zip(w64, grads):
        idx = sample_indices(rng, arr.size, count=20)
        np.testing.assert_allclose(got.reshape(-1)[idx], numeric_grad(loss, arr, idx), rtol=2e-3, atol=1e-5)


@pytest.mark.parametrize("pooled", [True, False])
def test_train_step_gradients_of_a_chunked_conv_stack(rng, pooled):
    # 40 images of 4x4x8 into the second convolution: chunks of 32 and 8, so (with
    # AVX-512) its weight and input gradients run as implicit GEMMs, from the max-pool's
    # scattered gradient or from dy. Linear convolutions: with some 10^4 ReLU units, one of
    # them would often sit within rounding of its kink (test_conv2d covers the ReLU paths layer
    # by layer).
    # Seeded weights: about 1 draw in 100 has two max-pool inputs within float32 rounding of
    # each other somewhere, where float32 and the float64 reference may pick different ones.
    cnnx.utils.set_random_seed(0)
    model = Sequential(
        [
            Input((8, 8, 3)),
            Conv2D(8, 3, padding="same"),
            MaxPooling2D(2),
            Conv2D(32, 3, padding="same"),
            *([MaxPooling2D(2)] if pooled else []),
            Flatten(),
            Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=cnnx.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy")
    weights = [w + rng.normal(scale=0.1, size=w.shape) for w in model.get_weights()]
    model.set_weights(weights)
    x = rng.normal(size=(40, 8, 8, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=40)
    model.train_on_batch(x, labels)
    grads = [g for layer in model.layers for g in layer._core.get_gradients()]
    w64 = [w.astype(np.float64) for w in model.get_weights()]
    x64 = x.astype(np.float64)
    onehot = np.eye(3)[labels]

    def loss():
        k1, b1, k2, b2, w, b = w64
        h = np_max_pool(np_conv2d(x64, k1, b1, (1, 1), "same"), (2, 2), None, "valid")
        h = np_conv2d(h, k2, b2, (1, 1), "same")
        if pooled:
            h = np_max_pool(h, (2, 2), None, "valid")
        p = np_softmax_dense(h.reshape(len(h), -1), w, b)
        return float(-(onehot * np.log(p)).sum(axis=1).mean())

    for arr, got in zip(w64, grads):
        idx = sample_indices(rng, arr.size, count=20)
        np.testing.assert_allclose(got.reshape(-1)[idx], numeric_grad(loss, arr, idx), rtol=2e-3, atol=1e-5)
