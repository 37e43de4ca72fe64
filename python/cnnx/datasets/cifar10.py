"""CIFAR-10 small colour images (10 classes).

The only official distribution is `cifar-10-python.tar.gz`, whose batches are
Python pickles. Unpickling runs constructors named by the file, so this loader
uses a restricted unpickler that accepts only what a CIFAR batch holds (dicts,
lists, bytes, ints and NumPy uint8 arrays) and refuses any other global. The
archive is read in place (not extracted); a download is checked against the
archive's SHA-256 (the one Keras pins; it matches the MD5
c58f30108f718f92721af3b95e74349a published with the dataset).
"""

import io
import os
import pathlib
import pickle
import tarfile
import urllib.request  # noqa: F401 -- tests patch urllib.request.urlopen

import numpy as np

from . import _common

__all__ = ["load_data"]

_NAME = "cifar10"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"  # the archive's top directory
SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def load_data(path=None):
    """Loads the CIFAR-10 dataset.

    50,000 32x32 colour training images and 10,000 test images, labelled
    over 10 categories (`CLASS_NAMES`: 0 airplane ... 9 truck).

    Looked up in this order, each location holding either the archive
    `cifar-10-python.tar.gz` or its extracted `cifar-10-batches-py/` folder
    (or being that folder):

    1. `path`, if given (no fallback: missing files raise).
    2. `$CNNX_DATA_DIR/cifar10`.
    3. `data/cifar10/` of the cnnx source checkout, then `../shared/data/cifar10/`
       beside it.
    4. The cache `$CNNX_HOME/datasets/cifar10` (default `~/.cnnx`), where
       the archive is downloaded from https://www.cs.toronto.edu/~kriz/ and
       verified against its SHA-256 before it gets its final name.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`, as in
        Keras: `uint8` images `(50000, 32, 32, 3)` and `(10000, 32, 32, 3)`
        (channels last), `uint8` labels 0-9 of shape `(50000, 1)` and
        `(10000, 1)`.

    Raises:
        FileNotFoundError: if `path` is given and holds neither form.
        ValueError: if a batch is corrupt, not a CIFAR batch, or asks the
            unpickler for anything but NumPy arrays; or a download fails its
            checksum.
        OSError: if the data is not found locally and cannot be downloaded
            (the message names the URL and how to work offline).

    Data by Alex Krizhevsky, Vinod Nair and Geoffrey Hinton (2009),
    https://www.cs.toronto.edu/~kriz/cifar.html
    """
    source = _find_source(path)
    batches = _read_batches(source)
    x_train = np.concatenate([batches[name][0] for name in TRAIN_BATCHES])
    y_train = np.concatenate([batches[name][1] for name in TRAIN_BATCHES])
    x_test, y_test = batches[TEST_BATCH]
    return (x_train, y_train.reshape(-1, 1)), (x_test, y_test.reshape(-1, 1))


# -- finding the data ------------------------------------------------------------------------------
def _source_in(directory):
    """The archive or the extracted folder inside `directory`, or None."""
    if (directory / ARCHIVE).is_file():
        return directory / ARCHIVE
    for folder in (directory / FOLDER, directory):
        if all((folder / name).is_file() for name in TRAIN_BATCHES + (TEST_BATCH,)):
            return folder
    return None


def _find_source(path):
    if path is not None:
        directory = pathlib.Path(os.fspath(path)).expanduser()
        source = _source_in(directory)
        if source is None:
            raise FileNotFoundError(
                f"CIFAR-10 not found in directory '{directory}': expected "
                f"'{ARCHIVE}', or the folder '{FOLDER}' with "
                f"{', '.join(TRAIN_BATCHES)} and {TEST_BATCH}."
            )
        return source
    searched = []
    for directory in _local_directories():
        searched.append(directory)
        source = _source_in(directory)
        if source is not None:
            return source
    cache = _cache_directory()
    if not (cache / ARCHIVE).is_file():
        cache.mkdir(parents=True, exist_ok=True)
        _download(ARCHIVE, cache / ARCHIVE, searched)
    return cache / ARCHIVE


