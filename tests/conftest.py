"""Plain numpy references (float64) shared by the tests, and common fixtures.

Conventions follow Keras/TensorFlow: NHWC, kernels (kh, kw, cin, cout), "same" padding puts the
odd pixel at the bottom/right, max-pool ignores padded positions.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest


def file_checksum(header: dict, data: bytes) -> str:
    """The model file's SHA-256 (docs/model-format.md), computed with hashlib and json apart from
    the core: over the header without its 'sha256', serialised with sorted keys and no spaces,
    then the data. Tests build consistent files with hostile contents with it."""
    meta = {k: v for k, v in header["__metadata__"].items() if k != "sha256"}
    canonical = json.dumps({**header, "__metadata__": meta}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8") + bytes(data)).hexdigest()


def pad_amounts(size: int, k: int, s: int, d: int, padding: str) -> tuple[int, int, int]:
    span = d * (k - 1) + 1
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s + span - size, 0)
        return out, total // 2, total - total // 2
    return (size - span) // s + 1, 0, 0


def np_conv2d(x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1)):
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    n, h, w, c = x.shape
    kh, kw, _, cout = kernel.shape
    oh, pt, pb = pad_amounts(h, kh, strides[0], dilation[0], padding)
    ow, pl, pr = pad_amounts(w, kw, strides[1], dilation[1], padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    out = np.zeros((n, oh, ow, cout))
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            patch = xp[
                :, y0 : y0 + (oh - 1) * strides[0] + 1 : strides[0], x0 : x0 + (ow - 1) * strides[1] + 1 : strides[1], :
            ]
            out += patch @ kernel[ky, kx]
    if bias is not None:
        out += np.asarray(bias, np.float64)
    return out


def np_depthwise_conv2d(x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """Keras' DepthwiseConv2D: kernel (kh, kw, c, dm), output channel c * dm + m."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    n, h, w, c = x.shape
    kh, kw, _, dm = kernel.shape
    oh, pt, pb = pad_amounts(h, kh, strides[0], dilation[0], padding)
    ow, pl, pr = pad_amounts(w, kw, strides[1], dilation[1], padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    out = np.zeros((n, oh, ow, c, dm))
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            patch = xp[
                :, y0 : y0 + (oh - 1) * strides[0] + 1 : strides[0], x0 : x0 + (ow - 1) * strides[1] + 1 : strides[1], :
            ]
            out += patch[..., None] * kernel[ky, kx]
    out = out.reshape(n, oh, ow, c * dm)
    if bias is not None:
        out += np.asarray(bias, np.float64)
    return out


def np_max_pool(x, pool=(2, 2), strides=None, padding="valid"):
    x = np.asarray(x, np.float64)
    strides = strides or pool
    n, h, w, c = x.shape
    oh, pt, pb = pad_amounts(h, pool[0], strides[0], 1, padding)
    ow, pl, pr = pad_amounts(w, pool[1], strides[1], 1, padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
    out = np.full((n, oh, ow, c), -np.inf)
    for ky in range(pool[0]):
        for kx in range(pool[1]):
            out = np.maximum(
                out,
                xp[
                    :,
                    ky : ky + (oh - 1) * strides[0] + 1 : strides[0],
                    kx : kx + (ow - 1) * strides[1] + 1 : strides[1],
                    :,
                ],
            )
    return out


def np_dense(x, kernel, bias=None):
    out = np.asarray(x, np.float64) @ np.asarray(kernel, np.float64)
    return out if bias is None else out + np.asarray(bias, np.float64)


def np_softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_activation(name, z):
    z = np.asarray(z, np.float64)
    return {
        "linear": lambda v: v,
        "relu": lambda v: np.maximum(v, 0.0),
        "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
        "tanh": np.tanh,
        "softmax": np_softmax,
    }[name](z)


def numeric_grad(f, arr, indices, eps=1e-6):
    """Central differences of scalar f() w.r.t. arr.flat[i] for each sampled i (arr is float64)."""
    out = []
    flat = arr.reshape(-1)
    for i in indices:
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        out.append((fp - fm) / (2 * eps))
    return np.array(out)


def sample_indices(rng, size, count=25):
    return rng.choice(size, size=min(size, count), replace=False)


def distinct_values(rng, shape, spacing=0.01):
    """Values all at least `spacing` apart (a shuffled grid): no max-pool ties, no ReLU kinks
    within finite-difference reach when offset from zero."""
    n = int(np.prod(shape))
    v = (np.arange(n) - n / 2 + 0.5) * spacing
    return rng.permutation(v).reshape(shape)


def check_layer_gradients(rng, layer, x, reference, rtol=2e-3, atol=2e-3):
    """A built layer's backward (float32, in the core) against central differences of
    `reference(x, *weights)` in float64, for dL/dx and every weight, with L = sum(y * r)."""
    y = layer(x, training=True)
    r = rng.normal(size=y.shape)
    dx = layer._core.backward(x, y, r.astype(np.float32))
    x64 = x.astype(np.float64)
    weights = [w.astype(np.float64) for w in layer.get_weights()]

    def loss():
        return float((reference(x64, *weights) * r).sum())

    for arr, got in zip([x64, *weights], [dx, *layer._core.get_gradients()]):
        idx = sample_indices(rng, arr.size)
        np.testing.assert_allclose(got.reshape(-1)[idx], numeric_grad(loss, arr, idx), rtol=rtol, atol=atol)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# Under .ci/sanitize the ASan runtime is preloaded: it keeps freed memory in a quarantine and maps
# shadow memory, so resident-set sizes say nothing about cnnx's own memory use there.
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")


def article_model(input_layer=True):
    """The article's network: three 3x3 conv + 2x2 max-pool blocks of 32, 64 and 128 filters,
    Dense(100), Dense(10) softmax; the input from Input((28, 28, 1)) or from input_shape=."""
    from cnnx import Sequential
    from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D

    first = [Input((28, 28, 1))] if input_layer else []
    conv1 = (
        Conv2D(32, 3, padding="same", activation="relu")
        if input_layer
        else Conv2D(32, 3, padding="same", activation="relu", input_shape=(28, 28, 1))
    )
    return Sequential(
        first
        + [
            conv1,
            MaxPooling2D(2),
            Conv2D(64, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Conv2D(128, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(100, activation="relu"),
            Dense(10, activation="softmax"),
        ]
    )


def local_mnist_directory():
    """The directory cnnx.datasets.mnist.load_data() would read offline ($CNNX_DATA_DIR/mnist, a
    checkout's data/mnist or ../shared/data/mnist), or None: the files are not in the repository."""
    from cnnx.datasets import mnist

    for directory in mnist._local_directories():
        if all((directory / name).is_file() for name in mnist.FILES):
            return directory
    return None


def skip_interop_if_disabled() -> None:
    """Called first by the modules that compare cnnx with another framework (Keras +
    TensorFlow, onnxruntime). CNNX_TEST_INTEROP=0 skips them before they import it: .ci/sanitize
    sets it, since those large uninstrumented libraries do not belong in the ASan run."""
    if os.environ.get("CNNX_TEST_INTEROP", "1") == "0":
        pytest.skip("CNNX_TEST_INTEROP=0: comparisons with other frameworks are off", allow_module_level=True)
