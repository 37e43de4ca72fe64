"""cnnx.distribute: data-parallel fit. Two kinds of tests:

- in one process, the ranks as threads over a small in-memory communicator with mpi4py's call
  shapes (ThreadComm): the tree reduction's bits and the core's step, fast, and in every CI stage;
- under real Open MPI (mpirun -np 1/2/4 over loopback, tests/distribute_worker.py): weights equal
  on every rank after every step and bit-identical to one process after 100 steps; a killed,
  raising or stuck process ends the run with an error; a resume with another process count.
  Skipped when mpi4py or mpirun is absent (the `mpi` extra installs both)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import cnnx
from cnnx import layers
from cnnx._allreduce import BucketReducer
from cnnx.distribute import DataParallel, tree_allreduce

HERE = Path(__file__).resolve().parent
WORKER = HERE / "distribute_worker.py"


# -- an in-memory communicator: ranks are threads ---------------------------------------------
class _World:
    def __init__(self, size: int):
        self.size = size
        self.lock = threading.Lock()
        self.boxes: dict = {}
        self.dups: list = []

    def box(self, key) -> queue.Queue:
        with self.lock:
            return self.boxes.setdefault(key, queue.Queue())


class ThreadComm:
    """The subset of an mpi4py communicator cnnx.distribute uses, for ranks running as threads."""

    def __init__(self, world: _World, rank: int):
        self.world, self.rank, self.dup_count = world, rank, 0

    def Get_rank(self) -> int:
        return self.rank

    def Get_size(self) -> int:
        return self.world.size

    def Sendrecv(self, sendbuf, dest, sendtag=0, recvbuf=None, source=0, recvtag=0):
        self.world.box((self.rank, dest, sendtag)).put(np.array(sendbuf, copy=True))
        data = self.world.box((source, self.rank, recvtag)).get(timeout=30)
        recvbuf[...] = data

    def bcast(self, obj, root=0):
        if self.rank == root:
            for r in range(self.world.size):
                if r != root:
                    self.world.box((root, r, "bcast")).put(obj)
            return obj
        return self.world.box((root, self.rank, "bcast")).get(timeout=30)

    def allgather(self, obj):
        for r in range(self.world.size):
            if r != self.rank:
                self.world.box((self.rank, r, "allgather")).put(obj)
        return [
            obj if r == self.rank else self.world.box((r, self.rank, "allgather")).get(timeout=30)
            for r in range(self.world.size)
        ]

    def Dup(self) -> ThreadComm:
        with self.world.lock:
            if len(self.world.dups) <= self.dup_count:
                self.world.dups.append(_World(self.world.size))
            world = self.world.dups[self.dup_count]
        self.dup_count += 1
        return ThreadComm(world, self.rank)

    def Free(self) -> None:
        pass

    def Abort(self, code: int = 1) -> None:
        raise RuntimeError(f"Abort({code})")


def run_ranks(size: int, fn):
    """fn(comm) on `size` threads; returns their results in rank order (re-raises a failure)."""
    world = _World(size)
    results: list = [None] * size
    errors: list = []

    def one(rank: int) -> None:
        try:
            results[rank] = fn(ThreadComm(world, rank))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return results


def balanced_sum(parts: list) -> np.ndarray:
    """((p0 + p1) + (p2 + p3)) + ..., in float32: the order tree_allreduce promises."""
    while len(parts) > 1:
        parts = [parts[i] + parts[i + 1] for i in range(0, len(parts), 2)]
    return parts[0]


# -- tree_allreduce ----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 4, 8])
@pytest.mark.parametrize("length", [0, 1, 5, 1001])
def test_tree_allreduce_is_the_balanced_tree_on_every_rank(size, length):
    rng = np.random.default_rng(size * 1000 + length)
    # Values of very different sizes, so that another summation order would change the bits.
    data = [(rng.standard_normal(length) * 10.0 ** rng.integers(-6, 6, length)).astype(np.float32) for _ in range(size)]
    out = run_ranks(size, lambda comm: tree_allreduce(comm, data[comm.Get_rank()].copy()))
    expect = balanced_sum([d.copy() for d in data])
    for r in range(size):
        np.testing.assert_array_equal(out[r], expect)
    if size == 4 and length == 1001:  # the test can tell orders apart
        sequential = ((data[0] + data[1]) + data[2]) + data[3]
        assert not np.array_equal(sequential, expect)


def test_tree_allreduce_float64_and_refuses_three_processes():
    out = run_ranks(2, lambda comm: tree_allreduce(comm, np.array([1.5, comm.Get_rank()], dtype=np.float64)))
    np.testing.assert_array_equal(out[0], [3.0, 1.0])
    with pytest.raises(ValueError, match="power-of-two number of processes, received 3"):
        run_ranks(3, lambda comm: tree_allreduce(comm, np.zeros(4, np.float32)))


# -- BucketReducer: any process count ---------------------------------------------------------
def tree_sum(leaves: list, first: int = 0, end: int | None = None) -> np.ndarray:
    """The step's tree, written out independently: a node of n > 1 leaves splits after the
    largest power of two below n."""
    end = len(leaves) if end is None else end
    if end - first == 1:
        return leaves[first].copy()
    half = 1
    while half * 2 < end - first:
        half *= 2
    return tree_sum(leaves, first, first + half) + tree_sum(leaves, first + half, end)


def reduce_on_ranks(micro_batches: int, size: int, length: int, force_general: bool = False):
    """Every rank's result of BucketReducer over random leaves, and the tree's sum of them."""
    rng = np.random.default_rng(micro_batches * 100 + size)
    leaves = [
        (rng.standard_normal(length) * 10.0 ** rng.integers(-6, 6, length)).astype(np.float32)
        for _ in range(micro_batches)
    ]
    tree = cnnx._core.ReductionTree(micro_batches, size)

    def one(comm):
        mine = [tree_sum(leaves, a, b) for a, b, r in tree.fragments if r == comm.Get_rank()]
        layout = _NotByRankBits(tree) if force_general else tree
        reducer = BucketReducer(comm, layout, mine, length)
        # Two buckets, as the step announces them, each reduced in place into fragment 0.
        cut = length // 3
        reducer.reduce(0, cut, tag=0)
        reducer.reduce(cut, length, tag=1)
        return mine[0]

    return run_ranks(size, one), tree_sum(leaves), leaves


class _NotByRankBits:
    """The same tree, taken as if recursive halving could not apply."""

    def __init__(self, tree):
        self.fragments, self.combine, self.pairs_by_rank_bits = tree.fragments, tree.combine, False


@pytest.mark.parametrize(
    ("micro_batches", "size"), [(4, 3), (6, 2), (6, 4), (6, 5), (12, 3), (12, 5), (12, 7), (7, 7), (5, 1)]
)
@pytest.mark.parametrize("length", [2, 5, 1001])
def test_bucket_reducer_gives_the_tree_sum_on_every_rank(micro_batches, size, length):
    out, expect, leaves = reduce_on_ranks(micro_batches, size, length)
    for r in range(size):
        np.testing.assert_array_equal(out[r], expect, err_msg=f"rank {r}")
    if length == 1001 and micro_batches == 6:  # the test can tell orders apart
        sequential = leaves[0].copy()
        for leaf in leaves[1:]:
            sequential = sequential + leaf
        assert not np.array_equal(sequential, expect)


@pytest.mark.parametrize("size", [2, 4])
def test_bucket_reducer_general_path_matches_recursive_halving(size):
    halving, expect, _ = reduce_on_ranks(8, size, 333)
    general, _, _ = reduce_on_ranks(8, size, 333, force_general=True)
    for r in range(size):
        np.testing.assert_array_equal(halving[r], expect)
        np.testing.assert_array_equal(general[r], expect)


# -- arguments ---------------------------------------------------------------------------------
def one_rank():
    return ThreadComm(_World(1), 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"micro_batches": 0}, "micro_batches to be a positive integer"),
        ({"micro_batches": 2**40}, "micro_batches between 1 and 65536, received 1099511627776"),
        ({"bucket_bytes": -1}, "bucket_bytes to be a positive integer"),
        ({"timeout": 0}, "timeout to be a positive number"),
        ({"seed": -2}, "seed to be a non-negative integer"),
    ],
)
def test_data_parallel_validates_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataParallel(comm=one_rank(), **kwargs)


def test_more_processes_than_micro_batches_is_refused():
    with pytest.raises(ValueError, match="between 1 and micro_batches=2 processes, received 4"):
        DataParallel(comm=ThreadComm(_World(4), 0), micro_batches=2)
    assert DataParallel(comm=ThreadComm(_World(3), 0), micro_batches=3).tree.leaves == 3


def small_model(seed: int = 5, dropout: float = 0.25, batch_norm: bool = True):
    cnnx.utils.set_random_seed(seed)
    stack = [layers.Input((9, 9, 3)), layers.Conv2D(5, 3, activation="relu")]
    if batch_norm:
        stack.append(layers.BatchNormalization())
    stack += [layers.MaxPooling2D(), layers.Flatten(), layers.Dropout(dropout), layers.Dense(4, activation="softmax")]
    model = cnnx.Sequential(stack)
    model.compile(optimizer=cnnx.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def small_data(n: int = 70):
    rng = np.random.default_rng(1)
    x = rng.random((n, 9, 9, 3), dtype=np.float32)
    return x, rng.integers(0, 4, n)


def test_fit_refuses_other_distribute_values():
    x, y = small_data()
    model = small_model()
    with pytest.raises(TypeError, match="expected distribute=cnnx.distribute.DataParallel"):
        model.fit(x, y, distribute="mirrored", verbose=0)


def test_python_metrics_see_the_whole_global_batch_on_every_rank():
    # AUC and Precision are computed in Python from the outputs: every rank gathers all of them,
    # so the logs are the same on every rank and for every rank count, training and validation.
    x, y = small_data()
    onehot = np.eye(4, dtype=np.float32)[y]

    def run(size):
        models = [small_model() for _ in range(size)]
        for m in models:
            m.compile(
                optimizer=cnnx.optimizers.Adam(0.01),
                loss="categorical_crossentropy",
                metrics=["accuracy", cnnx.metrics.AUC(), cnnx.metrics.Precision()],
            )

        def train(comm):
            dp = DataParallel(comm=comm, seed=3)
            h = models[comm.Get_rank()].fit(
                x, onehot, batch_size=10, epochs=2, validation_split=0.2, verbose=0, distribute=dp
            )
            return h.history

        return run_ranks(size, train)

    one = run(1)[0]
    assert {"auc", "precision", "val_auc", "val_precision"} <= set(one)
    for size in (2, 4):
        for history in run(size):
            for key in ("auc", "precision", "val_auc", "val_precision", "accuracy"):
                assert history[key] == one[key], (size, key)


def test_core_step_validates():
    model = small_model()
    model.build((None, 9, 9, 3))
    with pytest.raises(ValueError, match="between 1 and micro_batches=4 processes, received 8"):
        cnnx._core.DataParallelStep(model._core, 4, 0, 8, 1024, 0)
    with pytest.raises(ValueError, match=r"expected rank in \[0, 2\), received 2"):
        cnnx._core.DataParallelStep(model._core, 4, 2, 2, 1024, 0)


# -- the step, ranks as threads ----------------------------------------------------------------
def fit_on(size: int, micro_batches: int = 4, batch_size: int = 10, epochs: int = 2, **model_kwargs):
    x, y = small_data()
    # Built here, one after another: the seed generator is process-wide.
    models = [small_model(**model_kwargs) for _ in range(size)]

    def train(comm):
        model = models[comm.Get_rank()]
        dp = DataParallel(comm=comm, micro_batches=micro_batches, seed=3, bucket_bytes=256)
        history = model.fit(x, y, batch_size=batch_size, epochs=epochs, validation_split=0.2, verbose=0, distribute=dp)
        return model.get_weights(), history.history

    return run_ranks(size, train)


@pytest.mark.parametrize("model_kwargs", [{}, {"batch_norm": False, "dropout": 0.0}])
def test_weights_are_bit_identical_on_1_2_4_ranks(model_kwargs):
    # 56 training samples in batches of 10: the last batch (6) leaves some micro-batches short.
    runs = {size: fit_on(size, **model_kwargs) for size in (1, 2, 4)}
    reference, ref_history = runs[1][0]
    for size, results in runs.items():
        for weights, history in results:
            for a, b in zip(weights, reference):
                np.testing.assert_array_equal(a, b, err_msg=f"{size} ranks")
            assert history == results[0][1]  # the same logs on every rank (callbacks agree)
            for key, values in ref_history.items():  # and the same up to summation order
                np.testing.assert_allclose(history[key], values, rtol=1e-12)
    assert ref_history["loss"][1] < ref_history["loss"][0]


@pytest.mark.parametrize(("micro_batches", "sizes"), [(4, (3,)), (6, (2, 3, 5, 6))])
def test_weights_are_bit_identical_on_process_counts_that_are_not_powers_of_two(micro_batches, sizes):
    # 4 micro-batches on 3 ranks: leaves 2, 1, 1 (uneven work, the same bits); 6 on 2 to 6 ranks.
    (reference, ref_history), *_ = fit_on(1, micro_batches=micro_batches)
    for size in sizes:
        results = fit_on(size, micro_batches=micro_batches)
        for weights, history in results:
            for a, b in zip(weights, reference):
                np.testing.assert_array_equal(a, b, err_msg=f"{size} ranks")
            assert history == results[0][1]
            np.testing.assert_allclose(history["loss"], ref_history["loss"], rtol=1e-12)


def test_micro_batches_change_the_result_and_plain_fit_differs():
    # The guarantee is per micro_batches: another cut is another summation order (and other
    # BatchNormalization statistics), so the bits differ. This is what the test above can catch.
    (w4, _), *_ = fit_on(1, micro_batches=4)
    (w8, _), *_ = fit_on(1, micro_batches=8)
    assert any(not np.array_equal(a, b) for a, b in zip(w4, w8))


def test_batch_smaller_than_micro_batches():
    # 3 samples over 8 micro-batches: empty micro-batches contribute nothing.
    results = {size: fit_on(size, micro_batches=8, batch_size=3, epochs=1) for size in (1, 8)}
    for weights, _ in results[8]:
        for a, b in zip(weights, results[1][0][0]):
            np.testing.assert_array_equal(a, b)


def test_one_process_matches_a_plain_step_without_dropout_or_batch_norm():
    # With one micro-batch and one process, the step is the model's own train_step.
    x, y = small_data(20)
    plain, dist = small_model(batch_norm=False, dropout=0.0), small_model(batch_norm=False, dropout=0.0)
    plain.fit(x, y, batch_size=20, epochs=3, shuffle=False, verbose=0)
    dist.fit(
        x,
        y,
        batch_size=20,
        epochs=3,
        shuffle=False,
        verbose=0,
        distribute=DataParallel(comm=one_rank(), micro_batches=1),
    )
    for a, b in zip(plain.get_weights(), dist.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_buckets_cover_the_buffer_and_the_timeline_is_ordered():
    model = small_model()
    model.build((None, 9, 9, 3))
    step = cnnx._core.DataParallelStep(model._core, 4, 0, 1, 16, 0)
    buckets = step.buckets()
    size = len(step.buffer())
    assert buckets[0] == (size - 10, size)  # the moving statistics (2 x 5 channels) come first
    grads = sorted(buckets[1:])
    assert grads[0][0] == 0 and grads[-1][1] == size - 10
    assert all(a[1] == b[0] for a, b in zip(grads, grads[1:]))
    # Gradient buckets go from the last layer to the first: the Dense layer's (45 x 4 + 4) first.
    # BatchNormalization's 10 floats are under the 16 asked for: its bucket takes in the Conv2D's.
    assert buckets[1] == (0, 184) and buckets[2] == (184, size - 10) and len(buckets) == 3
    x, y = small_data(8)
    step.train_step(x, y.astype(np.float32).reshape(-1, 1), np.arange(8, dtype=np.int64), None, 8, 10.0)
    t = step.timeline()
    assert 0 <= t["backward_begin"] <= t["backward_end"] <= t["step_end"]
    assert all(r <= t["backward_end"] for r in t["ready"])


# -- under Open MPI ------------------------------------------------------------------------------
def mpirun_path() -> str | None:
    beside = Path(sys.executable).parent / "mpirun"
    return str(beside) if beside.exists() else shutil.which("mpirun")


def mpi_available() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return mpirun_path() is not None and os.environ.get("CNNX_TEST_MPI", "1") != "0"


needs_mpi = pytest.mark.skipif(not mpi_available(), reason="needs mpi4py and mpirun (pip install 'cnnx[mpi]')")


def mpirun(np_: int, out: Path, *args: str, timeout: float = 240) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [mpirun_path(), "-np", str(np_)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    if np_ > (os.cpu_count() or 1):
        cmd.append("--oversubscribe")
    # One host: shared memory between the ranks, and TCP (if used at all) on loopback only.
    cmd += ["--mca", "btl_tcp_if_include", "lo"]
    cmd += [sys.executable, str(WORKER), "--out", str(out), *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return proc, time.monotonic() - start


def read_ranks(out: Path, np_: int) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(np_)]


@needs_mpi
@pytest.mark.slow
def test_mpirun_weights_equal_on_every_rank_every_step_and_across_process_counts(tmp_path):
    finals, metric, evaluations, predictions = {}, {}, {}, {}
    for np_ in (1, 2, 3, 4):  # 3: micro-batches 2, 1, 1; the general reducer
        out = tmp_path / f"np{np_}"
        out.mkdir()
        proc, _ = mpirun(np_, out)
        assert proc.returncode == 0, proc.stderr[-3000:]
        ranks = read_ranks(out, np_)
        assert len(ranks[0]["digests"]) == 100  # 4 epochs of 25 steps
        for r in ranks:
            assert r["processes"] == np_
            assert r["digests"] == ranks[0]["digests"], f"rank {r['rank']} of {np_} differs"
            assert r["history"] == ranks[0]["history"]
            assert r["evaluation"] == ranks[0]["evaluation"]
            assert r["predictions"] == ranks[0]["predictions"]
        finals[np_] = ranks[0]["final"]
        evaluations[np_] = ranks[0]["evaluation"]
        predictions[np_] = np.array(ranks[0]["predictions"])
        metric[np_] = ranks[0]["history"]["sparse_categorical_crossentropy"]
    assert finals[1] == finals[2] == finals[3] == finals[4]
    assert metric[1] == metric[2] == metric[3] == metric[4]  # a Python metric over the gathered outputs
    for np_ in (2, 3, 4):
        # evaluate(distribute=): the same model, every sample counted once
        assert evaluations[np_]["accuracy"] == evaluations[1]["accuracy"]
        assert evaluations[np_]["loss"] == pytest.approx(evaluations[1]["loss"], rel=1e-6)
        # predict(distribute=): every output, in order
        assert predictions[np_].shape == predictions[1].shape == (61, 5)
        np.testing.assert_allclose(predictions[np_], predictions[1], rtol=1e-6, atol=1e-7)


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dataset", "pydataset"])
def test_mpirun_dataset_input_keeps_ranks_equal(tmp_path, mode):
    # dataset: shuffled without a seed, NumPy seeded differently on each process (fit shares
    # rank 0's shuffle seed; the per-step fingerprint check would refuse other orders).
    proc, _ = mpirun(2, tmp_path, "--mode", mode, "--epochs", "2", "--seed-per-rank")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = read_ranks(tmp_path, 2)
    # 223 samples in batches of 8: 28 batches, 14 steps of two batches per epoch.
    assert len(ranks[0]["digests"]) == 28
    assert ranks[0]["digests"] == ranks[1]["digests"]


@needs_mpi
@pytest.mark.slow
def test_mpirun_a_generator_that_differs_between_processes_is_refused(tmp_path):
    proc, seconds = mpirun(2, tmp_path, "--mode", "generator", "--seed-per-rank", timeout=120)
    assert proc.returncode != 0
    assert "processes 0 and 1 read different batches in epoch 1" in proc.stderr, proc.stderr[-3000:]
    assert seconds < 60


def image_folder(root: Path, per_class: int = 12) -> Path:
    from PIL import Image

    rng = np.random.default_rng(4)
    for c in range(3):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = (rng.random((10, 10, 3)) * 80 + 60 * c).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.png")
    return root


@needs_mpi
@pytest.mark.slow
def test_mpirun_image_folder_is_read_in_shards(tmp_path):
    pytest.importorskip("PIL")
    images = image_folder(tmp_path / "images")
    proc, _ = mpirun(2, tmp_path, "--mode", "images", "--images", str(images), "--epochs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = read_ranks(tmp_path, 2)
    # 27 training images in batches of 4: 7 batches, 3 steps of two per epoch (one dropped).
    assert len(ranks[0]["digests"]) == 6
    assert ranks[0]["digests"] == ranks[1]["digests"]
    assert ranks[0]["history"] == ranks[1]["history"]
    # Another seed on each process: another split and file order; refused, not trained on.
    proc, seconds = mpirun(2, tmp_path, "--mode", "images", "--images", str(images), "--seed-per-rank", timeout=120)
    assert proc.returncode != 0 and seconds < 60
    assert "the image dataset's files differ between processes" in proc.stderr


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("kill", "signal 9 (Killed)"),  # Open MPI names the rank and the signal
        ("raise", "cnnx.distribute: process 1 of 2 failed: ValueError: deliberate failure on process 1"),
        ("hang", "waited more than 3 s for the other processes"),
    ],
)
def test_mpirun_a_failing_process_ends_the_run(tmp_path, mode, message):
    proc, seconds = mpirun(2, tmp_path, "--mode", mode, "--timeout", "3", timeout=120)
    assert proc.returncode != 0
    assert seconds < 60
    text = proc.stdout + proc.stderr
    assert message in text, text[-3000:]
    assert not (tmp_path / "rank0.json").exists()


@needs_mpi
@pytest.mark.slow
def test_mpirun_resume_with_another_process_count(tmp_path):
    straight = tmp_path / "straight"
    straight.mkdir()
    proc, _ = mpirun(1, straight, "--epochs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = tmp_path / "first"
    first.mkdir()
    checkpoint = str(tmp_path / "ckpt_{epoch}.cnnx")
    proc, _ = mpirun(2, first, "--epochs", "1", "--checkpoint", checkpoint)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "ckpt_1.cnnx").exists()
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    proc, _ = mpirun(4, resumed, "--epochs", "2", "--initial-epoch", "1", "--load", str(tmp_path / "ckpt_1.cnnx"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_ranks(resumed, 4)[3]["final"] == read_ranks(straight, 1)[0]["final"]


def test_image_dataset_shards_partition_a_pass(tmp_path):
    pytest.importorskip("PIL")
    images = image_folder(tmp_path / "images", per_class=5)  # 15 images: batches 4, 4, 4, 3

    def dataset():
        return cnnx.utils.image_dataset_from_directory(images, image_size=(10, 10), batch_size=4, seed=2)

    full = [np.asarray(x) for x, _ in dataset()]
    shards = [[np.asarray(x) for x, _ in dataset()._iter_shard(2, r, drop_remainder=False)] for r in range(2)]
    assert [len(s) for s in shards] == [2, 2]
    for k, batch in enumerate(full):
        np.testing.assert_array_equal(shards[k % 2][k // 2], batch)
    dropped = [list(dataset()._iter_shard(3, r, drop_remainder=True)) for r in range(3)]
    assert [len(s) for s in dropped] == [1, 1, 1]  # 4 batches over 3 shards: the 4th is dropped


def test_a_stop_on_one_rank_stops_every_rank_at_the_same_step():
    x, y = small_data()
    models = [small_model() for _ in range(2)]

    class StopOnRank1(cnnx.callbacks.Callback):
        def __init__(self, rank):
            super().__init__()
            self.rank, self.steps = rank, 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.rank == 1 and self.steps == 3:
                self.model.stop_training = True

    def train(comm):
        rank = comm.Get_rank()
        stopper = StopOnRank1(rank)
        early = cnnx.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)  # stops after epoch 2
        dp = DataParallel(comm=comm, seed=1)
        first = models[rank].fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[stopper], distribute=dp)
        second = models[rank].fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[early], distribute=dp)
        return stopper.steps, len(first.history["loss"]), len(second.history["loss"])

    assert run_ranks(2, train) == [(3, 1, 2), (3, 1, 2)]


# -- data that is not arrays: every process must deal the same batches --------------------------
class CountingBatches(cnnx.utils.PyDataset):
    """7 batches of 8 samples; records the indices it was asked for."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.fetched = x, y, []

    def __len__(self):
        return 7

    def __getitem__(self, i):
        self.fetched.append(i)
        return self.x[i * 8 : (i + 1) * 8], self.y[i * 8 : (i + 1) * 8]


