"""Keras 3's ``PyDataset`` (``keras.utils.PyDataset``, alias ``Sequence``): a dataset written as
a Python class with ``__len__`` (batches per epoch, or None through ``num_batches`` for an
endless one) and ``__getitem__(index)`` returning a whole batch ``(x, y)``.

``workers``, ``use_multiprocessing`` and ``max_queue_size`` are accepted as in Keras. With
``workers > 1`` fit reads batches ahead in that many threads, ``max_queue_size`` at most, and
uses them in index order; ``use_multiprocessing=True`` runs them in threads too (cnnx starts no
processes), which helps when ``__getitem__`` spends its time in NumPy, Pillow or file I/O.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

__all__ = ["PyDataset", "Sequence"]


class PyDataset:
    """Base class for a dataset written in Python; see the module docstring.

    Example::

        class Batches(cnnx.utils.PyDataset):
            def __init__(self, x, y, batch_size, **kwargs):
                super().__init__(**kwargs)
                self.x, self.y, self.batch_size = x, y, batch_size

            def __len__(self):
                return math.ceil(len(self.x) / self.batch_size)

            def __getitem__(self, idx):
                lo = idx * self.batch_size
                return self.x[lo : lo + self.batch_size], self.y[lo : lo + self.batch_size]
    """

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self) -> None:
        warn = False
        for attr, default in (("_workers", 1), ("_use_multiprocessing", False), ("_max_queue_size", 10)):
            if not hasattr(self, attr):
                setattr(self, attr, default)
                warn = True
        if warn:
            warnings.warn(  # Keras' words
                "Your `PyDataset` class should call `super().__init__(**kwargs)` in its constructor. "
                "`**kwargs` can include `workers`, `use_multiprocessing`, `max_queue_size`. Do not pass "
                "these arguments to `fit()`, as they will be ignored.",
                stacklevel=3,
            )

    @property
    def workers(self) -> int:
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    @property
    def use_multiprocessing(self) -> bool:
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        self._use_multiprocessing = value

    @property
    def max_queue_size(self) -> int:
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = value

    def __getitem__(self, index: int) -> Any:
        """The batch at position ``index``."""
        raise NotImplementedError

    def __iter__(self) -> Any:
        n = self.num_batches
        for index in range(n) if n is not None else itertools.count():
            yield self[index]

    @property
    def num_batches(self) -> int | None:
        """Batches per epoch, or None for an endless dataset (fit then needs steps_per_epoch)."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(
            "You need to implement the `num_batches` property:\n\n@property\ndef num_batches(self):\n  return ..."
        )

    def on_epoch_begin(self) -> None:
        """Called at the start of every epoch."""

    def on_epoch_end(self) -> None:
        """Called at the end of every epoch."""


Sequence = PyDataset  # keras.utils.Sequence
