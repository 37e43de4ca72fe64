"""Tests for cnnx.datasets.mnist: local lookup, IDX validation, download."""

import gzip
import hashlib
import io
import os
import pathlib
import shutil
import urllib.error

import numpy as np
import pytest

from cnnx.datasets import mnist

_CHECKOUT = pathlib.Path(__file__).resolve().parents[1]
# The real files are not in the repository: a checkout's data/mnist, or the team's read-only
# copy in ../shared/data/mnist beside the checkout (the two places load_data looks there).
REPO_DATA = next(
    (d for d in (_CHECKOUT / "data" / "mnist", _CHECKOUT.parent / "shared" / "data" / "mnist") if d.is_dir()),
    _CHECKOUT / "data" / "mnist",
)
needs_real_files = pytest.mark.skipif(not REPO_DATA.is_dir(), reason=f"no MNIST files at {REPO_DATA}")

# From /work/shared/data/README.md (checked by loading with numpy).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def real():
    """The full dataset, loaded once from the checkout's data/mnist or ../shared/data/mnist."""
    if not REPO_DATA.is_dir():
        pytest.skip(f"no MNIST files at {REPO_DATA}")
    return mnist.load_data(path=REPO_DATA)


def _write_idx(path, array, magic=None):
    """Writes `array` (uint8) as a gzip-compressed IDX file."""
    if magic is None:
        magic = 0x0800 | array.ndim
    header = magic.to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes(), mtime=0))


