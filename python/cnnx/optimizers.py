"""Optimizers with Keras 3's names, defaults and update rules; the updates run in the core."""

from __future__ import annotations

from typing import Any

from . import _core

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "get", "from_config"]


def _rate(value: Any, who: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{who}: expected learning_rate to be a float, received learning_rate={value!r}")
    return float(value)


class Optimizer:
    """Base class. ``learning_rate`` and ``iterations`` read and write the core's state."""

    _core: Any

    @property
    def learning_rate(self) -> float:
        return self._core.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        value = _rate(value, type(self).__name__)
        if value < 0:
            raise ValueError(f"{type(self).__name__}: expected learning_rate >= 0, received {value}")
        self._core.learning_rate = value

    @property
    def iterations(self) -> int:
        return int(self._core.iterations)

    @property
    def name(self) -> str:
        return type(self).__name__.lower()

    def get_config(self) -> dict:
        return {"name": self.name, "learning_rate": self.learning_rate}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.get_config()}>"


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, ``keras.optimizers.SGD``."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False):
        self._core = _core.SGD(_rate(learning_rate, "SGD"), float(momentum), bool(nesterov))

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self._core.momentum, "nesterov": self._core.nesterov}


class Adam(Optimizer):
    """Adam, ``keras.optimizers.Adam`` (learning_rate 0.001, betas 0.9 / 0.999, epsilon 1e-7)."""

    def __init__(
        self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7
    ):
        self._core = _core.Adam(_rate(learning_rate, "Adam"), float(beta_1), float(beta_2), float(epsilon))

    def get_config(self) -> dict:
        c = self._core
        return {**super().get_config(), "beta_1": c.beta_1, "beta_2": c.beta_2, "epsilon": c.epsilon}


class RMSprop(Optimizer):
    """RMSprop, ``keras.optimizers.RMSprop`` (learning_rate 0.001, rho 0.9, epsilon 1e-7);
    Keras' default optimizer for ``compile()``."""

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7):
        self._core = _core.RMSprop(_rate(learning_rate, "RMSprop"), float(rho), float(momentum), float(epsilon))

    def get_config(self) -> dict:
        c = self._core
        return {**super().get_config(), "rho": c.rho, "momentum": c.momentum, "epsilon": c.epsilon}


_BY_NAME = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def get(identifier: Any) -> Optimizer:
    """An optimizer from a Keras name ('adam', 'sgd', 'rmsprop') or an Optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"Could not interpret optimizer identifier: expected one of {sorted(_BY_NAME)} or an "
                f"Optimizer instance, received optimizer={identifier!r}"
            )
        return cls()
    raise TypeError(f"Could not interpret optimizer identifier: expected a string or an Optimizer, received {identifier!r}")


def from_config(entry: dict) -> Optimizer:
    """An optimizer from ``{"class_name": ..., "config": get_config()}``."""
    cls = {"SGD": SGD, "Adam": Adam, "RMSprop": RMSprop}.get(str(entry.get("class_name")))
    if cls is None:
        raise ValueError(f"unknown optimizer class {entry.get('class_name')!r}")
    config = {k: v for k, v in dict(entry.get("config", {})).items() if k != "name"}
    return cls(**config)
