"""Callbacks with Keras' hooks and semantics, driven by scripted metric values so each
behaviour is checked exactly."""

import csv
import math
import os
import signal

import numpy as np
import pytest

import cnnx
from cnnx import Sequential, callbacks
from cnnx.layers import Dense, Flatten, Input


def tiny_model():
    model = Sequential([Input((4, 4, 1)), Flatten(), Dense(3, activation="softmax")])
    model.compile(optimizer=cnnx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture
def data(rng):
    return rng.random((40, 4, 4, 1), dtype=np.float32), rng.integers(0, 3, 40)


class Script(callbacks.Callback):
    """Overwrites a logged metric with scripted values (it runs before the callback under test)
    and records the weights at the end of every epoch."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values, self.weights = key, values, []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            return lambda *args: self.calls.append(name)
        return super().__getattribute__(name)


def test_hooks_in_keras_order(data):
    rec = Recorder()
    tiny_model().fit(*data, batch_size=20, epochs=2, verbose=0, callbacks=[rec])
    epoch = ["on_epoch_begin"] + ["on_train_batch_begin", "on_train_batch_end"] * 2 + ["on_epoch_end"]
    assert rec.calls == ["on_train_begin", *epoch, *epoch, "on_train_end"]


def test_early_stopping_restores_best_weights(data):
    script = Script("val_loss", [1.0, 0.5, 0.7, 0.8, 0.9, 0.95])
    stop = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    model = tiny_model()
    history = model.fit(*data, epochs=6, verbose=0, validation_split=0.25, callbacks=[script, stop])
    assert len(history.history["loss"]) == 4  # epochs 0..3: no improvement for 2 epochs after epoch 1
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1
    for got, best in zip(model.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(got, best)
    assert not all(np.array_equal(a, b) for a, b in zip(script.weights[3], script.weights[1]))


def test_early_stopping_min_delta_and_mode(data):
    script = Script("val_accuracy", [0.5, 0.505, 0.509, 0.6, 0.6])
    stop = callbacks.EarlyStopping(monitor="val_accuracy", min_delta=0.01, patience=2)
    history = tiny_model().fit(*data, epochs=5, verbose=0, validation_split=0.25, callbacks=[script, stop])
    assert stop.mode == "max"
    assert len(history.history["loss"]) == 3  # +0.005 and +0.009 are below min_delta


def test_model_checkpoint_save_best_only(tmp_path, data):
    script = Script("val_loss", [0.9, 0.5, 0.7, 0.4])
    path = str(tmp_path / "best-{epoch:02d}.cnnx")
    ckpt = callbacks.ModelCheckpoint(path, save_best_only=True)
    model = tiny_model()
    model.fit(*data, epochs=4, verbose=0, validation_split=0.25, callbacks=[script, ckpt])
    assert sorted(os.listdir(tmp_path)) == ["best-01.cnnx", "best-02.cnnx", "best-04.cnnx"]
    restored = cnnx.models.load_model(tmp_path / "best-02.cnnx")
    for got, want in zip(restored.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(got, want)


def test_reduce_lr_on_plateau(data):
    script = Script("val_loss", [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    reduce = callbacks.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.03)
    model = tiny_model()
    history = model.fit(*data, epochs=7, verbose=0, validation_split=0.25, callbacks=[script, reduce])
    # lr logged at each epoch end before that epoch's decision: 0.1, 0.1, 0.1 -> 0.05 after epoch 2,
    # improvement at epoch 3, then two flat epochs -> 0.03 (the floor) after epoch 5.
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.03])
    assert model.optimizer.learning_rate == pytest.approx(0.03)


def test_csv_logger(tmp_path, data):
    path = tmp_path / "log.csv"
    tiny_model().fit(*data, epochs=3, verbose=0, validation_split=0.25, callbacks=[callbacks.CSVLogger(str(path))])
    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    tiny_model().fit(
        *data, epochs=1, verbose=0, validation_split=0.25, callbacks=[callbacks.CSVLogger(str(path), append=True)]
    )
    assert len(list(csv.reader(path.read_text().splitlines()))) == 5  # appended without a second header


def test_terminate_on_nan(data):
    class Poison(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                logs["loss"] = math.nan

    model = tiny_model()
    model.fit(*data, batch_size=4, epochs=3, verbose=0, callbacks=[Poison(), callbacks.TerminateOnNaN()])
    assert model.optimizer.iterations == 3


def test_learning_rate_scheduler(data):
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    history = tiny_model().fit(*data, epochs=3, verbose=0, callbacks=[sched])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    with pytest.raises(TypeError, match="callable"):
        callbacks.LearningRateScheduler(0.1)


def test_ctrl_c_stops_after_the_current_batch(data, capsys):
    class CtrlC(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 3:
                os.kill(os.getpid(), signal.SIGINT)  # arrives while this batch is being trained

    model = tiny_model()
    before = signal.getsignal(signal.SIGINT)
    history = model.fit(*data, batch_size=4, epochs=5, verbose=0, callbacks=[CtrlC()])
    assert model.optimizer.iterations == 4  # batches 0..3 completed, nothing after
    assert history.history == {}
    assert "interrupted" in capsys.readouterr().out
    assert model.predict(data[0]).shape == (40, 3)  # a usable model
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        callbacks.EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="factor"):
        callbacks.ReduceLROnPlateau(factor=1.5)
    with pytest.raises(TypeError, match="Callback instances"):
        tiny_model().fit(np.zeros((2, 4, 4, 1)), np.zeros(2), verbose=0, callbacks=["early"])
