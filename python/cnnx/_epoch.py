"""Which batches each epoch of fit / evaluate / predict sees: Keras 3's EpochIterator rules
(keras/src/trainers/epoch_iterator.py, Keras 3.15), over a ``_Source`` that makes one pass of
prepared batches at a time.

- No ``steps_per_epoch``: an epoch is one full pass; a source of unknown length (a generator,
  a filtered dataset) runs until it is exhausted, with Keras' "ran out of data" warning.
- ``steps_per_epoch``: an epoch is that many batches. The pass carries on across epochs
  (epoch 2 starts where epoch 1 stopped) and a new pass starts once the source's known number
  of batches is used up; an epoch that would go beyond it stops there, with the warning. So
  ``steps_per_epoch`` larger than the data truncates, and over a ``repeat()``-ed dataset it
  makes epochs of any length.

Unlike Keras with TensorFlow, the next batch is fetched before ``on_*_batch_begin``, so a pass
that runs out never leaves a batch begun and not ended (Keras' JAX/NumPy backends do the same).
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import random
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

_RAN_OUT = (
    "Your input ran out of data; interrupting training. Make sure that your dataset or generator "
    "can generate at least `steps_per_epoch * epochs` batches. You may need to use the `.repeat()` "
    "function when building your dataset."
)


class Source:
    """One kind of input: ``num_batches`` per pass (None when unknown) and ``passes()`` making
    an iterator over one pass of prepared batches. ``begin`` / ``end`` are the PyDataset hooks."""

    def __init__(
        self,
        num_batches: int | None,
        make_pass: Callable[[], Iterator[Any]],
        begin: Callable[[], None] | None = None,
        end: Callable[[], None] | None = None,
    ):
        self.num_batches = num_batches
        self.make_pass = make_pass
        self._begin, self._end = begin, end

    def on_epoch_begin(self) -> None:
        if self._begin is not None:
            self._begin()

    def on_epoch_end(self) -> None:
        if self._end is not None:
            self._end()


def _close(it: Any) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        close()


class EpochIterator:
    def __init__(self, source: Source, steps_per_epoch: int | None):
        self.source = source
        self.steps_per_epoch = steps_per_epoch
        self._num_batches = source.num_batches
        self._current: Any = None
        self._steps_seen = 0

    @property
    def num_batches(self) -> int | None:
        """Steps of one epoch as the callbacks' params report them (None: unknown yet)."""
        return self.steps_per_epoch or self._num_batches

    def reset(self) -> None:
        """Keras calls this once at the start of fit / evaluate / predict (and of each validation)."""
        self.close()
        self._num_batches = self.source.num_batches
        self._steps_seen = 0
        self.source.on_epoch_end()

    def close(self) -> None:
        """Ends a pass carried across epochs (stops a prefetch thread now rather than later)."""
        if self._current is not None:
            _close(self._current)
            self._current = None

    def _ran_out(self) -> None:
        if self._num_batches is None:
            self._num_batches = self._steps_seen
        warnings.warn(_RAN_OUT, UserWarning, stacklevel=4)
        self.close()
        self.source.on_epoch_end()

    def epoch(self) -> Iterator[tuple[int, Any]]:
        """(step, batch) pairs of one epoch."""
        self.source.on_epoch_begin()
        steps = self.steps_per_epoch or self._num_batches or -1
        if steps > 0:
            if self._current is None or self.steps_per_epoch is None:
                self.close()
                self._current = iter(self.source.make_pass())
                self._steps_seen = 0
            for step in range(steps):
                if self._num_batches and self._steps_seen >= self._num_batches:
                    if self.steps_per_epoch:
                        warnings.warn(_RAN_OUT, UserWarning, stacklevel=3)
                    break
                self._steps_seen += 1
                try:
                    batch = next(self._current)
                except StopIteration:
                    self._ran_out()
                    return
                yield step, batch
            if self._num_batches and self._steps_seen >= self._num_batches:
                self.close()
                self._current = iter(self.source.make_pass())
                self._steps_seen = 0
        else:
            self.close()
            self._current = iter(self.source.make_pass())
            step = 0
            while True:
                self._steps_seen = step + 1
                try:
                    batch = next(self._current)
                except StopIteration:
                    self._ran_out()
                    return
                yield step, batch
                step += 1
        self.source.on_epoch_end()


