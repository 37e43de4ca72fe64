"""One model file: round trip, resuming training, atomic writes, and refusing bad files."""

import errno
import subprocess
import sys

import numpy as np
import pytest

import cnnx
from cnnx import Sequential
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D


def small_model(optimizer="adam"):
    model = Sequential(
        [
            Input((10, 10, 1)),
            Conv2D(4, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Conv2D(6, 3, activation="relu"),
            Flatten(),
            Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture
def data(rng):
    x = rng.random((96, 10, 10, 1), dtype=np.float32)
    y = rng.integers(0, 3, 96)
    return x, y


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", cnnx.optimizers.SGD(0.05, momentum=0.9, nesterov=True)])
def test_round_trip(tmp_path, data, optimizer):
    x, y = data
    model = small_model(optimizer)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = tmp_path / "m.cnnx"
    model.save(path)
    loaded = cnnx.models.load_model(path)
    assert loaded.get_config() == model.get_config()
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    for sa, sb in zip(model._core.get_optimizer_slots(), loaded._core.get_optimizer_slots()):
        for a, b in zip(sa, sb):
            np.testing.assert_array_equal(a, b)
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


def test_resume_equals_training_in_one_go(tmp_path, data):
    x, y = data
    cnnx.utils.set_random_seed(21)
    straight = small_model()
    straight.fit(x, y, batch_size=16, epochs=4, verbose=0)

    cnnx.utils.set_random_seed(21)
    first = small_model()
    first.fit(x, y, batch_size=16, epochs=2, verbose=0)
    first.save(tmp_path / "half.cnnx")
    resumed = cnnx.models.load_model(tmp_path / "half.cnnx")
    resumed.fit(x, y, batch_size=16, epochs=4, initial_epoch=2, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_uncompiled_model_and_weights_only(tmp_path, data):
    x, _ = data
    model = Sequential([Input((10, 10, 1)), Conv2D(2, 3), Flatten(), Dense(2)])
    model.save(tmp_path / "plain.cnnx")
    loaded = cnnx.models.load_model(tmp_path / "plain.cnnx")
    assert not loaded.compiled
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))

    trained = small_model()
    trained.save_weights(tmp_path / "w.cnnx")
    fresh = small_model()
    fresh.load_weights(tmp_path / "w.cnnx")
    np.testing.assert_array_equal(fresh.predict(x), trained.predict(x))
    with pytest.raises(ValueError, match="not a whole model"):
        cnnx.models.load_model(tmp_path / "w.cnnx")
    with pytest.raises(ValueError, match="holds weights for 2 layers, the model has 3"):
        fresh.load_weights(tmp_path / "plain.cnnx")


def saved_bytes(tmp_path):
    path = tmp_path / "good.cnnx"
    small_model().save(path)
    return path.read_bytes()


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b"", "the file is empty"),
        (lambda b: b[:5], "truncated"),
        (
            lambda b: b[:20] + bytes([b[20] ^ 0x5A]) + b[21:],
            "header is not valid JSON|malformed|does not match|checksum",
        ),
        (lambda b: b[:-10] + bytes([b[-10] ^ 0x01]) + b[-9:], "SHA-256 checksum"),
        (lambda b: b + b"extra", "unexpected bytes"),
        (lambda b: b"\x89PNG\r\n\x1a\n" + bytes(100), "header length field"),
        (lambda b: b"\x02\x00\x00\x00\x00\x00\x00\x00{}", "not a cnnx model file"),
    ],
    ids=[
        "cut-in-half",
        "empty",
        "5-bytes",
        "flipped-header-byte",
        "flipped-data-byte",
        "trailing-bytes",
        "png",
        "foreign-safetensors",
    ],
)
def test_bad_files_are_refused(tmp_path, damage, message):
    good = saved_bytes(tmp_path)
    bad = tmp_path / "bad.cnnx"
    bad.write_bytes(damage(good))
    with pytest.raises(ValueError, match=message):
        cnnx.models.load_model(bad)


def test_every_single_flipped_header_byte_is_refused_or_harmless(tmp_path, data):
    """No byte flip in the header can crash the process: it is refused, or (a flip inside a
    string the loader does not interpret) gives the same model."""
    x, _ = data
    good = saved_bytes(tmp_path)
    n = int.from_bytes(good[:8], "little")
    bad = tmp_path / "flip.cnnx"
    for i in range(8, 8 + n, 7):
        bad.write_bytes(good[:i] + bytes([good[i] ^ 0x20]) + good[i + 1 :])
        try:
            cnnx.models.load_model(bad).predict(x)
        except (ValueError, TypeError):
            pass


# A save that fails midway: the file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes a write
# fail with EFBIG the way a full disk gives ENOSPC. In a child process, so the limit touches
# nothing else.
ATOMIC_CHILD = r"""
import os, resource, signal, sys
import numpy as np, cnnx
from cnnx.layers import Dense, Input
path = sys.argv[1]
model = cnnx.Sequential([Input((64,)), Dense(64), Dense(3)])
model.compile("adam", "mse")
model.save(path)
before = open(path, "rb").read()
model.fit(np.ones((8, 64), np.float32), np.zeros((8, 3), np.float32), epochs=1, verbose=0)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) // 2, resource.RLIM_INFINITY))
try:
    model.save(path)
except OSError as e:
    print(f"OSError {e.errno}: {e}")
else:
    print("saved")
assert open(path, "rb").read() == before, "the previous file changed"
"""


def test_save_is_atomic(tmp_path):
    path = tmp_path / "m.cnnx"
    out = subprocess.run([sys.executable, "-c", ATOMIC_CHILD, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr  # the previous file is intact
    assert out.stdout.strip() == f"OSError {errno.EFBIG}: [Errno {errno.EFBIG}] File too large: {str(path)!r}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.cnnx"]  # no temp file left behind


def test_readable_by_safetensors(tmp_path):
    """The container is plain safetensors: another reader sees the same tensors."""
    st = pytest.importorskip("safetensors.numpy")
    model = small_model()
    model.save(tmp_path / "m.cnnx")
    tensors = st.load_file(str(tmp_path / "m.cnnx"))
    expected = {
        f"weights/{layer.name}/{w}": a
        for layer in model.layers
        for w, a in zip(layer._core.weight_names(), layer.get_weights())
    }
    assert sorted(tensors) == sorted(expected)
    for name, array in expected.items():
        np.testing.assert_array_equal(tensors[name], array)


def test_class_names_are_saved(tmp_path):
    model = small_model()
    model.class_names = ["good", "defective", "unknown"]
    model.save(tmp_path / "c.cnnx")
    assert cnnx.models.load_model(tmp_path / "c.cnnx").class_names == ["good", "defective", "unknown"]


def test_fit_on_a_folder_dataset_keeps_its_class_names(tmp_path, data):
    x, y = data

    class Folder:  # the interface of cnnx.utils.image_dataset_from_directory's datasets
        class_names = ["round", "square", "star"]

        def __len__(self):
            return 3

        def __iter__(self):
            for i in range(3):
                yield x[i * 32 : (i + 1) * 32], y[i * 32 : (i + 1) * 32]

    model = small_model()
    model.fit(Folder(), epochs=1, verbose=0)
    assert model.class_names == ["round", "square", "star"]
    model.save(tmp_path / "f.cnnx")
    assert cnnx.models.load_model(tmp_path / "f.cnnx").class_names == ["round", "square", "star"]
