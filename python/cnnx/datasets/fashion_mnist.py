"""Fashion-MNIST: Zalando's article images, a drop-in replacement for MNIST.

Same four IDX files and the same lookup as `cnnx.datasets.mnist`; a download
is checked against the MD5 digests published in the dataset's README (the
only digests its authors publish).
"""

import os  # noqa: F401 -- tests patch os.replace through this module
import urllib.request  # noqa: F401 -- tests patch urllib.request.urlopen

from . import _common
from .mnist import FILES

__all__ = ["load_data"]

_NAME = "fashion_mnist"

# MD5 of each .gz file, as published in github.com/zalandoresearch/fashion-mnist
# (README, "Get the Data").
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}

# Keras' copy first, then the authors' repository. Tried in order.
MIRRORS = (
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def load_data(path=None):
    """Loads the Fashion-MNIST dataset.

    This is a dataset of 60,000 28x28 grayscale images of 10 fashion
    categories, along with a test set of 10,000 images. The class names
    are in `CLASS_NAMES` (0: T-shirt/top ... 9: Ankle boot).

    The four IDX files (named as MNIST's) are looked up in this order:

    1. `path`, if given (no fallback: missing files raise).
    2. `$CNNX_DATA_DIR/fashion_mnist`.
    3. `data/fashion_mnist/` of the cnnx source checkout, then `../shared/data/fashion_mnist/`
       beside it.
    4. The cache `$CNNX_HOME/datasets/fashion_mnist` (default `~/.cnnx`),
       where missing files are downloaded and verified against their
       published MD5 before they get their final name.

    Args:
        path: Optional directory holding `train-images-idx3-ubyte.gz`,
            `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz` and
            `t10k-labels-idx1-ubyte.gz`.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`:
        `uint8` images `(60000, 28, 28)` and `(10000, 28, 28)`, `uint8`
        labels 0-9 `(60000,)` and `(10000,)`, as in Keras.

    Raises:
        FileNotFoundError: if `path` is given and lacks one of the files.
        ValueError: if a file is not a valid IDX file of the expected
            kind, or a downloaded file fails its checksum.
        OSError: if the files are not found locally and cannot be
            downloaded (the message names the URLs and how to work offline).

    License: Fashion-MNIST is by Zalando SE (Han Xiao, Kashif Rasul,
    Roland Vollgraf), under the MIT license.
    """
    directory = _find_directory(path)
    x_train, y_train = _common.load_idx_pair(directory, FILES[0], FILES[1], "Fashion-MNIST")
    x_test, y_test = _common.load_idx_pair(directory, FILES[2], FILES[3], "Fashion-MNIST")
    return (x_train, y_train), (x_test, y_test)


def _find_directory(path):
    return _common.find_directory(
        path,
        title="Fashion-MNIST",
        files=FILES,
        local=_local_directories,
        cache=_cache_directory,
        fetch=_download,
    )


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
        MD5[name],
        "md5",
        "Fashion-MNIST",
        searched,
        f"To work offline, download the four files ({', '.join(FILES)}) from "
        "https://github.com/zalandoresearch/fashion-mnist, put them in a "
        "directory DIR/fashion_mnist and set CNNX_DATA_DIR=DIR, or pass "
        "load_data(path=...).",
    )
