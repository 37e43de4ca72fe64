"""Losses with Keras' names; computed (with their gradients) in the core."""

from __future__ import annotations

from typing import Any

from . import _core

__all__ = ["Loss", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "get", "from_config"]


class Loss:
    """Base class; ``__call__(y_true, y_pred)`` gives the batch-mean loss, as in Keras."""

    sparse = False
    _core: Any

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)
        self._core = _core.make_crossentropy(self.sparse, self.from_logits)

    @property
    def name(self) -> str:
        return self._core.name

    def __call__(self, y_true: Any, y_pred: Any) -> float:
        import numpy as np

        y_pred = np.ascontiguousarray(y_pred, dtype=np.float32)
        if y_pred.ndim == 1:
            y_pred = y_pred[None, :]
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
        y_true = np.ascontiguousarray(y_true, dtype=np.float32)
        return float(self._core.compute(y_pred, y_true, False)[0])

    def get_config(self) -> dict:
        return {"name": self.name, "from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot labels (``keras.losses.CategoricalCrossentropy``)."""


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer labels (``keras.losses.SparseCategoricalCrossentropy``)."""

    sparse = True


_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def get(identifier: Any) -> Loss:
    """A loss from a Keras name or a Loss instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"Could not interpret loss identifier: expected one of {sorted(_BY_NAME)} or a Loss "
                f"instance, received loss={identifier!r}"
            )
        return cls()
    raise TypeError(f"Could not interpret loss identifier: expected a string or a Loss, received {identifier!r}")


def from_config(entry: dict) -> Loss:
    """A loss from ``{"class_name": ..., "config": get_config()}``."""
    cls = {"CategoricalCrossentropy": CategoricalCrossentropy,
           "SparseCategoricalCrossentropy": SparseCategoricalCrossentropy}.get(str(entry.get("class_name")))
    if cls is None:
        raise ValueError(f"unknown loss class {entry.get('class_name')!r}")
    return cls(from_logits=bool(dict(entry.get("config", {})).get("from_logits", False)))
