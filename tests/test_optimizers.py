"""Optimizer steps against Keras 3's documented update formulas, in numpy."""

import numpy as np
import pytest

import cnnx
from cnnx.layers import Dense, Input
from cnnx.optimizers import SGD, Adam, RMSprop


def tiny_model(optimizer, rng):
    model = cnnx.Sequential([Input((5,)), Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    x = rng.normal(size=(4, 5)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 2, 1, 2]]
    return model, x, y


def run_steps(model, x, y, steps):
    """Weights before each step and the gradients that step used."""
    history = []
    for _ in range(steps):
        before = [w.astype(np.float64) for w in model.get_weights()]
        model.train_on_batch(x, y)
        grads = [g.astype(np.float64) for g in model.layers[0]._core.get_gradients()]
        history.append((before, grads))
    return history


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd(rng, momentum, nesterov):
    lr = 0.1
    model, x, y = tiny_model(SGD(learning_rate=lr, momentum=momentum, nesterov=nesterov), rng)
    history = run_steps(model, x, y, 3)
    vel = [np.zeros_like(w) for w in history[0][0]]
    for before, grads in history:
        expected = []
        for i, (w, g) in enumerate(zip(before, grads)):
            if momentum:
                vel[i] = momentum * vel[i] - lr * g
                expected.append(w + (momentum * vel[i] - lr * g if nesterov else vel[i]))
            else:
                expected.append(w - lr * g)
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_adam(rng):
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    model, x, y = tiny_model(Adam(learning_rate=lr), rng)
    history = run_steps(model, x, y, 4)
    m = [np.zeros_like(w) for w in history[0][0]]
    v = [np.zeros_like(w) for w in history[0][0]]
    for t, (before, grads) in enumerate(history, start=1):
        expected = []
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        for i, (w, g) in enumerate(zip(before, grads)):
            m[i] = m[i] + (g - m[i]) * (1 - b1)
            v[i] = v[i] + (g * g - v[i]) * (1 - b2)
            expected.append(w - alpha * m[i] / (np.sqrt(v[i]) + eps))
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert model.optimizer.iterations == 4


def test_rmsprop(rng):
    lr, rho, eps = 0.01, 0.9, 1e-7
    model, x, y = tiny_model(RMSprop(learning_rate=lr), rng)
    history = run_steps(model, x, y, 3)
    v = [np.zeros_like(w) for w in history[0][0]]
    for before, grads in history:
        expected = []
        for i, (w, g) in enumerate(zip(before, grads)):
            v[i] = rho * v[i] + (1 - rho) * g * g
            expected.append(w - lr * g / np.sqrt(v[i] + eps))
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_keras_defaults():
    assert Adam().get_config() == {"name": "adam", "learning_rate": pytest.approx(0.001), "beta_1": 0.9,
                                   "beta_2": 0.999, "epsilon": 1e-7}
    assert SGD().learning_rate == pytest.approx(0.01)
    assert RMSprop().learning_rate == pytest.approx(0.001)


def test_learning_rate_is_settable():
    opt = Adam()
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1.0