def _local_directories():
    return _common.local_directories(_NAME, _checkout_directories())


def _checkout_directories():
    return _common.checkout_directories(_NAME)


def _cache_directory():
    return _common.cache_directory(_NAME)


def _download(name, target, searched):
    _common.download(
        name,
        target,
        MIRRORS,
        SHA256,
        "sha256",
        "CIFAR-10",
        searched,
        f"To work offline, download {MIRRORS[0]}{ARCHIVE}, put it (or its "
        f"extracted folder {FOLDER}) in a directory DIR/cifar10 and set "
        "CNNX_DATA_DIR=DIR, or pass load_data(path=...).",
    )


# -- reading the batches -----------------------------------------------------------------------------
def _read_batches(source):
    """{batch name: (images (n, 32, 32, 3) uint8, labels (n,) uint8)} from the archive or folder."""
    wanted = set(TRAIN_BATCHES + (TEST_BATCH,))
    batches = {}
    if source.is_dir():
        for name in sorted(wanted):
            batches[name] = _parse_batch((source / name).read_bytes(), source / name)
        return batches
    try:
        with tarfile.open(source, "r:gz") as tar:
            for member in tar:  # one sequential pass over the compressed stream
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in wanted and name not in batches:
                    data = tar.extractfile(member).read()
                    batches[name] = _parse_batch(data, f"{source}:{member.name}")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ValueError(f"Corrupt or truncated CIFAR-10 archive '{source}': {e}") from None
    missing = sorted(wanted - set(batches))
    if missing:
        raise ValueError(f"CIFAR-10 archive '{source}' lacks the batch(es) {', '.join(missing)}")
    return batches


def _parse_batch(data, where):
    try:
        batch = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except _Refused as e:
        raise ValueError(f"Refused CIFAR-10 batch '{where}': {e}") from None
    except Exception as e:  # noqa: BLE001 -- truncated or malformed pickle streams raise many kinds
        raise ValueError(f"Corrupt CIFAR-10 batch '{where}': {type(e).__name__}: {e}") from None
    images = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 2
        or images.shape[1] != 3 * 32 * 32
        or not isinstance(labels, list)
        or len(labels) != len(images)
    ):
        raise ValueError(
            f"Invalid CIFAR-10 batch '{where}': expected a dict with b'data' (uint8, n x 3072) "
            "and b'labels' (n integers)"
        )
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"Invalid CIFAR-10 batch '{where}': labels must be integers 0-9")
    # Rows are 1024 red, 1024 green, 1024 blue values; Keras returns channels last.
    images = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.uint8)


class _Refused(pickle.UnpicklingError):
    """The pickle asked for something a CIFAR batch never holds."""


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # NumPy >= 2
    except ImportError:  # pragma: no cover -- NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _reconstruct_ndarray(subtype, shape, dtype):
    """NumPy's array constructor for pickles, for plain ndarrays only (no subclasses)."""
    if subtype is not np.ndarray:
        raise _Refused(f"only numpy.ndarray may be rebuilt, not {subtype!r}")
    return _numpy_reconstruct()(subtype, shape, dtype)


def _latin1_bytes(text, encoding):
    """How Python 3 writes bytes at protocol 2 (``_codecs.encode(text, "latin1")``)."""
    if encoding != "latin1":
        raise _Refused(f"only latin1 byte strings are allowed, not {encoding!r}")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only builtin containers/scalars and NumPy arrays; refuses every other global."""

    def find_class(self, module, name):
        if module == "_codecs" and name == "encode":
            return _latin1_bytes
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _reconstruct_ndarray
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise _Refused(f"global '{module}.{name}' is not allowed in a CIFAR-10 batch")
