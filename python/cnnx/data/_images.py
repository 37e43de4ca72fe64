"""Your own images as training data: ``image_dataset_from_directory`` and ``ImageDataset``.

The dataset keeps only the list of files and their labels; images are decoded (with Pillow) and
resized one batch at a time, while the model trains on the previous batch (one background
thread, at most two batches in memory). Pillow is optional: ``pip install cnnx[images]``.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import pathlib
import stat
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._dataset import Cardinality, Dataset, _as_tensor, _map_leaves

__all__ = ["ImageDataset", "image_dataset_from_directory", "ALLOWLIST_FORMATS"]

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")

_COLOR_MODES = {"grayscale": ("L", 1), "rgb": ("RGB", 3), "rgba": ("RGBA", 4)}
_LABEL_MODES = ("int", "categorical", "binary", None)
_SUBSETS = ("training", "validation", "both")
# Keras' interpolation names -> Pillow's resampling filter names. Pillow's filters antialias
# when they shrink an image, so pixel values differ slightly from TensorFlow's resize.
_INTERPOLATIONS = {
    "bilinear": "BILINEAR",
    "nearest": "NEAREST",
    "bicubic": "BICUBIC",
    "area": "BOX",
    "lanczos3": "LANCZOS",
}


def _pil_image() -> Any:
    """The ``PIL.Image`` module, or an ImportError that says how to get it."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            "Loading images needs Pillow, an optional dependency of cnnx. "
            "Install it with: pip install cnnx[images]  (or: pip install pillow)"
        ) from None
    return Image