@pytest.mark.parametrize("size", [2, 3])
def test_a_pydataset_is_read_in_shards_of_one_shared_order(size):
    # Each process fetches only its batches, dealt from one order drawn from the run's seed (not
    # from each process's `random`): every batch of an epoch is read once, by one process.
    x, y = small_data(56)
    models = [small_model() for _ in range(size)]

    def train(comm):
        rank = comm.Get_rank()
        data = CountingBatches(x, y)
        models[rank].fit(data, epochs=2, verbose=0, distribute=DataParallel(comm=comm, seed=4))
        return data.fetched, models[rank].get_weights()

    results = run_ranks(size, train)
    dealt = 7 // size * size  # each step takes one batch from each process; the rest is dropped
    per_rank = dealt // size
    epochs = [sorted(i for fetched, _ in results for i in fetched[e * per_rank : (e + 1) * per_rank]) for e in (0, 1)]
    for e in (0, 1):
        assert len(epochs[e]) == dealt and len(set(epochs[e])) == dealt, epochs[e]
    first_order = [fetched[:per_rank] for fetched, _ in results]
    second_order = [fetched[per_rank:] for fetched, _ in results]
    assert first_order != second_order  # shuffled again each epoch
    for _, weights in results[1:]:
        for a, b in zip(weights, results[0][1]):
            np.testing.assert_array_equal(a, b)


