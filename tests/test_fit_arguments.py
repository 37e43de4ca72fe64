"""fit / evaluate / predict argument checks: class_weight, initial_epoch, epochs, verbose,
validation_split, and zero or negative layer window arguments."""

from __future__ import annotations

import numpy as np
import pytest

from cnnx import Sequential
from cnnx.layers import AveragePooling2D, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D

RNG = np.random.default_rng(0)
X = RNG.random((12, 6, 6, 1), dtype=np.float32)
LABELS = np.arange(12) % 3
Y = np.eye(3, dtype=np.float32)[LABELS]


def model(units=3, loss="categorical_crossentropy"):
    m = Sequential([Input((6, 6, 1)), Flatten(), Dense(units, activation="softmax" if units > 1 else "sigmoid")])
    m.compile(optimizer="sgd", loss=loss)
    return m


# --- class_weight ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "class_weight, error, message",
    [
        ({-1: 100.0}, ValueError, r"fit: expected class_weight keys to be non-negative class indices, received key -1"),
        (
            {0: float("nan")},
            ValueError,
            r"fit: expected class_weight values to be finite non-negative numbers, "
            r"received class_weight\[0\]=nan",
        ),
        ({0: float("inf")}, ValueError, r"received class_weight\[0\]=inf"),
        ({0: -1.0}, ValueError, r"received class_weight\[0\]=-1.0"),
        ({1.0: 2.0}, TypeError, r"fit: expected class_weight keys to be int class indices, received key 1.0"),
        ({True: 2.0}, TypeError, r"received key True"),
        ({0: "2"}, TypeError, r"fit: expected class_weight values to be numbers, received class_weight\[0\]='2'"),
        ([1.0, 2.0], TypeError, r"fit: expected class_weight to be a dict"),
    ],
)
def test_class_weight_rejected(class_weight, error, message):
    with pytest.raises(error, match=message):
        model().fit(X, Y, epochs=1, verbose=0, class_weight=class_weight)


def test_class_weight_rejected_by_train_on_batch():
    with pytest.raises(ValueError, match=r"train_on_batch: expected class_weight keys .* received key -1"):
        model().train_on_batch(X, Y, class_weight={-1: 100.0})


def _one_step_loss(class_weight=None, sample_weight=None, y=Y, **kw):
    m = model(**kw)
    m.set_weights([np.full_like(w, 0.01 * (i + 1)) for i, w in enumerate(m.get_weights())])
    return m.fit(
        X, y, batch_size=12, epochs=1, shuffle=False, verbose=0, class_weight=class_weight, sample_weight=sample_weight
    ).history["loss"][0]


def test_class_weight_numpy_keys_unknown_and_huge_keys():
    """numpy int keys are accepted; keys of classes absent from y weigh nothing, as in Keras (a
    huge key must not size a lookup table); a class without a key weighs 1."""
    expected = _one_step_loss(sample_weight=np.where(LABELS == 2, 3.0, 1.0).astype(np.float32))
    got = _one_step_loss(class_weight={np.int64(2): 3.0, 7: 50.0, 10**12: 9.0})
    assert got == pytest.approx(expected, rel=1e-6)


def test_class_weight_rounds_labels_as_keras():
    """Keras rounds the label before looking it up: 0.9 is class 1, not class 0."""
    y = np.full((12, 1), 0.9, np.float32)
    loss = _one_step_loss(class_weight={0: 0.0}, y=y, units=1, loss="binary_crossentropy")
    assert loss > 0.1


# --- initial_epoch, epochs, verbose, validation_split -------------------------------------------------
@pytest.mark.parametrize(
    "kw, error, message",
    [
        (
            {"initial_epoch": -3},
            ValueError,
            r"fit: expected initial_epoch to be an int >= 0, received initial_epoch=-3",
        ),
        ({"initial_epoch": 1.5}, TypeError, r"received initial_epoch=1.5"),
        ({"epochs": True}, TypeError, r"fit: expected epochs to be an int >= 0, received epochs=True"),
        ({"epochs": -1}, ValueError, r"received epochs=-1"),
        ({"verbose": -1}, ValueError, r"fit: expected verbose to be 'auto', 0, 1 or 2, received verbose=-1"),
        ({"verbose": "silent"}, ValueError, r"received verbose='silent'"),
        ({"validation_split": "0.2"}, TypeError, r"fit: expected validation_split to be a float"),
        ({"validation_split": -0.2}, ValueError, r"expected validation_split in \(0, 1\), or 0 for none"),
        ({"validation_split": float("nan")}, ValueError, r"received validation_split=nan"),
    ],
)
def test_fit_numeric_arguments_rejected(kw, error, message):
    m = model()
    before = [w.copy() for w in m.get_weights()]
    kw = {"epochs": 1, "verbose": 0, **kw}
    with pytest.raises(error, match=message):
        m.fit(X, Y, **kw)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_evaluate_and_predict_verbose_rejected():
    m = model()
    with pytest.raises(ValueError, match=r"evaluate: expected verbose to be 'auto', 0, 1 or 2, received verbose=5"):
        m.evaluate(X, Y, verbose=5)
    with pytest.raises(ValueError, match=r"predict: expected verbose .* received verbose='no'"):
        m.predict(X, verbose="no")


def test_initial_epoch_counts_as_keras():
    """Epochs initial_epoch .. epochs - 1 run; initial_epoch >= epochs trains none."""
    m = model()
    assert m.fit(X, Y, epochs=4, initial_epoch=2, verbose=0).epoch == [2, 3]
    before = [w.copy() for w in m.get_weights()]
    assert m.fit(X, Y, epochs=3, initial_epoch=5, verbose=0).epoch == []
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert m.fit(X, Y, epochs=np.int64(1), initial_epoch=np.int32(0), verbose=False).epoch == [0]


# --- zero / negative window arguments ---------------------------------------------------------------
@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: MaxPooling2D(2, strides=0),
            r"MaxPooling2D '.*': expected positive strides, received strides=\(0, 0\)",
        ),
        (lambda: MaxPooling2D(2, strides=(2, 0)), r"expected positive strides, received strides=\(2, 0\)"),
        (lambda: AveragePooling2D(2, strides=0), r"AveragePooling2D '.*': expected positive strides"),
        (lambda: AveragePooling2D((0, 2)), r"expected positive pool_size, received pool_size=\(0, 2\)"),
        (lambda: MaxPooling2D(-2), r"expected positive pool_size, received pool_size=\(-2, -2\)"),
        (lambda: Conv2D(2, 3, strides=0), r"Conv2D '.*': expected positive strides, received strides=\(0, 0\)"),
        (lambda: Conv2D(2, 3, dilation_rate=(1, 0)), r"expected positive dilation_rate"),
        (
            lambda: Dropout(0.5, noise_shape=(None, -1, 1, 1)),
            r"Dropout '.*': expected noise_shape entries to be "
            r"positive or None, received noise_shape=\(None, -1, 1, 1\)",
        ),
    ],
)
def test_zero_or_negative_window_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_pooling_strides_none_means_pool_size():
    assert MaxPooling2D(3).strides == (3, 3)
    assert AveragePooling2D((2, 3), strides=None).strides == (2, 3)