def image_dataset_from_directory(
    directory: Any,
    labels: Any = "inferred",
    label_mode: str | None = "int",
    class_names: list | None = None,
    color_mode: str = "rgb",
    batch_size: int = 32,
    image_size: tuple = (256, 256),
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
    verbose: bool = True,
) -> ImageDataset | tuple[ImageDataset, ImageDataset]:
    """Generates an ``ImageDataset`` from image files in a directory, as Keras does.

    With ``labels="inferred"`` the directory holds one sub-directory per class::

        main_directory/
        ...class_a/
        ......a_image_1.jpg
        ......a_image_2.jpg
        ...class_b/
        ......b_image_1.jpg

    Supported formats: .bmp, .gif (first frame), .jpeg, .jpg, .png; other files are ignored.
    Files are found recursively within each class directory and sorted; classes are the
    sub-directory names in alphanumeric order (or ``class_names``' order). 16-bit grayscale
    PNGs are scaled to 0-255 as ``tf.io.decode_image`` does (16-bit colour PNGs keep Pillow's
    high byte, at most 1 below it).

    Skipped with a ``UserWarning`` naming the path: directories that cannot be listed (e.g. no
    permission), entries with an image extension that are not regular files (FIFOs, sockets,
    devices, broken symlinks; opening a FIFO would block forever), and, with
    ``follow_links=True``, symlinks to a directory that contains them (a loop), so each file is
    listed once per path.

    Broken files: every file's header is opened with Pillow (``Image.open(...).verify()``,
    which reads the header and, for PNG, walks the chunks and checks their CRCs without
    decompressing) when the dataset is created. Files that fail are reported by path with a
    ``UserWarning`` and left out, so counts, the validation split and ``len()`` are exact. A file
    that passes this check but still fails to decode later (e.g. a JPEG truncated after its
    header, or a file deleted meanwhile) is reported the same way when its batch is decoded and
    left out of that batch (and of later epochs).

    Args:
        directory: Directory where the data is located.
        labels: ``"inferred"`` (labels from the directory structure), ``None`` (no labels), or
            a list/tuple of integer labels, one per image file found in ``directory``
            (recursively), in alphanumeric order of the file paths.
        label_mode: ``"int"`` (int32 labels, shape ``(batch,)``, for
            ``sparse_categorical_crossentropy``), ``"categorical"`` (float32 one-hot, shape
            ``(batch, num_classes)``), ``"binary"`` (float32 0/1, shape ``(batch, 1)``; exactly
            2 classes) or ``None`` (batches are images only).
        class_names: Only with ``labels="inferred"``: the sub-directories to use (a subset of
            them), in this order.
        color_mode: ``"grayscale"``, ``"rgb"`` or ``"rgba"`` (1, 3 or 4 channels).
        batch_size: Size of the batches of data; None yields single images (and their labels).
        image_size: ``(height, width)`` every image is resized to.
        shuffle: Whether to shuffle the files (with ``seed``), and reshuffle them at the start
            of every pass over the dataset. If False, files are in alphanumeric order.
        seed: Optional seed for shuffling. If None, one is drawn from NumPy's global generator
            (so ``cnnx.utils.set_random_seed`` makes runs reproducible).
        validation_split: Optional fraction in (0, 1) of the files to reserve for validation:
            the file list is shuffled with ``seed``, then the last fraction is validation.
        subset: With ``validation_split``: ``"training"``, ``"validation"`` or ``"both"``
            (returns the tuple ``(train_ds, val_ds)``).
        interpolation: ``"bilinear"`` (default), ``"nearest"``, ``"bicubic"``, ``"area"`` or
            ``"lanczos3"`` (Pillow's filters).
        follow_links: Whether to visit sub-directories pointed to by symlinks.
        crop_to_aspect_ratio: If True, crop the largest centred box with the aspect ratio of
            ``image_size`` before resizing, instead of distorting the aspect ratio.
        verbose: Whether to print how many files were found and used.

    Returns:
        An ``ImageDataset`` yielding float32 image batches of shape
        ``(batch, height, width, channels)`` with values 0-255, paired with labels unless
        ``label_mode`` is None; or a tuple of two with ``subset="both"``.

    Raises:
        FileNotFoundError: if ``directory`` does not exist.
        ValueError: for invalid arguments, no class sub-directories, or no images.
        ImportError: if Pillow is not installed.
    """
    Image = _pil_image()
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError(
                "`labels` argument should be a list/tuple of integer labels, of the same size "
                "as the number of image files in the target directory. If you wish to infer "
                "the labels from the subdirectory names in the target directory, pass "
                f'`labels="inferred"`. If you wish to get a dataset that only contains images '
                f"(no labels), pass `labels=None`. Received: labels={labels!r}"
            )
        if class_names:
            raise ValueError(
                "You can only pass `class_names` if `labels='inferred'`. "
                f"Received: labels={labels!r}, and class_names={class_names!r}"
            )
    if label_mode not in _LABEL_MODES:
        raise ValueError(
            '`label_mode` argument must be one of "int", "categorical", "binary", or None. '
            f"Received: label_mode={label_mode!r}"
        )
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    if color_mode not in _COLOR_MODES:
        raise ValueError(
            f'`color_mode` must be one of {{"rgb", "rgba", "grayscale"}}. Received: color_mode={color_mode!r}'
        )
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"`interpolation` must be one of {sorted(_INTERPOLATIONS)}. Received: interpolation={interpolation!r}"
        )
    batch_size = _check_batch_size(batch_size)
    image_size = _check_image_size(image_size)
    _check_split(validation_split, subset, shuffle, seed)
    if seed is None:
        seed = int(np.random.randint(1_000_000))  # Keras' choice; follows set_random_seed
    seed = int(seed)  # a NumPy scalar would overflow in seed + 1 below

    root = pathlib.Path(os.fspath(directory)).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"image_dataset_from_directory: directory '{root}' does not exist")
    if not root.is_dir():
        raise ValueError(f"image_dataset_from_directory: '{root}' is not a directory")

    file_paths, file_labels, class_names = _index_directory(root, labels, class_names, follow_links)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(
            'When passing `label_mode="binary"`, there must be exactly 2 class_names. '
            f"Received: class_names={class_names}"
        )
    found = len(file_paths)
    file_paths, file_labels = _drop_unreadable(file_paths, file_labels, Image)
    if not file_paths:
        raise ValueError(
            f"No images found in directory '{root}'. Allowed formats: {ALLOWLIST_FORMATS}"
            + (f" ({found} file(s) could not be read)" if found else "")
        )
    if verbose:
        tail = f" belonging to {len(class_names)} classes" if labels is not None else ""
        print(f"Found {len(file_paths)} files{tail}.", file=sys.stdout, flush=True)

    if shuffle:
        rng = np.random.RandomState(seed)
        order = rng.permutation(len(file_paths))
        file_paths = [file_paths[i] for i in order]
        if file_labels is not None:
            file_labels = file_labels[order]

    common = dict(
        class_names=class_names,
        label_mode=label_mode,
        color_mode=color_mode,
        batch_size=batch_size,
        image_size=image_size,
        shuffle=shuffle,
        interpolation=interpolation,
        crop_to_aspect_ratio=crop_to_aspect_ratio,
    )
    if not validation_split:
        return ImageDataset(file_paths, file_labels, seed=seed, **common)
    n_val = int(validation_split * len(file_paths))
    split = len(file_paths) - n_val
    parts = {"training": slice(0, split), "validation": slice(split, None)}
    datasets = []
    for i, name in enumerate(("training", "validation")):
        if subset not in (name, "both"):
            continue
        paths = file_paths[parts[name]]
        if not paths:
            raise ValueError(
                f"validation_split={validation_split} leaves no files for the {name} subset "
                f"({len(file_paths)} files in '{root}')"
            )
        if verbose:
            print(f"Using {len(paths)} files for {name}.", file=sys.stdout, flush=True)
        lab = None if file_labels is None else file_labels[parts[name]]
        datasets.append(ImageDataset(paths, lab, seed=seed + i, **common))
    return tuple(datasets) if subset == "both" else datasets[0]


