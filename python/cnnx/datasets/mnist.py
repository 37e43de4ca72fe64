"""MNIST handwritten digits dataset.

Local files are preferred; a download is the last resort and is always
checked against the known SHA-256 digests of the original distribution.
"""

import gzip
import hashlib
import json
import math
import os
import pathlib
import sys
import tempfile
import urllib.parse
import urllib.request
import zlib

import numpy as np

__all__ = ["load_data"]

# The four standard file names, in the order load_data() returns them.
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# SHA-256 of each .gz file of the original distribution.
SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
    ),
}

# The original site (yann.lecun.com) now often refuses downloads, so use
# the mirrors that torchvision and TensorFlow rely on. Tried in order.
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

_TIMEOUT = 60  # seconds per request
_CHUNK = 1 << 20

# IDX type codes (third byte of the magic number) -> big-endian dtype.
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_IMAGE_MAGIC = 0x00000803  # uint8, 3 dims
_LABEL_MAGIC = 0x00000801  # uint8, 1 dim


def load_data(path=None):
    """Loads the MNIST dataset.

    This is a dataset of 60,000 28x28 grayscale images of the 10 digits,
    along with a test set of 10,000 images.

    The four standard IDX files are looked up in this order:

    1. `path`, if given (no fallback: missing files raise).
    2. `$CNNX_DATA_DIR/mnist`.
    3. `data/mnist/` of the cnnx source checkout (also for editable
       installs).
    4. The cache `$CNNX_HOME/datasets/mnist` (default `~/.cnnx`), where
       missing files are downloaded and verified against their SHA-256.

    A location other than `path` is used only if it holds all four files.

    Args:
        path: Optional directory holding `train-images-idx3-ubyte.gz`,
            `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz` and
            `t10k-labels-idx1-ubyte.gz`. Any dataset in the same format
            with 28x28 images (e.g. Fashion-MNIST) can be loaded this way.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`.

        **`x_train`**: `uint8` array of grayscale image data with shape
        `(60000, 28, 28)`, values 0 to 255.

        **`y_train`**: `uint8` array of digit labels (integers in range
        0-9) with shape `(60000,)`.

        **`x_test`**: `uint8` array with shape `(10000, 28, 28)`.

        **`y_test`**: `uint8` array with shape `(10000,)`.

    Raises:
        FileNotFoundError: if `path` is given and lacks one of the files.
        ValueError: if a file is not a valid IDX file of the expected
            kind, or a downloaded file fails its checksum.
        OSError: if the files are not found locally and cannot be
            downloaded.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = cnnx.datasets.mnist.load_data()
    assert x_train.shape == (60000, 28, 28)
    ```

    License: the MNIST database is by Yann LeCun, Corinna Cortes and
    Christopher J.C. Burges, under CC BY-SA 3.0.
    """
    directory = _find_directory(path)
    x_train, y_train = _load_pair(directory, FILES[0], FILES[1])
    x_test, y_test = _load_pair(directory, FILES[2], FILES[3])
    return (x_train, y_train), (x_test, y_test)


