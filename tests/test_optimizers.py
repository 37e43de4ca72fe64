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
    assert Adam().get_config() == {
        "name": "adam",
        "learning_rate": pytest.approx(0.001),
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
    }
    assert SGD().learning_rate == pytest.approx(0.01)
    assert RMSprop().learning_rate == pytest.approx(0.001)


def test_learning_rate_is_settable():
    opt = Adam()
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1.0


def test_adagrad(rng):
    lr, init, eps = 0.1, 0.1, 1e-7
    model, x, y = tiny_model(cnnx.optimizers.Adagrad(learning_rate=lr), rng)
    history = run_steps(model, x, y, 3)
    acc = [np.full_like(w, init) for w in history[0][0]]
    for before, grads in history:
        expected = []
        for i, (w, g) in enumerate(zip(before, grads)):
            acc[i] = acc[i] + g * g
            expected.append(w - lr * g / np.sqrt(acc[i] + eps))
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_adamw_decays_weights_before_the_adam_step(rng):
    lr, wd, b1, b2, eps = 0.01, 0.1, 0.9, 0.999, 1e-7
    model, x, y = tiny_model(cnnx.optimizers.AdamW(learning_rate=lr, weight_decay=wd), rng)
    history = run_steps(model, x, y, 2)
    m = [np.zeros_like(w) for w in history[0][0]]
    v = [np.zeros_like(w) for w in history[0][0]]
    for t, (before, grads) in enumerate(history, start=1):
        expected = []
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        for i, (w, g) in enumerate(zip(before, grads)):
            w = w * (1 - lr * wd)
            m[i] = m[i] + (g - m[i]) * (1 - b1)
            v[i] = v[i] + (g * g - v[i]) * (1 - b2)
            expected.append(w - alpha * m[i] / (np.sqrt(v[i]) + eps))
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("option", ["clipvalue", "clipnorm", "global_clipnorm"])
def test_gradient_clipping(rng, option):
    lr, c = 1.0, 0.05
    model, x, y = tiny_model(SGD(learning_rate=lr, **{option: c}), rng)
    ((before, grads),) = run_steps(model, x, y, 1)
    if option == "clipvalue":
        clipped = [np.clip(g, -c, c) for g in grads]
    elif option == "clipnorm":
        clipped = [g * min(1.0, c / np.linalg.norm(g)) for g in grads]
    else:
        total = np.sqrt(sum((g**2).sum() for g in grads))
        clipped = [g * min(1.0, c / total) for g in grads]
    # The stored gradients are the clipped ones; the step used them.
    for got, want, w in zip(model.get_weights(), clipped, before):
        np.testing.assert_allclose(got, w - lr * want, rtol=1e-5, atol=1e-7)
    assert any(np.abs(g).max() > c for g in run_steps(tiny_model(SGD(lr), rng)[0], x, y, 1)[0][1])


def test_schedules_match_keras_formulas():
    from cnnx.optimizers import schedules

    e = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert e(0) == pytest.approx(0.1) and e(10) == pytest.approx(0.05) and e(5) == pytest.approx(0.1 * 0.5**0.5)
    assert schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)(19) == pytest.approx(0.05)
    p = schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [p(s) for s in (0, 10, 11, 20, 21, 100)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    c = schedules.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert c(0) == pytest.approx(1.0) and c(50) == pytest.approx(0.55) and c(100) == pytest.approx(0.1)
    assert c(500) == pytest.approx(0.1)
    w = schedules.CosineDecay(0.0, decay_steps=10, warmup_target=1.0, warmup_steps=5)
    assert w(0) == 0.0 and w(5) == pytest.approx(1.0) and w(10) == pytest.approx(0.5) and w(15) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="len\\(values\\) == len\\(boundaries\\) \\+ 1"):
        schedules.PiecewiseConstantDecay([1], [1.0])


def test_schedule_drives_the_step_size(rng):
    from cnnx.optimizers import schedules

    sched = schedules.PiecewiseConstantDecay([1], [0.5, 0.0])
    model, x, y = tiny_model(SGD(learning_rate=sched), rng)
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    after_two = model.get_weights()
    model.train_on_batch(x, y)  # step 2 > boundary 1: learning rate 0, nothing moves
    for a, b in zip(after_two, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="schedule"):
        model.optimizer.learning_rate = 0.1


def test_optimizer_options_round_trip_through_save(tmp_path, rng):
    from cnnx.optimizers import schedules

    opt = cnnx.optimizers.AdamW(learning_rate=schedules.CosineDecay(0.01, 100), weight_decay=0.01, clipnorm=1.0)
    model, x, y = tiny_model(opt, rng)
    model.train_on_batch(x, y)
    model.save(tmp_path / "m.cnnx")
    loaded = cnnx.models.load_model(tmp_path / "m.cnnx")
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert isinstance(loaded.optimizer, cnnx.optimizers.AdamW)


def test_invalid_options():
    with pytest.raises(ValueError, match="clipnorm"):
        SGD(clipnorm=-1.0)
    with pytest.raises(ValueError, match="cannot both be set"):
        Adam(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(ValueError, match="initial_accumulator_value"):
        cnnx.optimizers.Adagrad(initial_accumulator_value=-1.0)
    with pytest.raises(TypeError, match="learning_rate"):
        Adam(learning_rate="fast")
