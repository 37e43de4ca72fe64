"""Cross-entropy losses: values against numpy, gradients against finite differences."""

import numpy as np
import pytest
from conftest import np_softmax, numeric_grad, sample_indices

from cnnx import _core, losses


def one_hot(labels, classes):
    return np.eye(classes)[labels]


def np_ce(p, y):
    p = np.clip(p / p.sum(axis=-1, keepdims=True), 1e-7, 1 - 1e-7)
    return float(-(y * np.log(p)).sum(axis=-1).mean())


@pytest.mark.parametrize("rows,classes", [(1, 2), (3, 10), (7, 13)])
def test_from_logits_value_and_gradient(rng, rows, classes):
    z = rng.normal(size=(rows, classes)) * 3
    y = one_hot(rng.integers(0, classes, rows), classes)
    loss = _core.make_crossentropy(False, True)
    value, grad = loss.compute(z.astype(np.float32), y.astype(np.float32), False)

    def f():
        return float(-(y * np.log(np_softmax(z))).sum(axis=-1).mean())

    assert value == pytest.approx(f(), rel=1e-5)
    idx = sample_indices(rng, z.size)
    np.testing.assert_allclose(grad.reshape(-1)[idx], numeric_grad(f, z, idx), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("sparse", [False, True])
def test_fused_softmax_gradient_is_dz(rng, sparse):
    # With a softmax output, the model asks for dL/dz of the softmax input: p - y (over rows).
    rows, classes = 5, 10
    z = rng.normal(size=(rows, classes))
    labels = rng.integers(0, classes, rows)
    y = one_hot(labels, classes)
    target = labels.astype(np.float32) if sparse else y.astype(np.float32)
    p = np_softmax(z)
    value, grad = _core.make_crossentropy(sparse, False).compute(p.astype(np.float32), target, True)

    def f():
        return float(-(y * np.log(np_softmax(z))).sum(axis=-1).mean())

    assert value == pytest.approx(f(), rel=1e-5)
    idx = sample_indices(rng, z.size)
    np.testing.assert_allclose(grad.reshape(-1)[idx], numeric_grad(f, z, idx), rtol=1e-4, atol=1e-6)


def test_probability_path_matches_keras_formula(rng):
    # Output not a softmax: Keras normalises by the row sum and clips to [1e-7, 1 - 1e-7].
    rows, classes = 4, 6
    p = rng.uniform(0.05, 1.0, size=(rows, classes))
    y = one_hot(rng.integers(0, classes, rows), classes)
    value, grad = _core.make_crossentropy(False, False).compute(p.astype(np.float32), y.astype(np.float32), False)
    assert value == pytest.approx(np_ce(p, y), rel=1e-5)
    idx = sample_indices(rng, p.size)
    np.testing.assert_allclose(grad.reshape(-1)[idx], numeric_grad(lambda: np_ce(p, y), p, idx), rtol=1e-3, atol=1e-6)


def test_saturated_softmax_gives_finite_loss():
    p = np.zeros((2, 3), np.float32)
    p[:, 0] = 1.0  # softmax underflowed: log(0) must not appear
    y = np.array([[0, 1, 0], [1, 0, 0]], np.float32)
    value, grad = _core.make_crossentropy(False, False).compute(p, y, True)
    assert np.isfinite(value) and value > 10
    assert np.isfinite(grad).all()
    z = np.array([[1000.0, -1000.0, 0.0]], np.float32)
    value, grad = _core.make_crossentropy(False, True).compute(z, np.array([[0, 1, 0]], np.float32), False)
    assert value == pytest.approx(2000.0, rel=1e-6)
    assert np.isfinite(grad).all()


def test_sparse_equals_categorical(rng):
    p = np_softmax(rng.normal(size=(6, 4))).astype(np.float32)
    labels = rng.integers(0, 4, 6)
    a = losses.CategoricalCrossentropy()(one_hot(labels, 4), p)
    b = losses.SparseCategoricalCrossentropy()(labels, p)
    assert a == pytest.approx(b, rel=1e-6)
    assert a == pytest.approx(np_ce(p.astype(np.float64), one_hot(labels, 4)), rel=1e-5)


@pytest.mark.parametrize("bad", [-1, 4, 1.5])
def test_sparse_label_out_of_range(bad):
    p = np.full((1, 4), 0.25, np.float32)
    with pytest.raises(ValueError, match=r"expected integer labels in \[0, 3\]"):
        losses.SparseCategoricalCrossentropy()(np.array([bad], np.float32), p)


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_bce(p, t):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(axis=-1).mean())


