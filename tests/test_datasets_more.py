"""cnnx.datasets.fashion_mnist and cnnx.datasets.cifar10, offline: files are served from tmp_path
through a fake URL opener, as tests/test_datasets.py does for MNIST."""

import gzip
import hashlib
import io
import pickle
import tarfile
import urllib.error

import numpy as np
import pytest

from cnnx.datasets import _common, cifar10, fashion_mnist, mnist


class FakeOpener:
    """Stands in for urllib.request.urlopen; records the URLs asked for."""

    def __init__(self, serve):
        self.serve = serve
        self.urls = []

    def __call__(self, url, timeout=None):
        self.urls.append(url)
        return io.BytesIO(self.serve(url))


def _offline(url, timeout=None):
    raise urllib.error.URLError("Temporary failure in name resolution")


def _isolate(module, tmp_path, monkeypatch):
    monkeypatch.delenv("CNNX_DATA_DIR", raising=False)
    monkeypatch.setenv("CNNX_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(module, "_checkout_directories", lambda: [])
    return tmp_path / "home" / "datasets" / module._NAME


# --- Fashion-MNIST ----------------------------------------------------------------------------------
def _idx(array):
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.tobytes(), mtime=0)


@pytest.fixture
def fashion_files():
    rng = np.random.default_rng(1)
    arrays = (
        rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 7, dtype=np.uint8),
        rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 3, dtype=np.uint8),
    )
    return {name: _idx(a) for name, a in zip(fashion_mnist.FILES, arrays)}, arrays


def test_fashion_mnist_shares_mnist_format_and_helpers():
    assert fashion_mnist.FILES == mnist.FILES
    assert mnist._read_idx is _common.read_idx  # one IDX reader
    assert len(fashion_mnist.CLASS_NAMES) == 10


def test_fashion_mnist_from_path_and_data_dir(tmp_path, monkeypatch, fashion_files):
    files, arrays = fashion_files
    for where in (tmp_path / "p", tmp_path / "data" / "fashion_mnist"):
        where.mkdir(parents=True)
        for name, data in files.items():
            (where / name).write_bytes(data)
    (x, y), (xt, yt) = fashion_mnist.load_data(path=tmp_path / "p")
    for got, want in zip((x, y, xt, yt), arrays):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.uint8
    monkeypatch.setenv("CNNX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(fashion_mnist.urllib.request, "urlopen", _offline)
    np.testing.assert_array_equal(fashion_mnist.load_data()[1][0], arrays[2])
    with pytest.raises(FileNotFoundError, match="Fashion-MNIST"):
        fashion_mnist.load_data(path=tmp_path / "nothing")


def test_fashion_mnist_download_verified_by_md5(tmp_path, monkeypatch, fashion_files):
    files, arrays = fashion_files
    cache = _isolate(fashion_mnist, tmp_path, monkeypatch)
    monkeypatch.setattr(fashion_mnist, "MD5", {n: hashlib.md5(d).hexdigest() for n, d in files.items()})
    opener = FakeOpener(lambda url: files[url.rsplit("/", 1)[1]])
    monkeypatch.setattr(fashion_mnist.urllib.request, "urlopen", opener)
    (x, _), _ = fashion_mnist.load_data()
    np.testing.assert_array_equal(x, arrays[0])
    assert opener.urls == [fashion_mnist.MIRRORS[0] + n for n in fashion_mnist.FILES]
    assert sorted(p.name for p in cache.iterdir()) == sorted(fashion_mnist.FILES)
    # Cached now: no second download.
    monkeypatch.setattr(fashion_mnist.urllib.request, "urlopen", _offline)
    fashion_mnist.load_data()


def test_fashion_mnist_bad_download_refused(tmp_path, monkeypatch, fashion_files):
    files, _ = fashion_files
    cache = _isolate(fashion_mnist, tmp_path, monkeypatch)  # real published MD5s: fakes fail them
    monkeypatch.setattr(fashion_mnist.urllib.request, "urlopen", FakeOpener(lambda url: files[url.rsplit("/", 1)[1]]))
    with pytest.raises(ValueError, match="MD5 mismatch"):
        fashion_mnist.load_data()
    assert list(cache.iterdir()) == []


def test_fashion_mnist_offline_error(tmp_path, monkeypatch):
    _isolate(fashion_mnist, tmp_path, monkeypatch)
    monkeypatch.setattr(fashion_mnist.urllib.request, "urlopen", _offline)
    with pytest.raises(OSError) as info:
        fashion_mnist.load_data()
    message = str(info.value)
    assert all(m + fashion_mnist.FILES[0] in message for m in fashion_mnist.MIRRORS)
    assert "CNNX_DATA_DIR" in message and "path=" in message


# --- CIFAR-10 -----------------------------------------------------------------------------------------
def _batch(n, seed, protocol=4):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    raw = pickle.dumps(
        {b"batch_label": b"batch", b"labels": labels, b"data": data, b"filenames": [b"f%d.png" % i for i in range(n)]},
        protocol=protocol,
    )
    return raw, data, labels


def _tarball(path, batches, drop=()):
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in batches.items():
            if name in drop:
                continue
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path.read_bytes()


@pytest.fixture
def cifar(tmp_path):
    names = cifar10.TRAIN_BATCHES + (cifar10.TEST_BATCH,)
    made = {name: _batch(4, i) for i, name in enumerate(names)}
    raws = {name: m[0] for name, m in made.items()}
    archive = _tarball(tmp_path / cifar10.ARCHIVE, raws)
    return raws, made, archive


def _expected(made, names):
    data = np.concatenate([made[n][1] for n in names])
    labels = np.concatenate([made[n][2] for n in names]).astype(np.uint8)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.reshape(-1, 1)


def _check(result, made):
    (x, y), (xt, yt) = result
    ex, ey = _expected(made, cifar10.TRAIN_BATCHES)
    assert x.shape == (20, 32, 32, 3) and y.shape == (20, 1) and x.dtype == y.dtype == np.uint8
    assert x.flags.c_contiguous
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)
    ex, ey = _expected(made, (cifar10.TEST_BATCH,))
    np.testing.assert_array_equal(xt, ex)
    np.testing.assert_array_equal(yt, ey)


