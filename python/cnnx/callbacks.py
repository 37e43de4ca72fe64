"""Callbacks with Keras' hooks. ``fit`` always adds ``History`` and, when verbose, ``ProgbarLogger``."""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

__all__ = [
    "BackupAndRestore",
    "Callback",
    "CallbackList",
    "CSVLogger",
    "EarlyStopping",
    "History",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]


def _make_parent_dirs(path: str) -> None:
    """Creates the missing folders of a file about to be written (Keras' ModelCheckpoint does)."""
    dirname = os.path.dirname(path)
    if dirname and not os.path.exists(dirname):
        os.makedirs(dirname, exist_ok=True)


def _improved(mode: str, current: float, reference: float, min_delta: float = 0.0) -> bool:
    """Whether a monitored value beats the reference by more than min_delta, in `mode`'s sense."""
    return current < reference - min_delta if mode == "min" else current > reference + min_delta


class Callback:
    """Base class: override any hook. ``self.model`` is set by ``fit`` / ``evaluate`` /
    ``predict``. As in Keras, ``on_train_batch_begin`` / ``_end`` call ``on_batch_begin`` /
    ``_end``, so overriding either name works."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_test_begin(self, logs: dict | None = None) -> None: ...
    def on_test_end(self, logs: dict | None = None) -> None: ...
    def on_predict_begin(self, logs: dict | None = None) -> None: ...
    def on_predict_end(self, logs: dict | None = None) -> None: ...


class CallbackList:
    """Fans each hook out to a list of callbacks, in order (keras.callbacks.CallbackList).
    ``add_history`` / ``add_progbar`` append a ``History`` / ``ProgbarLogger`` unless the list
    has one already, as Keras does; the model's ``history`` is the list's ``History``."""

    def __init__(
        self,
        callbacks: Any = None,
        model: Any = None,
        params: dict | None = None,
        add_history: bool = False,
        add_progbar: bool = False,
        who: str = "fit",
    ):
        if isinstance(callbacks, CallbackList):
            callbacks = callbacks.callbacks
        if callbacks is not None and not isinstance(callbacks, (list, tuple)):
            callbacks = [callbacks]
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"{who}: expected callbacks to be Callback instances, received {cb!r}")
        self._history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if add_progbar and not any(isinstance(cb, ProgbarLogger) for cb in self.callbacks):
            self.callbacks.append(ProgbarLogger(params.get("verbose", 1) if params else 1))
        self.model = model
        self.params = params or {}
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(self.params)
        if model is not None and self._history is not None:
            model.history = self._history

    @property
    def history(self) -> History | None:
        return self._history

    # Explicit methods for the per-batch hooks: they run on every step of fit.
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_batch_end(batch, logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        for cb in self.callbacks:
            cb.on_test_batch_begin(batch, logs)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        for cb in self.callbacks:
            cb.on_test_batch_end(batch, logs)

    def __getattr__(self, hook: str):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args: Any) -> None:
            for cb in self.callbacks:
                getattr(cb, hook)(*args)

        return call


class History(Callback):
    """Records the epoch logs: ``history.history["loss"]``, ``["val_accuracy"]``, ..."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at the start of each epoch from
    ``schedule(epoch, lr) -> new_lr`` (``keras.callbacks.LearningRateScheduler``)."""

    def __init__(self, schedule: Any, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: expected a callable schedule(epoch, lr), received {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        lr = self.schedule(epoch, float(self.model.optimizer.learning_rate))
        if isinstance(lr, bool) or not isinstance(lr, (int, float)):
            raise ValueError(f"LearningRateScheduler: the schedule must return a float, received {lr!r}")
        self.model.optimizer.learning_rate = float(lr)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(lr)}.")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


def _monitor_mode(monitor: str, mode: str, who: str) -> str:
    """Keras' rule: 'auto' maximises accuracy-like metrics and minimises everything else."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: expected mode 'auto', 'min' or 'max', received mode={mode!r}")
    if mode != "auto":
        return mode
    return "max" if ("acc" in monitor or monitor.startswith("fmeasure")) else "min"