def _find_directory(path):
    """Returns the first directory holding all four files (see load_data)."""
    if path is not None:
        directory = pathlib.Path(os.fspath(path)).expanduser()
        missing = [f for f in FILES if not (directory / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"MNIST file(s) not found in directory '{directory}': "
                f"{', '.join(missing)}. Expected the four files "
                f"{', '.join(FILES)}."
            )
        return directory

    searched = []
    for directory in _local_directories():
        searched.append(directory)
        if all((directory / f).is_file() for f in FILES):
            return directory

    cache = _cache_directory()
    _download_missing(cache, searched)
    return cache


def _local_directories():
    """Returns the local candidates: $CNNX_DATA_DIR, then the checkout."""
    directories = []
    data_dir = os.environ.get("CNNX_DATA_DIR")
    if data_dir:
        directories.append(pathlib.Path(data_dir).expanduser() / "mnist")
    directories.extend(_checkout_directories())
    return directories


def _checkout_directories():
    """Returns the `data/mnist` directories of a source checkout, if any."""
    directories = []
    # From a checkout, or an editable install that maps the package to
    # its sources: python/cnnx/datasets/mnist.py -> ../../../data/mnist.
    here = pathlib.Path(__file__).resolve()
    directories.append(here.parents[3] / "data" / "mnist")
    # `pip install .` (editable or not) records the source tree it was
    # built from in its PEP 610 direct_url.json.
    source = _source_root()
    if source is not None:
        candidate = source / "data" / "mnist"
        if candidate not in directories:
            directories.append(candidate)
    return directories


def _source_root():
    """Returns the local source directory cnnx was installed from, or `None`."""
    try:
        from importlib import metadata

        text = metadata.distribution("cnnx").read_text("direct_url.json")
        info = json.loads(text) if text else {}
        if "dir_info" not in info:
            return None
        url = urllib.parse.urlparse(info["url"])
        if url.scheme != "file":
            return None
        return pathlib.Path(urllib.request.url2pathname(url.path))
    except Exception:  # noqa: BLE001 -- a hint only; never fail over it
        return None


def _cache_directory():
    home = os.environ.get("CNNX_HOME") or os.path.join("~", ".cnnx")
    return pathlib.Path(home).expanduser() / "datasets" / "mnist"


def _download_missing(cache, searched):
    """Downloads the files missing from `cache`, verifying each one."""
    missing = [f for f in FILES if not (cache / f).is_file()]
    if not missing:
        return
    cache.mkdir(parents=True, exist_ok=True)
    for name in missing:
        _download(name, cache / name, searched)


def _download(name, target, searched):
    """Fetches `name` from the mirrors into `target`, atomically."""
    failures = []
    checksum_failed = False
    for mirror in MIRRORS:
        url = mirror + name
        print(f"Downloading data from {url}", file=sys.stderr)
        try:
            _fetch_verified(url, target, SHA256[name])
            return
        except ValueError as e:
            checksum_failed = True
            failures.append(f"{url}: {e}")
        except OSError as e:  # URLError, HTTPError, timeouts are OSErrors
            failures.append(f"{url}: {e}")

    locations = ", ".join(f"'{d}'" for d in searched) or "(none)"
    message = (
        f"Could not download MNIST file '{name}' into '{target.parent}'.\n"
        + "\n".join(f"  {failure}" for failure in failures)
        + f"\nLocal directories searched: {locations}. To work offline, "
        f"put the four files ({', '.join(FILES)}) in a directory DIR/mnist "
        f"and set CNNX_DATA_DIR=DIR, or pass load_data(path=...)."
    )
    # A wrong checksum is bad data, not a network problem; say so with
    # the exception type too.
    if checksum_failed:
        raise ValueError(message)
    raise OSError(message)


def _fetch_verified(url, target, sha256):
    """Streams `url` to a temp file, checks its SHA-256, then renames it.

    The rename is atomic, so `target` is either absent or complete and
    verified, even if the process dies or another one downloads the same
    file concurrently.
    """
    digest = hashlib.sha256()
    fd, temp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    try:
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        received = digest.hexdigest()
        if received != sha256:
            raise ValueError(
                f"SHA-256 mismatch: expected {sha256}, received {received}"
            )
        os.replace(temp, target)
    except BaseException:
        # Never leave a partial or unverified file behind.
        try:
            os.remove(temp)
        except FileNotFoundError:
            pass
        raise


def _load_pair(directory, images_name, labels_name):
    """Reads one images/labels pair and checks they match."""
    images_path = directory / images_name
    labels_path = directory / labels_name
    images = _read_idx(images_path, magic=_IMAGE_MAGIC)
    labels = _read_idx(labels_path, magic=_LABEL_MAGIC)
    if images.shape[1:] != (28, 28):
        raise ValueError(
            f"Invalid MNIST image file '{images_path}': expected 28x28 "
            f"images, received {images.shape[1]}x{images.shape[2]}."
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Wrong count: '{images_path}' holds {images.shape[0]} images "
            f"but '{labels_path}' holds {labels.shape[0]} labels."
        )
    return images, labels


def _read_idx(path, magic=None):
    """Reads a gzip-compressed IDX file into a NumPy array.

    Args:
        path: Path of the `.gz` file.
        magic: Optional expected magic number, e.g. `0x00000803`.

    Returns:
        A writable array in native byte order, shaped as the header says.

    Raises:
        ValueError: naming the file, if it is not valid gzip, has a bad
            magic number, or is shorter or longer than its header says.
    """
    with open(path, "rb") as raw:
        try:
            with gzip.GzipFile(fileobj=raw) as f:
                data = f.read()
        except (OSError, EOFError, zlib.error) as e:
            # BadGzipFile, truncated stream, corrupt deflate data or CRC.
            raise ValueError(
                f"Corrupt or truncated gzip file '{path}': {e}"
            ) from None

    if len(data) < 4:
        raise ValueError(
            f"Truncated IDX file '{path}': {len(data)} bytes, expected at "
            "least a 4-byte magic number."
        )
    received = int.from_bytes(data[:4], "big")
    if magic is not None and received != magic:
        raise ValueError(
            f"Bad magic number in IDX file '{path}': expected "
            f"0x{magic:08X}, received 0x{received:08X}."
        )
    type_code, ndim = data[2], data[3]
    if data[:2] != b"\x00\x00" or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"Bad magic number in IDX file '{path}': received "
            f"0x{received:08X}, which is not a valid IDX header."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"Truncated IDX file '{path}': {len(data)} bytes, expected a "
            f"{header}-byte header."
        )
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dtype = _IDX_DTYPES[type_code]
    expected = header + dtype.itemsize * math.prod(shape)
    if len(data) != expected:
        problem = "Truncated" if len(data) < expected else "Oversized"
        raise ValueError(
            f"{problem} IDX file '{path}': header declares shape {shape}, "
            f"so expected {expected} bytes, received {len(data)}."
        )
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    # astype copies: the result is writable and in native byte order.
    return array.astype(dtype.newbyteorder("="))
