"""``tf.data.experimental`` names that Keras programs still use."""

from __future__ import annotations

from typing import Any

from ._dataset import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Cardinality, Dataset

__all__ = ["AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY", "cardinality"]


def cardinality(dataset: Any) -> Cardinality:
    """``tf.data.experimental.cardinality(ds)``: the same as ``ds.cardinality()``."""
    if not isinstance(dataset, Dataset):
        raise TypeError(f"cardinality: expected a cnnx.data.Dataset, received {type(dataset).__name__}")
    return dataset.cardinality()
