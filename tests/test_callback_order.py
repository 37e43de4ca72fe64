"""The order and logs of callback hooks in fit / evaluate / predict, against Keras 3.15.

Expected sequences are written from Keras' source (keras/src/backend/tensorflow/trainer.py,
Trainer.fit / evaluate / predict, and keras/src/callbacks/model_checkpoint.py for save_freq):
fit calls on_train_begin, then per epoch on_epoch_begin, on_train_batch_begin/_end per batch,
and, when validating, evaluate(..., callbacks=<fit's CallbackList>) which runs on_test_begin,
on_test_batch_begin/_end per batch and on_test_end(logs) before on_epoch_end(epoch, logs with
val_ keys); finally on_train_end(logs of the last epoch)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import cnnx
from cnnx import Sequential, callbacks
from cnnx.layers import Dense, Input

RNG = np.random.default_rng(3)
X = RNG.random((20, 3), dtype=np.float32)
Y = np.arange(20) % 2


def model():
    m = Sequential([Input((3,)), Dense(2, activation="softmax")])
    m.compile(optimizer=cnnx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


class Recorder(callbacks.Callback):
    """Records (hook, argument, copy of logs) for every hook."""

    HOOKS = [
        "on_train_begin",
        "on_train_end",
        "on_epoch_begin",
        "on_epoch_end",
        "on_train_batch_begin",
        "on_train_batch_end",
        "on_test_begin",
        "on_test_end",
        "on_test_batch_begin",
        "on_test_batch_end",
        "on_predict_begin",
        "on_predict_end",
        "on_predict_batch_begin",
        "on_predict_batch_end",
    ]

    def __init__(self):
        super().__init__()
        self.events = []
        for hook in self.HOOKS:
            setattr(self, hook, self._make(hook))

    def _make(self, hook):
        def record(*args, logs=None):
            if args and isinstance(args[-1], dict):
                *args, logs = args
            self.events.append((hook, *args, dict(logs) if logs is not None else None))

        return record

    @property
    def names(self):
        return [e[0] for e in self.events]


def test_fit_with_validation_calls_keras_hooks_in_keras_order():
    rec = Recorder()
    history = model().fit(
        X,
        Y,
        batch_size=8,
        epochs=2,
        validation_data=(X[:10], Y[:10]),
        validation_batch_size=4,
        verbose=0,
        callbacks=[rec],
    )
    train = ["on_train_batch_begin", "on_train_batch_end"] * 3  # ceil(20 / 8)
    test = ["on_test_begin", *["on_test_batch_begin", "on_test_batch_end"] * 3, "on_test_end"]  # ceil(10 / 4)
    epoch = ["on_epoch_begin", *train, *test, "on_epoch_end"]
    assert rec.names == ["on_train_begin", *epoch, *epoch, "on_train_end"]
    ends = [e for e in rec.events if e[0] == "on_epoch_end"]
    assert [e[1] for e in ends] == [0, 1]
    assert set(ends[-1][2]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # on_test_end gets evaluate's logs, without prefix; on_epoch_end the same values with val_.
    test_end = [e for e in rec.events if e[0] == "on_test_end"][-1][1]
    assert test_end == {"loss": ends[-1][2]["val_loss"], "accuracy": ends[-1][2]["val_accuracy"]}
    # on_train_end gets the last epoch's logs (Keras' training_logs), not {}.
    assert rec.events[-1] == ("on_train_end", ends[-1][2])
    assert history.history["val_loss"][-1] == ends[-1][2]["val_loss"]
    # Batch hooks: step numbers restart each epoch; batch logs carry the running loss.
    batch_ends = [e for e in rec.events if e[0] == "on_train_batch_end"]
    assert [e[1] for e in batch_ends] == [0, 1, 2, 0, 1, 2] and "loss" in batch_ends[0][2]
    assert [e[1] for e in rec.events if e[0] == "on_test_batch_begin"] == [0, 1, 2, 0, 1, 2]


def test_on_train_end_with_no_epoch_and_validation_freq():
    rec = Recorder()
    model().fit(X, Y, epochs=0, verbose=0, callbacks=[rec])
    assert rec.events == [("on_train_begin", {}), ("on_train_end", {})]
    rec = Recorder()
    model().fit(X, Y, batch_size=10, epochs=2, validation_data=(X, Y), validation_freq=2, verbose=0, callbacks=[rec])
    epoch1 = ["on_epoch_begin", *["on_train_batch_begin", "on_train_batch_end"] * 2, "on_epoch_end"]
    epoch2 = epoch1[:-1] + [
        "on_test_begin",
        *["on_test_batch_begin", "on_test_batch_end"] * 2,
        "on_test_end",
        "on_epoch_end",
    ]
    assert rec.names == ["on_train_begin", *epoch1, *epoch2, "on_train_end"]


def test_evaluate_and_predict_call_their_hooks():
    m = model()
    rec = Recorder()
    result = m.evaluate(X, Y, batch_size=8, verbose=0, callbacks=[rec], return_dict=True)
    assert rec.names == ["on_test_begin", *["on_test_batch_begin", "on_test_batch_end"] * 3, "on_test_end"]
    assert rec.events[-1] == ("on_test_end", result)
    assert rec.params == {"verbose": 0, "epochs": 1, "steps": 3} and rec.model is m
    rec = Recorder()
    out = m.predict(X, batch_size=8, verbose=0, callbacks=[rec])
    assert rec.names == ["on_predict_begin", *["on_predict_batch_begin", "on_predict_batch_end"] * 3, "on_predict_end"]
    batch_outputs = [e[2]["outputs"] for e in rec.events if e[0] == "on_predict_batch_end"]
    np.testing.assert_array_equal(np.concatenate(batch_outputs), out)
    np.testing.assert_array_equal(out, m.predict(X, verbose=0))


def test_keras_batch_aliases_and_user_history():
    class Old(callbacks.Callback):  # Keras: on_train_batch_* call on_batch_*
        def __init__(self):
            super().__init__()
            self.n = 0

        def on_batch_end(self, batch, logs=None):
            self.n += 1

    old, mine = Old(), callbacks.History()
    m = model()
    returned = m.fit(X, Y, batch_size=5, epochs=2, verbose=0, callbacks=[old, mine])
    assert old.n == 8
    assert returned is mine and m.history is mine and len(mine.history["loss"]) == 2


def test_model_checkpoint_save_freq_counts_batches_as_keras(tmp_path):
    # 5 batches per epoch, save_freq=3: Keras' count restarts from batch + 1 when the batch
    # number goes back to 0, so saves come after epoch 1 batch 3, epoch 2 batch 1 and batch 4.
    pattern = tmp_path / "new" / "sub" / "ckpt-{epoch}-{batch}.cnnx"
    ckpt = callbacks.ModelCheckpoint(pattern, save_freq=3, monitor="loss")
    model().fit(X, Y, batch_size=4, epochs=2, verbose=0, callbacks=[ckpt])
    saved = sorted(p.name for p in (tmp_path / "new" / "sub").iterdir())
    assert saved == ["ckpt-1-3.cnnx", "ckpt-2-1.cnnx", "ckpt-2-4.cnnx"]
    loaded = cnnx.models.load_model(tmp_path / "new" / "sub" / "ckpt-2-4.cnnx")
    assert loaded.predict(X, verbose=0).shape == (20, 2)
    every_epoch = callbacks.ModelCheckpoint(tmp_path / "a" / "b" / "e{epoch:02d}.cnnx")
    model().fit(X, Y, epochs=2, validation_data=(X, Y), verbose=0, callbacks=[every_epoch])
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["e01.cnnx", "e02.cnnx"]
    with pytest.raises(
        ValueError, match="Unrecognized save_freq: batch. Expected save_freq are 'epoch' or integer values"
    ):
        callbacks.ModelCheckpoint(tmp_path / "x.cnnx", save_freq="batch")
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.ModelCheckpoint(tmp_path / "x.cnnx", save_freq=0)
    bad = callbacks.ModelCheckpoint(tmp_path / "{nothing}.cnnx")
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        model().fit(X, Y, epochs=1, verbose=0, callbacks=[bad])


def test_csv_logger_creates_its_folder(tmp_path):
    path = tmp_path / "logs" / "run1" / "training.csv"
    model().fit(X, Y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(str(path))])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "accuracy", "loss"] and len(rows) == 3


def test_writing_your_own_callbacks_guide_runs(capsys):
    """keras-io's guide "Writing your own callbacks", with only the imports changed (and small
    random data instead of MNIST): every hook prints the keys of its logs."""
    keras = cnnx

    def get_model():
        model = keras.Sequential()
        model.add(keras.layers.Dense(1))
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.1), loss="mean_squared_error")
        return model

    rng = np.random.default_rng(0)
    x_train, y_train = rng.random((1000, 784), dtype=np.float32), rng.random(1000, dtype=np.float32)
    x_test, y_test = rng.random((1000, 784), dtype=np.float32), rng.random(1000, dtype=np.float32)

    class CustomCallback(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            print(f"Starting training; got log keys: {list(logs.keys())}")

        def on_train_end(self, logs=None):
            print(f"Stop training; got log keys: {list(logs.keys())}")

        def on_epoch_begin(self, epoch, logs=None):
            print(f"Start epoch {epoch} of training; got log keys: {list(logs.keys())}")

        def on_epoch_end(self, epoch, logs=None):
            print(f"End epoch {epoch} of training; got log keys: {list(logs.keys())}")

        def on_test_begin(self, logs=None):
            print(f"Start testing; got log keys: {list(logs.keys())}")

        def on_test_end(self, logs=None):
            print(f"Stop testing; got log keys: {list(logs.keys())}")

        def on_predict_begin(self, logs=None):
            print(f"Start predicting; got log keys: {list(logs.keys())}")

        def on_predict_end(self, logs=None):
            print(f"Stop predicting; got log keys: {list(logs.keys())}")

        def on_train_batch_begin(self, batch, logs=None):
            print(f"...Training: start of batch {batch}; got log keys: {list(logs.keys())}")

        def on_train_batch_end(self, batch, logs=None):
            print(f"...Training: end of batch {batch}; got log keys: {list(logs.keys())}")

        def on_test_batch_begin(self, batch, logs=None):
            print(f"...Evaluating: start of batch {batch}; got log keys: {list(logs.keys())}")

        def on_test_batch_end(self, batch, logs=None):
            print(f"...Evaluating: end of batch {batch}; got log keys: {list(logs.keys())}")

        def on_predict_batch_begin(self, batch, logs=None):
            print(f"...Predicting: start of batch {batch}; got log keys: {list(logs.keys())}")

        def on_predict_batch_end(self, batch, logs=None):
            print(f"...Predicting: end of batch {batch}; got log keys: {list(logs.keys())}")

    model = get_model()
    model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0, validation_split=0.5, callbacks=[CustomCallback()])
    res = model.evaluate(x_test, y_test, batch_size=128, verbose=0, callbacks=[CustomCallback()])
    res = model.predict(x_test, batch_size=128, callbacks=[CustomCallback()])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Starting training; got log keys: []"
    assert "...Training: end of batch 3; got log keys: ['loss']" in out
    assert "End epoch 0 of training; got log keys: ['loss', 'val_loss']" in out
    assert "Stop training; got log keys: ['loss', 'val_loss']" in out
    assert out.count("Stop testing; got log keys: ['loss']") == 2
    assert (
        out[-1] == "Stop predicting; got log keys: []"
        and "...Predicting: end of batch 7; got log keys: ['outputs']" in out
    )
    assert res.shape == (1000, 1)

    # The guide's steps_per_epoch / evaluate(steps=) run: 5 training steps, evaluation truncated
    # to the 8 batches there are, with Keras' warning.
    model = get_model()
    model.fit(x_train, y_train, batch_size=64, steps_per_epoch=5, verbose=0, callbacks=[CustomCallback()])
    with pytest.warns(UserWarning, match="ran out of data"):
        model.evaluate(x_test, y_test, batch_size=128, verbose=0, steps=20, callbacks=[CustomCallback()])
    out = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("...Training: end of batch") for line in out) == 5
    assert sum(line.startswith("...Evaluating: end of batch") for line in out) == 8


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    class Crash(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("power cut")

    class Epochs(callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seen = []

        def on_epoch_begin(self, epoch, logs=None):
            self.seen.append(epoch)

    reference = model()
    start = reference.get_weights()
    reference.fit(X, Y, batch_size=5, epochs=4, shuffle=False, verbose=0)

    backup_dir = tmp_path / "missing" / "backup"
    m = model()
    m.set_weights(start)
    with pytest.raises(RuntimeError, match="power cut"):
        m.fit(
            X,
            Y,
            batch_size=5,
            epochs=4,
            shuffle=False,
            verbose=0,
            callbacks=[callbacks.BackupAndRestore(backup_dir), Crash()],
        )
    assert sorted(p.name for p in backup_dir.iterdir()) == ["latest.weights.cnnx", "training_metadata.json"]
    resumed, epochs = model(), Epochs()  # a fresh process: new weights, the same backup folder
    resumed.fit(
        X,
        Y,
        batch_size=5,
        epochs=4,
        shuffle=False,
        verbose=0,
        callbacks=[callbacks.BackupAndRestore(backup_dir), epochs],
    )
    assert epochs.seen == [2, 3]
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not backup_dir.exists()  # deleted once training ends normally
    again = Epochs()
    resumed.fit(X, Y, epochs=1, verbose=0, callbacks=[again])
    assert again.seen == [0]
    with pytest.raises(ValueError, match="Empty `backup_dir` argument passed"):
        callbacks.BackupAndRestore("")
    with pytest.raises(ValueError, match="Invalid value for argument `save_freq`"):
        callbacks.BackupAndRestore(tmp_path, save_freq="batch")
