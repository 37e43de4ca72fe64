"""MNIST handwritten digits dataset.

Local files are preferred; a download is the last resort and is always
checked against the known SHA-256 digests of the original distribution.
"""

import os  # noqa: F401 -- tests patch mnist.os.replace
import urllib.request  # noqa: F401 -- tests patch mnist.urllib.request.urlopen

from . import _common

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
    "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}

# The original site (yann.lecun.com) now often refuses downloads, so use
# the mirrors that torchvision and TensorFlow rely on. Tried in order.
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

_NAME = "mnist"  # directory name under $CNNX_DATA_DIR, data/ and the cache

# Shared with the other loaders (tests and callers use these names).
_read_idx = _common.read_idx
_fetch_verified = _common.fetch_verified
_source_root = _common.source_root


def load_data(path=None):
    """Loads the MNIST dataset.

    This is a dataset of 60,000 28x28 grayscale images of the 10 digits,
    along with a test set of 10,000 images.

    The four standard IDX files are looked up in this order:

    1. `path`, if given (no fallback: missing files raise).
    2. `$CNNX_DATA_DIR/mnist`.
    3. `data/mnist/` of the cnnx source checkout, then `../shared/data/mnist/`
       beside it (for installs from a checkout too).
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
    x_train, y_train = _common.load_idx_pair(directory, FILES[0], FILES[1], "MNIST")
    x_test, y_test = _common.load_idx_pair(directory, FILES[2], FILES[3], "MNIST")
    return (x_train, y_train), (x_test, y_test)


def _find_directory(path):
    """Returns the first directory holding all four files (see load_data)."""
    return _common.find_directory(
        path,
        title="MNIST",
        files=FILES,
        local=_local_directories,
        cache=_cache_directory,
        fetch=_download,
    )


def _local_directories():
    """Returns the local candidates: $CNNX_DATA_DIR, then the checkout."""
    return _common.local_directories(_NAME, _checkout_directories())


def _checkout_directories():
    """Returns the `data/mnist` directories of a source checkout, if any."""
    return _common.checkout_directories(_NAME)


def _cache_directory():
    return _common.cache_directory(_NAME)


def _download(name, target, searched):
    """Fetches `name` from the mirrors into `target`, atomically, verified by SHA-256."""
    _common.download(
        name,
        target,
        MIRRORS,
        SHA256[name],
        "sha256",
        "MNIST",
        searched,
        f"To work offline, put the four files ({', '.join(FILES)}) in a "
        "directory DIR/mnist and set CNNX_DATA_DIR=DIR, or pass "
        "load_data(path=...).",
    )
