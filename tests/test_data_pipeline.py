"""cnnx.data.Dataset: the tf.data methods Keras programs call, checked against what tf.data
yields (written out by hand for the non-random parts), and a TF-images-tutorial pipeline that
trains."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import cnnx
from cnnx import Sequential
from cnnx.data import AUTOTUNE, Dataset
from cnnx.layers import Dense, Flatten, Input

X = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
Y = np.arange(10, dtype=np.int64)


def as_list(ds):
    return list(ds.as_numpy_iterator())


def assert_batches_equal(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, tuple):
            assert isinstance(g, tuple) and len(g) == len(w)
            assert_batches_equal(list(g), list(w))
        else:
            np.testing.assert_array_equal(g, w)
            assert np.asarray(g).dtype == np.asarray(w).dtype


# --- sources ---------------------------------------------------------------------------------------
def test_from_tensor_slices_elements_like_tf_data():
    ds = Dataset.from_tensor_slices((X, Y))
    elements = as_list(ds)
    assert len(elements) == 10 and len(ds) == 10 and ds.cardinality() == 10
    assert ds.cardinality().numpy() == 10  # TF programs call .numpy() on it
    x3, y3 = elements[3]
    np.testing.assert_array_equal(x3, X[3])
    assert y3 == 3 and y3.dtype == np.int64
    # A list is one tensor (tf.data converts it), so its rows are the elements.
    assert [int(v) for v in Dataset.from_tensor_slices([4, 5, 6])] == [4, 5, 6]
    rows = as_list(Dataset.from_tensor_slices([[1, 2], [3, 4]]))
    assert_batches_equal(rows, [np.array([1, 2]), np.array([3, 4])])
    # Nested tuples keep their structure.
    (a, (b, c)) = as_list(Dataset.from_tensor_slices((X, (Y, Y * 2))))[1]
    assert (b, c) == (1, 2)


def test_from_tensor_slices_rejects_bad_input():
    with pytest.raises(ValueError, match="same first dimension"):
        Dataset.from_tensor_slices((X, Y[:9]))
    with pytest.raises(ValueError, match="rank >= 1"):
        Dataset.from_tensor_slices(np.float32(3))
    with pytest.raises(TypeError, match="dict elements are not supported"):
        Dataset.from_tensor_slices({"x": X})
    with pytest.raises(TypeError, match="dtype object"):
        Dataset.from_tensor_slices(np.array([object()]))


def test_range_from_generator_zip_enumerate():
    assert [int(v) for v in Dataset.range(2, 8, 3)] == [2, 5]

    def gen(stop):
        for i in range(stop):
            yield i, i * i

    ds = Dataset.from_generator(gen, args=(4,))
    assert as_list(ds)[3] == (3, 9) and ds.cardinality() == cnnx.data.UNKNOWN_CARDINALITY
    assert len(as_list(ds)) == 4  # called again for every pass
    z = Dataset.zip(Dataset.range(3), Dataset.range(10, 20))
    assert [(int(a), int(b)) for a, b in z] == [(0, 10), (1, 11), (2, 12)] and len(z) == 3
    assert len(Dataset.zip((Dataset.range(3), Dataset.range(5)))) == 3
    e = Dataset.from_tensor_slices(Y[:3]).enumerate(start=5)
    assert [(int(i), int(v)) for i, v in e] == [(5, 0), (6, 1), (7, 2)] and len(e) == 3


# --- batch / unbatch / take / skip / repeat / filter ---------------------------------------------------
def test_batch_equals_tf_data():
    ds = Dataset.from_tensor_slices((X, Y)).batch(4)
    # tf.data: [0:4], [4:8], [8:10]; cardinality 3.
    want = [(X[0:4], Y[0:4]), (X[4:8], Y[4:8]), (X[8:10], Y[8:10])]
    assert_batches_equal(as_list(ds), want)
    assert len(ds) == 3
    dropped = Dataset.from_tensor_slices((X, Y)).batch(4, drop_remainder=True)
    assert_batches_equal(as_list(dropped), want[:2])
    assert len(dropped) == 2
    # The element-by-element path (after a map) stacks to the same batches as the gather path.
    mapped = Dataset.from_tensor_slices((X, Y)).map(lambda x, y: (x, y)).batch(4)
    assert_batches_equal(as_list(mapped), want)
    assert len(mapped) == 3


def test_unbatch_take_skip_repeat():
    ds = Dataset.from_tensor_slices((X, Y)).batch(4)
    rows = as_list(ds.unbatch())
    assert_batches_equal(rows, as_list(Dataset.from_tensor_slices((X, Y))))
    assert ds.unbatch().cardinality() == cnnx.data.UNKNOWN_CARDINALITY
    assert_batches_equal(as_list(ds.unbatch().batch(3).take(1)), [(X[0:3], Y[0:3])])
    s = Dataset.from_tensor_slices(Y)
    assert [int(v) for v in s.take(3)] == [0, 1, 2] and len(s.take(3)) == 3 and len(s.take(-1)) == 10
    assert [int(v) for v in s.skip(7)] == [7, 8, 9] and len(s.skip(7)) == 3 and len(s.skip(-1)) == 0
    assert len(s.skip(20)) == 0 and list(s.skip(20)) == []
    r = s.take(3).repeat(2)
    assert [int(v) for v in r] == [0, 1, 2, 0, 1, 2] and len(r) == 6
    forever = s.take(2).repeat()
    assert forever.cardinality() == cnnx.data.INFINITE_CARDINALITY
    assert [int(v) for v in forever.take(5)] == [0, 1, 0, 1, 0] and len(forever.take(5)) == 5
    with pytest.raises(TypeError, match="The dataset is infinite."):
        len(forever)
    # An empty input repeated forever ends instead of hanging (as tf.data).
    assert list(s.filter(lambda v: v > 100).repeat()) == []
    # Batched gathers follow skip/take/repeat too.
    assert_batches_equal(as_list(s.skip(6).repeat(2).batch(3)), [Y[[6, 7, 8]], Y[[9, 6, 7]], Y[[8, 9]]])


def test_filter_and_map():
    s = Dataset.from_tensor_slices((X, Y))
    even = s.filter(lambda x, y: y % 2 == 0)
    assert [int(y) for _, y in even] == [0, 2, 4, 6, 8]
    with pytest.raises(TypeError, match="The dataset length is unknown."):
        len(even)
    # On elements, map gets one element's components; on a batched dataset, the batch.
    shapes = []
    list(s.map(lambda x, y: shapes.append(x.shape) or (x, y)).take(1))
    list(s.batch(5).map(lambda x, y: shapes.append(x.shape) or (x, y)).take(1))
    assert shapes == [(3,), (5, 3)]
    # Lists returned by the function become tuples (tf.data does the same).
    out = as_list(s.batch(5).map(lambda x, y: [x / 255.0, y], num_parallel_calls=AUTOTUNE))
    assert isinstance(out[0], tuple)
    np.testing.assert_allclose(out[1][0], X[5:] / 255.0)
    assert as_list(Dataset.from_tensor_slices(Y).map(lambda v: v * 2).take(2)) == [0, 2]


def test_bad_arguments_are_keras_style_errors():
    s = Dataset.from_tensor_slices(Y)
    with pytest.raises(TypeError, match=r"Dataset.map: `map_func` must be callable"):
        s.map(3)
    with pytest.raises(ValueError, match=r"num_parallel_calls.*received num_parallel_calls=0"):
        s.map(lambda v: v, num_parallel_calls=0)
    with pytest.raises(
        ValueError, match=r"Dataset.batch: expected `batch_size` to be an integer >= 1, received batch_size=0"
    ):
        s.batch(0)
    with pytest.raises(TypeError, match=r"Dataset.take: expected `count` to be an integer, received count=1.5"):
        s.take(1.5)
    with pytest.raises(ValueError, match=r"Dataset.shuffle: expected `buffer_size` to be an integer >= 1"):
        s.shuffle(0)
    with pytest.raises(ValueError, match=r"expected `seed` to be None or a non-negative integer"):
        s.shuffle(4, seed=-1)
    with pytest.raises(TypeError, match=r"Dataset.cache: expected `filename` to be a string"):
        s.cache(3)
    with pytest.raises(ValueError, match="Cannot batch tensors with different shapes"):
        list(Dataset.from_generator(lambda: iter([np.zeros(2), np.zeros(3)])).batch(2))
    with pytest.raises(ValueError, match="rank >= 1"):
        list(s.unbatch())


# --- shuffle ---------------------------------------------------------------------------------------------
def test_shuffle_is_tf_datas_buffered_shuffle():
    s = Dataset.from_tensor_slices(np.arange(50))
    # buffer_size=1 keeps the order; with buffer k, output p comes from the first p + k inputs.
    assert [int(v) for v in s.shuffle(1, seed=3)] == list(range(50))
    for k in (2, 7):
        out = [int(v) for v in s.shuffle(k, seed=3)]
        assert sorted(out) == list(range(50))
        assert all(v < p + k for p, v in enumerate(out))
        assert out != list(range(50))
    assert len(s.shuffle(5)) == 50


def test_shuffle_batch_keeps_pairs_and_tf_batch_sizes():
    ds = Dataset.from_tensor_slices((X, Y)).shuffle(10, seed=0).batch(4)
    batches = as_list(ds)
    assert [len(b[1]) for b in batches] == [4, 4, 2]  # as tf.data: only the order is random
    ys = np.concatenate([b[1] for b in batches])
    assert sorted(ys) == list(range(10)) and list(ys) != list(range(10))
    for xb, yb in batches:
        np.testing.assert_array_equal(xb, X[yb])  # x and y stay paired


def test_shuffle_determinism_and_reshuffling():
    def orders(ds, passes=3):
        return [[int(v) for v in ds] for _ in range(passes)]

    s = Dataset.from_tensor_slices(np.arange(20))
    a = orders(s.shuffle(20, seed=7))
    assert a == orders(s.shuffle(20, seed=7))  # same seed, same sequence of orders
    assert a[0] != a[1]  # a new order every pass
    fixed = orders(s.shuffle(20, seed=7, reshuffle_each_iteration=False))
    assert fixed[0] == fixed[1] == fixed[2]
    # The gather path (batch right after shuffle) and the element path draw the same order.
    fast = [list(b) for b in s.shuffle(8, seed=1).batch(5)]
    slow = [list(b) for b in s.map(lambda v: v).shuffle(8, seed=1).batch(5)]
    assert fast == slow
    # seed=None follows cnnx.utils.set_random_seed.
    cnnx.utils.set_random_seed(11)
    b = orders(s.shuffle(20))
    cnnx.utils.set_random_seed(11)
    assert orders(s.shuffle(20)) == b
    # shuffle before repeat reshuffles each repetition.
    rep = [int(v) for v in s.shuffle(20, seed=2).repeat(2)]
    assert sorted(rep[:20]) == sorted(rep[20:]) == list(range(20)) and rep[:20] != rep[20:]


# --- cache / prefetch ------------------------------------------------------------------------------------
def test_cache_runs_the_pipeline_once():
    calls = []
    ds = Dataset.from_tensor_slices(Y).map(lambda v: calls.append(int(v)) or v * 10).cache()
    assert [int(v) for v in ds.take(3)] == [0, 10, 20]  # a partial pass caches nothing
    assert [int(v) for v in ds] == [int(v) * 10 for v in Y]
    assert [int(v) for v in ds] == [int(v) * 10 for v in Y]
    assert calls == [0, 1, 2] + list(range(10))
    assert len(ds) == 10
    assert len(list(Dataset.from_tensor_slices(Y).cache("ignored-file"))) == 10


def _prefetch_threads():
    return sum(t.name == "cnnx-prefetch" for t in threading.enumerate())


def test_prefetch_same_elements_errors_and_threads_end():
    ds = Dataset.from_tensor_slices((X, Y)).shuffle(10, seed=4).batch(3)
    assert_batches_equal(
        as_list(ds.prefetch(AUTOTUNE)), as_list(Dataset.from_tensor_slices((X, Y)).shuffle(10, seed=4).batch(3))
    )
    assert len(ds.prefetch(2)) == 4
    assert ds.prefetch(0) is ds

    def boom(v):
        if v == 5:
            raise RuntimeError("bad element 5")
        return v

    with pytest.raises(RuntimeError, match="bad element 5"):
        list(Dataset.from_tensor_slices(Y).map(boom).prefetch(1))
    before = _prefetch_threads()
    it = iter(Dataset.from_tensor_slices(Y).repeat().prefetch(3))
    assert int(next(it)) == 0
    it.close()  # the consumer leaves early: the producer thread stops
    assert _prefetch_threads() == before
    assert [int(v) for v in Dataset.range(100).prefetch(1).take(3)] == [0, 1, 2]
    assert _prefetch_threads() == before


# --- in fit ------------------------------------------------------------------------------------------------
def dense_model():
    m = Sequential([Input((3,)), Dense(4, activation="softmax")])
    m.compile(optimizer=cnnx.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_batched_dataset_trains_like_the_same_arrays():
    a, b = dense_model(), dense_model()
    b.set_weights(a.get_weights())
    y = Y % 4
    a.fit(Dataset.from_tensor_slices((X / 30, y)).batch(4), epochs=2, verbose=0)
    b.fit(X / 30, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert a.evaluate(Dataset.from_tensor_slices((X / 30, y)).batch(3), verbose=0) == pytest.approx(
        b.evaluate(X / 30, y, batch_size=3, verbose=0)
    )
    np.testing.assert_array_equal(
        a.predict(Dataset.from_tensor_slices(X / 30).batch(4), verbose=0), b.predict(X / 30, verbose=0)
    )


def test_tf_images_tutorial_pipeline_trains(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    # Two classes a small convnet separates easily: dark images with a bright square, and the reverse.
    for label, name in enumerate(("dark", "light")):
        (tmp_path / name).mkdir()
        for i in range(24):
            base = rng.integers(0, 60, (12, 12, 3)) if label == 0 else rng.integers(190, 255, (12, 12, 3))
            base[3:7, 3:7] = 255 - base[3:7, 3:7]
            Image.fromarray(base.astype(np.uint8)).save(tmp_path / name / f"{i}.png")
    train_ds, val_ds = cnnx.utils.image_dataset_from_directory(
        tmp_path, validation_split=0.25, subset="both", seed=123, image_size=(12, 12), batch_size=8, verbose=False
    )
    class_names = train_ds.class_names
    normalization_layer = cnnx.layers.Rescaling(1.0 / 255)
    train_ds = train_ds.map(lambda x, y: (normalization_layer(x), y))
    val_ds = val_ds.map(lambda x, y: (normalization_layer(x), y))
    AUTO = cnnx.data.AUTOTUNE
    train_ds = train_ds.cache().shuffle(1000).prefetch(buffer_size=AUTO)
    val_ds = val_ds.cache().prefetch(buffer_size=AUTO)
    first_x, _ = next(iter(train_ds))
    assert 0.0 <= first_x.min() and first_x.max() <= 1.0
    model = Sequential(
        [
            Input((12, 12, 3)),
            cnnx.layers.Conv2D(4, 3, activation="relu"),
            cnnx.layers.MaxPooling2D(),
            Flatten(),
            Dense(len(class_names)),
        ]
    )
    model.compile(
        optimizer=cnnx.optimizers.Adam(0.01),
        loss=cnnx.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(train_ds, validation_data=val_ds, epochs=8, verbose=0)
    h = history.history
    assert len(h["loss"]) == 8 and len(h["val_loss"]) == 8
    assert h["loss"][-1] < h["loss"][0]
    assert h["val_accuracy"][-1] >= 0.9
    assert cnnx.data.experimental.cardinality(val_ds) == 2 and len(train_ds) == 5