def test_a_dataset_shuffled_without_a_seed_gets_rank_0s_order():
    # Dataset.shuffle(seed=None) draws its seed from NumPy's global generator when it is built:
    # another seed on every process. fit gives every process rank 0's, so they deal one order.
    x, y = small_data(60)
    models = [small_model() for _ in range(2)]
    datasets = [cnnx.data.Dataset.from_tensor_slices((x, y)).shuffle(60).batch(10) for _ in range(2)]

    def train(comm):
        rank = comm.Get_rank()
        models[rank].fit(datasets[rank], epochs=2, verbose=0, distribute=DataParallel(comm=comm, seed=4))
        return models[rank].get_weights()

    w0, w1 = run_ranks(2, train)
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)


def test_a_generator_that_differs_between_processes_is_refused_on_every_process():
    x, y = small_data(60)
    models = [small_model() for _ in range(2)]

    def train(comm):
        rank = comm.Get_rank()
        order = np.random.default_rng(rank).permutation(60)  # another order on each process

        def batches():
            for start in range(0, 60, 10):
                rows = order[start : start + 10]
                yield x[rows], y[rows]

        try:
            models[rank].fit(batches(), epochs=1, verbose=0, distribute=DataParallel(comm=comm, seed=4))
        except ValueError as e:
            return str(e)
        return None

    messages = run_ranks(2, train)  # a ValueError on both, not Abort (ThreadComm.Abort raises RuntimeError)
    assert all(m is not None and "processes 0 and 1 read different batches in epoch 1" in m for m in messages)


