"""fit/evaluate beyond the article's network: binary and regression losses, Keras' choice of
accuracy, top-k accuracy, sample and class weights."""

import numpy as np
import pytest

import cnnx
from cnnx import Sequential
from cnnx.layers import Conv2D, Dense, Flatten, Input


@pytest.fixture
def blobs(rng):
    """Two separable classes of 6x6 one-channel images ("good" dim, "defective" bright)."""
    x = rng.random((200, 6, 6, 1), dtype=np.float32) * 0.5
    y = rng.integers(0, 2, 200)
    x[y == 1] += 0.5
    return x, y.astype(np.float32)


def test_binary_classifier_with_sigmoid(blobs):
    x, y = blobs
    cnnx.utils.set_random_seed(0)
    model = Sequential([Input((6, 6, 1)), Conv2D(4, 3, activation="relu"), Flatten(), Dense(1, activation="sigmoid")])
    model.compile(optimizer=cnnx.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=20, epochs=5, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    loss, acc = model.evaluate(x, y, verbose=0)
    p = model.predict(x)[:, 0]
    assert acc == pytest.approx(((p > 0.5) == (y > 0.5)).mean())  # binary_accuracy, as Keras picks
    ref = -(y * np.log(np.clip(p, 1e-7, 1)) + (1 - y) * np.log(np.clip(1 - p, 1e-7, 1))).mean()
    assert loss == pytest.approx(ref, rel=1e-4)


def test_binary_from_logits_threshold_is_zero(blobs):
    x, y = blobs
    model = Sequential([Input((6, 6, 1)), Flatten(), Dense(1)])
    model.compile(optimizer="adam", loss=cnnx.losses.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    _, acc = model.evaluate(x, y, verbose=0)
    assert acc == pytest.approx(((model.predict(x)[:, 0] > 0) == (y > 0.5)).mean())


def test_regression_with_mse(rng):
    x = rng.normal(size=(256, 3)).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    model = Sequential([Input((3,)), Dense(1)])
    model.compile(optimizer=cnnx.optimizers.SGD(0.1), loss="mse", metrics=[])
    history = model.fit(x, y, batch_size=32, epochs=20, verbose=0)
    assert history.history["loss"][-1] < 1e-4
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel[:, 0], [1.5, -2.0, 0.5], atol=1e-2)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(((model.predict(x) - y) ** 2).mean()), rel=1e-4)


def test_top_k_accuracy(rng):
    x = rng.normal(size=(64, 8)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    model = Sequential([Input((8,)), Dense(10, activation="softmax")])
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", "sparse_top_k_categorical_accuracy"],
    )
    logs = model.evaluate(x, labels, batch_size=16, verbose=0, return_dict=True)
    p = model.predict(x)
    higher = (p > p[np.arange(64), labels][:, None]).sum(axis=1)
    assert logs["sparse_top_k_categorical_accuracy"] == pytest.approx((higher < 5).mean())
    assert logs["accuracy"] == pytest.approx((p.argmax(1) == labels).mean())


def test_sample_weight_in_evaluate(rng):
    x = rng.normal(size=(30, 8)).astype(np.float32)
    labels = rng.integers(0, 3, 30)
    w = rng.random(30).astype(np.float32)
    model = Sequential([Input((8,)), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    p = model.predict(x).astype(np.float64)
    want = float((-np.log(p[np.arange(30), labels]) * w).sum() / 30)
    assert model.evaluate(x, labels, sample_weight=w, batch_size=30, verbose=0) == pytest.approx(want, rel=1e-5)


def test_class_weight_equals_sample_weight(rng):
    x = rng.normal(size=(60, 8)).astype(np.float32)
    labels = rng.integers(0, 3, 60)
    class_weight = {0: 0.2, 1: 1.0, 2: 3.0}
    results = []
    for kwargs in (
        {"class_weight": class_weight},
        {"sample_weight": np.array([class_weight[c] for c in labels], np.float32)},
    ):
        cnnx.utils.set_random_seed(4)
        model = Sequential([Input((8,)), Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, labels, batch_size=10, epochs=2, verbose=0, validation_split=0.2, **kwargs)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_weight_errors(rng):
    x = rng.normal(size=(10, 8)).astype(np.float32)
    labels = rng.integers(0, 3, 10)
    model = Sequential([Input((8,)), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="not both"):
        model.fit(x, labels, class_weight={0: 1}, sample_weight=np.ones(10), verbose=0)
    with pytest.raises(ValueError, match=r"expected sample_weight of shape \(10,\), received \(9,\)"):
        model.fit(x, labels, sample_weight=np.ones(9), verbose=0)
    with pytest.raises(ValueError, match="non-negative"):
        model.fit(x, labels, sample_weight=-np.ones(10), verbose=0)
    with pytest.raises(ValueError, match="mix binary and categorical"):
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["binary_accuracy", "categorical_accuracy"])


def test_saved_binary_model_round_trips(tmp_path, blobs):
    x, y = blobs
    model = Sequential([Input((6, 6, 1)), Flatten(), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss=cnnx.losses.BinaryCrossentropy(label_smoothing=0.1), metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "b.cnnx")
    loaded = cnnx.models.load_model(tmp_path / "b.cnnx")
    assert loaded.loss.get_config() == model.loss.get_config()
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