def _monitored(logs: dict | None, monitor: str, who: str) -> float | None:
    value = (logs or {}).get(monitor)
    if value is None:
        import warnings

        warnings.warn(
            f"{who}: metric {monitor!r} is not in the logs (available: {sorted(logs or {})}); skipping this epoch",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return float(value)


class EarlyStopping(Callback):
    """Stops training when `monitor` has stopped improving (``keras.callbacks.EarlyStopping``);
    with restore_best_weights=True the model ends with the weights of its best epoch."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.mode = _monitor_mode(monitor, mode, "EarlyStopping")
        self.min_delta = abs(float(min_delta))
        self.baseline, self.restore_best_weights = baseline, bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)

    def _improved(self, current: float, reference: float) -> bool:
        return _improved(self.mode, current, reference, self.min_delta)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = float("inf") if self.mode == "min" else float("-inf")
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
            return
        if self.restore_best_weights and self.best_weights is None:  # a NaN first epoch: keep something
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Saves the model (or its weights) after each epoch, or every ``save_freq`` batches, or
    only when `monitor` improves (``keras.callbacks.ModelCheckpoint``). `filepath` may hold
    fields such as {epoch:02d}, {batch} (with an integer save_freq) and {val_loss:.4f}; missing
    folders are created. Each save is atomic (cnnx.saving)."""

    _primary_only = True  # with distribute=, only rank 0 runs it (prints or writes files)

    def __init__(
        self,
        filepath: Any,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: Any = "epoch",
        initial_value_threshold: float | None = None,
    ):
        super().__init__()
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)):
            raise ValueError(  # Keras' words
                f"Unrecognized save_freq: {save_freq}. Expected save_freq are 'epoch' or integer values"
            )
        if save_freq != "epoch" and save_freq < 1:
            raise ValueError(
                f"ModelCheckpoint: expected save_freq to be 'epoch' or an int >= 1, received {save_freq!r}"
            )
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = bool(save_best_only), bool(save_weights_only)
        self.save_freq = save_freq
        self.mode = _monitor_mode(monitor, mode, "ModelCheckpoint")
        default = float("inf") if self.mode == "min" else float("-inf")
        self.best = default if initial_value_threshold is None else float(initial_value_threshold)
        self._current_epoch = 0
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen: int | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._should_save_on_batch(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save_on_batch(self, batch: int) -> bool:
        # Keras' count (keras/src/callbacks/model_checkpoint.py): batch numbers restart each
        # epoch, so a batch number not above the last one starts a new count of batch + 1.
        if self.save_freq == "epoch":
            return False
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            add = batch + 1
        else:
            add = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _file_path(self, epoch: int, batch: int | None, logs: dict) -> str:
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {e}') from None

    def _save_model(self, epoch: int, batch: int | None, logs: dict | None) -> None:
        logs = logs or {}
        path = self._file_path(epoch, batch, logs)
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if current is None:
                return
            if not _improved(self.mode, current, self.best):
                return
            if self.verbose:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                    f"saving model to {path}"
                )
            self.best = current
        elif self.verbose:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        _make_parent_dirs(path)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class BackupAndRestore(Callback):
    """Backs up the weights and the epoch reached to ``backup_dir`` at the end of every epoch
    (or every ``save_freq`` batches); a ``fit`` started again with the same callback after an
    interruption restores them and resumes from the next epoch (``keras.callbacks.BackupAndRestore``).
    The backup is deleted when training ends normally (``delete_checkpoint``). cnnx writes the
    weights in its own format (``latest.weights.cnnx``), the metadata as Keras does
    (``training_metadata.json``); the optimizer's state is not backed up, as in Keras."""

    _primary_only = True  # with distribute=, only rank 0 runs it (prints or writes files)

    def __init__(
        self, backup_dir: Any, save_freq: Any = "epoch", double_checkpoint: bool = False, delete_checkpoint: bool = True
    ):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(  # Keras' words (and cnnx refuses 0 and negative counts)
                "Invalid value for argument `save_freq`. "
                f"Received: save_freq={save_freq}. Expected either 'epoch' or an integer value."
            )
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint, self.delete_checkpoint = bool(double_checkpoint), bool(delete_checkpoint)
        self._weights_path = os.path.join(self.backup_dir, "latest.weights.cnnx")
        self._metadata_path = os.path.join(self.backup_dir, "training_metadata.json")
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        import json

        for path in (self._weights_path, self._metadata_path):
            if not os.path.exists(path) and self.double_checkpoint and os.path.exists(path + ".bkp"):
                import shutil

                shutil.copyfile(path + ".bkp", path)
        if os.path.exists(self._weights_path):
            self.model.load_weights(self._weights_path)
        if os.path.exists(self._metadata_path):
            with open(self._metadata_path) as f:
                self.model._initial_epoch = int(json.load(f)["epoch"])

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.save_freq == "epoch":
            return
        add = batch + 1 if batch <= self._last_batch_seen else batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            self._save()

    def _save(self) -> None:
        import json
        import shutil

        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for path in (self._weights_path, self._metadata_path):
                if os.path.exists(path):
                    shutil.copyfile(path, path + ".bkp")
        self.model.save_weights(self._weights_path)
        tmp = self._metadata_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, f)
        os.replace(tmp, self._metadata_path)

    def on_train_end(self, logs: dict | None = None) -> None:
        import shutil

        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by `factor` when `monitor` has not improved for `patience`
    epochs (``keras.callbacks.ReduceLROnPlateau``)."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= float(factor) < 1.0:
            raise ValueError(f"ReduceLROnPlateau: expected 0 <= factor < 1, received factor={factor!r}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, float(factor), int(patience), verbose
        self.mode = _monitor_mode(monitor, mode, "ReduceLROnPlateau")
        self.min_delta, self.cooldown, self.min_lr = abs(float(min_delta)), int(cooldown), float(min_lr)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.best = float("inf") if self.mode == "min" else float("-inf")
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if _improved(self.mode, current, self.best, self.min_delta):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(self.model.optimizer.learning_rate)
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class CSVLogger(Callback):
    """Writes one CSV row per epoch: epoch, then the logs (``keras.callbacks.CSVLogger``)."""

    _primary_only = True  # with distribute=, only rank 0 runs it (prints or writes files)

    def __init__(self, filename: str, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename, self.sep, self.append = str(filename), separator, bool(append)
        self.keys: list[str] | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._has_header = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        _make_parent_dirs(self.filename)
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self.keys = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import csv

        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            self._writer = csv.writer(self._file, delimiter=self.sep)
            if not self._has_header:
                self._writer.writerow(["epoch", *self.keys])
        self._writer.writerow([epoch, *(logs.get(k, "NA") for k in self.keys)])
        self._file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._file.close()


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


def _format_logs(logs: dict) -> str:
    return " - ".join(
        f"{k}: {v:.4f}" for k, v in sorted(logs.items(), key=lambda kv: (kv[0].startswith("val_"), kv[0]))
    )


def _format_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s"
    return f"{seconds * 1000:.0f}ms"


class ProgbarLogger(Callback):
    """Keras-like progress: verbose=1 a bar redrawn in place (a final line when not a terminal),
    verbose=2 one line per epoch."""

    _primary_only = True  # with distribute=, only rank 0 runs it (prints or writes files)

    def __init__(self, verbose: int = 1, stream: Any = None):
        super().__init__()
        self.verbose = verbose
        self.stream = stream
        self._last_draw = 0.0

    @property
    def _out(self) -> Any:
        return self.stream or sys.stdout

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._seen = 0
        print(f"Epoch {epoch + 1}/{self.params.get('epochs', '?')}", file=self._out, flush=True)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._seen = batch + 1
        if self.verbose != 1 or not _isatty(self._out):
            return
        now = time.perf_counter()
        steps = self.params.get("steps") or 0  # None: a generator of unknown length
        if not steps:
            if now - self._last_draw >= 0.1:
                self._last_draw = now
                print(f"\r{batch + 1}/Unknown - {_format_logs(logs or {})}", end="", file=self._out, flush=True)
            return
        if now - self._last_draw < 0.1 and batch + 1 < steps:
            return
        self._last_draw = now
        done = batch + 1
        width = 20
        filled = int(width * done / max(steps, 1))
        bar = "━" * filled + " " * (width - filled)
        elapsed = now - self._start
        eta = elapsed / done * (steps - done)
        line = f"\r{done:>{len(str(steps))}}/{steps} {bar} {_format_time(eta)} - {_format_logs(logs or {})}"
        print(line, end="", file=self._out, flush=True)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        steps = self.params.get("steps") or self._seen
        elapsed = time.perf_counter() - self._start
        per_step = _format_time(elapsed / max(steps, 1)) + "/step"
        logs = logs or {}
        if self.verbose == 1:
            prefix = "\r" if _isatty(self._out) else ""
            print(
                f"{prefix}{steps}/{steps} {'━' * 20} {_format_time(elapsed)} {per_step} - {_format_logs(logs)}",
                file=self._out,
                flush=True,
            )
        else:
            print(
                f"{steps}/{steps} - {_format_time(elapsed)} - {per_step} - {_format_logs(logs)}",
                file=self._out,
                flush=True,
            )


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
