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


# --- steps_per_epoch, generators, PyDataset, evaluate / predict steps (Keras 3 rules) ------------------
import math  # noqa: E402
import warnings  # noqa: E402

import cnnx  # noqa: E402
from cnnx.data import Dataset  # noqa: E402

XS = RNG.random((12, 3), dtype=np.float32)
YS = np.arange(12) % 3


def small():
    m = Sequential([Input((3,)), Dense(3, activation="softmax")])
    m.compile(optimizer=cnnx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return m


class StepsPerEpoch(cnnx.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.counts = []

    def on_epoch_begin(self, epoch, logs=None):
        self.counts.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.counts[-1] += 1


def trained_by_batches(order, batch_size=4):
    """A model trained with train_on_batch on the given batch indices of XS/YS, in order."""
    m = small()
    for b in order:
        m.train_on_batch(XS[b * batch_size : (b + 1) * batch_size], YS[b * batch_size : (b + 1) * batch_size])
    return m


def assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)


def test_steps_per_epoch_shorter_than_the_data_carries_on_across_epochs():
    # Keras' EpochIterator: 3 batches, 2 steps per epoch -> epoch 1: b0 b1; epoch 2: b2, then the
    # pass is used up (warning) and epoch 3 starts a new pass: b0 b1.
    cnnx.utils.set_random_seed(0)
    m, rec = small(), StepsPerEpoch()
    with pytest.warns(UserWarning, match="Your input ran out of data; interrupting training"):
        m.fit(XS, YS, batch_size=4, epochs=3, steps_per_epoch=2, shuffle=False, verbose=0, callbacks=[rec])
    assert rec.counts == [2, 1, 2]
    assert m.history.params["steps"] == 2
    cnnx.utils.set_random_seed(0)
    assert_same_weights(m, trained_by_batches([0, 1, 2, 0, 1]))


def test_steps_per_epoch_longer_than_the_data_is_truncated_with_keras_warning():
    rec = StepsPerEpoch()
    with pytest.warns(UserWarning, match="ran out of data"):
        small().fit(XS, YS, batch_size=4, epochs=2, steps_per_epoch=5, verbose=0, callbacks=[rec])
    assert rec.counts == [3, 3]


def test_steps_per_epoch_sets_the_array_batch_size_as_keras():
    m, rec = small(), StepsPerEpoch()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(XS, YS, epochs=2, steps_per_epoch=3, verbose=0, callbacks=[rec])  # batch_size = ceil(12 / 3)
    assert rec.counts == [3, 3] and m.optimizer.iterations == 6


def test_steps_per_epoch_over_a_repeated_dataset():
    ds = Dataset.from_tensor_slices((XS, YS)).batch(4).repeat()
    cnnx.utils.set_random_seed(0)
    m, rec = small(), StepsPerEpoch()
    m.fit(ds, epochs=2, steps_per_epoch=2, verbose=0, callbacks=[rec])
    assert rec.counts == [2, 2]
    cnnx.utils.set_random_seed(0)
    assert_same_weights(m, trained_by_batches([0, 1, 2, 0]))  # epoch 2 goes on where epoch 1 stopped
    with pytest.raises(
        ValueError, match=r"fit: When passing an infinitely repeating dataset, you must specify the `steps_per_epoch`"
    ):
        small().fit(ds, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"`validation_steps`"):
        small().fit(XS, YS, validation_data=ds, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"evaluate: .*`steps`"):
        small().evaluate(ds, verbose=0)
    assert small().predict(Dataset.from_tensor_slices(XS).batch(5).repeat(), steps=4, verbose=0).shape == (17, 3)


def test_generators_feed_fit_evaluate_predict():
    def endless():
        while True:
            for i in range(0, 12, 4):
                yield XS[i : i + 4], YS[i : i + 4]

    cnnx.utils.set_random_seed(0)
    m, rec = small(), StepsPerEpoch()
    m.fit(endless(), epochs=2, steps_per_epoch=3, verbose=0, callbacks=[rec])
    assert rec.counts == [3, 3]
    cnnx.utils.set_random_seed(0)
    assert_same_weights(m, trained_by_batches([0, 1, 2, 0, 1, 2]))
    loss = m.evaluate(endless(), steps=3, verbose=0)
    assert loss == pytest.approx(m.evaluate(XS, YS, batch_size=4, verbose=0))
    with pytest.warns(UserWarning, match="ran out of data"):  # Keras warns at a generator's end too
        out = m.predict((XS[i : i + 4] for i in range(0, 12, 4)), verbose=0)
    np.testing.assert_array_equal(out, m.predict(XS, verbose=0))
    # A finite generator without steps_per_epoch: one pass, then Keras' warning; it cannot restart.
    rec = StepsPerEpoch()
    with pytest.warns(UserWarning, match="ran out of data"):
        small().fit(((XS[i : i + 4], YS[i : i + 4]) for i in range(0, 12, 4)), epochs=2, verbose=0, callbacks=[rec])
    assert rec.counts == [3, 0]
    with pytest.raises(ValueError, match="sample_weight must be None"):
        small().fit(endless(), sample_weight=np.ones(12), steps_per_epoch=1, verbose=0)


class Batches(cnnx.utils.PyDataset):
    def __init__(self, batch_size=4, **kwargs):
        super().__init__(**kwargs)
        self.batch_size, self.epoch_ends, self.fetched = batch_size, 0, []

    def __len__(self):
        return math.ceil(len(XS) / self.batch_size)

    def __getitem__(self, idx):
        self.fetched.append(idx)
        lo = idx * self.batch_size
        return XS[lo : lo + self.batch_size], YS[lo : lo + self.batch_size]

    def on_epoch_end(self):
        self.epoch_ends += 1


def test_pydataset_feeds_fit_evaluate_predict():
    cnnx.utils.set_random_seed(0)
    m, data = small(), Batches()
    m.fit(data, epochs=2, shuffle=False, verbose=0)
    assert data.fetched == [0, 1, 2, 0, 1, 2]
    assert data.epoch_ends == 3  # Keras: once when fit starts (EpochIterator.reset), then after each epoch
    cnnx.utils.set_random_seed(0)
    assert_same_weights(m, trained_by_batches([0, 1, 2, 0, 1, 2]))
    shuffled = Batches()
    cnnx.utils.set_random_seed(1)
    small().fit(shuffled, epochs=3, verbose=0)  # fit's shuffle=True shuffles the batch order, as Keras
    assert sorted(shuffled.fetched) == sorted([0, 1, 2] * 3) and shuffled.fetched != [0, 1, 2] * 3
    threaded = Batches(workers=3, use_multiprocessing=True, max_queue_size=2)
    assert m.evaluate(threaded, verbose=0) == pytest.approx(m.evaluate(XS, YS, batch_size=4, verbose=0))
    np.testing.assert_array_equal(m.predict(Batches(workers=2), verbose=0), m.predict(XS, verbose=0))
    np.testing.assert_array_equal(m.predict(Batches(), steps=2, verbose=0), m.predict(XS[:8], verbose=0))


def test_pydataset_without_super_init_and_endless():
    class NoSuper(cnnx.utils.PyDataset):
        def __init__(self):
            pass

        def __len__(self):
            return 1

        def __getitem__(self, idx):
            return XS[:4], YS[:4]

    with pytest.warns(UserWarning, match=r"should call `super\(\).__init__\(\*\*kwargs\)`"):
        small().fit(NoSuper(), verbose=0)

    class Endless(cnnx.utils.PyDataset):
        num_batches = None

        def __getitem__(self, idx):
            return XS[:4], YS[:4]

    with pytest.raises(ValueError, match="steps_per_epoch"):
        small().fit(Endless(), verbose=0)
    m, rec = small(), StepsPerEpoch()
    m.fit(Endless(), steps_per_epoch=4, epochs=2, verbose=0, callbacks=[rec])
    assert rec.counts == [4, 4]

    class Bad(Batches):
        def __getitem__(self, idx):
            return "not a batch"

    with pytest.raises(ValueError, match=r"PyDataset.__getitem__\(\) must return a tuple or a dict"):
        small().fit(Bad(), verbose=0)


def test_evaluate_and_predict_steps_and_arguments():
    m = small()
    assert m.evaluate(XS, YS, batch_size=4, steps=2, verbose=0) == pytest.approx(
        m.evaluate(XS[:8], YS[:8], batch_size=4, verbose=0)
    )
    assert m.evaluate(XS, YS, verbose=0, return_dict=True).keys() == {"loss"}
    assert m.predict(XS, batch_size=5, steps=2, verbose=0).shape == (10, 3)
    assert m.predict(XS, steps=4, verbose=0).shape == (12, 3)  # batch size ceil(12 / 4) = 3
    with pytest.raises(ValueError, match=r"Arguments not recognized: \{'stepz': 2\}"):
        m.evaluate(XS, YS, stepz=2)
    with pytest.raises(TypeError, match=r"evaluate: expected steps to be None or an int >= 1, received steps=1.5"):
        m.evaluate(XS, YS, steps=1.5)
    with pytest.raises(
        ValueError, match=r"fit: expected steps_per_epoch to be None or an int >= 1, received steps_per_epoch=-1"
    ):
        m.fit(XS, YS, steps_per_epoch=-1)
    with pytest.raises(ValueError, match=r"fit: expected validation_batch_size to be a positive integer"):
        m.fit(XS, YS, validation_batch_size=0)
    with pytest.raises(
        ValueError, match=r"Expected `validation_freq` to be a list or int. Received: validation_freq=1.5"
    ):
        m.fit(XS, YS, validation_freq=1.5)


def test_validation_freq_steps_and_batch_size():
    m = small()
    h = m.fit(XS, YS, validation_data=(XS, YS), epochs=4, validation_freq=2, verbose=0).history
    assert len(h["loss"]) == 4 and len(h["val_loss"]) == 2
    h = small().fit(XS, YS, validation_data=(XS, YS), epochs=4, validation_freq=[1, 4], verbose=0).history
    assert len(h["val_loss"]) == 2

    class TestBatches(cnnx.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.sizes = []

        def on_test_begin(self, logs=None):
            self.sizes.append(0)

        def on_test_batch_end(self, batch, logs=None):
            self.sizes[-1] += 1

    rec = TestBatches()
    small().fit(
        XS, YS, batch_size=4, validation_data=(XS, YS), validation_batch_size=5, epochs=2, verbose=0, callbacks=[rec]
    )
    assert rec.sizes == [3, 3]  # ceil(12 / 5)
    # validation_steps: the same first batches every epoch (each validation starts over).
    seen = []
    val = Dataset.from_tensor_slices((XS, YS)).batch(2).map(lambda x, y: seen.append(float(x[0, 0])) or (x, y))
    rec = TestBatches()
    small().fit(XS, YS, validation_data=val, validation_steps=2, epochs=2, verbose=0, callbacks=[rec])
    assert rec.sizes == [2, 2] and seen[:2] == seen[2:4] == [float(XS[0, 0]), float(XS[2, 0])]
