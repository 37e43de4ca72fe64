"""cnnx.ops: each function against a NumPy formula (float64 references) and Keras' documented
behaviour on awkward inputs (negative axes, integer dtypes, batch 1, Python lists)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cnnx
from cnnx import ops

rng = np.random.default_rng(7)


def ref_softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_exported_and_numpy_method():
    assert cnnx.ops is ops
    out = ops.softmax(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
    assert isinstance(out, np.ndarray) and isinstance(out, ops.Tensor)
    plain = out.numpy()
    assert type(plain) is np.ndarray
    np.testing.assert_allclose(plain, ref_softmax([[1, 2, 3]]), rtol=1e-6)
    # what programs written for Keras do with a prediction's scores
    assert int(np.argmax(out)) == 2
    assert 100 * np.max(out) == pytest.approx(100 * ref_softmax([1, 2, 3]).max(), rel=1e-6)
    s = ops.sum(out)
    assert s.shape == () and isinstance(s.numpy(), np.ndarray) and float(s) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    "shape,axis", [((1, 10), -1), ((4, 3), 0), ((2, 3, 5), 1), ((2, 3, 5), -2), ((2, 3, 4), (1, 2))]
)
def test_softmax_and_log_softmax(shape, axis):
    x = rng.normal(size=shape).astype(np.float32) * 5
    got = ops.softmax(x, axis=axis)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, ref_softmax(x, axis), rtol=1e-5, atol=1e-7)
    if not isinstance(axis, tuple):
        ref = np.log(ref_softmax(x, axis))
        np.testing.assert_allclose(ops.log_softmax(x, axis=axis), ref, rtol=1e-5, atol=1e-6)


def test_softmax_stable_ints_and_size_one_axis():
    np.testing.assert_allclose(ops.softmax([1000.0, 1000.0]), [0.5, 0.5])
    assert ops.softmax(np.array([1, 2, 3])).dtype == np.float32  # integers compute in float32
    assert ops.softmax(np.array([1.0, 2.0])).dtype == np.float64  # NumPy arrays keep their float type
    with pytest.warns(UserWarning, match="This axis has size 1"):
        np.testing.assert_array_equal(ops.softmax(np.zeros((3, 1)), axis=-1), np.ones((3, 1)))
    with pytest.raises(ValueError, match="axis 2 is out of bounds"):
        ops.softmax(np.zeros((2, 2)), axis=2)


def test_relu_and_sigmoid():
    x = np.array([-800.0, -2.0, 0.0, 3.0, 800.0], dtype=np.float32)
    np.testing.assert_array_equal(ops.relu(x), np.maximum(x, 0))
    with np.errstate(over="ignore"):
        ref = 1 / (1 + np.exp(-x.astype(np.float64)))
    got = ops.sigmoid(x)
    assert got.dtype == np.float32 and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert ops.relu([-1, 2]).dtype == np.float32


def test_one_hot():
    got = ops.one_hot(np.array([[0, 2], [1, 1]]), 3)
    assert got.shape == (2, 2, 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.eye(3)[[[0, 2], [1, 1]]])
    # Keras: a negative index (and, as in TensorFlow and JAX, one beyond num_classes) gives zeros
    np.testing.assert_array_equal(ops.one_hot([-1, 3, 0], 3), [[0, 0, 0], [0, 0, 0], [1, 0, 0]])
    first = ops.one_hot([2, 0], 3, axis=0, dtype="int32")
    assert first.dtype == np.int32
    np.testing.assert_array_equal(first, np.eye(3)[[2, 0]].T)
    np.testing.assert_array_equal(ops.one_hot(np.array([1.0]), 2), [[0, 1]])  # whole floats are indices
    with pytest.raises(ValueError, match="num_classes"):
        ops.one_hot([0], 0)
    with pytest.raises(ValueError, match="integer"):
        ops.one_hot([0.5], 2)


def test_shapes():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert ops.expand_dims(x, 0).shape == (1, 2, 3)
    assert ops.expand_dims(x, -1).shape == (2, 3, 1)
    assert ops.expand_dims(x, (0, 3)).shape == (1, 2, 3, 1)
    one = np.zeros((1, 3, 1))
    assert ops.squeeze(one).shape == (3,)
    assert ops.squeeze(one, axis=-1).shape == (1, 3)
    assert ops.squeeze(one, axis=0).shape == (3, 1)
    with pytest.raises(ValueError, match="Cannot squeeze axis 1"):
        ops.squeeze(one, axis=1)
    np.testing.assert_array_equal(ops.reshape(x, (3, -1)), x.reshape(3, 2))
    np.testing.assert_array_equal(ops.transpose(x), x.T)
    y = rng.normal(size=(2, 3, 4))
    np.testing.assert_array_equal(ops.transpose(y, (2, 0, 1)), y.transpose(2, 0, 1))
    np.testing.assert_array_equal(ops.concatenate([x, x], axis=-1), np.concatenate([x, x], axis=1))
    np.testing.assert_array_equal(ops.stack([x, x], axis=1), np.stack([x, x], axis=1))
    assert ops.shape(x) == (2, 3) and isinstance(ops.shape(x), tuple)


def test_reductions():
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    for axis in (None, 0, -1, (0, 2)):
        for keepdims in (False, True):
            np.testing.assert_allclose(ops.sum(x, axis, keepdims), x.sum(axis=axis, keepdims=keepdims), rtol=1e-5)
            np.testing.assert_allclose(ops.mean(x, axis, keepdims), x.mean(axis=axis, keepdims=keepdims), rtol=1e-5)
            np.testing.assert_array_equal(ops.max(x, axis, keepdims), x.max(axis=axis, keepdims=keepdims))
            np.testing.assert_array_equal(ops.min(x, axis, keepdims), x.min(axis=axis, keepdims=keepdims))
    # Keras' dtypes: small ints and bools sum in int32, int32 stays int32, mean of ints is float32
    assert ops.sum(np.array([True, True, False])).dtype == np.int32
    assert int(ops.sum(np.array([True, True, False]))) == 2
    assert ops.sum(np.array([1, 2], dtype=np.int32)).dtype == np.int32
    assert ops.sum(np.array([200, 100], dtype=np.uint8)) == 300
    m = ops.mean(np.array([1, 2], dtype=np.int64))
    assert m.dtype == np.float32 and float(m) == 1.5
    assert float(ops.max(np.array([]), initial=-1.0)) == -1.0
    with pytest.raises(ValueError, match="empty"):
        ops.max(np.array([]))


def test_argmax_argmin():
    x = np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 7.0]])
    a = ops.argmax(x, axis=-1)
    assert a.dtype == np.int32
    np.testing.assert_array_equal(a, [1, 0])  # the first maximum
    np.testing.assert_array_equal(ops.argmin(x, axis=0), [0, 1, 0])
    assert int(ops.argmax(x)) == 3  # flattened
    assert ops.argmax(x, axis=1, keepdims=True).shape == (2, 1)
    assert int(ops.argmax(ops.softmax(np.array([[0.1, 2.0, -1.0]]))[0])) == 1  # batch of one


def test_top_k():
    x = np.array([[3.0, 1.0, 3.0, 2.0], [0.0, -1.0, 5.0, 4.0]], dtype=np.float32)
    values, indices = ops.top_k(x, 2)
    np.testing.assert_array_equal(values, [[3, 3], [5, 4]])
    np.testing.assert_array_equal(indices, [[0, 2], [2, 3]])  # ties: lower index first
    assert indices.dtype == np.int32 and values.dtype == np.float32
    y = rng.normal(size=(5, 9))
    v, i = ops.top_k(y, 9)
    np.testing.assert_array_equal(v, -np.sort(-y, axis=-1))
    np.testing.assert_array_equal(np.take_along_axis(y, i.numpy(), -1), v)
    with pytest.raises(ValueError, match="expected k"):
        ops.top_k(y, 10)


def test_creation_and_conversion():
    assert ops.ones((2, 3)).dtype == np.float32 and float(ops.sum(ops.ones((2, 3)))) == 6
    assert ops.zeros((2,), dtype="int32").dtype == np.int32
    x = np.arange(4, dtype=np.int16).reshape(2, 2)
    assert ops.ones_like(x).dtype == np.int16 and ops.zeros_like(x, dtype="float32").dtype == np.float32
    np.testing.assert_array_equal(ops.ones_like(x), np.ones((2, 2)))
    c = ops.cast(np.array([1.7, -1.7]), "int32")
    assert c.dtype == np.int32
    np.testing.assert_array_equal(c, [1, -1])  # truncation toward zero, as tf.cast
    assert ops.cast([1, 2], "float16").dtype == np.float16
    # Python numbers take Keras' default types, NumPy arrays keep theirs
    assert ops.convert_to_tensor([1.0, 2.0]).dtype == np.float32
    assert ops.convert_to_tensor([1, 2]).dtype == np.int32
    assert ops.convert_to_tensor(np.array([1.0])).dtype == np.float64
    assert ops.convert_to_tensor([1, 2], dtype="float32").dtype == np.float32
    n = ops.convert_to_numpy(ops.ones((2,)))
    assert type(n) is np.ndarray
    np.testing.assert_array_equal(ops.stop_gradient(x), x)
    assert ops.arange(5).dtype == np.int32
    np.testing.assert_array_equal(ops.arange(5), np.arange(5))
    np.testing.assert_allclose(ops.arange(0.0, 1.0, 0.25), [0, 0.25, 0.5, 0.75])
    assert ops.arange(0.0, 1.0, 0.25).dtype == np.float32
    np.testing.assert_array_equal(ops.arange(2, 10, 3, dtype="float32"), [2.0, 5.0, 8.0])
    with pytest.raises(TypeError, match="numeric"):
        ops.convert_to_tensor(["a"])


def test_elementwise():
    a = rng.normal(size=(3, 4)).astype(np.float32)
    b = rng.normal(size=(4,)).astype(np.float32)
    for fn, ref in [
        (ops.add, np.add),
        (ops.subtract, np.subtract),
        (ops.multiply, np.multiply),
        (ops.divide, np.divide),
        (ops.maximum, np.maximum),
        (ops.minimum, np.minimum),
        (ops.equal, np.equal),
    ]:
        got = fn(a, b)
        assert got.shape == (3, 4)
        np.testing.assert_array_equal(got, ref(a, b))
    assert ops.add(a, 1.5).dtype == np.float32  # a Python scalar takes the array's type
    assert ops.add(np.array([1, 2], dtype=np.int32), 1.5).dtype == np.float32
    assert ops.divide(np.array([3], dtype=np.int32), np.array([2], dtype=np.int32)).dtype == np.float32
    np.testing.assert_array_equal(ops.divide([3], [2]), [1.5])
    assert ops.equal(a, a).dtype == bool
    np.testing.assert_allclose(ops.matmul(a, a.T), a @ a.T, rtol=1e-5)
    np.testing.assert_allclose(ops.matmul(rng.normal(size=(2, 3, 4)), b.astype(np.float64)).shape, (2, 3))


def test_unary():
    x = np.abs(rng.normal(size=(5,))).astype(np.float32) + 0.1
    np.testing.assert_allclose(ops.exp(x), np.exp(x), rtol=1e-6)
    np.testing.assert_allclose(ops.log(x), np.log(x), rtol=1e-6)
    np.testing.assert_allclose(ops.sqrt(x), np.sqrt(x), rtol=1e-6)
    np.testing.assert_array_equal(ops.square(-x), x * x)
    np.testing.assert_array_equal(ops.abs(-x), x)
    np.testing.assert_array_equal(ops.absolute(np.array([-2, 3])), [2, 3])
    for fn in (ops.exp, ops.log, ops.sqrt):
        assert fn(np.array([1, 4])).dtype == np.float32
    assert ops.square(np.array([2, 3], dtype=np.int32)).dtype == np.int32
    assert ops.square(np.array([True])).dtype == np.int32


def test_clip_and_where():
    x = np.array([-2.0, 0.5, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(ops.clip(x, 0, 1), [0, 0.5, 1])
    assert ops.clip(x, 0, 1).dtype == np.float32
    assert ops.clip(np.array([1, 5], dtype=np.int32), 0, 3).dtype == np.int32
    assert ops.clip(np.array([True, False]), 0, 1).dtype == np.int32
    np.testing.assert_array_equal(ops.where(x > 0, x, 0.0), [0, 0.5, 3.0])
    assert ops.where(x > 0, x, 0.0).dtype == np.float32
    (idx,) = ops.where(x > 0)
    np.testing.assert_array_equal(idx, [1, 2])
    with pytest.raises(ValueError, match="both should be `None`"):
        ops.where(x > 0, x)


def keras_cce(target, output, from_logits, axis=-1):
    """Keras' formula in float64: rescale to sum 1, clip at 1e-7, -sum(t log p)."""
    t, o = np.asarray(target, np.float64), np.asarray(output, np.float64)
    if from_logits:
        logp = o - o.max(axis=axis, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=axis, keepdims=True))
    else:
        logp = np.log(np.clip(o / o.sum(axis=axis, keepdims=True), 1e-7, 1 - 1e-7))
    return -(t * logp).sum(axis=axis)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("batch", [1, 6])
