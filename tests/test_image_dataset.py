"""cnnx.utils.image_dataset_from_directory and training on its streamed batches."""

from __future__ import annotations

import os
import pathlib
import sys

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

from conftest import UNDER_ASAN, local_mnist_directory  # noqa: E402

import cnnx  # noqa: E402
from cnnx.datasets import mnist  # noqa: E402
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D, Rescaling  # noqa: E402
from cnnx.utils import ImageDataset, image_dataset_from_directory  # noqa: E402


# --- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory):
    """2,000 MNIST test digits as PNG files in folders 0..9, plus broken files and a text file."""
    root = tmp_path_factory.mktemp("digits")
    directory = local_mnist_directory()
    if directory is None:
        pytest.skip("no local MNIST files")
    _, (x, y) = mnist.load_data(path=directory)
    for d in range(10):
        (root / str(d)).mkdir()
    for i in range(2000):
        Image.fromarray(x[i]).save(root / str(y[i]) / f"{i:05d}.png")
    good = (root / "3" / os.listdir(root / "3")[0]).read_bytes()
    broken = {
        "truncated": root / "3" / "truncated.png",
        "random": root / "5" / "random.jpg",
        "empty": root / "7" / "empty.png",
    }
    broken["truncated"].write_bytes(good[: len(good) // 2])
    broken["random"].write_bytes(np.random.default_rng(0).integers(0, 256, 500, np.uint8).tobytes())
    broken["empty"].write_bytes(b"")
    (root / "1" / "notes.txt").write_text("not an image")
    return root, broken


def _write_images(root, spec, size=(6, 8), mode="RGB"):
    """spec: {class: count}. Image k (global index) is filled with value 10 + k in every channel,
    so a decoded pixel tells which file it came from. Returns {path: k}."""
    ids = {}
    k = 0
    for cls, count in spec.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for j in range(count):
            shape = (size[0], size[1]) if mode == "L" else (size[0], size[1], len(mode))
            arr = np.full(shape, 10 + k, np.uint8)
            path = root / cls / f"img{j:02d}.png"
            Image.fromarray(arr, mode).save(path)
            ids[str(path)] = k
            k += 1
    return ids


@pytest.fixture
def small(tmp_path):
    ids = _write_images(tmp_path, {"b_cat": 4, "a_dog": 3, "c_bird": 5})
    return tmp_path, ids


def _load(root, **kw):
    kw.setdefault("verbose", False)
    kw.setdefault("image_size", (6, 8))
    return image_dataset_from_directory(root, **kw)


def _ids(x):
    return [int(v) - 10 for v in x[:, 0, 0, 0]]


def _collect(ds):
    xs, ys = zip(*list(ds))
    return np.concatenate(xs), np.concatenate(ys)


# --- the acceptance test: real PNGs, broken files, training -------------------------------------------
def test_train_on_mnist_pngs_with_broken_files(mnist_folder, capsys):
    root, broken = mnist_folder
    with pytest.warns(UserWarning) as record:
        train_ds, val_ds = image_dataset_from_directory(
            root,
            color_mode="grayscale",
            image_size=(28, 28),
            validation_split=0.2,
            subset="both",
            seed=1,
            batch_size=32,
        )
    messages = " ".join(str(w.message) for w in record)
    for path in broken.values():
        assert str(path) in messages
    assert len(record) == 3
    out = capsys.readouterr().out
    assert "Found 2000 files belonging to 10 classes." in out
    assert "Using 1600 files for training." in out and "Using 400 files for validation." in out
    assert train_ds.class_names == [str(d) for d in range(10)]
    assert len(train_ds) == 50 and len(val_ds) == 13 and train_ds.cardinality() == 50
    assert not set(train_ds.file_paths) & set(val_ds.file_paths)
    assert not any(p.endswith(".txt") for p in train_ds.file_paths + val_ds.file_paths)

    cnnx.utils.set_random_seed(0)
    model = cnnx.Sequential(
        [
            Input((28, 28, 1)),
            Rescaling(1 / 255),
            Conv2D(16, 3, activation="relu"),
            MaxPooling2D(2),
            Conv2D(32, 3, activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(64, activation="relu"),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # About 2 s on 2 idle cores (decoding overlaps training); no time assert, CI machines are shared.
    history = model.fit(train_ds, validation_data=val_ds, epochs=10, verbose=0)
    assert len(history.history["loss"]) == 10
    assert history.history["val_accuracy"][-1] >= 0.95, history.history
    loss, acc = model.evaluate(val_ds, verbose=0)
    assert acc == pytest.approx(history.history["val_accuracy"][-1])
    assert model.predict(val_ds, verbose=0).shape == (400, 10)


@pytest.mark.skipif(UNDER_ASAN, reason="RSS is not cnnx's memory under AddressSanitizer")
def test_streaming_keeps_memory_bounded(tmp_path):
    """2,000 RGB 64x64 images (98 MB as float32) iterated twice: RSS grows by a few batches only."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (64, 64, 3), np.uint8)
    for c in range(4):
        (tmp_path / f"c{c}").mkdir()
    for i in range(2000):
        Image.fromarray(np.roll(base, i, axis=1)).save(tmp_path / f"c{i % 4}" / f"{i:05d}.png", compress_level=1)
    ds = _load(tmp_path, image_size=(64, 64), batch_size=32, seed=0)
    decoded_mb = 2000 * 64 * 64 * 3 * 4 / 2**20

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc/self/status")
    list(zip(range(3), ds))  # warm up (thread pool, Pillow plugins)
    before = rss_mb()
    peak, seen = before, 0
    for _ in range(2):
        for x, _y in ds:
            seen += len(x)
            peak = max(peak, rss_mb())
    assert seen == 4000
    assert peak - before < 0.25 * decoded_mb, (before, peak)


# --- labels, classes, colours -------------------------------------------------------------------------
def test_class_names_sorted_and_labels_follow_folders(small):
    root, ids = small
    ds = _load(root, shuffle=False, batch_size=5)
    assert ds.class_names == ["a_dog", "b_cat", "c_bird"]
    x, y = _collect(ds)
    assert x.dtype == np.float32 and x.shape == (12, 6, 8, 3)
    assert y.dtype == np.int32 and y.tolist() == [0] * 3 + [1] * 4 + [2] * 5
    # Unshuffled order: classes in order, files sorted within each.
    assert _ids(x) == [ids[p] for p in ds.file_paths]
    assert ds.file_paths == sorted(ds.file_paths)
    assert len(ds) == 3 and [len(b[0]) for b in ds] == [5, 5, 2]


def test_class_names_argument_selects_and_orders(small):
    root, ids = small
    ds = _load(root, shuffle=False, class_names=["c_bird", "a_dog"])
    x, y = _collect(ds)
    assert ds.class_names == ["c_bird", "a_dog"]
    assert y.tolist() == [0] * 5 + [1] * 3
    assert all("b_cat" not in p for p in ds.file_paths)
    with pytest.raises(ValueError, match="did not match"):
        _load(root, class_names=["a_dog", "zebra"])


@pytest.mark.parametrize("label_mode", ["int", "categorical", "binary", None])
def test_label_modes(tmp_path, label_mode):
    _write_images(tmp_path, {"no": 3, "yes": 2})
    ds = _load(tmp_path, shuffle=False, label_mode=label_mode)
    batch = next(iter(ds))
    if label_mode is None:
        assert isinstance(batch, np.ndarray) and batch.shape == (5, 6, 8, 3)
        return
    x, y = batch
    expected = {
        "int": (np.int32, [0, 0, 0, 1, 1]),
        "categorical": (np.float32, [[1, 0]] * 3 + [[0, 1]] * 2),
        "binary": (np.float32, [[0], [0], [0], [1], [1]]),
    }[label_mode]
    assert y.dtype == expected[0]
    np.testing.assert_array_equal(y, expected[1])


def test_binary_needs_two_classes(small):
    with pytest.raises(ValueError, match="exactly 2"):
        _load(small[0], label_mode="binary")


def test_labels_none_and_explicit_list(small):
    root, ids = small
    ds = _load(root, labels=None, shuffle=False)
    x = np.concatenate(list(ds))
    assert x.shape == (12, 6, 8, 3)
    labels = list(range(12))
    ds = _load(root, labels=[v % 3 for v in labels], shuffle=False)
    _, y = _collect(ds)
    assert y.tolist() == [v % 3 for v in labels]
    with pytest.raises(ValueError, match="match the number of files"):
        _load(root, labels=[0, 1])


@pytest.mark.parametrize("color_mode, channels", [("grayscale", 1), ("rgb", 3), ("rgba", 4)])
def test_color_modes(tmp_path, color_mode, channels):
    (tmp_path / "a").mkdir()
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    Image.fromarray(rgb).save(tmp_path / "a" / "red.png")
    Image.fromarray(np.full((4, 4), 100, np.uint8)).save(tmp_path / "a" / "gray.bmp")
    ds = _load(tmp_path, color_mode=color_mode, image_size=(4, 4), shuffle=False)
    x, _ = next(iter(ds))
    assert x.shape == (2, 4, 4, channels)
    gray, red = x[0, 0, 0], x[1, 0, 0]  # gray.bmp sorts before red.png
    if color_mode == "grayscale":
        assert red[0] == pytest.approx(76, abs=1) and gray[0] == 100  # ITU-R 601 luma
    else:
        np.testing.assert_array_equal(red[:3], [255, 0, 0])
        np.testing.assert_array_equal(gray[:3], [100, 100, 100])
    if color_mode == "rgba":
        assert red[3] == 255


def test_resize_and_crop_to_aspect_ratio(tmp_path):
    (tmp_path / "a").mkdir()
    wide = np.zeros((10, 30), np.uint8)
    wide[:, 10:20] = 200  # a bright centre third
    Image.fromarray(wide).save(tmp_path / "a" / "wide.png")
    plain = _load(tmp_path, color_mode="grayscale", image_size=(10, 10), shuffle=False)
    cropped = _load(tmp_path, color_mode="grayscale", image_size=(10, 10), shuffle=False, crop_to_aspect_ratio=True)
    x_plain, x_crop = next(iter(plain))[0], next(iter(cropped))[0]
    assert x_plain.shape == x_crop.shape == (1, 10, 10, 1)
    assert (x_crop == 200).all()  # the centred 10x10 box is all bright
    assert x_plain[0, 5, 0, 0] < 50 and x_plain[0, 5, 5, 0] > 150
    nearest = _load(tmp_path, color_mode="grayscale", image_size=(10, 15), shuffle=False, interpolation="nearest")
    np.testing.assert_array_equal(next(iter(nearest))[0][0, :, :, 0], wide[:, ::2])


def test_gif_and_jpeg_are_read(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.full((5, 5, 3), 120, np.uint8)).save(tmp_path / "a" / "x.jpg", quality=95)
    Image.fromarray(np.full((5, 5), 60, np.uint8)).save(tmp_path / "a" / "y.GIF")
    x, _ = next(iter(_load(tmp_path, image_size=(5, 5), shuffle=False)))
    assert abs(x[0].mean() - 120) < 3 and abs(x[1].mean() - 60) < 3


# --- shuffling and splits -----------------------------------------------------------------------------
def test_shuffle_reproducible_with_seed_and_new_order_each_epoch(small):
    root, _ = small
    a = _load(root, seed=7, batch_size=4)
    b = _load(root, seed=7, batch_size=4)
    assert a.file_paths == b.file_paths
    epochs_a = [_ids(_collect(a)[0]) for _ in range(3)]
    epochs_b = [_ids(_collect(b)[0]) for _ in range(3)]
    assert epochs_a == epochs_b  # same seed, same sequence of orders
    assert len({tuple(e) for e in epochs_a}) == 3  # reshuffled every epoch
    assert all(sorted(e) == list(range(12)) for e in epochs_a)
    # Labels travel with their images.
    x, y = _collect(a)
    by_class = {"b_cat": range(0, 4), "a_dog": range(4, 7), "c_bird": range(7, 12)}
    label_of = {k: ["a_dog", "b_cat", "c_bird"].index(c) for c, r in by_class.items() for k in r}
    assert [label_of[k] for k in _ids(x)] == y.tolist()
    c = _load(root, seed=8, batch_size=4)
    assert _ids(_collect(c)[0]) != epochs_a[0] or c.file_paths != a.file_paths


def test_no_shuffle_keeps_order_every_epoch(small):
    ds = _load(small[0], shuffle=False)
    assert _ids(_collect(ds)[0]) == _ids(_collect(ds)[0])


def test_seed_none_follows_set_random_seed(small):
    cnnx.utils.set_random_seed(3)
    a = _load(small[0])
    cnnx.utils.set_random_seed(3)
    b = _load(small[0])
    assert a.file_paths == b.file_paths and _ids(_collect(a)[0]) == _ids(_collect(b)[0])


def test_validation_split_like_keras(small):
    root, _ = small
    full = _load(root, seed=5, shuffle=True)
    train = _load(root, seed=5, validation_split=0.25, subset="training")
    val = _load(root, seed=5, validation_split=0.25, subset="validation")
    both = _load(root, seed=5, validation_split=0.25, subset="both")
    # Shuffled with the seed, then the last fraction is validation.
    assert train.file_paths == full.file_paths[:9] and val.file_paths == full.file_paths[9:]
    assert isinstance(both, tuple) and [d.file_paths for d in both] == [train.file_paths, val.file_paths]
    unshuffled = _load(root, shuffle=False, validation_split=0.25, subset="validation")
    assert unshuffled.file_paths == _load(root, shuffle=False).file_paths[9:]


# --- errors -----------------------------------------------------------------------------------------------
def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        _load(tmp_path / "nowhere")


def test_no_class_subfolders(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "loose.png")
    with pytest.raises(ValueError, match="No class sub-directories") as info:
        _load(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_empty_class_folders(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="No images found") as info:
        _load(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_only_broken_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.png").write_bytes(b"nope")
    with pytest.warns(UserWarning, match="bad.png"):
        with pytest.raises(ValueError, match="could not be read"):
            _load(tmp_path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(validation_split=0.2, subset="training"), "seed"),
        (dict(validation_split=0.2, subset="train", seed=1), "subset"),
        (dict(validation_split=0.2, seed=1), "subset"),
        (dict(subset="training", seed=1), "validation_split"),
        (dict(validation_split=1.5, subset="training", seed=1), "between 0 and 1"),
        (dict(label_mode="sparse"), "label_mode"),
        (dict(color_mode="cmyk"), "color_mode"),
        (dict(interpolation="mitchellcubic"), "interpolation"),
        (dict(batch_size=0), "batch_size"),
        (dict(image_size=(0, 4)), "image_size"),
        (dict(labels="folders"), "labels"),
        (dict(labels=[0] * 12, class_names=["a_dog"]), "class_names"),
    ],
)
def test_bad_arguments(small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _load(small[0], **kwargs)


def test_file_that_breaks_after_indexing_is_skipped_with_warning(small):
    root, _ = small
    ds = _load(root, shuffle=False, batch_size=5)
    victim = ds.file_paths[1]
    pathlib.Path(victim).write_bytes(b"gone bad")
    with pytest.warns(UserWarning, match=victim.replace("\\", "\\\\")):
        x, y = _collect(ds)
    assert len(x) == 11 and len(y) == 11
    x2, _ = _collect(ds)  # remembered: skipped quietly next time
    assert len(x2) == 11


def test_cnnx_imports_and_explains_without_pillow(monkeypatch, small):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=r"pip install cnnx\[images\]"):
        _load(small[0])


def test_import_without_pillow_in_a_fresh_process(tmp_path):
    import subprocess

    code = (
        "import sys; sys.modules['PIL'] = None\n"
        "import cnnx, cnnx.utils, cnnx.data\n"
        "assert callable(cnnx.utils.image_dataset_from_directory)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


# --- Sequential with datasets ------------------------------------------------------------------------
def _model(seed=0, input_shape=(6, 8, 3)):
    cnnx.utils.set_random_seed(seed)
    model = cnnx.Sequential(
        [
            Input(input_shape),
            Rescaling(1 / 255),
            Conv2D(4, 3, activation="relu"),
            Flatten(),
            Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_fit_evaluate_predict_on_dataset_equal_arrays(small):
    ds = _load(small[0], shuffle=False, batch_size=5)
    x, y = _collect(ds)
    a, b = _model(), _model()
    ha = a.fit(ds, epochs=3, verbose=0, validation_data=ds)
    hb = b.fit(x, y, batch_size=5, epochs=3, shuffle=False, verbose=0, validation_data=(x, y))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-6)
    np.testing.assert_allclose(a.evaluate(ds, verbose=0), b.evaluate(x, y, batch_size=5, verbose=0), rtol=1e-6)
    np.testing.assert_array_equal(a.predict(ds), b.predict(x, batch_size=5))
    no_labels = _load(small[0], shuffle=False, batch_size=5, labels=None)
    np.testing.assert_array_equal(a.predict(no_labels), b.predict(x))


def test_fit_builds_model_from_first_batch_and_reports_steps(small):
    ds = _load(small[0], shuffle=False, batch_size=5)
    model = cnnx.Sequential([Rescaling(1 / 255), Flatten(), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    seen = []

    class Steps(cnnx.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((self.params["steps"], batch))

    model.fit(ds, epochs=1, verbose=0, callbacks=[Steps()])
    assert model.input_shape == (None, 6, 8, 3)
    assert seen == [(3, 0), (3, 1), (3, 2)]


class _Batches:
    """A minimal dataset: a list of (x, y[, w]) batches with __len__."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def test_generic_dataset_with_sample_weights_equals_arrays():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (12, 6, 8, 3)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    w = rng.uniform(0.1, 2, 12)
    ds = _Batches([(x[i : i + 4], y[i : i + 4], w[i : i + 4]) for i in range(0, 12, 4)])
    a, b = _model(), _model()
    a.fit(ds, epochs=2, verbose=0)
    b.fit(x, y, sample_weight=w, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    class_weight = {0: 1.0, 1: 2.0, 2: 0.5}
    c, d = _model(), _model()
    c.fit(
        _Batches([(x[i : i + 4], y[i : i + 4]) for i in range(0, 12, 4)]),
        epochs=1,
        verbose=0,
        class_weight=class_weight,
    )
    d.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, class_weight=class_weight)
    for wc, wd in zip(c.get_weights(), d.get_weights()):
        np.testing.assert_array_equal(wc, wd)


def test_dataset_argument_errors(small):
    ds = _load(small[0], batch_size=5)
    model = _model()
    x = np.zeros((2, 6, 8, 3), np.float32)
    with pytest.raises(ValueError, match="y must be None"):
        model.fit(ds, np.zeros(12), verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(ds, validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        model.evaluate(ds, sample_weight=np.ones(12), verbose=0)
    with pytest.raises(ValueError, match="without labels"):
        model.fit(_load(small[0], labels=None), verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.fit(_Batches([]), verbose=0)
    with pytest.raises(ValueError, match="expected shape"):
        model.fit(_Batches([(x[:, :4], np.zeros(2))]), verbose=0)
    assert isinstance(ds, ImageDataset) and "ImageDataset" in repr(ds)


def test_stop_training_mid_epoch_closes_the_stream(small):
    ds = _load(small[0], batch_size=2)
    model = _model()

    class StopAfterTwo(cnnx.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    history = model.fit(ds, epochs=3, verbose=0, callbacks=[StopAfterTwo()])
    assert len(history.history.get("loss", [])) <= 1
    x, y = _collect(ds)  # the dataset is still usable afterwards
    assert len(x) == 12


def test_batch_size_none_yields_single_images(small):
    """Keras' batch_size=None: one (image, label) per element, the same as the batched rows."""
    batched = list(_load(small[0], shuffle=False, batch_size=5))
    single = _load(small[0], shuffle=False, batch_size=None)
    assert single.batch_size is None and len(single) == 12
    elements = list(single)
    assert len(elements) == 12 and elements[0][0].shape == (6, 8, 3) and elements[0][1].shape == ()
    np.testing.assert_array_equal(np.stack([x for x, _ in elements]), np.concatenate([x for x, _ in batched]))
    np.testing.assert_array_equal([int(y) for _, y in elements], np.concatenate([y for _, y in batched]))
    again = [x for x, _ in single.batch(4)]  # and batching them again gives tf.data's batches
    assert [len(x) for x in again] == [4, 4, 4]
