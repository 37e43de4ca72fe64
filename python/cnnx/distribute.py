"""Data-parallel training across processes over MPI: ``fit(..., distribute=DataParallel())``.

Launch the same script on every process (``mpirun -np 4 python train.py``); each process holds
the model, reads the data and calls ``fit`` with the same arguments and ``distribute=``. Then:

- rank 0's weights and optimizer state are broadcast when fit starts (after ``on_train_begin``,
  so a ``BackupAndRestore`` resume on rank 0 reaches everyone);
- each step's global batch (``batch_size`` samples) is cut into ``micro_batches`` pieces and
  each process computes the gradients of its share; the core sums them over one fixed binary
  tree, completed across processes over mpi4py (cnnx/data_parallel.hpp, ``_allreduce.py``),
  bucket by bucket while the backward pass still runs. The weights come out bit-identical on any
  number of processes up to ``micro_batches`` (the work is even when that number divides it);
- the logs (loss, accuracy, validation) are reduced across processes, so callbacks such as
  EarlyStopping see the same numbers everywhere, and stop decisions are agreed on each step;
- only rank 0 prints progress and runs the callbacks that write files (ModelCheckpoint,
  BackupAndRestore, CSVLogger); other callbacks run on every process;
- a process that raises inside fit prints the error and aborts every process (MPI_Abort);
  gradients not summed within ``timeout`` seconds (a process died or hangs) do the same.

The core links no MPI library: the collectives run here, through mpi4py
(``pip install "cnnx[mpi]"`` installs mpi4py and Open MPI from PyPI).
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from typing import Any

import numpy as np

from . import _core, _epoch
from ._allreduce import BucketReducer, tree_allreduce

__all__ = ["DataParallel", "tree_allreduce"]


class DataParallel:
    """Data-parallel training over MPI; pass it to ``fit(..., distribute=...)``.

    ``comm``: an mpi4py communicator (default ``MPI.COMM_WORLD``). ``micro_batches``: the
    pieces each global batch is cut into; weights are bit-identical for any number of processes
    up to it (it must be at least the number of processes; a multiple of it shares the work
    evenly: 12 suits 1, 2, 3, 4, 6 and 12 processes).
    ``bucket_bytes``: gradients are summed in buckets of at least this size, each started as
    soon as the backward pass has finished its layers. ``timeout``: seconds a step may wait for
    the other processes before every process is stopped. ``seed``: of the shuffling and of the
    dropout / augmentation noise (default: drawn on rank 0 and shared)."""

    def __init__(
        self,
        comm: Any = None,
        micro_batches: int = 4,
        bucket_bytes: int = 256 * 1024,
        timeout: float = 300.0,
        seed: int | None = None,
    ):
        who = "DataParallel"
        for name, value in (("micro_batches", micro_batches), ("bucket_bytes", bucket_bytes)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{who}: expected {name} to be a positive integer, received {name}={value!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"{who}: expected timeout to be a positive number of seconds, received {timeout!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"{who}: expected seed to be a non-negative integer or None, received {seed!r}")
        if comm is None:
            try:
                from mpi4py import MPI
            except ImportError as e:
                raise ImportError(
                    'DataParallel needs mpi4py and an MPI library: pip install "cnnx[mpi]" '
                    "(mpi4py and Open MPI from PyPI), then launch with mpirun -np N python script.py"
                ) from e
            comm = MPI.COMM_WORLD
        self.comm = comm
        self.micro_batches = int(micro_batches)
        self.bucket_bytes = int(bucket_bytes)
        self.timeout = float(timeout)
        self.seed = seed
        self.rank = int(comm.Get_rank())
        self.num_processes = int(comm.Get_size())
        self.tree = _core.ReductionTree(self.micro_batches, self.num_processes)  # refuses more processes

    @property
    def is_primary(self) -> bool:
        """True on rank 0, the process that prints and writes files."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"DataParallel(rank={self.rank}, num_processes={self.num_processes}, micro_batches={self.micro_batches})"

    def _run(self, model: Any) -> _Run:
        return _Run(self, model)


