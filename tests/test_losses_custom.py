"""Loss function forms, the Keras 3 Loss protocol, and losses written in Python running inside
the core's step: same training as the built-ins when they compute the same function, sample
weights and reductions, exceptions, saving with custom_objects."""

import threading

import numpy as np
import pytest

import cnnx
from cnnx import losses
from cnnx.layers import Dense, Input


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# -- function forms ----------------------------------------------------------------------------
def test_function_forms_match_keras_formulas(rng):
    n, k = 12, 4
    z = rng.normal(size=(n, k))
    p = _softmax(z)
    labels = rng.integers(0, k, n)
    y = np.eye(k)[labels]
    np.testing.assert_allclose(losses.categorical_crossentropy(y, p), -np.log(p[np.arange(n), labels]), rtol=1e-12)
    np.testing.assert_allclose(
        losses.categorical_crossentropy(y, z, from_logits=True), -np.log(p[np.arange(n), labels]), rtol=1e-10
    )
    ys = y * 0.9 + 0.1 / k
    np.testing.assert_allclose(
        losses.categorical_crossentropy(y, p, label_smoothing=0.1), -(ys * np.log(p)).sum(1), rtol=1e-12
    )
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(labels, p), -np.log(p[np.arange(n), labels]))
    np.testing.assert_allclose(
        losses.sparse_categorical_crossentropy(labels[:, None], z, from_logits=True), -np.log(p[np.arange(n), labels])
    )
    t, q = rng.integers(0, 2, (n, 3)).astype(float), rng.uniform(0.01, 0.99, (n, 3))
    np.testing.assert_allclose(
        losses.binary_crossentropy(t, q), (-(t * np.log(q) + (1 - t) * np.log(1 - q))).mean(1), rtol=1e-12
    )
    a, b = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    np.testing.assert_allclose(losses.mean_squared_error(a, b), ((a - b) ** 2).mean(1))
    np.testing.assert_allclose(losses.mse(a, b), ((a - b) ** 2).mean(1))
    np.testing.assert_allclose(losses.mae(a, b), np.abs(a - b).mean(1))
    e = b - a
    np.testing.assert_allclose(
        losses.huber(a, b, delta=0.5), np.where(np.abs(e) <= 0.5, 0.5 * e**2, 0.5 * np.abs(e) - 0.125).mean(1)
    )
    np.testing.assert_allclose(losses.log_cosh(a, b), np.log(np.cosh(e)).mean(1), rtol=1e-10)
    assert losses.mean_squared_error(a[:, :1], b[:, 0]).shape == (n,)  # (n, 1) against (n,)


@pytest.mark.parametrize(
    "loss",
    [
        losses.CategoricalCrossentropy(),
        losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2),
        losses.BinaryCrossentropy(),
        losses.MeanSquaredError(),
        losses.MeanAbsoluteError(),
    ],
    ids=lambda loss: loss.name,
)
def test_builtin_call_and_reductions(rng, loss):
    n, k = 10, 3
    y = np.eye(k)[rng.integers(0, k, n)]
    p = _softmax(rng.normal(size=(n, k)))
    w = rng.uniform(0.1, 2, n)
    per = loss.call(y, p)
    assert per.shape == (n,)
    assert loss(y, p) == pytest.approx(per.mean(), rel=1e-5)  # the core's value
    assert loss(y, p, sample_weight=w) == pytest.approx((per * w).mean(), rel=1e-5)
    cls = type(loss)
    assert cls(reduction="sum", **{k: v for k, v in loss.get_config().items() if k not in ("name", "reduction")})(
        y, p, sample_weight=w
    ) == pytest.approx((per * w).sum())
    kw = {k: v for k, v in loss.get_config().items() if k != "reduction"}
    assert cls(reduction="mean_with_sample_weight", **kw)(y, p, sample_weight=w) == pytest.approx(
        (per * w).sum() / w.sum()
    )
    np.testing.assert_allclose(cls(reduction="none", **kw)(y, p, sample_weight=w), per * w)
    assert cls.from_config(loss.get_config()).get_config() == loss.get_config()


PYTHON_LOSSES = [
    losses.Huber(delta=0.7),
    losses.LogCosh(),
    losses.MeanSquaredLogarithmicError(),
    losses.MeanAbsolutePercentageError(),
    losses.KLDivergence(),
    losses.Poisson(),
    losses.Hinge(),
    losses.SquaredHinge(),
    losses.CategoricalHinge(),
    losses.CosineSimilarity(),
]