_UNBATCHED_CHUNK = 32  # images decoded per worker call when the dataset yields single images


class ImageDataset(Dataset):
    """A finite, re-iterable stream of ``(images, labels)`` batches decoded from files.

    Holds the file paths and labels only. Iterating decodes one batch at a time into float32
    arrays ``(batch, height, width, channels)`` (values 0-255) while the next batch is decoded
    in a background thread. With ``shuffle=True`` every pass visits the files in a new order,
    drawn from a generator seeded once, so the sequence of orders is reproducible.

    Attributes:
        class_names: The class names, index i is label i.
        file_paths: The image files, in the dataset's base order.
    """

    def __init__(
        self,
        file_paths: list,
        labels: np.ndarray | None,
        *,
        class_names: list,
        label_mode: str | None,
        color_mode: str,
        batch_size: int,
        image_size: tuple,
        shuffle: bool,
        seed: int,
        interpolation: str,
        crop_to_aspect_ratio: bool,
    ):
        self.file_paths = list(file_paths)
        self.class_names = list(class_names)
        self._labels = labels
        self._label_mode = label_mode
        self._mode, self._channels = _COLOR_MODES[color_mode]
        self._batch_size = batch_size  # None: single images, decoded in chunks of _UNBATCHED_CHUNK
        self._chunk = batch_size or _UNBATCHED_CHUNK
        self._image_size = image_size
        self._shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._resample = getattr(_pil_image().Resampling, _INTERPOLATIONS[interpolation])
        self._crop = crop_to_aspect_ratio
        self._broken: set[str] = set()  # files that failed to decode; skipped from then on

    @property
    def batch_size(self) -> int | None:
        return self._batch_size

    @property
    def element_shape(self) -> tuple:
        """Shape of one image: ``(height, width, channels)``."""
        return (*self._image_size, self._channels)

    def __len__(self) -> int:
        """The number of batches in one pass (of images, with ``batch_size=None``)."""
        return math.ceil(len(self.file_paths) / (self._batch_size or 1))

    def _cardinality(self) -> int:
        return len(self)

    def cardinality(self) -> Cardinality:
        """The number of batches in one pass (as ``tf.data.Dataset.cardinality``)."""
        return Cardinality(len(self))

    def _iter(self) -> Iterator[Any]:
        n = len(self.file_paths)
        order = self._rng.permutation(n) if self._shuffle else np.arange(n)
        return self._decode(order, range(0, n, self._chunk))

    def _iter_shard(self, num_shards: int, index: int, drop_remainder: bool) -> Iterator[Any]:
        """Batches index, index + num_shards, ... of one pass (data-parallel training: each
        process decodes only its own). The pass's file order is drawn as a full pass draws it,
        so processes whose generators share a state agree on it. With drop_remainder, only the
        first len // num_shards * num_shards batches are dealt, so every shard has as many."""
        n = len(self.file_paths)
        order = self._rng.permutation(n) if self._shuffle else np.arange(n)
        batches = len(self) // num_shards * num_shards if drop_remainder else len(self)
        starts = [b * self._chunk for b in range(index, batches, num_shards)]
        return (_map_leaves(_as_tensor, e) for e in self._decode(order, starts))

    def _decode(self, order: np.ndarray, starts: Any) -> Iterator[Any]:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnnx-decode") as pool:
            pending = None
            for start in starts:
                future = pool.submit(self._decode_batch, order[start : start + self._chunk])
                if pending is not None:
                    yield from self._emit(pending)
                pending = future
            if pending is not None:
                yield from self._emit(pending)

    def _emit(self, future: concurrent.futures.Future) -> Iterator[Any]:
        x, y, failures = future.result()
        for path, error in failures:  # warn from the consuming thread, where filters apply
            warnings.warn(f"Skipping image file '{path}': cannot decode it ({error})", UserWarning, stacklevel=3)
        if len(x) == 0:
            return
        if self._batch_size is None:
            for i in range(len(x)):
                yield x[i] if y is None else (x[i], y[i])
            return
        yield x if y is None else (x, y)

    def _decode_batch(self, indices: np.ndarray) -> tuple:
        """Decodes the files at ``indices`` into one float32 batch (runs in the worker)."""
        Image = _pil_image()
        h, w = self._image_size
        x = np.empty((len(indices), h, w, self._channels), np.float32)
        kept, failures = [], []
        for i in indices:
            path = self.file_paths[i]
            if path in self._broken:
                continue
            try:
                with Image.open(path) as img:
                    img = _to_8bit(img, Image).convert(self._mode)
                    box = _crop_box(img.size, (w, h)) if self._crop else None
                    img = img.resize((w, h), self._resample, box=box)
                    pixels = np.asarray(img, dtype=np.uint8)
            except Exception as e:  # noqa: BLE001 -- Pillow raises many kinds; report and skip
                self._broken.add(path)
                failures.append((path, f"{type(e).__name__}: {e}"))
                continue
            x[len(kept)] = pixels.reshape(h, w, self._channels)
            kept.append(i)
        x = x[: len(kept)]
        return x, self._batch_labels(np.asarray(kept, np.int64)), failures

    def _batch_labels(self, idx: np.ndarray) -> np.ndarray | None:
        if self._labels is None:
            return None
        labels = self._labels[idx]
        if self._label_mode == "int":
            return labels.astype(np.int32)
        if self._label_mode == "binary":
            return labels.astype(np.float32).reshape(-1, 1)
        onehot = np.zeros((len(idx), len(self.class_names)), np.float32)
        onehot[np.arange(len(idx)), labels] = 1.0
        return onehot

    def __repr__(self) -> str:
        return (
            f"<ImageDataset files={len(self.file_paths)}, batches={len(self)}, "
            f"element_shape={self.element_shape}, classes={len(self.class_names)}>"
        )