class _Run:
    """One fit's distributed state: the core's step, the communicator thread, the watchdog."""

    def __init__(self, dp: DataParallel, model: Any):
        self.dp, self.model = dp, model
        self.comm = dp.comm
        self.rank, self.size = dp.rank, dp.num_processes
        self.grad_comm = dp.comm.Dup() if self.size > 1 else dp.comm
        self.epoch = 0
        self.step: Any = None
        self.thread: threading.Thread | None = None
        self.seed = 0
        self._busy: tuple[str, float] | None = None  # what the main thread waits for, since when
        self._done = threading.Event()
        self._sharded: list = []  # image datasets read in shards (shard_batches)
        self._pipelines: list = []  # cnnx.data.Datasets, whose shuffle seeds rank 0 gives
        self._watchdog = None

    # -- start and end ------------------------------------------------------------------------
    def start(self) -> None:
        """After on_train_begin: rank 0's resume epoch (BackupAndRestore) and seed to everyone.
        The weights follow at the first step, once the model is built (a dataset builds it with
        its first batch)."""
        m = self.model
        if self.size > 1:
            self._watchdog = threading.Thread(target=self._watch, name="cnnx-dp-watchdog", daemon=True)
            self._watchdog.start()
        seed = self.dp.seed if self.dp.seed is not None else int(np.random.randint(0, 2**31 - 1))
        shared = (getattr(m, "_initial_epoch", None), seed)
        shared = self.collective("sharing rank 0's settings", lambda: self.comm.bcast(shared, root=0))
        m._initial_epoch, self.seed = shared[0], int(shared[1])
        self._share_datasets()

    def start_evaluation(self, who: str = "evaluate") -> None:
        """Before a distributed evaluate or predict: every process must hold the same weights (as
        after a distributed fit); each works on its share of the data."""
        if self.size > 1:
            self._watchdog = threading.Thread(target=self._watch, name="cnnx-dp-watchdog", daemon=True)
            self._watchdog.start()
        h = hashlib.blake2b(digest_size=16)
        for w in self.model.get_weights():
            h.update(np.ascontiguousarray(w).tobytes())
        mine = h.hexdigest()
        if self.size > 1:
            digests = self.collective("comparing weights", lambda: self.comm.allgather(mine))
            differ = [r for r, d in enumerate(digests) if d != digests[0]]
            if differ:
                raise _every_process(
                    ValueError(
                        f"{who}: the weights of process {differ[0]} differ from process 0's; a distributed "
                        f"{who} needs the same model on every process (as a distributed fit leaves it, or "
                        "the same file loaded everywhere)"
                    )
                )
        self._share_datasets()

    def _start_step(self) -> None:
        """At the first step: rank 0's weights and optimizer state to everyone, then the core's
        step and the communicator thread."""
        m = self.model
        state = None
        if self.rank == 0:
            state = {
                "weights": m.get_weights(),
                "slots": m._core.get_optimizer_slots(),
                "iterations": int(m.optimizer._core.iterations),
            }
        state = self.collective("sharing rank 0's weights", lambda: self.comm.bcast(state, root=0))
        if self.rank != 0:
            m.set_weights(state["weights"])
            if state["slots"]:
                m._core.set_optimizer_slots(state["slots"])
            m.optimizer._core.iterations = state["iterations"]
        bucket_floats = max(1, self.dp.bucket_bytes // 4)
        self.step = _core.DataParallelStep(
            m._core, self.dp.micro_batches, self.rank, self.size, bucket_floats, self.seed
        )
        if self.size > 1:
            self.buckets = self.step.buckets()
            largest = max((end - begin for begin, end in self.buckets), default=0)
            self.reducer = BucketReducer(self.grad_comm, self.dp.tree, self.step.fragments(), largest)
            self.thread = threading.Thread(target=self._communicate, name="cnnx-dp-communicator", daemon=True)
            self.thread.start()

    def close(self) -> None:
        self._done.set()
        if self.step is not None:
            self.step.stop()
        if self.thread is not None:
            self.thread.join()
        if self.grad_comm is not self.comm:
            self.grad_comm.Free()

    def fail(self, error: BaseException) -> None:
        """A process that fails inside fit stops every process: the others would wait for it."""
        if self.size == 1 or getattr(error, "_cnnx_every_process", False):
            return
        print(
            f"cnnx.distribute: process {self.rank} of {self.size} failed: {type(error).__name__}: {error}; "
            "stopping every process (MPI_Abort)",
            file=sys.stderr,
            flush=True,
        )
        self.comm.Abort(1)

    # -- the communicator thread and the watchdog --------------------------------------------
    def _communicate(self) -> None:
        try:
            while True:
                k = self.step.next_ready(1.0)
                if k == -1:
                    return
                if k == -2:  # between steps (validation, callbacks): nothing to do
                    continue
                begin, end = self.buckets[k]
                self.reducer.reduce(begin, end, tag=k)
                self.step.mark_reduced(k)
        except BaseException as e:  # the step waiting for this bucket raises it
            self.step.abort(f"DataParallel: process {self.rank}: summing gradients failed: {e}")

    def collective(self, what: str, fn: Any) -> Any:
        """fn() (a collective of the main thread) under the watchdog."""
        self._busy = (what, time.monotonic())
        try:
            return fn()
        finally:
            self._busy = None

    def _watch(self) -> None:
        while not self._done.wait(0.5):
            busy = self._busy
            if busy is not None and time.monotonic() - busy[1] > self.dp.timeout:
                print(
                    f"cnnx.distribute: process {self.rank} of {self.size} waited more than {self.dp.timeout:g} s "
                    f"for the other processes ({busy[0]}); one stopped or is stuck: stopping every process",
                    file=sys.stderr,
                    flush=True,
                )
                self.comm.Abort(1)

    # -- reductions ---------------------------------------------------------------------------
    def sum(self, values: list[float], what: str, fingerprint: int | None = None) -> np.ndarray:
        """The sums over processes in rank order, the same bits on every process. With a
        fingerprint of the data this process dealt from, checks that every process has the same."""
        buf = np.asarray(values, dtype=np.float64)
        if self.size == 1:
            return buf
        parts = self.collective(what, lambda: self.comm.allgather((buf, fingerprint)))
        prints = [p[1] for p in parts]
        if any(p != prints[0] for p in prints):
            other = next(r for r, p in enumerate(prints) if p != prints[0])
            raise _every_process(
                ValueError(
                    f"DataParallel: processes 0 and {other} read different batches in epoch {self.epoch + 1}: "
                    "a dataset or generator that shuffles on its own must draw the same order on every process "
                    "(a fixed seed, e.g. cnnx.utils.set_random_seed(s) on every process before building it); "
                    "arrays, a cnnx.data.Dataset, a PyDataset and image folders are ordered by cnnx"
                )
            )
        total = parts[0][0].copy()
        for part, _ in parts[1:]:
            total += part
        return total

    def agree(self, flag: bool, what: str = "agreeing on stop_training") -> bool:
        """True on every process when it is true on any."""
        return bool(self.sum([1.0 if flag else 0.0], what)[0] > 0)

    # -- data ---------------------------------------------------------------------------------
    def _local_rows(self, n: int) -> tuple[int, int]:
        """This process's rows [begin, end) of a global batch of n: its micro-batches."""
        tree = self.dp.tree
        return tree.row_begin(self.rank, n), tree.row_begin(self.rank + 1, n)

    def array_source(self, x: Any, y: Any, weights: Any, batch_size: int, shuffle: bool) -> _epoch.Source:
        """Every process holds the same arrays and the same order (seeded by epoch); each takes
        its micro-batches' rows of every global batch."""

        def one_pass():
            n = len(x)
            if shuffle:
                order = np.random.default_rng([self.seed, self.epoch]).permutation(n).astype(np.int64)
            else:
                order = np.arange(n, dtype=np.int64)
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size]
                begin, end = self._local_rows(len(batch))
                yield x, y, batch[begin:end], weights, len(batch)

        return _epoch.Source(-(-len(x) // batch_size), one_pass)

    def shard_batches(self, data: Any, drop_remainder: bool, shuffle: bool = False) -> tuple | None:
        """(batches per pass, a pass of this process's batches, epoch begin / end hooks) for a
        dataset that can read only its share, else None:
        - an image-folder dataset decodes only this process's batches; its shuffling generator
          takes rank 0's state when fit starts, so every process draws the same file order (a
          dataset whose files or split differ between processes is refused then);
        - a PyDataset of known length reads only this process's indices, of an order drawn from
          the run's seed and the epoch when ``shuffle`` (not from each process's ``random``).
        A cnnx.data.Dataset is read in full by every process (stream_source deals its batches);
        its shuffle seeds take rank 0's when fit starts, so every process sees the same order."""
        from .data._dataset import Dataset
        from .data._images import ImageDataset
        from .data._pydataset import PyDataset

        p, rank = self.size, self.rank
        if isinstance(data, ImageDataset) and data.batch_size is not None:
            self._sharded.append(data)
            n = len(data)
            mine = n // p if drop_remainder else (n - rank + p - 1) // p
            return mine, lambda: data._iter_shard(p, rank, drop_remainder), None, None
        if isinstance(data, Dataset):
            self._pipelines.append(data)
            return None
        if isinstance(data, PyDataset) and data.num_batches is not None:
            n = int(data.num_batches)
            dealt = n // p * p if drop_remainder else n

            def indices() -> list[int]:
                order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if shuffle else np.arange(n)
                return order[rank:dealt:p].tolist()

            _, one_pass, begin, end, _ = _epoch.pydataset_batches(data, False, indices)
            return (dealt - rank + p - 1) // p, one_pass, begin, end
        return None

    def _share_datasets(self) -> None:
        for data in self._sharded:
            digest = hashlib.sha256("\n".join(map(str, data.file_paths)).encode()).hexdigest()
            mine = (digest, data._rng.bit_generator.state)
            first = self.collective("comparing datasets", lambda mine=mine: self.comm.bcast(mine, root=0))
            differs = self.agree(first[0] != digest, "comparing datasets")
            if differs:
                raise _every_process(
                    ValueError(
                        "DataParallel: the image dataset's files differ between processes (another order or "
                        "validation split); pass the same seed= to image_dataset_from_directory on every process"
                    )
                )
            data._rng.bit_generator.state = first[1]
        for data in self._pipelines:
            stages = _random_stages(data)
            states = [_stage_state(s) for s in stages]
            first = self.collective("sharing shuffle seeds", lambda states=states: self.comm.bcast(states, root=0))
            differs = self.agree(
                [kind for kind, _ in first] != [kind for kind, _ in states], "comparing dataset pipelines"
            )
            if differs:
                raise _every_process(
                    ValueError(
                        "DataParallel: the dataset pipelines differ between processes (their shuffle or image "
                        "stages); build the same pipeline on every process"
                    )
                )
            for stage, state in zip(stages, first):
                _set_stage_state(stage, state)

    def stream_source(self, it: _epoch.EpochIterator) -> _epoch.Source:
        """A dataset or generator: process r keeps batches r, r+P, r+2P, ... of each pass; a
        step's global batch is P consecutive batches (the last len % P batches are dropped).
        A sharded source (shard_batches) yields this process's batches only."""
        n = it.source.num_batches
        if getattr(it.source, "sharded", False):

            def own_pass():
                for xb, yb, idx, wb in it.source.make_pass():
                    yield xb, yb, idx, wb, None  # the global batch: summed at the step

            return _epoch.Source(n, own_pass, it.source._begin, it.source._end)

        def one_pass():
            group = []
            for batch in it.source.make_pass():
                group.append(batch)
                if len(group) == self.size:
                    xb, yb, idx, wb = group[self.rank]
                    yield xb, yb, idx, wb, sum(len(b[2]) for b in group), _fingerprint(group)
                    group = []

        return _epoch.Source(None if n is None else n // self.size, one_pass, it.source._begin, it.source._end)

    def train_step(self, batch: tuple) -> tuple[tuple, int]:
        """One step on this process's rows. A batch dealt from a stream carries a fingerprint of
        the step's global batch, checked against every other process's with the logs."""
        xb, yb, idx, wb, global_n, *fingerprint = batch
        if global_n is None:
            global_n = int(self.sum([len(idx)], "summing the global batch size")[0])
        if self.step is None:
            self._start_step()
        result = self.step.train_step(xb, yb, idx, wb, global_n, self.dp.timeout)
        loss_sum, correct, rows, top_k = result[:4]
        if self.size > 1:
            loss_sum, correct, rows, top_k = self.sum(
                [loss_sum, correct, rows, top_k], "summing the step's logs", *fingerprint
            )
        logs = (float(loss_sum) / max(global_n, 1), int(correct), int(rows), int(top_k))
        if len(result) > 4:  # metrics computed in Python: every process feeds them the whole batch
            logs += (self.gather_outputs([result[4]], "gathering the outputs for the metrics"),)
        return logs, int(global_n)

    def gather_outputs(self, parts: list, what: str) -> tuple | None:
        """This process's (y_pred, y_true, sample_weight) batches joined with every other
        process's, in rank order: the metrics computed in Python then see every sample of the
        global batch on every process, so any metric (additive state or not) agrees."""

        def join(batches: list) -> tuple | None:
            if not batches:
                return None
            weights = [b[2] for b in batches]
            return (
                np.concatenate([b[0] for b in batches]),
                np.concatenate([b[1] for b in batches]),
                None if any(w is None for w in weights) else np.concatenate(weights),
            )

        mine = join(parts)
        if self.size == 1:
            return mine
        everyone = self.collective(what, lambda: self.comm.allgather(mine))
        return join([p for p in everyone if p is not None])

    def last_timeline(self) -> dict:
        return self.step.timeline()

    def reduce_tally(self, tally: Any) -> None:
        """A pass's sums (validation) over every process."""
        s = self.sum([tally.loss, tally.correct, tally.rows, tally.top_k, tally.samples], "summing validation logs")
        tally.loss, tally.correct, tally.rows, tally.top_k, tally.samples = (
            float(s[0]),
            int(s[1]),
            int(s[2]),
            int(s[3]),
            int(s[4]),
        )
        if tally.kept is not None and any(src == "py" for _, _, src, _ in self.model._metric_entries):
            joined = self.gather_outputs(tally.kept, "gathering validation outputs for the metrics")
            tally.pending = [joined] if joined is not None else []
            self.model._metrics_tally = None  # the metric objects start again from every process's outputs

    def primary_view(self, verbose: Any, callbacks: Any) -> tuple:
        """(verbose, callbacks) for this process: rank 0 alone prints and runs the callbacks that
        write files (marked ``_primary_only``)."""
        if self.dp.is_primary:
            return verbose, callbacks
        if isinstance(callbacks, (list, tuple, type(None))):  # not an already made CallbackList
            callbacks = [c for c in (callbacks or []) if not getattr(c, "_primary_only", False)]
        return 0, callbacks

    def array_test_share(self, who: str, *arrays: Any) -> tuple:
        """This process's contiguous share of validation / evaluation / prediction arrays (None
        stays None); the shares follow one another in rank order."""
        if len(arrays[0]) < self.size:
            raise ValueError(
                f"{who}: expected at least one sample per process ({self.size}), received {len(arrays[0])}"
            )
        bounds = np.linspace(0, len(arrays[0]), self.size + 1).astype(np.int64)
        b, e = int(bounds[self.rank]), int(bounds[self.rank + 1])
        return tuple(None if a is None else a[b:e] for a in arrays)

    def gather_predictions(self, batches: list, dealt: bool) -> list:
        """Every process's prediction batches in the data's order: the shares one after another
        (arrays), or, for ``dealt`` batches (process r had batches r, r+P, ...), interleaved."""
        if self.size == 1:
            return batches
        everyone = self.collective("gathering the predictions", lambda: self.comm.allgather(batches))
        if not dealt:
            return [b for part in everyone for b in part]
        longest = max(len(part) for part in everyone)
        return [part[j] for j in range(longest) for part in everyone if j < len(part)]

    def stream_test_source(self, it: _epoch.EpochIterator) -> _epoch.Source:
        """Validation datasets: process r evaluates batches r, r+P, ... (all of them)."""
        if getattr(it.source, "sharded", False):
            return it.source

        def one_pass():
            for k, batch in enumerate(it.source.make_pass()):
                if k % self.size == self.rank:
                    yield batch

        n = it.source.num_batches
        mine = None if n is None else (n - self.rank + self.size - 1) // self.size
        return _epoch.Source(mine, one_pass, it.source._begin, it.source._end)


def _random_stages(data: Any) -> list:
    """The stages of a cnnx.data.Dataset pipeline that draw random numbers (shuffles, image
    folders), in a fixed order (depth first)."""
    from .data._dataset import _Shuffle
    from .data._images import ImageDataset

    stages, todo, seen = [], [data], set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, (_Shuffle, ImageDataset)):
            stages.append(node)
        todo.extend(reversed(getattr(node, "_datasets", ())))
        parent = getattr(node, "_parent", None)
        if parent is not None:
            todo.append(parent)
    return stages


def _stage_state(stage: Any) -> tuple[str, Any]:
    if hasattr(stage, "_passes"):  # a shuffle: its orders follow from the seed and the pass count
        return "shuffle", (stage._seed, stage._passes)
    return "images", stage._rng.bit_generator.state


def _set_stage_state(stage: Any, state: tuple[str, Any]) -> None:
    kind, value = state
    if kind == "shuffle":
        stage._seed, stage._passes = value
    else:
        stage._rng.bit_generator.state = value


def _every_process(error: BaseException) -> BaseException:
    """Marks an error that every process raises at the same point: fit ends with it everywhere,
    no MPI_Abort needed."""
    error._cnnx_every_process = True  # type: ignore[attr-defined]
    return error


def _fingerprint(batches: list) -> int:
    """A cheap digest of a step's batches (a few thousand values of each array), to check that
    every process dealt the same ones."""
    h = hashlib.blake2b(digest_size=8)
    for batch in batches:
        for a in (batch[0], batch[1], batch[3]):
            if a is None:
                continue
            flat = np.ascontiguousarray(a).reshape(-1)
            h.update(str(flat.shape).encode())
            h.update(np.ascontiguousarray(flat[:: max(1, flat.size // 4096)]).tobytes())
    return int.from_bytes(h.digest(), "little")