def test_categorical_crossentropies(from_logits, batch):
    logits = rng.normal(size=(batch, 5)).astype(np.float32) * 3
    probs = ref_softmax(logits).astype(np.float32)
    out = logits if from_logits else probs
    labels = rng.integers(0, 5, size=batch)
    onehot = np.eye(5, dtype=np.float32)[labels]
    cce = ops.categorical_crossentropy(onehot, out, from_logits=from_logits)
    assert cce.shape == (batch,) and cce.dtype == np.float32
    np.testing.assert_allclose(cce, keras_cce(onehot, out, from_logits), rtol=1e-5, atol=1e-6)
    sparse = ops.sparse_categorical_crossentropy(labels, out, from_logits=from_logits)
    np.testing.assert_allclose(sparse, cce, rtol=1e-6, atol=1e-7)
    column = ops.sparse_categorical_crossentropy(labels[:, None], out, from_logits=from_logits)
    np.testing.assert_allclose(column, cce, rtol=1e-6, atol=1e-7)  # a trailing 1 is dropped
    # axis=0: classes along the first axis
    np.testing.assert_allclose(
        ops.categorical_crossentropy(onehot.T, out.T, from_logits=from_logits, axis=0), cce, rtol=1e-5, atol=1e-6
    )


def test_crossentropy_clipping_and_errors():
    # a certain, correct prediction costs -log(1 - 1e-7) (in float32, as Keras), not 0; a certain,
    # wrong one -log(1e-7)
    np.testing.assert_allclose(
        ops.categorical_crossentropy([[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]),
        [-np.log(np.float32(1) - np.float32(1e-7)), -math.log(1e-7)],
        rtol=1e-5,
    )
    # probabilities that do not sum to 1 are rescaled first, as in Keras
    np.testing.assert_allclose(ops.categorical_crossentropy([[1.0, 0.0]], [[2.0, 2.0]]), [math.log(2)], rtol=1e-6)
    with pytest.raises(ValueError, match="must have the same shape"):
        ops.categorical_crossentropy(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="up until the last dimension"):
        ops.sparse_categorical_crossentropy(np.zeros((3,)), np.ones((2, 4)))


@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_crossentropy(from_logits):
    t = rng.integers(0, 2, size=(4, 3)).astype(np.float32)
    logits = rng.normal(size=(4, 3)).astype(np.float32) * 4
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    out = logits if from_logits else p.astype(np.float32)
    if from_logits:  # exact (Keras' TensorFlow and JAX backends)
        ref = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    else:
        pc = np.clip(p.astype(np.float32).astype(np.float64), 1e-7, 1 - 1e-7)
        ref = -(t * np.log(pc) + (1 - t) * np.log(1 - pc))
    got = ops.binary_crossentropy(t, out, from_logits=from_logits)
    assert got.shape == (4, 3)  # element-wise, no reduction (keras.ops)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
    # certain predictions: p is clipped to 1 - 1e-7 in float32 (as Keras), so log(1 - p) is finite
    top = np.float32(1) - np.float32(1e-7)
    one = ops.binary_crossentropy([1.0, 0.0], [1.0, 1.0])
    np.testing.assert_allclose(one, [-np.log(top), -np.log(np.float32(1) - top)], rtol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        ops.binary_crossentropy([1.0, 0.0], [1.0])
    # large logits: exact, not capped at -log(1e-7)
    np.testing.assert_allclose(ops.binary_crossentropy([0.0, 1.0], [40.0, -40.0], from_logits=True), [40.0, 40.0])


def ref_resize_bilinear(img, h, w):
    """Half-pixel-centre bilinear (tf.image.resize), one pixel at a time in float64."""
    H, W, C = img.shape
    out = np.zeros((h, w, C))
    for i in range(h):
        for j in range(w):
            y = min(max((i + 0.5) * H / h - 0.5, 0), H - 1)
            x = min(max((j + 0.5) * W / w - 0.5, 0), W - 1)
            y0, x0 = int(y), int(x)
            y1, x1 = min(y0 + 1, H - 1), min(x0 + 1, W - 1)
            dy, dx = y - y0, x - x0
            out[i, j] = (
                img[y0, x0] * (1 - dy) * (1 - dx)
                + img[y0, x1] * (1 - dy) * dx
                + img[y1, x0] * dy * (1 - dx)
                + img[y1, x1] * dy * dx
            )
    return out


@pytest.mark.parametrize("size", [(3, 5), (8, 2), (6, 7)])
def test_image_resize(size):
    img = rng.random((6, 7, 2))
    got = ops.image.resize(img, size)
    assert got.shape == (*size, 2)
    np.testing.assert_allclose(got, ref_resize_bilinear(img, *size), rtol=1e-12)
    batch = ops.image.resize(img[None].astype(np.float32), size)
    assert batch.shape == (1, *size, 2) and batch.dtype == np.float32
    # the same sampling as cnnx's Resizing layer
    layer = cnnx.layers.Resizing(*size)
    np.testing.assert_allclose(batch, layer(img[None].astype(np.float32)), rtol=1e-5, atol=1e-6)
    near = ops.image.resize(img[None].astype(np.float32), size, interpolation="nearest")
    layer = cnnx.layers.Resizing(*size, interpolation="nearest")
    np.testing.assert_array_equal(near, layer(img[None].astype(np.float32)))


def test_image_resize_errors():
    with pytest.raises(ValueError, match="Invalid images rank"):
        ops.image.resize(np.zeros((4, 4)), (2, 2))
    with pytest.raises(ValueError, match="interpolation"):
        ops.image.resize(np.zeros((4, 4, 1)), (2, 2), interpolation="bicubic")
    with pytest.raises(ValueError, match="size"):
        ops.image.resize(np.zeros((4, 4, 1)), (2,))
    assert ops.image.resize(np.zeros((4, 4, 1), dtype=np.uint8), (2, 2)).dtype == np.float32


def test_backend_clear_session_resets_names():
    cnnx.backend.clear_session()
    first = cnnx.layers.Dense(2).name
    cnnx.layers.Dense(2)
    cnnx.backend.clear_session()
    assert first == "dense" and cnnx.layers.Dense(2).name == "dense"
    assert cnnx.backend.floatx() == "float32" and cnnx.backend.epsilon() == 1e-7
    assert cnnx.backend.image_data_format() == "channels_last"
