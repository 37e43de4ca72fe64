"""Callbacks with Keras' hooks. ``fit`` always adds ``History`` and, when verbose, ``ProgbarLogger``."""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["Callback", "CallbackList", "History", "LearningRateScheduler", "ProgbarLogger"]


class Callback:
    """Base class: override any hook. ``self.model`` is set by ``fit``."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_begin(self, logs: dict | None = None) -> None: ...
    def on_test_end(self, logs: dict | None = None) -> None: ...


class CallbackList:
    """Fans each hook out to a list of callbacks, in order."""

    def __init__(self, callbacks: list, model: Any, params: dict):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: expected callbacks to be Callback instances, received {cb!r}")
            cb.set_model(model)
            cb.set_params(params)

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


def _format_logs(logs: dict) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in sorted(logs.items(), key=lambda kv: (kv[0].startswith("val_"), kv[0])))


def _format_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s"
    return f"{seconds * 1000:.0f}ms"


class ProgbarLogger(Callback):
    """Keras-like progress: verbose=1 a bar redrawn in place (a final line when not a terminal),
    verbose=2 one line per epoch."""

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
        print(f"Epoch {epoch + 1}/{self.params.get('epochs', '?')}", file=self._out, flush=True)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.verbose != 1 or not _isatty(self._out):
            return
        now = time.perf_counter()
        steps = self.params.get("steps", 0)
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
        steps = self.params.get("steps", 0)
        elapsed = time.perf_counter() - self._start
        per_step = _format_time(elapsed / max(steps, 1)) + "/step"
        logs = logs or {}
        if self.verbose == 1:
            prefix = "\r" if _isatty(self._out) else ""
            print(f"{prefix}{steps}/{steps} {'━' * 20} {_format_time(elapsed)} {per_step} - {_format_logs(logs)}",
                  file=self._out, flush=True)
        else:
            print(f"{steps}/{steps} - {_format_time(elapsed)} - {per_step} - {_format_logs(logs)}",
                  file=self._out, flush=True)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