# -- evaluate ----------------------------------------------------------------------------------
def eval_model(seed: int = 5):
    model = small_model(seed)
    model.compile(
        optimizer=cnnx.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", "sparse_categorical_crossentropy"],  # the second computed in Python
    )
    return model


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("data", ["arrays", "dataset"])
def test_a_distributed_evaluate_gives_every_process_the_logs_of_all_the_data(size, data):
    x, y = small_data(70)
    models = [eval_model() for _ in range(size + 1)]
    batches = cnnx.data.Dataset.from_tensor_slices((x, y)).batch(8)
    args = (x, y) if data == "arrays" else (batches,)
    alone = models[size].evaluate(*args, batch_size=8 if data == "arrays" else None, verbose=0, return_dict=True)

    def evaluate(comm):
        model = models[comm.Get_rank()]
        kwargs = {"batch_size": 8} if data == "arrays" else {}
        return model.evaluate(*args, **kwargs, verbose=0, return_dict=True, distribute=DataParallel(comm=comm))

    results = run_ranks(size, evaluate)
    for logs in results:
        assert logs == results[0]  # the same bits on every process
        assert logs["accuracy"] == alone["accuracy"]  # every sample counted once
        for key in ("loss", "sparse_categorical_crossentropy"):
            np.testing.assert_allclose(logs[key], alone[key], rtol=1e-6)


