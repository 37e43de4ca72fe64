"""Real Keras 3 (TensorFlow backend) reading cnnx's files and cnnx reading Keras': the article's
network, the exercise's (LeakyReLU, Dropout), a small residual network (functional, Add) and
one with BatchNormalization, trained briefly on one side, saved, loaded on the other: the
predictions agree within 1e-5. Then every layer class cnnx has, through Keras both ways.

Needs keras==3.15.1, tensorflow-cpu and h5py (pip install cnnx[interop-test]); skipped without.
TensorFlow is imported once, here; the models are small so the module runs in seconds."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import skip_interop_if_disabled

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
skip_interop_if_disabled()
pytest.importorskip("h5py")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from test_keras_files_h5 import IMAGE, every_layer_class, inputs, model_with  # noqa: E402

import cnnx  # noqa: E402

TOL = 1e-5

# Keras 3.15 on TensorFlow 2.21 converts its variables with np.array(x) while saving, which
# NumPy 2 flags in TensorFlow's __array__ (a third-party deprecation, not cnnx's).
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def _article(lib):
    L = lib.layers
    return lib.Sequential(
        [
            lib.Input((28, 28, 1)),
            L.Conv2D(32, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Conv2D(64, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Conv2D(128, 3, activation="relu"),
            L.Flatten(),
            L.Dense(100, activation="relu"),
            L.Dense(10, activation="softmax"),
        ]
    )


def _exercise(lib):
    L = lib.layers
    return lib.Sequential(
        [
            lib.Input((28, 28, 1)),
            L.Conv2D(16, 3),
            L.LeakyReLU(negative_slope=0.1),
            L.MaxPooling2D(),
            L.Conv2D(32, 3),
            L.LeakyReLU(negative_slope=0.1),
            L.MaxPooling2D(),
            L.Dropout(0.25),
            L.Flatten(),
            L.Dense(64),
            L.LeakyReLU(negative_slope=0.1),
            L.Dropout(0.5),
            L.Dense(10, activation="softmax"),
        ]
    )


def _residual(lib):
    L = lib.layers
    inputs = lib.Input((28, 28, 1))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    y = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = L.Conv2D(8, 3, padding="same")(y)
    x = L.Activation("relu")(L.Add()([x, y]))
    x = L.MaxPooling2D()(x)
    x = L.GlobalAveragePooling2D()(x)
    return lib.Model(inputs, L.Dense(10, activation="softmax")(x))


def _batchnorm(lib):
    L = lib.layers
    return lib.Sequential(
        [
            lib.Input((28, 28, 1)),
            L.Conv2D(8, 3, use_bias=False),
            L.BatchNormalization(),
            L.ReLU(),
            L.MaxPooling2D(),
            L.Conv2D(16, 3),
            L.BatchNormalization(momentum=0.9),
            L.Activation("relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(10, activation="softmax"),
        ]
    )


NETWORKS = {"article": _article, "exercise": _exercise, "residual": _residual, "batchnorm": _batchnorm}


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    return x, y


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=TOL)


@pytest.fixture(autouse=True)
def _fresh_keras():
    keras.utils.clear_session()
    yield


@pytest.mark.parametrize("net", NETWORKS)
def test_keras_trained_model_loads_in_cnnx(tmp_path, net):
    keras.utils.set_random_seed(1)
    model = NETWORKS[net](keras)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "k.keras")
    ours = cnnx.models.load_model(tmp_path / "k.keras")
    xt, _ = _data(8, seed=1)
    _close(ours.predict(xt, verbose=0), model.predict(xt, verbose=0))
    assert ours.compiled and isinstance(ours.optimizer, cnnx.optimizers.Adam)
    assert ours.optimizer.iterations == int(model.optimizer.iterations.numpy())
    # the legacy .h5 Keras 3 still writes
    model.save(tmp_path / "k.h5")
    _close(cnnx.models.load_model(tmp_path / "k.h5").predict(xt, verbose=0), model.predict(xt, verbose=0))
    # and Keras' weights file, into a cnnx model of the same architecture
    model.save_weights(tmp_path / "k.weights.h5")
    fresh = NETWORKS[net](cnnx)
    fresh.load_weights(tmp_path / "k.weights.h5")
    _close(fresh.predict(xt, verbose=0), model.predict(xt, verbose=0))


@pytest.mark.parametrize("net", NETWORKS)
def test_cnnx_trained_model_loads_in_keras(tmp_path, net):
    cnnx.utils.set_random_seed(1)
    model = NETWORKS[net](cnnx)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    xt, _ = _data(8, seed=1)
    expected = model.predict(xt, verbose=0)
    model.save(tmp_path / "c.keras")
    theirs = keras.models.load_model(tmp_path / "c.keras")
    _close(theirs.predict(xt, verbose=0), expected)
    assert int(theirs.optimizer.iterations.numpy()) == model.optimizer.iterations == 4
    model.save(tmp_path / "c.h5")
    _close(keras.models.load_model(tmp_path / "c.h5").predict(xt, verbose=0), expected)
    model.save_weights(tmp_path / "c.weights.h5")
    fresh = NETWORKS[net](keras)
    fresh.load_weights(tmp_path / "c.weights.h5")
    _close(fresh.predict(xt, verbose=0), expected)


def test_optimizer_state_carries_over_to_keras(tmp_path):
    """Saved mid-training by cnnx, Adam's step count and moments are Keras' after loading, and
    back."""
    cnnx.utils.set_random_seed(2)
    model = _batchnorm(cnnx)
    model.compile(optimizer=cnnx.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    x, y = _data(32)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    model.save(tmp_path / "mid.keras")
    theirs = keras.models.load_model(tmp_path / "mid.keras")
    _, slots, iterations = model._core.snapshot()
    opt = theirs.optimizer
    assert int(opt.iterations.numpy()) == iterations == 2
    assert len(theirs.trainable_variables) == len(slots)
    for m, v, (m_ours, v_ours) in zip(opt._momentums, opt._velocities, slots):
        np.testing.assert_array_equal(m.numpy(), m_ours)
        np.testing.assert_array_equal(v.numpy(), v_ours)
    theirs.save(tmp_path / "back.keras")
    back = cnnx.models.load_model(tmp_path / "back.keras")
    for per_a, per_b in zip(back._core.snapshot()[1], slots):
        for a, b in zip(per_a, per_b):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("class_name", every_layer_class())
def test_every_layer_class_through_keras(tmp_path, class_name):
    ours = model_with(class_name)
    x = inputs()
    expected = ours.predict(x, verbose=0)
    ours.save(tmp_path / "c.keras")
    theirs = keras.models.load_model(tmp_path / "c.keras")
    _close(theirs.predict(x, verbose=0), expected)
    theirs.save(tmp_path / "k.keras")
    back = cnnx.models.load_model(tmp_path / "k.keras")
    _close(back.predict(x, verbose=0), expected)
    assert back.get_config()["layers"][1]["class_name"] == ours.get_config()["layers"][1]["class_name"]


def test_keras_layer_cnnx_lacks_is_named(tmp_path):
    inputs_ = keras.Input(IMAGE)
    out = keras.layers.Dense(2)(keras.layers.LayerNormalization(name="norm")(inputs_))
    keras.Model(inputs_, out).save(tmp_path / "ln.keras")
    with pytest.raises(ValueError, match=r"ln\.keras.*layer 'norm' is a Keras LayerNormalization layer, which cnnx"):
        cnnx.models.load_model(tmp_path / "ln.keras")


def test_nested_keras_model(tmp_path):
    keras.utils.set_random_seed(3)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu")], name="inner")
    inputs_ = keras.Input((4,))
    outer = keras.Model(inputs_, keras.layers.Dense(2)(inner(inputs_)))
    outer.save(tmp_path / "nested.keras")
    ours = cnnx.models.load_model(tmp_path / "nested.keras")
    x = np.random.default_rng(4).normal(size=(5, 4)).astype(np.float32)
    _close(ours.predict(x, verbose=0), outer.predict(x, verbose=0))
    ours.save(tmp_path / "back.keras")
    _close(keras.models.load_model(tmp_path / "back.keras").predict(x, verbose=0), outer.predict(x, verbose=0))
