"""Optimizers with Keras 3's names, defaults and update rules; the updates run in the core.

Every optimizer accepts Keras' common options: ``clipvalue``, ``clipnorm``,
``global_clipnorm``, ``weight_decay``, and a ``learning_rate`` that is a float or a schedule
from ``cnnx.optimizers.schedules``."""

from __future__ import annotations

from typing import Any

from .. import _core
from . import schedules

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "schedules", "get", "from_config"]


def _rate(value: Any, who: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{who}: expected learning_rate to be a float or a schedule, received learning_rate={value!r}")
    return float(value)


class Optimizer:
    """Base class. ``learning_rate`` and ``iterations`` read and write the core's state."""

    _core: Any

    def __init__(
        self,
        learning_rate: Any,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        weight_decay: float | None = None,
    ):
        # The subclass has created self._core with the schedule's step-0 rate (_initial_rate).
        self._schedule = learning_rate if isinstance(learning_rate, schedules.LearningRateSchedule) else None
        self._core.set_options(
            float(clipvalue or 0.0), float(clipnorm or 0.0), float(global_clipnorm or 0.0), float(weight_decay or 0.0)
        )

    @staticmethod
    def _initial_rate(learning_rate: Any, who: str) -> float:
        if isinstance(learning_rate, schedules.LearningRateSchedule):
            return float(learning_rate(0))
        return _rate(learning_rate, who)

    def _before_step(self) -> None:
        """Called by the model before each training step: applies the schedule, if any."""
        if self._schedule is not None:
            self._core.learning_rate = float(self._schedule(self._core.iterations))

    @property
    def learning_rate(self) -> float:
        return self._core.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if self._schedule is not None:
            raise TypeError(
                f"{type(self).__name__}: learning_rate follows a {type(self._schedule).__name__} "
                "schedule and cannot be set"
            )
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
        c = self._core
        lr = schedules.serialize(self._schedule) if self._schedule is not None else self.learning_rate
        config = {"name": self.name, "learning_rate": lr}
        for key in ("clipvalue", "clipnorm", "global_clipnorm"):
            if getattr(c, key):
                config[key] = getattr(c, key)
        if c.weight_decay and not isinstance(self, AdamW):
            config["weight_decay"] = c.weight_decay
        return config

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.get_config()}>"


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, ``keras.optimizers.SGD``."""

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs: Any):
        self._core = _core.SGD(self._initial_rate(learning_rate, "SGD"), float(momentum), bool(nesterov))
        super().__init__(learning_rate, **kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self._core.momentum, "nesterov": self._core.nesterov}


class Adam(Optimizer):
    """Adam, ``keras.optimizers.Adam`` (learning_rate 0.001, betas 0.9 / 0.999, epsilon 1e-7)."""

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ):
        self._core = _core.Adam(
            self._initial_rate(learning_rate, type(self).__name__), float(beta_1), float(beta_2), float(epsilon)
        )
        super().__init__(learning_rate, **kwargs)

    def get_config(self) -> dict:
        c = self._core
        return {**super().get_config(), "beta_1": c.beta_1, "beta_2": c.beta_2, "epsilon": c.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay, ``keras.optimizers.AdamW`` (weight_decay 0.004): each
    step first shrinks every weight by learning_rate * weight_decay."""

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay=weight_decay, **kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "weight_decay": self._core.weight_decay}


class RMSprop(Optimizer):
    """RMSprop, ``keras.optimizers.RMSprop`` (learning_rate 0.001, rho 0.9, epsilon 1e-7);
    Keras' default optimizer for ``compile()``."""

    def __init__(
        self, learning_rate: Any = 0.001, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7, **kwargs: Any
    ):
        self._core = _core.RMSprop(
            self._initial_rate(learning_rate, "RMSprop"), float(rho), float(momentum), float(epsilon)
        )
        super().__init__(learning_rate, **kwargs)

    def get_config(self) -> dict:
        c = self._core
        return {**super().get_config(), "rho": c.rho, "momentum": c.momentum, "epsilon": c.epsilon}


class Adagrad(Optimizer):
    """Adagrad, ``keras.optimizers.Adagrad`` (learning_rate 0.001, initial_accumulator_value 0.1,
    epsilon 1e-7) -- the sports-classifier exercise's optimizer."""

    def __init__(
        self, learning_rate: Any = 0.001, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7, **kwargs: Any
    ):
        self._core = _core.Adagrad(
            self._initial_rate(learning_rate, "Adagrad"), float(initial_accumulator_value), float(epsilon)
        )
        super().__init__(learning_rate, **kwargs)

    def get_config(self) -> dict:
        c = self._core
        return {**super().get_config(), "initial_accumulator_value": c.initial_accumulator_value, "epsilon": c.epsilon}


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(identifier: Any) -> Optimizer:
    """An optimizer from a Keras name ('adam', 'sgd', 'rmsprop', 'adagrad', 'adamw') or an instance."""
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
    raise TypeError(
        f"Could not interpret optimizer identifier: expected a string or an Optimizer, received {identifier!r}"
    )


def from_config(entry: dict) -> Optimizer:
    """An optimizer from ``{"class_name": ..., "config": get_config()}``."""
    cls = {c.__name__: c for c in (SGD, Adam, AdamW, RMSprop, Adagrad)}.get(str(entry.get("class_name")))
    if cls is None:
        raise ValueError(f"unknown optimizer class {entry.get('class_name')!r}")
    config = {k: v for k, v in dict(entry.get("config", {})).items() if k != "name"}
    if isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = schedules.deserialize(config["learning_rate"])
    return cls(**config)
