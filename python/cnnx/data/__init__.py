"""Input pipelines: ``Dataset`` (the ``tf.data`` methods Keras programs use, on NumPy),
``image_dataset_from_directory`` (image folders, decoded batch by batch) and Keras 3's
``PyDataset``. ``AUTOTUNE`` is -1 as in ``tf.data``."""

from . import experimental
from ._dataset import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Dataset
from ._images import ALLOWLIST_FORMATS, ImageDataset, image_dataset_from_directory
from ._pydataset import PyDataset, Sequence

__all__ = [
    "ALLOWLIST_FORMATS",
    "AUTOTUNE",
    "INFINITE_CARDINALITY",
    "UNKNOWN_CARDINALITY",
    "Dataset",
    "ImageDataset",
    "PyDataset",
    "Sequence",
    "experimental",
    "image_dataset_from_directory",
]
