"""Helpers shared by the dataset loaders: where files are looked up, verified downloads into the
cache, and the IDX reader (MNIST, Fashion-MNIST).

Lookup order for a dataset `<name>` (each loader documents it): `path` if given, then
`$CNNX_DATA_DIR/<name>`, then `data/<name>` of the cnnx source checkout, then the cache
`$CNNX_HOME/datasets/<name>` (default `~/.cnnx`), where missing files are downloaded and checked
against a published digest before they get their final name.
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

TIMEOUT = 60  # seconds per request
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


def local_directories(name, checkout_directories):
    """The local candidates for dataset `name`: $CNNX_DATA_DIR/<name>, then the checkout's."""
    directories = []
    data_dir = os.environ.get("CNNX_DATA_DIR")
    if data_dir:
        directories.append(pathlib.Path(data_dir).expanduser() / name)
    directories.extend(checkout_directories)
    return directories


def checkout_directories(name):
    """Where a source checkout keeps dataset `name`: its own `data/<name>` (uncommitted: the
    datasets are not part of the repository), then `../shared/data/<name>` beside it, where a
    team keeps one read-only copy for every checkout."""
    roots = [pathlib.Path(__file__).resolve().parents[3]]
    # `pip install .` (editable or not) records the source tree it was built from in its
    # PEP 610 direct_url.json.
    source = source_root()
    if source is not None and source not in roots:
        roots.append(source)
    directories = []
    for root in roots:
        for candidate in (root / "data" / name, root.parent / "shared" / "data" / name):
            if candidate not in directories:
                directories.append(candidate)
    return directories


def source_root():
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


def cache_directory(name):
    home = os.environ.get("CNNX_HOME") or os.path.join("~", ".cnnx")
    return pathlib.Path(home).expanduser() / "datasets" / name


def download(name, target, mirrors, digest, algorithm, title, searched, offline_hint):
    """Fetches file `name` from the first mirror that serves it with the right digest, into
    `target`, atomically. Raises ValueError if a mirror served bad data and none good data,
    OSError (naming every URL tried, where it looked locally and `offline_hint`) otherwise."""
    failures = []
    checksum_failed = False
    for mirror in mirrors:
        url = mirror + name
        print(f"Downloading data from {url}", file=sys.stderr)
        try:
            fetch_verified(url, target, digest, algorithm)
            return
        except ValueError as e:
            checksum_failed = True
            failures.append(f"{url}: {e}")
        except OSError as e:  # URLError, HTTPError, timeouts are OSErrors
            failures.append(f"{url}: {e}")

    locations = ", ".join(f"'{d}'" for d in searched) or "(none)"
    message = (
        f"Could not download {title} file '{name}' into '{target.parent}'.\n"
        + "\n".join(f"  {failure}" for failure in failures)
        + f"\nLocal directories searched: {locations}. {offline_hint}"
    )
    # A wrong checksum is bad data, not a network problem; say so with
    # the exception type too.
    if checksum_failed:
        raise ValueError(message)
    raise OSError(message)


def fetch_verified(url, target, digest, algorithm="sha256"):
    """Streams `url` to a temp file, checks its digest, then renames it.

    The rename is atomic, so `target` is either absent or complete and
    verified, even if the process dies or another one downloads the same
    file concurrently.
    """
    # MD5 only where it is the digest the publisher gives; not as a security measure.
    hasher = hashlib.new(algorithm, usedforsecurity=algorithm != "md5")
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                while chunk := response.read(_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
        received = hasher.hexdigest()
        if received != digest:
            raise ValueError(
                f"{algorithm.upper().replace('SHA', 'SHA-')} mismatch: expected {digest}, received {received}"
            )
        os.replace(temp, target)
    except BaseException:
        # Never leave a partial or unverified file behind.
        try:
            os.remove(temp)
        except FileNotFoundError:
            pass
        raise


def read_idx(path, magic=None):
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
            raise ValueError(f"Corrupt or truncated gzip file '{path}': {e}") from None

    if len(data) < 4:
        raise ValueError(f"Truncated IDX file '{path}': {len(data)} bytes, expected at least a 4-byte magic number.")
    received = int.from_bytes(data[:4], "big")
    if magic is not None and received != magic:
        raise ValueError(f"Bad magic number in IDX file '{path}': expected 0x{magic:08X}, received 0x{received:08X}.")
    type_code, ndim = data[2], data[3]
    if data[:2] != b"\x00\x00" or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"Bad magic number in IDX file '{path}': received 0x{received:08X}, which is not a valid IDX header."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"Truncated IDX file '{path}': {len(data)} bytes, expected a {header}-byte header.")
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


def find_directory(path, *, title, files, local, cache, fetch):
    """Returns the first directory holding all `files`: `path` if given (no fallback: missing
    files raise FileNotFoundError), else the first of `local()` holding all of them, else
    `cache()` after `fetch(name, target, searched)` of each file missing there."""
    if path is not None:
        directory = pathlib.Path(os.fspath(path)).expanduser()
        missing = [f for f in files if not (directory / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{title} file(s) not found in directory '{directory}': "
                f"{', '.join(missing)}. Expected the files "
                f"{', '.join(files)}."
            )
        return directory

    searched = []
    for directory in local():
        searched.append(directory)
        if all((directory / f).is_file() for f in files):
            return directory

    directory = cache()
    missing = [f for f in files if not (directory / f).is_file()]
    if missing:
        directory.mkdir(parents=True, exist_ok=True)
        for name in missing:
            fetch(name, directory / name, searched)
    return directory


def load_idx_pair(directory, images_name, labels_name, title, image_shape=(28, 28)):
    """Reads one images/labels pair of IDX files and checks they match."""
    images_path = directory / images_name
    labels_path = directory / labels_name
    images = read_idx(images_path, magic=0x00000803)  # uint8, 3 dims
    labels = read_idx(labels_path, magic=0x00000801)  # uint8, 1 dim
    if images.shape[1:] != image_shape:
        raise ValueError(
            f"Invalid {title} image file '{images_path}': expected "
            f"{image_shape[0]}x{image_shape[1]} images, received "
            f"{images.shape[1]}x{images.shape[2]}."
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Wrong count: '{images_path}' holds {images.shape[0]} images "
            f"but '{labels_path}' holds {labels.shape[0]} labels."
        )
    return images, labels