def _write_small_set(directory, n_train=6, n_test=4, seed=0):
    """Writes a tiny, valid MNIST-format set and returns its arrays."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = (
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )
    for name, array in zip(mnist.FILES, arrays):
        _write_idx(directory / name, array)
    return arrays


def _assert_same(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    for got, want in zip((x_train, y_train, x_test, y_test), arrays):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype


# --- The real data ---------------------------------------------------------


@needs_real_files
def test_repo_files_are_the_original_distribution():
    for name in mnist.FILES:
        digest = hashlib.sha256((REPO_DATA / name).read_bytes()).hexdigest()
        assert digest == mnist.SHA256[name], name


def test_shapes_and_dtypes(real):
    (x_train, y_train), (x_test, y_test) = real
    assert x_train.shape == (60000, 28, 28)
    assert y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28)
    assert y_test.shape == (10000,)
    for array in (x_train, y_train, x_test, y_test):
        assert array.dtype == np.uint8
        assert array.flags.writeable and array.flags.c_contiguous


def test_pixel_statistics(real):
    (x_train, _), (x_test, _) = real
    assert x_train.min() == 0 and x_train.max() == 255
    assert x_train.mean() == pytest.approx(33.318, abs=5e-4)
    assert x_test.mean() == pytest.approx(33.791, abs=5e-4)


def test_label_counts(real):
    (_, y_train), (_, y_test) = real
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS


@needs_real_files
def test_default_lookup_finds_checkout(monkeypatch):
    if REPO_DATA not in mnist._checkout_directories():
        pytest.skip("cnnx is not imported from this checkout")
    monkeypatch.delenv("CNNX_DATA_DIR", raising=False)
    assert mnist._find_directory(None) == REPO_DATA


@needs_real_files
def test_path_with_copies(tmp_path, real):
    for name in mnist.FILES:
        shutil.copyfile(REPO_DATA / name, tmp_path / name)
    _assert_same(mnist.load_data(path=str(tmp_path)), [a for p in real for a in p])


# --- Lookup order ------------------------------------------------------------


def test_path_accepts_small_set(tmp_path):
    arrays = _write_small_set(tmp_path)
    _assert_same(mnist.load_data(path=tmp_path), arrays)


def test_cnnx_data_dir_comes_before_checkout(tmp_path, monkeypatch):
    arrays = _write_small_set(tmp_path / "mnist")
    monkeypatch.setenv("CNNX_DATA_DIR", str(tmp_path))
    _assert_same(mnist.load_data(), arrays)


def test_incomplete_cnnx_data_dir_is_skipped(tmp_path, monkeypatch):
    _write_small_set(tmp_path / "data" / "mnist")
    (tmp_path / "data" / "mnist" / mnist.FILES[0]).unlink()
    checkout = tmp_path / "checkout"
    arrays = _write_small_set(checkout, seed=1)
    monkeypatch.setenv("CNNX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(mnist, "_checkout_directories", lambda: [checkout])
    _assert_same(mnist.load_data(), arrays)


def test_missing_files_with_path_raise(tmp_path):
    _write_small_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as info:
        mnist.load_data(path=tmp_path)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert "train-images-idx3-ubyte.gz" in message
    assert str(tmp_path) in message


def test_missing_path_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        mnist.load_data(path=tmp_path / "does-not-exist")


# --- Corrupt local files -------------------------------------------------------

LABELS = "train-labels-idx1-ubyte.gz"


def _corrupt(directory, kind):
    """Replaces the train labels file with a corrupt one of `kind`."""
    target = directory / LABELS
    good = target.read_bytes()
    labels = np.arange(6, dtype=np.uint8)
    if kind == "truncated gzip":
        target.write_bytes(good[: len(good) // 2])
    elif kind == "not gzip":
        target.write_bytes(b"this is not a gzip file at all")
    elif kind == "bad crc":
        target.write_bytes(good[:-8] + bytes(8))
    elif kind == "empty":
        target.write_bytes(b"")
    elif kind == "empty payload":
        target.write_bytes(gzip.compress(b"", mtime=0))
    elif kind == "bad magic":
        _write_idx(target, labels, magic=0x00000803)
    elif kind == "garbage magic":
        _write_idx(target, labels, magic=0x12345678)
    elif kind == "truncated payload":
        raw = gzip.decompress(good)
        target.write_bytes(gzip.compress(raw[:-1], mtime=0))
    elif kind == "oversized payload":
        raw = gzip.decompress(good)
        target.write_bytes(gzip.compress(raw + b"\x00", mtime=0))
    elif kind == "truncated header":
        raw = gzip.decompress(good)
        target.write_bytes(gzip.compress(raw[:6], mtime=0))
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, match",
    [
        ("truncated gzip", "gzip"),
        ("not gzip", "gzip"),
        ("bad crc", "gzip"),
        ("empty", "Truncated"),
        ("empty payload", "Truncated"),
        ("bad magic", "magic"),
        ("garbage magic", "magic"),
        ("truncated payload", "Truncated"),
        ("oversized payload", "Oversized"),
        ("truncated header", "Truncated"),
    ],
)
def test_corrupt_file_raises_value_error_naming_it(tmp_path, kind, match):
    _write_small_set(tmp_path)
    _corrupt(tmp_path, kind)
    with pytest.raises(ValueError, match=match) as info:
        mnist.load_data(path=tmp_path)
    assert LABELS in str(info.value)


@needs_real_files
def test_truncated_real_file_raises(tmp_path):
    name = "t10k-images-idx3-ubyte.gz"
    data = (REPO_DATA / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=name):
        mnist._read_idx(tmp_path / name, magic=0x00000803)


def test_count_mismatch_raises(tmp_path):
    _write_small_set(tmp_path, n_test=4)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="Wrong count") as info:
        mnist.load_data(path=tmp_path)
    assert "t10k-labels-idx1-ubyte.gz" in str(info.value)


def test_wrong_image_size_raises(tmp_path):
    _write_small_set(tmp_path)
    images = np.zeros((6, 32, 32), np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        mnist.load_data(path=tmp_path)


def test_read_idx_other_types(tmp_path):
    array = np.arange(12, dtype=">i4").reshape(3, 4)
    _write_idx(tmp_path / "x.gz", array, magic=0x00000C02)
    result = mnist._read_idx(tmp_path / "x.gz")
    np.testing.assert_array_equal(result, array)
    assert result.dtype == np.int32 and result.dtype.isnative


# --- Download into the cache (offline: the URL opener is faked) ----------------


class FakeOpener:
    """Stands in for urllib.request.urlopen; records the URLs asked for."""

    def __init__(self, serve):
        self.serve = serve  # url -> bytes, or raises
        self.urls = []

    def __call__(self, url, timeout=None):
        self.urls.append(url)
        return io.BytesIO(self.serve(url))


def _serve_repo_files(url):
    return (REPO_DATA / url.rsplit("/", 1)[1]).read_bytes()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Isolates the lookup so that only the cache under tmp_path is left."""
    monkeypatch.delenv("CNNX_DATA_DIR", raising=False)
    monkeypatch.setenv("CNNX_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(mnist, "_checkout_directories", lambda: [])
    return tmp_path / "home" / "datasets" / "mnist"


@needs_real_files
def test_download_verified_and_atomic(cache, monkeypatch, real):
    opener = FakeOpener(_serve_repo_files)
    monkeypatch.setattr(mnist.urllib.request, "urlopen", opener)
    renames = []
    real_replace = os.replace

    def replace(src, dst):
        # Each file appears under its final name only by one rename of a
        # complete temp file from the same directory.
        src, dst = pathlib.Path(src), pathlib.Path(dst)
        assert src.parent == dst.parent == cache and not dst.exists()
        assert hashlib.sha256(src.read_bytes()).hexdigest() == mnist.SHA256[dst.name]
        renames.append(dst.name)
        real_replace(src, dst)

    monkeypatch.setattr(mnist.os, "replace", replace)

    result = mnist.load_data()

    _assert_same(result, [a for p in real for a in p])
    assert opener.urls == [mnist.MIRRORS[0] + name for name in mnist.FILES]
    assert renames == list(mnist.FILES)
    assert sorted(p.name for p in cache.iterdir()) == sorted(mnist.FILES)


def test_cached_files_are_not_downloaded_again(cache, monkeypatch):
    arrays = _write_small_set(cache)

    def offline(url, timeout=None):
        raise AssertionError("unexpected download")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", offline)
    _assert_same(mnist.load_data(), arrays)


@needs_real_files
def test_only_missing_files_are_downloaded(cache, monkeypatch):
    cache.mkdir(parents=True)
    for name in mnist.FILES[:3]:
        shutil.copyfile(REPO_DATA / name, cache / name)
    opener = FakeOpener(_serve_repo_files)
    monkeypatch.setattr(mnist.urllib.request, "urlopen", opener)
    mnist._find_directory(None)
    assert opener.urls == [mnist.MIRRORS[0] + mnist.FILES[3]]


@needs_real_files
def test_second_mirror_used_after_bad_first(cache, monkeypatch):
    def serve(url):
        if url.startswith(mnist.MIRRORS[0]):
            raise urllib.error.URLError("connection refused")
        return _serve_repo_files(url)

    opener = FakeOpener(serve)
    monkeypatch.setattr(mnist.urllib.request, "urlopen", opener)
    assert mnist._find_directory(None) == cache
    assert len(opener.urls) == 2 * len(mnist.FILES)
    assert sorted(p.name for p in cache.iterdir()) == sorted(mnist.FILES)


@needs_real_files
def test_corrupted_download_is_refused(cache, monkeypatch):
    def serve(url):
        data = bytearray(_serve_repo_files(url))
        data[len(data) // 2] ^= 0xFF  # one flipped byte
        return bytes(data)

    monkeypatch.setattr(mnist.urllib.request, "urlopen", FakeOpener(serve))
    with pytest.raises(ValueError, match="SHA-256") as info:
        mnist.load_data()
    assert mnist.FILES[0] in str(info.value)
    assert list(cache.iterdir()) == []  # not even a temp file


def test_offline_error_says_what_and_how(cache, monkeypatch):
    def serve(url):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", FakeOpener(serve))
    with pytest.raises(OSError) as info:
        mnist.load_data()
    message = str(info.value)
    assert mnist.FILES[0] in message
    assert all(mirror + mnist.FILES[0] in message for mirror in mnist.MIRRORS)
    assert "CNNX_DATA_DIR" in message
    assert list(cache.iterdir()) == []