@pytest.mark.parametrize("loss", PYTHON_LOSSES, ids=lambda loss: loss.name)
def test_python_loss_gradients_match_finite_differences(rng, loss):
    n, k = 6, 4
    y = np.eye(k)[rng.integers(0, k, n)] * 0.8 + 0.05
    if isinstance(loss, (losses.Hinge, losses.SquaredHinge, losses.CategoricalHinge)):
        y = np.eye(k)[rng.integers(0, k, n)]
    p = rng.uniform(0.1, 0.9, (n, k))
    g = loss.gradient(y, p)
    h = 1e-6
    num = np.zeros_like(p)
    for i in range(n):
        for j in range(k):
            a, b = p.copy(), p.copy()
            a[i, j] += h
            b[i, j] -= h
            num[i, j] = (loss.call(y, a)[i] - loss.call(y, b)[i]) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)


# -- Python losses in training ----------------------------------------------------------------------
class PyMSE(losses.Loss):
    def call(self, y_true, y_pred):
        return np.mean((y_pred - y_true) ** 2, axis=-1)

    def gradient(self, y_true, y_pred):
        return 2.0 * (y_pred - y_true) / y_pred.shape[-1]


class PyCCE(losses.Loss):
    def call(self, y_true, y_pred):
        p = np.clip(y_pred / y_pred.sum(-1, keepdims=True), 1e-7, 1 - 1e-7)
        return -np.sum(y_true * np.log(p), axis=-1)

    def gradient(self, y_true, y_pred):
        return -y_true / y_pred + y_true.sum(-1, keepdims=True) / y_pred.sum(-1, keepdims=True)


def _model(activation="softmax", units=3, seed=0):
    model = cnnx.Sequential([Input((5,)), Dense(7, activation="tanh"), Dense(units, activation=activation)])
    wrng = np.random.default_rng(seed)
    model.set_weights([wrng.normal(scale=0.4, size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _train(loss, activation, x, y, w=None, optimizer=None, epochs=3):
    model = _model(activation, y.shape[1] if y.ndim > 1 else 3)
    model.compile(optimizer or cnnx.optimizers.SGD(learning_rate=0.1), loss)
    history = model.fit(x, y, sample_weight=w, batch_size=16, epochs=epochs, shuffle=False, verbose=0)
    return model.get_weights(), history.history["loss"]


@pytest.fixture
def data(rng):
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 64)]
    return x, y, rng.uniform(0.2, 2.0, 64).astype(np.float32)


@pytest.mark.parametrize("weighted", [False, True])
def test_python_mse_trains_to_the_builtin_weights(data, weighted):
    x, y, w = data
    w = w if weighted else None
    ref, ref_loss = _train("mse", "linear", x, y, w)
    got, got_loss = _train(PyMSE(), "linear", x, y, w)
    # same function, same gradient formula: float32 rounding only (12 SGD steps)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ref_loss, got_loss, rtol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_python_crossentropy_trains_like_the_fused_builtin(data, weighted):
    x, y, w = data
    w = w if weighted else None
    ref, ref_loss = _train("categorical_crossentropy", "softmax", x, y, w)
    # the built-in differentiates softmax + cross-entropy in one step (p - y); the Python loss
    # goes through the softmax's backward: equal up to float32 rounding
    got, got_loss = _train(PyCCE(), "softmax", x, y, w)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ref_loss, got_loss, rtol=1e-5)


def test_plain_function_gets_a_numeric_gradient(data):
    x, y, w = data

    def my_mse(y_true, y_pred):
        return np.mean(np.square(y_pred - y_true), axis=-1)

    ref, _ = _train("mse", "linear", x, y, w)
    got, _ = _train(my_mse, "linear", x, y, w)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # the library's own function forms map to the core losses
    assert losses.get(losses.categorical_crossentropy)._core is not None


