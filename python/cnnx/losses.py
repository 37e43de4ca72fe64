"""Losses with Keras' names, arguments and reduction; computed (with their gradients) in the
core. A loss that ends the model's own activation (softmax for cross-entropy, sigmoid for
binary cross-entropy) is differentiated through it in one exact step."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core

__all__ = [
    "Loss",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryCrossentropy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "get",
    "from_config",
]


class Loss:
    """Base class; ``loss(y_true, y_pred, sample_weight=None)`` gives the batch-mean loss."""

    _core: Any
    # A 1-D y_pred is one prediction per sample (a column) for these element-wise losses, and a
    # single sample's class scores (a row) for the cross-entropies.
    _vector_is_column = False

    @property
    def name(self) -> str:
        return self._core.name

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
        y_pred = np.ascontiguousarray(y_pred, dtype=np.float32)
        if y_pred.ndim == 1:
            y_pred = y_pred[:, None] if self._vector_is_column else y_pred[None, :]
        rows = y_pred.reshape(-1, y_pred.shape[-1])
        y_true = np.ascontiguousarray(y_true, dtype=np.float32)
        w = None
        if sample_weight is not None:
            per = rows.shape[0] // max(len(y_pred), 1)
            w = np.repeat(np.ascontiguousarray(sample_weight, dtype=np.float32).reshape(-1), per)
        return float(self._core.compute(rows, y_true, False, w)[0])

    def get_config(self) -> dict:
        return {"name": self.name}


def _smoothing(value: Any, who: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{who}: expected label_smoothing in [0, 1], received {value!r}")
    return float(value)


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot labels (``keras.losses.CategoricalCrossentropy``)."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0):
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing, "CategoricalCrossentropy")
        self._core = _core.make_crossentropy(False, self.from_logits, self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer labels (``keras.losses.SparseCategoricalCrossentropy``)."""

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)
        self._core = _core.make_crossentropy(True, self.from_logits)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits}


class BinaryCrossentropy(Loss):
    """Cross-entropy of 0/1 targets against sigmoid outputs (``keras.losses.BinaryCrossentropy``),
    e.g. one output unit for good vs defective."""

    _vector_is_column = True

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0):
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing, "BinaryCrossentropy")
        self._core = _core.make_binary_crossentropy(self.from_logits, self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class MeanSquaredError(Loss):
    """Mean of the squared error over the last axis (``keras.losses.MeanSquaredError``)."""

    _vector_is_column = True

    def __init__(self) -> None:
        self._core = _core.make_mean_squared_error()


class MeanAbsoluteError(Loss):
    """Mean of the absolute error over the last axis (``keras.losses.MeanAbsoluteError``)."""

    _vector_is_column = True

    def __init__(self) -> None:
        self._core = _core.make_mean_absolute_error()


_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
}
_CLASSES = {cls.__name__: cls for cls in set(_BY_NAME.values())}


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
    cls = _CLASSES.get(str(entry.get("class_name")))
    if cls is None:
        raise ValueError(f"unknown loss class {entry.get('class_name')!r}")
    config = {k: v for k, v in dict(entry.get("config", {})).items() if k != "name"}
    return cls(**config)