@pytest.mark.parametrize("mode", ["probabilities", "fused", "logits"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_binary_crossentropy(rng, mode, label_smoothing):
    rows, classes = 5, 3
    z = rng.normal(size=(rows, classes)) * 2
    t = rng.integers(0, 2, (rows, classes)).astype(np.float64)
    ts = t * (1 - label_smoothing) + 0.5 * label_smoothing
    loss = _core.make_binary_crossentropy(mode == "logits", label_smoothing)
    out = z if mode == "logits" else np_sigmoid(z)
    value, grad = loss.compute(out.astype(np.float32), t.astype(np.float32), mode == "fused")
    # Gradient with respect to what the core differentiates: z for logits and fused, p otherwise.
    wrt = out.copy() if mode == "probabilities" else z.copy()

    def f():
        p = wrt if mode == "probabilities" else np_sigmoid(wrt)
        return np_bce(p, ts)

    assert value == pytest.approx(f(), rel=1e-5)
    idx = sample_indices(rng, wrt.size)
    np.testing.assert_allclose(grad.reshape(-1)[idx], numeric_grad(f, wrt, idx), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    "name,ref", [("mse", lambda d: (d**2).mean(axis=-1).mean()), ("mae", lambda d: np.abs(d).mean(axis=-1).mean())]
)
def test_regression_losses(rng, name, ref):
    p = rng.normal(size=(4, 3))
    t = rng.normal(size=(4, 3))
    loss = losses.get(name)
    value, grad = loss._core.compute(p.astype(np.float32), t.astype(np.float32))
    assert value == pytest.approx(ref(p - t), rel=1e-5)
    idx = sample_indices(rng, p.size)
    np.testing.assert_allclose(grad.reshape(-1)[idx], numeric_grad(lambda: ref(p - t), p, idx), rtol=1e-4, atol=1e-7)


def test_label_smoothing_categorical(rng):
    z = rng.normal(size=(3, 4))
    y = one_hot([0, 3, 1], 4)
    ys = y * 0.9 + 0.1 / 4
    value = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(y, z)
    assert value == pytest.approx(float(-(ys * np.log(np_softmax(z))).sum(axis=1).mean()), rel=1e-5)
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.CategoricalCrossentropy(label_smoothing=1.5)


def test_sample_weights_scale_rows(rng):
    p = np_softmax(rng.normal(size=(4, 5))).astype(np.float32)
    labels = np.array([0, 1, 2, 3], np.float32)
    w = np.array([1.0, 0.0, 2.0, 0.5], np.float32)
    loss = losses.SparseCategoricalCrossentropy()
    per_row = -np.log(p[np.arange(4), labels.astype(int)].astype(np.float64))
    assert loss(labels, p, sample_weight=w) == pytest.approx(float((per_row * w).sum() / 4), rel=1e-5)
    _, grad = loss._core.compute(p, labels, True, w)
    assert not grad[1].any()  # a zero weight removes that row's gradient


def test_binary_targets_checked():
    with pytest.raises(ValueError, match=r"expected targets in \[0, 1\], received 2"):
        losses.BinaryCrossentropy()(np.array([[2.0]]), np.array([[0.5]]))


def test_function_forms_return_tensors_with_numpy_like_keras():
    """``keras.losses.mean_squared_error(y, p).numpy()`` and the like: per-sample values."""
    t = np.array([[0.0, 1.0], [1.0, 0.0]])
    p = np.array([[0.2, 0.8], [0.6, 0.4]])
    np.testing.assert_allclose(losses.mean_squared_error(t, p).numpy(), np.mean((t - p) ** 2, axis=-1))
    np.testing.assert_allclose(losses.mae(t, p).numpy(), np.mean(np.abs(t - p), axis=-1))
    np.testing.assert_allclose(losses.categorical_crossentropy(t, p).numpy(), -np.sum(t * np.log(p), axis=-1))
    out = losses.sparse_categorical_crossentropy(np.array([1, 0]), p)
    assert type(out.numpy()) is np.ndarray
    np.testing.assert_allclose(out.numpy(), -np.log([0.8, 0.6]))
    assert losses.mean_squared_error.__name__ == "mean_squared_error"


def test_loss_objects_return_a_float32_scalar_with_numpy_like_keras():
    """The TensorFlow quickstart prints loss_fn(y_train[:1], predictions).numpy()."""
    import cnnx

    loss_fn = cnnx.losses.SparseCategoricalCrossentropy(from_logits=True)
    logits = np.array([[2.0, -1.0, 0.5]], np.float32)
    value = loss_fn(np.array([0]), logits)
    expected = -np.log(np.exp(2.0) / np.exp(logits).sum())
    assert value.numpy().dtype == np.float32 and value.numpy().shape == ()
    assert abs(float(value.numpy()) - expected) < 1e-6
    per_sample = cnnx.losses.MeanSquaredError(reduction=None)(np.zeros((2, 3)), np.ones((2, 3)))
    np.testing.assert_allclose(per_sample.numpy(), [1.0, 1.0])