def test_python_loss_with_sparse_labels_and_reduction_sum(data):
    x, y, _ = data
    labels = y.argmax(1).astype(np.float32)

    class SparseCE(losses.Loss):
        def call(self, y_true, y_pred):
            return losses.sparse_categorical_crossentropy(y_true, y_pred)

        def gradient(self, y_true, y_pred):
            g = np.zeros_like(y_pred, dtype=np.float64)
            idx = y_true.astype(np.int64)
            g[np.arange(len(idx)), idx] = -1.0 / y_pred[np.arange(len(idx)), idx]
            return g + 1.0 / y_pred.sum(-1, keepdims=True)

    ref, _ = _train("sparse_categorical_crossentropy", "softmax", x, labels)
    got, _ = _train(SparseCE(), "softmax", x, labels)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # reduction="sum": the loss (and gradient) is the batch size times larger
    ref_s, _ = _train("mse", "linear", x, y, optimizer=cnnx.optimizers.SGD(learning_rate=0.1))
    got_s, _ = _train(PyMSE(reduction="sum"), "linear", x, y, optimizer=cnnx.optimizers.SGD(learning_rate=0.1 / 16))
    for a, b in zip(ref_s, got_s):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_python_exception_propagates_and_model_stays_usable(data):
    x, y, _ = data

    class Flaky(PyMSE):
        fail = True

        def call(self, y_true, y_pred):
            if self.fail:
                raise KeyError("no such column")
            return super().call(y_true, y_pred)

    loss = Flaky()
    model = _model("linear")
    model.compile(cnnx.optimizers.SGD(0.1), loss, metrics=["mae"])
    before = model.get_weights()
    with pytest.raises(KeyError, match="no such column"):
        model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    loss.fail = False
    model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(model.evaluate(x, y, verbose=0)[0])


def test_bad_gradient_shape_and_values_are_reported(data):
    x, y, _ = data

    class WrongShape(PyMSE):
        def gradient(self, y_true, y_pred):
            return np.zeros(3)

    class NotPerSample(PyMSE):
        def call(self, y_true, y_pred):
            return np.float64(1.0)

    for loss, match in [(WrongShape(), "gradient"), (NotPerSample(), "per-sample values")]:
        model = _model("linear")
        model.compile("sgd", loss)
        with pytest.raises(ValueError, match=match):
            model.fit(x, y, epochs=1, verbose=0)


def test_loss_calling_its_own_model_is_refused_not_deadlocked(data):
    x, y, _ = data
    holder = {}

    class Reentrant(PyMSE):
        def call(self, y_true, y_pred):
            holder["model"].predict(x[:2], verbose=0)
            return super().call(y_true, y_pred)

    model = _model("linear")
    holder["model"] = model
    model.compile("sgd", Reentrant())
    with pytest.raises(RuntimeError, match="inside its own training"):
        model.fit(x, y, epochs=1, verbose=0)


def test_python_loss_while_other_threads_use_the_model(data):
    x, y, _ = data
    model = _model("linear")
    model.compile("sgd", PyMSE())
    errors = []

    def train():
        try:
            model.fit(x, y, batch_size=8, epochs=3, verbose=0)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=train)
    t.start()
    while t.is_alive():
        model.get_weights()
        model.predict(x[:4], verbose=0)
    t.join()
    assert not errors


def test_saving_a_custom_loss_needs_custom_objects(data, tmp_path):
    x, y, _ = data

    def my_loss(y_true, y_pred):
        return np.mean(np.abs(y_pred - y_true), axis=-1)

    model = _model("linear")
    model.compile("adam", my_loss, metrics=["mae"])
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "custom.cnnx"
    model.save(path)
    with pytest.raises(ValueError, match="custom_objects"):
        cnnx.models.load_model(path)
    assert not cnnx.models.load_model(path, compile=False).compiled
    loaded = cnnx.models.load_model(path, custom_objects={"my_loss": my_loss})
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))

    model.compile("adam", PyMSE())
    model.save(path)
    loaded = cnnx.models.load_model(path, custom_objects={"PyMSE": PyMSE})
    assert isinstance(loaded.loss, PyMSE)

    model.compile("adam", lambda t, p: np.mean((t - p) ** 2, axis=-1))
    with pytest.raises(ValueError, match="anonymous function"):
        model.save(path)


def test_plan_times_a_python_loss(data):
    model = _model("linear")
    model.compile("sgd", PyMSE())
    assert model.plan(batch_size=8, steps=1).seconds_per_step > 0


def test_get_and_errors():
    assert isinstance(losses.get("huber"), losses.Huber)
    assert isinstance(losses.get(losses.LogCosh), losses.LogCosh)
    assert isinstance(losses.get(lambda t, p: t), losses.LossFunctionWrapper)
    with pytest.raises(ValueError, match="reduction"):
        losses.MeanSquaredError(reduction="average")
    with pytest.raises(ValueError, match="Could not interpret loss"):
        losses.get("nope")