# -- kinds of input ----------------------------------------------------------------------------------
def data_kind(x: Any) -> str:
    """'pydataset', 'dataset' (cnnx.data.Dataset, or any object with __len__ and __iter__ that
    yields batches), 'generator' (a generator or other iterator: one pass only) or 'arrays'."""
    from .data import Dataset, PyDataset

    if isinstance(x, PyDataset):
        return "pydataset"
    if isinstance(x, Dataset):
        return "dataset"
    if isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)) or hasattr(x, "__array__") or x is None:
        return "arrays"
    if isinstance(x, types.GeneratorType) or (hasattr(x, "__next__") and hasattr(x, "__iter__")):
        return "generator"
    if hasattr(x, "__iter__") and hasattr(x, "__len__"):
        return "dataset"
    return "arrays"


def stream_batches(data: Any, kind: str) -> tuple[int | None, Callable[[], Iterator[Any]], Any, Any, bool]:
    """(batches per pass or None, one pass of raw batches, begin hook, end hook, infinite)."""
    from .data import INFINITE_CARDINALITY, Dataset

    if kind == "generator":
        return None, lambda: data, None, None, False
    if isinstance(data, Dataset):
        n = int(data.cardinality())
        return (n if n >= 0 else None), data.__iter__, None, None, n == INFINITE_CARDINALITY
    return len(data), data.__iter__, None, None, False


def pydataset_batches(
    data: Any, shuffle: bool, indices_of_pass: Callable[[], list[int]] | None = None
) -> tuple[int | None, Callable[[], Iterator[Any]], Any, Any, bool]:
    """Keras' PyDatasetAdapter: batches by index (indices shuffled with Python's ``random``, as
    Keras does, when fit's shuffle is on and the length is known); with ``workers > 1`` read
    ahead in threads, ``max_queue_size`` at most, used in index order. ``indices_of_pass``: the
    indices to read in a pass instead (a process's share in data-parallel training)."""
    n = data.num_batches
    workers = data.workers
    threaded = workers > 1 or (workers > 0 and data.use_multiprocessing)
    window = max(int(data.max_queue_size or 1), 1)

    def fetch(index: int) -> Any:
        batch = data[index]
        if isinstance(batch, np.ndarray):
            batch = (batch,)
        if isinstance(batch, list):
            batch = tuple(batch)
        if not isinstance(batch, tuple) or len(batch) not in (1, 2, 3):
            raise ValueError(  # Keras' words
                "PyDataset.__getitem__() must return a tuple or a dict. If a tuple, it must be ordered either "
                "(input,) or (inputs, targets) or (inputs, targets, sample_weights). "
                f"Received: {str(batch)[:100]}... of type {type(batch)}"
            )
        return batch if len(batch) > 1 else batch[0]

    def one_pass() -> Iterator[Any]:
        if indices_of_pass is not None:
            indices: Any = indices_of_pass()
        elif n is None:
            indices = itertools.count()
        else:
            indices = list(range(n))
            if shuffle:
                random.shuffle(indices)
        if not threaded:
            for i in indices:
                yield fetch(i)
            return
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="cnnx-pydataset") as pool:
            pending: collections.deque = collections.deque()
            try:
                for i in indices:
                    pending.append(pool.submit(fetch, i))
                    if len(pending) >= window:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    return n, one_pass, data.on_epoch_begin, data.on_epoch_end, n is None


def check_steps(value: Any, arg: str, who: str) -> int | None:
    """None or an int >= 0; 0 means None, as Keras' ``steps_per_epoch or ...``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{who}: expected {arg} to be None or an int >= 1, received {arg}={value!r}")
    if value < 0:
        raise ValueError(f"{who}: expected {arg} to be None or an int >= 1, received {arg}={value!r}")
    return int(value) or None


def check_validation_freq(value: Any, who: str) -> Any:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{who}: expected validation_freq to be an int >= 1, received validation_freq={value!r}")
        return int(value)
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        return [int(v) for v in value]
    raise ValueError(  # Keras' words
        f"Expected `validation_freq` to be a list or int. Received: validation_freq={value} of the type {type(value)}."
    )


def should_eval(epoch: int, validation_freq: Any) -> bool:
    """Keras' Trainer._should_eval: ``validation_freq`` counts epochs from 1."""
    epoch += 1
    if isinstance(validation_freq, int):
        return epoch % validation_freq == 0
    return epoch in validation_freq


def infinite_error(who: str, arg: str) -> ValueError:
    return ValueError(
        f"{who}: When passing an infinitely repeating dataset, you must specify the `{arg}` argument "
        f"(cnnx would otherwise run forever). Received: {arg}=None"
    )