def test_a_distributed_evaluate_refuses_different_weights_on_every_process():
    x, y = small_data(20)
    models = [eval_model(seed=5), eval_model(seed=6)]

    def evaluate(comm):
        try:
            models[comm.Get_rank()].evaluate(x, y, verbose=0, distribute=DataParallel(comm=comm))
        except ValueError as e:
            return str(e)
        return None

    for message in run_ranks(2, evaluate):
        assert message is not None and "the weights of process 1 differ from process 0's" in message


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("data", ["arrays", "dataset", "pydataset"])
def test_a_distributed_predict_gives_every_process_all_the_outputs_in_order(size, data):
    x, y = small_data(53)  # 7 batches of 8 (the last of 5): uneven shares
    models = [eval_model() for _ in range(size + 1)]
    inputs = {
        "arrays": lambda: (x,),
        "dataset": lambda: (cnnx.data.Dataset.from_tensor_slices(x).batch(8),),
        "pydataset": lambda: (CountingBatches(x, y),),
    }[data]
    alone = models[size].predict(*inputs(), batch_size=8 if data == "arrays" else None, verbose=0)

    def predict(comm):
        source = inputs()
        kwargs = {"batch_size": 8} if data == "arrays" else {}
        out = models[comm.Get_rank()].predict(*source, **kwargs, verbose=0, distribute=DataParallel(comm=comm))
        return out, getattr(source[0], "fetched", None)

    results = run_ranks(size, predict)
    for out, _ in results:
        np.testing.assert_array_equal(out, results[0][0])  # the same on every process
    np.testing.assert_allclose(results[0][0], alone, rtol=1e-6, atol=1e-7)  # every sample, in order
    if data == "pydataset":  # each process fetched only its batches, every batch once
        fetched = sorted(i for _, f in results for i in f)
        assert fetched == list(range(7))