# -- helpers ---------------------------------------------------------------------------------------
def _check_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:  # Keras: a dataset of single images
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer or None. Received: batch_size={batch_size!r}")
    return int(batch_size)


def _check_image_size(image_size: Any) -> tuple:
    try:
        h, w = image_size
        ok = all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in (h, w))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"`image_size` must be a tuple of two positive integers (height, width). "
            f"Received: image_size={image_size!r}"
        )
    return int(h), int(w)


def _check_split(validation_split: Any, subset: Any, shuffle: bool, seed: Any) -> None:
    """Keras' rules for validation_split / subset / seed."""
    if subset not in (None,) + _SUBSETS:
        raise ValueError(f'`subset` must be either "training", "validation" or "both". Received: subset={subset!r}')
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32
    ):
        # NumPy's own errors would not name the argument (and True would pass as seed 1).
        raise ValueError(f"`seed` must be None or an integer in [0, 2**32 - 1]. Received: seed={seed!r}")
    if validation_split is not None and (
        isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.integer, np.floating))
    ):
        raise TypeError(
            f"`validation_split` must be a float between 0 and 1. Received: validation_split={validation_split!r}"
        )
    if validation_split:
        if not 0 < validation_split < 1:
            raise ValueError(
                f"`validation_split` must be between 0 and 1. Received: validation_split={validation_split!r}"
            )
        if subset is None:
            raise ValueError("If `validation_split` is set, `subset` must be set as well.")
        if shuffle and seed is None:
            raise ValueError(
                "If using `validation_split` and shuffling the data, you must provide a `seed` "
                "argument, to make sure that there is no overlap between the training and "
                "validation subset."
            )
    elif subset is not None:
        raise ValueError("If `subset` is set, `validation_split` must be set as well.")


