"""``cnnx.data.Dataset``: the ``tf.data.Dataset`` methods that Keras programs call, on NumPy.

A dataset is a re-iterable description of a stream of elements; each ``iter()`` starts a new
pass. An element is a NumPy array (or NumPy scalar) or a tuple of elements, e.g. ``(x, y)`` or
``(x, y, sample_weight)``, as in tf.data. Functions given to ``map`` / ``filter`` get NumPy
arrays, one argument per tuple component, and run eagerly in Python (no graph tracing).

Randomness (``shuffle``) comes from NumPy generators seeded once per dataset, so a pipeline is
deterministic given its seeds, or given ``cnnx.utils.set_random_seed`` when ``seed=None``.

Datasets built by ``from_tensor_slices`` remember which rows of the source arrays each element
is; ``batch`` then gathers the rows of a batch in one NumPy indexing call instead of stacking
element by element (same result, a fraction of the Python cost).
"""

from __future__ import annotations

import itertools
import math
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..ops import Tensor

__all__ = ["AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY", "Dataset"]

AUTOTUNE = -1  # tf.data.AUTOTUNE
INFINITE_CARDINALITY = -1  # tf.data.INFINITE_CARDINALITY
UNKNOWN_CARDINALITY = -2  # tf.data.UNKNOWN_CARDINALITY
_AUTOTUNE_PREFETCH = 2  # what prefetch(AUTOTUNE) keeps ready: the next batch and one more


class Cardinality(int):
    """An int with ``.numpy()``, so ``ds.cardinality().numpy()`` from TF programs works."""

    def numpy(self) -> int:
        return int(self)


# -- element structure -----------------------------------------------------------------------------
def _leaf(value: Any, who: str) -> Any:
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype != object:
        return value
    if isinstance(value, dict):
        raise TypeError(
            f"{who}: dict elements are not supported by cnnx datasets; use tuples such as (x, y). "
            f"Received a dict with keys {sorted(map(str, value))}"
        )
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{who}: expected NumPy arrays, received {type(value).__name__}: {e}") from None
    if arr.dtype == object:
        raise TypeError(f"{who}: expected NumPy arrays (numbers), received {type(value).__name__} of dtype object")
    return arr


def _structure(value: Any, who: str) -> Any:
    """An element as cnnx datasets hold it: tuples (lists become tuples, as tf.data does for
    map results) of NumPy arrays."""
    if isinstance(value, (tuple, list)):
        return tuple(_structure(v, who) for v in value)
    return _leaf(value, who)


def _leaves(element: Any) -> list:
    if isinstance(element, tuple):
        return [leaf for v in element for leaf in _leaves(v)]
    return [element]


def _as_tensor(a: Any) -> Any:
    return a.view(Tensor) if type(a) is np.ndarray else a


def _as_plain_array(a: Any) -> Any:
    return a.view(np.ndarray) if isinstance(a, np.ndarray) else a


def _map_leaves(fn: Callable, element: Any) -> Any:
    if isinstance(element, tuple):
        return tuple(_map_leaves(fn, v) for v in element)
    return fn(element)


def _stack(elements: list, who: str) -> Any:
    first = elements[0]
    if isinstance(first, tuple):
        for e in elements:
            if not isinstance(e, tuple) or len(e) != len(first):
                raise ValueError(
                    f"{who}: cannot batch elements of different structures: {_describe(first)} and {_describe(e)}"
                )
        return tuple(_stack([e[i] for e in elements], who) for i in range(len(first)))
    shape = np.shape(first)
    for i, e in enumerate(elements):
        if isinstance(e, tuple) or np.shape(e) != shape:
            raise ValueError(
                f"{who}: Cannot batch tensors with different shapes. First element had shape "
                f"{list(shape)} and element {i} had shape {list(np.shape(e)) if not isinstance(e, tuple) else 'tuple'}."
            )
    return np.stack(elements)


def _describe(element: Any) -> str:
    if isinstance(element, tuple):
        return "(" + ", ".join(_describe(v) for v in element) + ")"
    return f"array{tuple(np.shape(element))}"


