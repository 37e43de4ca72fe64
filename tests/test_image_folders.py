"""image_dataset_from_directory on awkward folders: FIFOs, 16-bit PNGs, unreadable class folders,
symlink loops."""

from __future__ import annotations

import os
import signal
import struct
import sys
import zlib

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

from cnnx.utils import image_dataset_from_directory  # noqa: E402

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types and symlinks")


def _png(path, value=50, size=(4, 4)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, np.uint8)).save(path)


def _load(root, **kw):
    kw = {"verbose": False, "image_size": (4, 4), "shuffle": False, "batch_size": 100, **kw}
    return image_dataset_from_directory(root, **kw)


def _class_counts(ds):
    return np.bincount(np.concatenate([y for _, y in ds]), minlength=len(ds.class_names)).tolist()


# --- a. FIFOs and other non-regular files --------------------------------------------------------------
@posix_only
def test_fifo_with_image_name_is_skipped_not_opened(tmp_path):
    _png(tmp_path / "a" / "0.png")
    _png(tmp_path / "b" / "1.png")
    fifo = tmp_path / "a" / "x.png"
    os.mkfifo(fifo)

    def timeout(signum, frame):
        raise TimeoutError("image_dataset_from_directory blocked opening a FIFO")

    # Opening a FIFO with no writer blocks forever; the alarm turns a regression into a failure.
    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(20)
    try:
        with pytest.warns(UserWarning, match=rf"Skipping '{fifo}': not a regular file \(a FIFO\)"):
            ds = _load(tmp_path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert ds.file_paths == [str(tmp_path / "a" / "0.png"), str(tmp_path / "b" / "1.png")]


@posix_only
def test_broken_symlink_is_reported_as_such(tmp_path):
    _png(tmp_path / "a" / "0.png")
    os.symlink(tmp_path / "missing.png", tmp_path / "a" / "gone.png")
    with pytest.warns(UserWarning, match=r"gone.png': not a regular file \(a broken symbolic link"):
        ds = _load(tmp_path)
    assert len(ds.file_paths) == 1


@posix_only
def test_symlink_to_an_image_file_is_listed(tmp_path):
    _png(tmp_path / "elsewhere" / "real.png", value=77)
    _png(tmp_path / "data" / "a" / "0.png")
    os.symlink(tmp_path / "elsewhere" / "real.png", tmp_path / "data" / "a" / "1.png")
    ds = _load(tmp_path / "data")
    assert len(ds.file_paths) == 2


# --- b. 16-bit PNGs ----------------------------------------------------------------------------------
VALUES16 = np.array([[0, 128, 129, 257], [383, 32767, 32896, 65535]], np.uint16)


@pytest.mark.parametrize("color_mode, channels", [("grayscale", 1), ("rgb", 3), ("rgba", 4)])
def test_16bit_grayscale_png_scaled_like_tensorflow(tmp_path, color_mode, channels):
    (tmp_path / "a").mkdir()
    img = Image.fromarray(VALUES16)
    img.save(tmp_path / "a" / "deep.png")
    with Image.open(tmp_path / "a" / "deep.png") as reopened:
        assert reopened.mode.startswith("I")  # what the decoder must handle
    ds = _load(tmp_path, image_size=(2, 4), color_mode=color_mode, interpolation="nearest", labels=None)
    (x,) = list(ds)
    expected = np.round(VALUES16.astype(np.float64) * 255 / 65535)  # tf.io.decode_image(dtype=uint8)
    for c in range(min(channels, 3)):
        np.testing.assert_array_equal(x[0, :, :, c], expected)
    if channels == 4:
        np.testing.assert_array_equal(x[0, :, :, 3], 255)


def _png16_rgb(path, rgb):
    """A 16-bit RGB PNG (Pillow cannot write one)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\0" + rgb[i].astype(">u2").tobytes() for i in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_16bit_rgb_png_within_one_level_of_tensorflow(tmp_path):
    (tmp_path / "a").mkdir()
    rgb = np.stack([VALUES16, VALUES16[::-1], VALUES16[:, ::-1]], axis=-1)
    _png16_rgb(tmp_path / "a" / "deep.png", rgb)
    (x,) = list(_load(tmp_path, image_size=(2, 4), interpolation="nearest", labels=None))
    expected = np.round(rgb.astype(np.float64) * 255 / 65535)
    assert np.abs(x[0] - expected).max() <= 1


# --- c. unreadable class folders ---------------------------------------------------------------------
def test_unlistable_class_folder_warns(tmp_path, monkeypatch):
    """Simulated with a patched os.scandir, so the test also runs as root (which ignores modes)."""
    _png(tmp_path / "a" / "0.png")
    _png(tmp_path / "b" / "sub" / "1.png")
    _png(tmp_path / "c" / "2.png")
    locked = str(tmp_path / "b")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.warns(UserWarning, match=rf"Skipping directory '{locked}': cannot list it \(PermissionError"):
        ds = _load(tmp_path)
    assert ds.class_names == ["a", "b", "c"]
    assert _class_counts(ds) == [1, 0, 1]


@posix_only
@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root ignores permissions")
def test_chmod_000_class_folder_warns(tmp_path):
    _png(tmp_path / "a" / "0.png")
    _png(tmp_path / "b" / "1.png")
    os.chmod(tmp_path / "b", 0)
    try:
        with pytest.warns(UserWarning, match=r"Skipping directory '.*b': cannot list it"):
            ds = _load(tmp_path)
    finally:
        os.chmod(tmp_path / "b", 0o755)
    assert _class_counts(ds) == [1, 0]


# --- d. symlink loops --------------------------------------------------------------------------------
@posix_only
@pytest.mark.parametrize("target", ["self", "parent", "root"])
def test_symlink_loop_warns_once_and_lists_each_file_once(tmp_path, target):
    root = tmp_path / "data"
    _png(root / "a" / "0.png")
    _png(root / "a" / "deep" / "1.png")
    _png(root / "b" / "2.png")
    link = root / "a" / "deep" / "loop"
    os.symlink({"self": root / "a" / "deep", "parent": root / "a", "root": root}[target], link)
    with pytest.warns(UserWarning, match=rf"Skipping symbolic link '{link}': .*a directory loop") as record:
        ds = _load(root, follow_links=True)
    assert len([w for w in record if "loop" in str(w.message)]) == 1
    assert sorted(ds.file_paths) == sorted(
        str(p) for p in [root / "a" / "0.png", root / "a" / "deep" / "1.png", root / "b" / "2.png"]
    )
    assert _class_counts(ds) == [2, 1]


@posix_only
def test_symlink_loop_ignored_without_follow_links(tmp_path):
    _png(tmp_path / "a" / "0.png")
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    assert len(_load(tmp_path).file_paths) == 1  # no warning: the link is not followed


@posix_only
def test_followed_links_outside_a_loop_still_count(tmp_path):
    """Two links to one directory that is not an ancestor: its files count once per path, as
    os.walk (and Keras) list them."""
    _png(tmp_path / "shared" / "s.png")
    root = tmp_path / "data"
    _png(root / "a" / "0.png")
    _png(root / "b" / "1.png")
    os.symlink(tmp_path / "shared", root / "a" / "s")
    os.symlink(tmp_path / "shared", root / "b" / "s")
    ds = _load(root, follow_links=True)
    assert _class_counts(ds) == [2, 2]
    assert _class_counts(_load(root)) == [1, 1]


# --- seed and validation_split types ----------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, error, message",
    [
        ({"seed": -1}, ValueError, r"`seed` must be None or an integer in \[0, 2\*\*32 - 1\]. Received: seed=-1"),
        ({"seed": 1.5}, ValueError, r"Received: seed=1.5"),
        ({"seed": 2**40}, ValueError, r"Received: seed=1099511627776"),
        ({"seed": True, "validation_split": 0.5, "subset": "training"}, ValueError, r"Received: seed=True"),
        (
            {"validation_split": "0.5", "subset": "training", "seed": 1},
            TypeError,
            r"`validation_split` must be a float between 0 and 1. Received: validation_split='0.5'",
        ),
    ],
)
def test_seed_and_validation_split_checked(tmp_path, kw, error, message):
    _png(tmp_path / "a" / "0.png")
    _png(tmp_path / "a" / "1.png")
    with pytest.raises(error, match=message):
        _load(tmp_path, **kw)


def test_numpy_seed_at_the_top_of_the_range(tmp_path):
    _png(tmp_path / "a" / "0.png")
    _png(tmp_path / "a" / "1.png")
    train, val = _load(tmp_path, seed=np.uint32(2**32 - 1), shuffle=True, validation_split=0.5, subset="both")
    assert len(train.file_paths) == len(val.file_paths) == 1