def _image_files(directory: pathlib.Path, follow_links: bool, outer: tuple = ()) -> list:
    """Image files under ``directory`` (recursively), sorted as Keras lists them (by directory
    path, then file name). Symlinks to files are followed; symlinks to directories only with
    ``follow_links``. Warns about and skips: directories that cannot be listed, entries with an
    image extension that are not regular files (a FIFO would block the decoder forever), and
    directory links that lead back to a directory being walked (``outer``: the dataset root)."""
    listed = []  # (directory path, sorted image file names)
    ancestors = {_dir_id(d) for d in (directory, *outer)} - {None}

    def walk(path: str, on_path: frozenset) -> None:
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            warnings.warn(
                f"Skipping directory '{path}': cannot list it ({type(e).__name__}: {e.strerror or e})",
                UserWarning,
                stacklevel=2,
            )
            return
        names, subdirs = [], []
        for entry in entries:
            is_dir = _entry_is_dir(entry)
            if is_dir:
                if not entry.is_symlink():
                    subdirs.append(entry)
                elif follow_links:
                    ident = _dir_id(entry.path)
                    if ident in on_path:  # each link path is reached once, so this warns once
                        warnings.warn(
                            f"Skipping symbolic link '{entry.path}': it points to "
                            f"'{os.path.realpath(entry.path)}', which contains it (a directory loop)",
                            UserWarning,
                            stacklevel=2,
                        )
                        continue
                    subdirs.append(entry)
                continue
            if not entry.name.lower().endswith(ALLOWLIST_FORMATS):
                continue
            kind = _non_regular_kind(entry)
            if kind:
                warnings.warn(f"Skipping '{entry.path}': not a regular file ({kind})", UserWarning, stacklevel=2)
                continue
            names.append(entry.name)
        listed.append((path, names))
        for entry in subdirs:
            ident = _dir_id(entry.path)
            pending.append((entry.path, (on_path | {ident}) if ident is not None else on_path))

    pending = [(os.fspath(directory), frozenset(ancestors))]
    while pending:  # a stack, not recursion: deep trees must not hit the recursion limit
        walk(*pending.pop())
    return [os.path.join(root, name) for root, names in sorted(listed, key=lambda t: t[0]) for name in names]


def _dir_id(path: Any) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _entry_is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _non_regular_kind(entry: os.DirEntry) -> str | None:
    """None for a regular file (or a link to one), else what the entry is instead."""
    try:
        if entry.is_file():
            return None
        st = os.stat(entry.path)  # stat, never open: opening a FIFO blocks
    except OSError as e:
        if entry.is_symlink():
            return f"a broken symbolic link ({type(e).__name__}: {e.strerror or e})"
        return f"cannot stat it ({type(e).__name__}: {e.strerror or e})"
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(st.st_mode):
            return kind
    return "not a file"


