"""kernel_regularizer / bias_regularizer: penalty in the loss, gradient in the update."""

import numpy as np
import pytest

import cnnx
from cnnx import regularizers
from cnnx.layers import Conv2D, Dense, Flatten, Input


def model_with(reg, rng):
    model = cnnx.Sequential(
        [
            Input((5, 5, 2)),
            Conv2D(3, 3, kernel_regularizer=reg),
            Flatten(),
            Dense(4, activation="softmax", kernel_regularizer=reg, bias_regularizer=reg),
        ]
    )
    model.compile(optimizer=cnnx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    weights = [w + rng.normal(scale=0.1, size=w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(weights)
    return model


@pytest.mark.parametrize("reg", [regularizers.L2(0.05), regularizers.L1(0.02), regularizers.L1L2(0.01, 0.03), "l2"])
def test_penalty_in_loss_and_gradient(rng, reg):
    x = rng.normal(size=(6, 5, 5, 2)).astype(np.float32)
    y = rng.integers(0, 4, 6)
    r = regularizers.get(reg)
    plain = model_with(None, rng)
    regd = model_with(reg, rng)
    regd.set_weights(plain.get_weights())
    w0 = plain.get_weights()
    # penalised weights: conv kernel (0), dense kernel (2) and dense bias (3); not the conv bias
    penalty = sum(r(w0[i]) for i in (0, 2, 3))
    assert regd.evaluate(x, y, batch_size=6, verbose=0) == pytest.approx(
        plain.evaluate(x, y, batch_size=6, verbose=0) + penalty, rel=1e-5
    )
    assert regd.train_on_batch(x, y) == pytest.approx(plain.train_on_batch(x, y) + penalty, rel=1e-5)
    for i, (a, b, w) in enumerate(zip(plain.get_weights(), regd.get_weights(), w0)):
        extra = 0.1 * (r.l1 * np.sign(w) + 2 * r.l2 * w) if i in (0, 2, 3) else 0.0
        np.testing.assert_allclose(b, a - extra, rtol=1e-4, atol=1e-6)


def test_config_round_trip(tmp_path, rng):
    model = model_with(regularizers.L2(0.001), rng)
    model.save(tmp_path / "r.cnnx")
    loaded = cnnx.models.load_model(tmp_path / "r.cnnx")
    assert loaded.layers[0].get_config()["kernel_regularizer"] == {"class_name": "L2", "config": {"l2": 0.001}}
    x = rng.normal(size=(3, 5, 5, 2)).astype(np.float32)
    y = rng.integers(0, 4, 3)
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))


def test_bad_regularizers():
    with pytest.raises(ValueError, match="regularizer identifier"):
        Dense(2, kernel_regularizer="l3")
    with pytest.raises(ValueError, match="l2 >= 0"):
        regularizers.L2(-1.0)