def test_cifar10_channels_last_layout():
    raw, data, _ = _batch(1, 0)
    x, _ = cifar10._parse_batch(raw, "t")
    # Row = 1024 red, 1024 green, 1024 blue, each row-major over 32x32.
    assert x[0, 0, 1].tolist() == [data[0, 1], data[0, 1025], data[0, 2049]]
    assert x[0, 1, 0].tolist() == [data[0, 32], data[0, 1056], data[0, 2080]]


def test_cifar10_from_archive_and_extracted_folder(tmp_path, cifar):
    raws, made, _ = cifar
    _check(cifar10.load_data(path=tmp_path), made)
    folder = tmp_path / "x" / cifar10.FOLDER
    folder.mkdir(parents=True)
    for name, raw in raws.items():
        (folder / name).write_bytes(raw)
    _check(cifar10.load_data(path=tmp_path / "x"), made)
    _check(cifar10.load_data(path=folder), made)
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        cifar10.load_data(path=tmp_path / "x" / "missing")


def test_cifar10_python2_style_pickles(cifar):
    """The real batches were written by Python 2 and name numpy.core.multiarray; protocol 2 from
    Python 3 writes bytes through _codecs.encode. Both load."""
    raw, data, labels = _batch(2, 5, protocol=2)
    raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    x, y = cifar10._parse_batch(raw, "py2")
    assert y.tolist() == labels and x.shape == (2, 32, 32, 3)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


class _Sub(np.ndarray):
    pass


@pytest.mark.parametrize(
    "payload",
    [
        {b"data": _Evil(), b"labels": []},
        {b"data": np.zeros((1, 3072), np.uint8).view(_Sub), b"labels": [0]},
        {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": __import__("collections").OrderedDict()},
    ],
)
def test_cifar10_unpickler_refuses_other_globals(payload, capsys):
    with pytest.raises(ValueError, match="Refused CIFAR-10 batch 'bad'"):
        cifar10._parse_batch(pickle.dumps(payload, protocol=4), "bad")
    assert "never run" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "raw, match",
    [
        (b"", "Corrupt"),
        (b"\x80\x04garbage", "Corrupt"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, protocol=4), "Invalid"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, protocol=4), "Invalid"),
        (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, protocol=4), "0-9"),
        (pickle.dumps([1, 2], protocol=4), "Invalid"),
    ],
)
def test_cifar10_bad_batches(raw, match):
    with pytest.raises(ValueError, match=match):
        cifar10._parse_batch(raw, "b")


def test_cifar10_bad_archives(tmp_path, cifar):
    raws, _, archive = cifar
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / cifar10.ARCHIVE).write_bytes(archive[: len(archive) // 2])
    with pytest.raises(ValueError, match="Corrupt or truncated"):
        cifar10.load_data(path=tmp_path / "t")
    (tmp_path / "m").mkdir()
    _tarball(tmp_path / "m" / cifar10.ARCHIVE, raws, drop=("data_batch_3",))
    with pytest.raises(ValueError, match="data_batch_3"):
        cifar10.load_data(path=tmp_path / "m")


def test_cifar10_download_verified_and_cached(tmp_path, monkeypatch, cifar):
    _, made, archive = cifar
    cache = _isolate(cifar10, tmp_path, monkeypatch)
    monkeypatch.setattr(cifar10, "SHA256", hashlib.sha256(archive).hexdigest())
    opener = FakeOpener(lambda url: archive)
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", opener)
    _check(cifar10.load_data(), made)
    assert opener.urls == [cifar10.MIRRORS[0] + cifar10.ARCHIVE]
    assert [p.name for p in cache.iterdir()] == [cifar10.ARCHIVE]
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", _offline)
    _check(cifar10.load_data(), made)


def test_cifar10_data_dir_before_cache(tmp_path, monkeypatch, cifar):
    _, made, archive = cifar
    _isolate(cifar10, tmp_path, monkeypatch)
    (tmp_path / "d" / "cifar10").mkdir(parents=True)
    (tmp_path / "d" / "cifar10" / cifar10.ARCHIVE).write_bytes(archive)
    monkeypatch.setenv("CNNX_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", _offline)
    _check(cifar10.load_data(), made)


def test_cifar10_bad_download_and_offline(tmp_path, monkeypatch, cifar):
    _, _, archive = cifar
    cache = _isolate(cifar10, tmp_path, monkeypatch)  # the real SHA-256: the fake archive fails it
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", FakeOpener(lambda url: archive))
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        cifar10.load_data()
    assert list(cache.iterdir()) == []
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", _offline)
    with pytest.raises(OSError) as info:
        cifar10.load_data()
    message = str(info.value)
    assert cifar10.MIRRORS[0] + cifar10.ARCHIVE in message
    assert "CNNX_DATA_DIR" in message and "path=" in message