def test_a_plain_evaluate_inside_a_distributed_fit_stays_on_its_process():
    # A callback that evaluates on rank 0 alone must not wait for the other processes.
    x, y = small_data(40)
    models = [small_model() for _ in range(2)]

    class EvaluateOnRank0(cnnx.callbacks.Callback):
        def __init__(self, rank):
            super().__init__()
            self.rank, self.logs = rank, []

        def on_epoch_end(self, epoch, logs=None):
            if self.rank == 0:
                self.logs.append(self.model.evaluate(x, y, verbose=0, return_dict=True))

    def train(comm):
        rank = comm.Get_rank()
        probe = EvaluateOnRank0(rank)
        models[rank].fit(
            x,
            y,
            batch_size=8,
            epochs=2,
            validation_split=0.25,
            verbose=0,
            callbacks=[probe],
            distribute=DataParallel(comm=comm, seed=2),
        )
        return len(probe.logs)

    assert run_ranks(2, train) == [2, 0]


def test_each_bucket_is_announced_as_soon_as_its_layers_are_done():
    # The article's network with a bucket per layer: each is announced right after its own
    # layer's backward, the fused conv + max-pool ones included (their conv's node reports).
    from conftest import article_model

    model = article_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.build((None, 28, 28, 1))
    step = cnnx._core.DataParallelStep(model._core, 1, 0, 1, 1, 0)
    rng = np.random.default_rng(0)
    x = rng.random((4, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[[1, 2, 3, 4]]
    step.train_step(x, y, np.arange(4, dtype=np.int64), None, 4, 10.0)
    nodes = step.timeline()["ready_at_node"]
    trainable = [i + 1 for i, layer in enumerate(model.layers) if layer.count_params()]
    assert nodes == sorted(trainable, reverse=True)  # conv3, conv2, conv1: each at its own node