def _index_directory(root: pathlib.Path, labels: Any, class_names: Any, follow_links: bool) -> tuple:
    """(file paths, int labels or None, class names)."""
    if labels != "inferred":
        paths = _image_files(root, follow_links)
        if labels is None:
            return paths, None, []
        if len(labels) != len(paths):
            raise ValueError(
                "Expected the lengths of `labels` to match the number of files in the target "
                f"directory. len(labels) is {len(labels)} while we found {len(paths)} files in "
                f"directory '{root}'."
            )
        arr = np.asarray(labels)
        if arr.dtype.kind not in "iu" or (arr < 0).any():
            raise ValueError(f"`labels` must be non-negative integers. Received: {labels!r}")
        names = [str(i) for i in range(int(arr.max()) + 1)] if len(arr) else []
        return paths, arr.astype(np.int64), names

    subdirs = sorted(entry.name for entry in os.scandir(root) if not entry.name.startswith(".") and entry.is_dir())
    if not subdirs:
        raise ValueError(
            f"No class sub-directories found in directory '{root}': with labels='inferred' it "
            "must hold one sub-directory of images per class (e.g. root/cats/*.jpg, "
            "root/dogs/*.jpg); pass labels=None to load the images without labels."
        )
    if class_names is not None:
        if not set(class_names).issubset(subdirs) or len(set(class_names)) != len(class_names):
            raise ValueError(
                "The `class_names` passed did not match the names of the subdirectories of the "
                f"target directory. Expected: {subdirs} (or a subset of it), but received: "
                f"class_names={list(class_names)}"
            )
        subdirs = list(class_names)  # keep the given order
    paths, idx = [], []
    for label, name in enumerate(subdirs):
        files = _image_files(root / name, follow_links, outer=(root,))
        paths.extend(files)
        idx.extend([label] * len(files))
    return paths, np.asarray(idx, np.int64), list(subdirs)


def _drop_unreadable(paths: list, labels: np.ndarray | None, Image: Any) -> tuple:
    """Opens every file's header (cheap: no pixel decoding); warns about and drops failures."""
    keep = []
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                img.verify()
        except Exception as e:  # noqa: BLE001 -- UnidentifiedImageError, SyntaxError, OSError...
            warnings.warn(
                f"Skipping image file '{path}': cannot read it ({type(e).__name__}: {e})", UserWarning, stacklevel=3
            )
            continue
        keep.append(i)
    if len(keep) == len(paths):
        return paths, labels
    return [paths[i] for i in keep], None if labels is None else labels[np.asarray(keep, np.int64)]


def _to_8bit(img: Any, Image: Any) -> Any:
    """16-bit grayscale (Pillow modes I;16, I;16B, I) scaled to 0-255 as
    ``tf.io.decode_image(dtype=uint8)`` does, round(v * 255 / 65535): Pillow's own conversion to
    "L" clips every value above 255 to white. (16-bit colour PNGs Pillow already opens as 8-bit
    RGB/RGBA, keeping the high byte: at most 1 below TensorFlow's rounding.)"""
    if img.mode != "I" and not img.mode.startswith("I;16"):
        return img
    values = np.asarray(img).astype(np.float64)
    return Image.fromarray(np.clip(np.rint(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8))


def _crop_box(size: tuple, target: tuple) -> tuple:
    """The centred (left, top, right, bottom) box of ``size`` with ``target``'s aspect ratio."""
    width, height = size
    target_w, target_h = target
    crop_h = min(height, int(width * target_h / target_w))
    crop_w = min(width, int(height * target_w / target_h))
    top = (height - crop_h) // 2
    left = (width - crop_w) // 2
    return (left, top, left + crop_w, top + crop_h)
