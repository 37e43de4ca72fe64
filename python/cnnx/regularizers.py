"""Weight penalties with Keras' names (``keras.regularizers``): pass one as a layer's
``kernel_regularizer`` or ``bias_regularizer``. The core adds the penalty to the loss and its
gradient to the weight's gradient at every training step."""

from __future__ import annotations

from typing import Any

__all__ = ["Regularizer", "L1", "L2", "L1L2", "get", "serialize"]


def _factor(value: Any, arg: str, who: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{who}: expected {arg} >= 0, received {arg}={value!r}")
    return float(value)


class Regularizer:
    """l1 * sum(|w|) + l2 * sum(w ** 2)."""

    l1 = 0.0
    l2 = 0.0

    def __call__(self, x: Any) -> float:
        import numpy as np

        x = np.asarray(x, dtype=np.float64)
        return float(self.l1 * np.abs(x).sum() + self.l2 * (x**2).sum())

    def get_config(self) -> dict:
        raise NotImplementedError


class L1(Regularizer):
    def __init__(self, l1: float = 0.01):
        self.l1 = _factor(l1, "l1", "L1")

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    def __init__(self, l2: float = 0.01):
        self.l2 = _factor(l2, "l2", "L2")

    def get_config(self) -> dict:
        return {"l2": self.l2}


class L1L2(Regularizer):
    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _factor(l1, "l1", "L1L2")
        self.l2 = _factor(l2, "l2", "L1L2")

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_NAMES = {"l1": L1, "l2": L2, "l1_l2": L1L2}


def get(identifier: Any) -> Regularizer | None:
    """None, a Regularizer, a Keras name ('l1', 'l2', 'l1_l2') or a serialized dict."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    raise ValueError(
        f"Could not interpret regularizer identifier: expected None, 'l1', 'l2', 'l1_l2' or a "
        f"Regularizer, received {identifier!r}"
    )


def serialize(regularizer: Regularizer | None) -> dict | None:
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