def _batch_length(element: Any, who: str) -> int:
    """The common leading dimension of every leaf (what unbatch and from_tensor_slices split)."""
    sizes = set()
    for leaf in _leaves(element):
        if np.ndim(leaf) == 0:
            raise ValueError(
                f"{who}: expected every component to have rank >= 1 (a leading axis to split), received a scalar"
            )
        sizes.add(np.shape(leaf)[0])
    if len(sizes) != 1:
        raise ValueError(
            f"{who}: expected every component to have the same first dimension, received {sorted(sizes)} in {_describe(element)}"
        )
    return sizes.pop()


def _call(fn: Callable, element: Any) -> Any:
    """Calls ``fn`` as tf.data does: a tuple element is spread over the arguments."""
    return fn(*element) if isinstance(element, tuple) else fn(element)


def _check_count(value: Any, arg: str, who: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{who}: expected `{arg}` to be an integer, received {arg}={value!r}")
    if value < minimum:
        raise ValueError(f"{who}: expected `{arg}` to be an integer >= {minimum}, received {arg}={value!r}")
    return int(value)


def _check_parallel(value: Any, arg: str, who: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (value < 1 and value != AUTOTUNE):
        raise ValueError(
            f"{who}: expected `{arg}` to be None, a positive integer or AUTOTUNE (-1), received {arg}={value!r}"
        )


def _check_seed(seed: Any, who: str) -> int:
    if seed is None:
        return int(np.random.randint(2**31 - 1))  # follows cnnx.utils.set_random_seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{who}: expected `seed` to be None or a non-negative integer, received seed={seed!r}")
    return int(seed)


class Dataset:
    """A ``tf.data.Dataset``-like stream of NumPy elements (see the module docstring).

    Build one with ``Dataset.from_tensor_slices``, ``Dataset.range``, ``Dataset.from_generator``
    or ``cnnx.utils.image_dataset_from_directory``; transform it with the methods below; give it
    to ``fit`` / ``evaluate`` / ``predict`` (elements must then be batches).
    """

    # -- what subclasses provide ------------------------------------------------------------------
    def _iter(self) -> Iterator[Any]:
        raise NotImplementedError

    def _cardinality(self) -> int:
        return UNKNOWN_CARDINALITY

    def _indices(self) -> Iterator[int] | None:
        """Rows of ``self._source()`` in element order, when every element is a row of it."""
        return None

    def _source(self) -> Any:
        return None

    # -- Python protocol --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        # Arrays come out as cnnx.ops.Tensor views (zero-copy), so code written for tf.data can
        # call .numpy() on them, as the TensorFlow tutorials do.
        return (_map_leaves(_as_tensor, e) for e in self._iter())

    def as_numpy_iterator(self) -> Iterator[Any]:
        """An iterator over the elements as plain NumPy arrays."""
        return (_map_leaves(_as_plain_array, e) for e in self._iter())

    def cardinality(self) -> Cardinality:
        """The number of elements, ``INFINITE_CARDINALITY`` (-1) or ``UNKNOWN_CARDINALITY`` (-2)."""
        return Cardinality(self._cardinality())

    def __len__(self) -> int:
        n = self._cardinality()
        if n == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if n == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset length is unknown.")
        return n

    def __bool__(self) -> bool:
        return True  # __len__ may raise; a dataset is always "something", as in tf.data

    def __repr__(self) -> str:
        n = self._cardinality()
        size = {INFINITE_CARDINALITY: "infinite", UNKNOWN_CARDINALITY: "unknown"}.get(n, str(n))
        return f"<{type(self).__name__} cardinality={size}>"

    # -- sources ----------------------------------------------------------------------------------
    @staticmethod
    def from_tensor_slices(tensors: Any, name: str | None = None) -> Dataset:
        """Elements are the slices of ``tensors`` along their first axis: an array, or a tuple
        (nested tuples too) of arrays with the same first dimension, e.g. ``(x, y)``. A list is
        one array, as in tf.data (``[[1, 2], [3, 4]]`` gives two elements)."""
        who = "Dataset.from_tensor_slices"
        if isinstance(tensors, list):
            tensors = _leaf(tensors, who)
        source = _structure(tensors, who)
        return _TensorSlices(source, _batch_length(source, who))

    @staticmethod
    def from_tensors(tensors: Any, name: str | None = None) -> Dataset:
        """One element: ``tensors`` itself."""
        element = _structure(
            tensors if not isinstance(tensors, list) else _leaf(tensors, "Dataset.from_tensors"), "Dataset.from_tensors"
        )
        return _Generator(lambda: iter([element]), 1)

    @staticmethod
    def range(*args: Any, dtype: Any = np.int64, name: str | None = None) -> Dataset:
        """``range(stop)``, ``range(start, stop[, step])`` as int64 scalars."""
        values = np.arange(*args, dtype=dtype)
        return _TensorSlices(values, len(values))

    @staticmethod
    def from_generator(
        generator: Callable,
        output_types: Any = None,
        output_shapes: Any = None,
        args: Any = None,
        output_signature: Any = None,
        name: str | None = None,
    ) -> Dataset:
        """Elements from ``generator(*args)``, called again for every pass (so it must be a
        callable, e.g. a generator function, not a generator object). Types and shapes are
        taken from the values (``output_signature`` is accepted and not checked)."""
        if not callable(generator):
            raise TypeError(
                f"Dataset.from_generator: `generator` must be a callable, received {type(generator).__name__}"
            )
        call_args = tuple(args or ())
        return _Generator(
            lambda: (_structure(e, "Dataset.from_generator") for e in generator(*call_args)), UNKNOWN_CARDINALITY
        )

    @staticmethod
    def zip(*datasets: Any, name: str | None = None) -> Dataset:
        """Elements are tuples of one element of each dataset; stops at the shortest.
        ``zip((a, b))`` and ``zip(a, b)`` are the same."""
        if len(datasets) == 1 and isinstance(datasets[0], tuple):
            datasets = datasets[0]
        for d in datasets:
            if not isinstance(d, Dataset):
                raise TypeError(f"Dataset.zip: expected datasets, received {type(d).__name__}")
        if not datasets:
            raise ValueError("Dataset.zip: expected at least one dataset")
        return _Zip(tuple(datasets))

    # -- transformations --------------------------------------------------------------------------
    def map(
        self, map_func: Callable, num_parallel_calls: Any = None, deterministic: Any = None, name: str | None = None
    ) -> Dataset:
        """Applies ``map_func`` to each element (to each batch, on a batched dataset). A tuple
        element is passed as separate arguments. ``num_parallel_calls`` is accepted (None, an
        int or AUTOTUNE) and the calls run one after the other, in order: put ``prefetch``
        after ``map`` to run the pipeline in a background thread while the model trains."""
        if not callable(map_func):
            raise TypeError(f"Dataset.map: `map_func` must be callable, received {type(map_func).__name__}")
        _check_parallel(num_parallel_calls, "num_parallel_calls", "Dataset.map")
        return _Map(self, map_func)

    def filter(self, predicate: Callable, name: str | None = None) -> Dataset:
        """Keeps the elements for which ``predicate(*element)`` is true (a bool or a scalar)."""
        if not callable(predicate):
            raise TypeError(f"Dataset.filter: `predicate` must be callable, received {type(predicate).__name__}")
        return _Filter(self, predicate)

    def take(self, count: Any, name: str | None = None) -> Dataset:
        """The first ``count`` elements (all of them if ``count`` is -1)."""
        return _Take(self, _check_count(count, "count", "Dataset.take", -1))

    def skip(self, count: Any, name: str | None = None) -> Dataset:
        """All but the first ``count`` elements (none if ``count`` is -1)."""
        return _Skip(self, _check_count(count, "count", "Dataset.skip", -1))

    def shuffle(
        self, buffer_size: Any, seed: Any = None, reshuffle_each_iteration: bool = True, name: str | None = None
    ) -> Dataset:
        """tf.data's buffered shuffle: keeps ``buffer_size`` elements and yields a random one
        of them, refilling its place from the input. ``buffer_size >= cardinality`` gives a
        uniform permutation. With ``reshuffle_each_iteration`` every pass has a new order; the
        sequence of orders is fixed by ``seed`` (drawn from NumPy's global generator if None)."""
        who = "Dataset.shuffle"
        buffer_size = _check_count(buffer_size, "buffer_size", who, 1)
        if not isinstance(reshuffle_each_iteration, (bool, np.bool_)):
            raise TypeError(
                f"{who}: expected `reshuffle_each_iteration` to be a bool, received {reshuffle_each_iteration!r}"
            )
        return _Shuffle(self, buffer_size, _check_seed(seed, who), bool(reshuffle_each_iteration))

    def batch(
        self,
        batch_size: Any,
        drop_remainder: bool = False,
        num_parallel_calls: Any = None,
        deterministic: Any = None,
        name: str | None = None,
    ) -> Dataset:
        """Stacks consecutive elements into batches of ``batch_size`` (the last one smaller
        unless ``drop_remainder``)."""
        batch_size = _check_count(batch_size, "batch_size", "Dataset.batch", 1)
        _check_parallel(num_parallel_calls, "num_parallel_calls", "Dataset.batch")
        return _Batch(self, batch_size, bool(drop_remainder))

    def unbatch(self, name: str | None = None) -> Dataset:
        """Splits each element (a batch) back into its rows."""
        return _Unbatch(self)

    def rebatch(self, batch_size: Any, drop_remainder: bool = False, name: str | None = None) -> Dataset:
        return self.unbatch().batch(batch_size, drop_remainder)

    def repeat(self, count: Any = None, name: str | None = None) -> Dataset:
        """Repeats the dataset ``count`` times (forever if None or -1), one new pass each time
        (so a ``shuffle`` before it reshuffles)."""
        if count is None:
            count = -1
        return _Repeat(self, _check_count(count, "count", "Dataset.repeat", -1))

    def cache(self, filename: Any = "", name: str | None = None) -> Dataset:
        """Keeps the elements of the first complete pass in memory and replays them after.
        cnnx always caches in memory: a ``filename`` is accepted for compatibility and no file is
        written. A pass stopped early caches nothing (as tf.data discards a partial cache)."""
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"Dataset.cache: expected `filename` to be a string, received {filename!r}")
        return _Cache(self)

    def prefetch(self, buffer_size: Any, name: str | None = None) -> Dataset:
        """Produces up to ``buffer_size`` elements ahead in a background thread (AUTOTUNE: 2), so
        decoding and ``map`` functions overlap with training. Order and values are unchanged;
        errors are raised where the element would have been."""
        buffer_size = _check_count(buffer_size, "buffer_size", "Dataset.prefetch", -1)
        if buffer_size == 0:
            return self
        return _Prefetch(self, _AUTOTUNE_PREFETCH if buffer_size == AUTOTUNE else buffer_size)

    def enumerate(self, start: Any = 0, name: str | None = None) -> Dataset:
        """Elements ``(index, element)``, indices int64 from ``start``."""
        start = _check_count(start, "start", "Dataset.enumerate", -(2**62))
        counter = _Generator(lambda: (np.int64(i) for i in itertools.count(start)), INFINITE_CARDINALITY)
        return _Zip((counter, self))

    def apply(self, transformation_func: Callable) -> Dataset:
        return transformation_func(self)


class _TensorSlices(Dataset):
    def __init__(self, source: Any, n: int):
        self._src, self._n = source, int(n)

    def _source(self) -> Any:
        return self._src

    def _indices(self) -> Iterator[int]:
        return iter(range(self._n))

    def _cardinality(self) -> int:
        return self._n

    def _iter(self) -> Iterator[Any]:
        src = self._src
        for i in range(self._n):
            yield _map_leaves(lambda a, i=i: a[i], src)


class _Generator(Dataset):
    def __init__(self, make: Callable, n: int):
        self._make, self._n = make, n

    def _cardinality(self) -> int:
        return self._n

    def _iter(self) -> Iterator[Any]:
        return iter(self._make())


class _Unary(Dataset):
    """A transformation of one input dataset."""

    def __init__(self, parent: Dataset):
        self._parent = parent

    def _source(self) -> Any:
        return self._parent._source()

    def _cardinality(self) -> int:
        return self._parent._cardinality()


class _Map(_Unary):
    def __init__(self, parent: Dataset, fn: Callable):
        super().__init__(parent)
        self._fn = fn

    def _source(self) -> Any:
        return None

    def _iter(self) -> Iterator[Any]:
        fn = self._fn
        for element in self._parent:
            yield _structure(_call(fn, element), "Dataset.map")


class _Filter(_Unary):
    def __init__(self, parent: Dataset, predicate: Callable):
        super().__init__(parent)
        self._predicate = predicate

    def _source(self) -> Any:
        return None

    def _cardinality(self) -> int:
        return UNKNOWN_CARDINALITY

    def _iter(self) -> Iterator[Any]:
        for element in self._parent:
            keep = _call(self._predicate, element)
            if np.ndim(keep) != 0:
                raise ValueError(
                    f"Dataset.filter: `predicate` must return a scalar boolean, received shape {np.shape(keep)}"
                )
            if bool(keep):
                yield element


class _Take(_Unary):
    def __init__(self, parent: Dataset, count: int):
        super().__init__(parent)
        self._count = count

    def _cardinality(self) -> int:
        n = self._parent._cardinality()
        if self._count == -1:
            return n
        if n == INFINITE_CARDINALITY:
            return self._count
        return UNKNOWN_CARDINALITY if n == UNKNOWN_CARDINALITY else min(n, self._count)

    def _limit(self, it: Iterator) -> Iterator:
        return it if self._count == -1 else itertools.islice(it, self._count)

    def _indices(self) -> Iterator[int] | None:
        idx = self._parent._indices()
        return None if idx is None else self._limit(idx)

    def _iter(self) -> Iterator[Any]:
        it = iter(self._parent)
        try:
            yield from self._limit(it)
        finally:  # a take() of a prefetch must stop its thread now, not when collected
            getattr(it, "close", lambda: None)()


class _Skip(_Unary):
    def __init__(self, parent: Dataset, count: int):
        super().__init__(parent)
        self._count = count

    def _cardinality(self) -> int:
        n = self._parent._cardinality()
        if n < 0:
            return n
        return 0 if self._count == -1 else max(0, n - self._count)

    def _skip(self, it: Iterator) -> Iterator:
        if self._count == -1:
            for _ in it:
                pass
            return iter(())
        return itertools.islice(it, self._count, None)

    def _indices(self) -> Iterator[int] | None:
        idx = self._parent._indices()
        return None if idx is None else self._skip(idx)

    def _iter(self) -> Iterator[Any]:
        return self._skip(iter(self._parent))


def _shuffled(items: Iterator, buffer_size: int, rng: np.random.Generator) -> Iterator:
    """tf.data's shuffle buffer: yields a uniformly chosen buffered item and puts the next
    input item in its place; once the input ends, drains the buffer at random."""
    buf: list = []
    it = iter(items)
    for item in it:
        buf.append(item)
        if len(buf) >= buffer_size:
            break
    draws, k = rng.random(1024), 0
    end = object()
    while buf:
        if k == len(draws):  # uniform floats in blocks: one generator call per 1024 items
            draws, k = rng.random(1024), 0
        j = int(draws[k] * len(buf))
        k += 1
        out = buf[j]
        nxt = next(it, end)
        if nxt is end:
            buf[j] = buf[-1]
            buf.pop()
        else:
            buf[j] = nxt
        yield out


class _Shuffle(_Unary):
    def __init__(self, parent: Dataset, buffer_size: int, seed: int, reshuffle: bool):
        super().__init__(parent)
        self._buffer_size, self._seed, self._reshuffle = buffer_size, seed, reshuffle
        self._passes = 0
        self._lock = threading.Lock()

    def _rng(self) -> np.random.Generator:
        with self._lock:
            k = self._passes
            self._passes += 1
        return np.random.default_rng([self._seed, k if self._reshuffle else 0])

    def _indices(self) -> Iterator[int] | None:
        idx = self._parent._indices()
        return None if idx is None else _shuffled(idx, self._buffer_size, self._rng())

    def _iter(self) -> Iterator[Any]:
        return _shuffled(iter(self._parent), self._buffer_size, self._rng())


class _Batch(_Unary):
    def __init__(self, parent: Dataset, batch_size: int, drop_remainder: bool):
        super().__init__(parent)
        self._size, self._drop = batch_size, drop_remainder

    def _source(self) -> Any:
        return None

    def _cardinality(self) -> int:
        n = self._parent._cardinality()
        if n < 0:
            return n
        return n // self._size if self._drop else math.ceil(n / self._size)

    def _chunks(self, it: Iterator) -> Iterator[list]:
        while True:
            chunk = list(itertools.islice(it, self._size))
            if not chunk or (self._drop and len(chunk) < self._size):
                return
            yield chunk

    def _iter(self) -> Iterator[Any]:
        if isinstance(self._parent, _TensorSlices):  # consecutive rows: slices, no gather
            src, n = self._parent._src, self._parent._n
            stop = n - n % self._size if self._drop else n
            for start in range(0, stop, self._size):
                yield _map_leaves(lambda a, start=start: a[start : start + self._size], src)
            return
        idx = self._parent._indices()
        if idx is not None:  # rows of arrays: gather each batch at once
            src = self._parent._source()
            for chunk in self._chunks(idx):
                rows = np.asarray(chunk, dtype=np.int64)
                yield _map_leaves(lambda a, rows=rows: a[rows], src)
            return
        it = iter(self._parent)
        try:
            for chunk in self._chunks(it):
                yield _stack(chunk, "Dataset.batch")
        finally:
            getattr(it, "close", lambda: None)()


class _Unbatch(_Unary):
    def _source(self) -> Any:
        return None

    def _cardinality(self) -> int:
        n = self._parent._cardinality()
        return n if n == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY

    def _iter(self) -> Iterator[Any]:
        for element in self._parent:
            for i in range(_batch_length(element, "Dataset.unbatch")):
                yield _map_leaves(lambda a, i=i: a[i], element)


class _Repeat(_Unary):
    def __init__(self, parent: Dataset, count: int):
        super().__init__(parent)
        self._count = count

    def _cardinality(self) -> int:
        n = self._parent._cardinality()
        if self._count == 0 or n == 0:
            return 0
        if self._count == -1:
            return INFINITE_CARDINALITY
        return n if n < 0 else n * self._count

    def _passes(self, make: Callable) -> Iterator:
        passes = itertools.count() if self._count == -1 else range(self._count)
        for _ in passes:
            empty = True
            for item in make():
                empty = False
                yield item
            if empty:  # an empty input repeated forever would hang: end, as tf.data does
                return

    def _indices(self) -> Iterator[int] | None:
        if self._parent._indices() is None:
            return None
        return self._passes(self._parent._indices)

    def _iter(self) -> Iterator[Any]:
        return self._passes(lambda: iter(self._parent))


class _Cache(_Unary):
    def __init__(self, parent: Dataset):
        super().__init__(parent)
        self._cached: list | None = None

    def _source(self) -> Any:
        return None

    def _iter(self) -> Iterator[Any]:
        if self._cached is not None:
            yield from self._cached
            return
        filling = []
        for element in self._parent:
            filling.append(element)
            yield element
        if self._cached is None:
            self._cached = filling


class _Zip(Dataset):
    def __init__(self, datasets: tuple):
        self._datasets = datasets

    def _cardinality(self) -> int:
        ns = [d._cardinality() for d in self._datasets]
        known = [n for n in ns if n >= 0]
        if known:
            return min(known) if UNKNOWN_CARDINALITY not in ns or min(known) == 0 else UNKNOWN_CARDINALITY
        return UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in ns else INFINITE_CARDINALITY

    def _iter(self) -> Iterator[Any]:
        return zip(*self._datasets)


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class _Prefetch(_Unary):
    def __init__(self, parent: Dataset, buffer_size: int):
        super().__init__(parent)
        self._buffer_size = buffer_size

    def _source(self) -> Any:
        return None

    def _iter(self) -> Iterator[Any]:
        # The producer thread owns the upstream iterator (creates, advances and closes it); the
        # consumer only reads the queue. `stop` ends the producer when the consumer goes away
        # early; puts time out so the producer sees it even when the queue is full.
        slots: queue.Queue = queue.Queue(self._buffer_size)
        stop = threading.Event()
        done = object()

        def produce() -> None:
            it = None
            try:
                it = iter(self._parent)
                for element in it:
                    while not stop.is_set():
                        try:
                            slots.put(element, timeout=0.05)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                item: Any = done
            except BaseException as e:  # noqa: BLE001 -- handed to the consumer, raised there
                item = _Failure(e)
            finally:
                if it is not None:
                    getattr(it, "close", lambda: None)()
            while not stop.is_set():
                try:
                    slots.put(item, timeout=0.05)
                    return
                except queue.Full:
                    continue

        worker = threading.Thread(target=produce, name="cnnx-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = slots.get()
                if item is done:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            stop.set()
            worker.join()
