"""Keras 3's metrics (``keras.metrics``): stateful classes with ``update_state(y_true, y_pred,
sample_weight=None)``, ``result()``, ``reset_state()``, ``get_config()``; their function forms
(per-sample values); and the string names compile() accepts.

In training, the model's outputs of each step come back from the core (no second forward pass)
and update these objects; "accuracy" and the top-k accuracies given as strings are counted in
the core itself (same results). Computed in NumPy (float64).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from . import losses as _losses
from .losses import (
    binary_crossentropy,
    categorical_crossentropy,
    categorical_hinge,
    hinge,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
)

__all__ = [
    "Metric",
    "Mean",
    "Sum",
    "MeanMetricWrapper",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "RootMeanSquaredError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "CosineSimilarity",
    "LogCoshError",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "KLDivergence",
    "Poisson",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryCrossentropy",
    "TruePositives",
    "FalsePositives",
    "TrueNegatives",
    "FalseNegatives",
    "Precision",
    "Recall",
    "AUC",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "kl_divergence",
    "poisson",
    "log_cosh",
    "mse",
    "mae",
    "mape",
    "msle",
    "get",
    "serialize",
    "deserialize",
]

EPSILON = 1e-7  # keras.config.epsilon()

mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


_same_rank = _losses.same_rank


# -- function forms -----------------------------------------------------------------------------
def accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """1.0 where y_pred equals y_true exactly, else 0.0."""
    t, p = _same_rank(_f64(y_true), _f64(y_pred))
    return (t == p).astype(np.float64)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    t, p = _same_rank(_f64(y_true), _f64(y_pred))
    return np.mean((t == (p > threshold)).astype(np.float64), axis=-1)


def categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    t, p = _f64(y_true), _f64(y_pred)
    return (np.argmax(t, axis=-1) == np.argmax(p, axis=-1)).astype(np.float64)


def _sparse_labels(y_true: Any, y_pred: np.ndarray) -> np.ndarray:
    t = _f64(y_true)
    if t.ndim == y_pred.ndim and t.shape[-1] == 1:
        t = t[..., 0]
    return t


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    p = _f64(y_pred)
    return (_sparse_labels(y_true, p) == np.argmax(p, axis=-1)).astype(np.float64)


def _in_top_k(labels: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    """TF's in_top_k: the true class is in the top k unless k or more classes score strictly
    higher (ties at the boundary count as in)."""
    idx = labels.astype(np.int64)
    valid = (idx >= 0) & (idx < p.shape[-1])
    score = np.take_along_axis(p, np.where(valid, idx, 0)[..., None], axis=-1)
    higher = np.sum(p > score, axis=-1)
    return ((higher < k) & valid).astype(np.float64)


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    p = _f64(y_pred)
    return _in_top_k(np.argmax(_f64(y_true), axis=-1), p, k)


def sparse_top_k_categorical_accuracy(
    y_true: Any, y_pred: Any, k: int = 5, from_sorted_ids: bool = False
) -> np.ndarray:
    p = _f64(y_pred)
    t = _sparse_labels(y_true, p)
    if from_sorted_ids:  # y_pred holds the top class ids, best first
        return np.any(p[..., :k] == t[..., None], axis=-1).astype(np.float64)
    return _in_top_k(t, p, k)


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """The metric's cosine similarity (positive; the loss is its negative)."""
    return -_losses.cosine_similarity(y_true, y_pred, axis)


# -- base classes ---------------------------------------------------------------------------------
class MetricVariable:
    """The state of a user's metric (``Metric.add_variable``), held in NumPy: ``assign``,
    ``assign_add``, ``assign_sub``, ``numpy()``, and arithmetic on its value, like a Keras
    variable."""

    def __init__(self, shape: Any, initializer: Any, dtype: Any, name: str) -> None:
        shape = (
            () if shape is None else tuple(int(d) for d in np.atleast_1d(shape)) if np.ndim(shape) else (int(shape),)
        )
        if isinstance(initializer, str):
            fills = {"zeros": 0.0, "ones": 1.0}
            if initializer not in fills:
                raise ValueError(
                    f"Metric.add_variable: expected initializer 'zeros' or 'ones', received {initializer!r}"
                )
            initial = np.full(shape, fills[initializer], dtype=np.dtype(dtype))
        elif callable(initializer):
            initial = np.asarray(initializer(shape, dtype), dtype=np.dtype(dtype)).reshape(shape)
        else:
            initial = np.broadcast_to(np.asarray(initializer, dtype=np.dtype(dtype)), shape).copy()
        self.name, self._initial, self._value = name, initial, initial.copy()

    @property
    def shape(self) -> tuple:
        return self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def value(self) -> np.ndarray:
        return self._value

    def numpy(self) -> np.ndarray:
        return self._value.copy()

    def reset(self) -> None:
        self._value = self._initial.copy()

    def assign(self, value: Any) -> MetricVariable:
        self._value = np.broadcast_to(np.asarray(value, dtype=self._value.dtype), self._value.shape).copy()
        return self

    def assign_add(self, value: Any) -> MetricVariable:
        return self.assign(self._value + np.asarray(value))

    def assign_sub(self, value: Any) -> MetricVariable:
        return self.assign(self._value - np.asarray(value))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._value.astype(dtype) if dtype is not None else self._value.copy()

    def __float__(self) -> float:
        return float(self._value)

    def __repr__(self) -> str:
        return f"<MetricVariable {self.name} shape={self.shape} value={self._value}>"

    def __add__(self, other: Any) -> Any:
        return self._value + np.asarray(other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        return self._value - np.asarray(other)

    def __rsub__(self, other: Any) -> Any:
        return np.asarray(other) - self._value

    def __mul__(self, other: Any) -> Any:
        return self._value * np.asarray(other)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Any:
        return self._value / np.asarray(other)

    def __rtruediv__(self, other: Any) -> Any:
        return np.asarray(other) / self._value


class Metric:
    """Keras 3's ``Metric``: state that ``update_state`` accumulates and ``result`` reads;
    ``metric(y_true, y_pred)`` updates and returns the result."""

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        self.name = name or _losses._snake(type(self).__name__)
        self.dtype = dtype or "float32"
        self._variables: list[MetricVariable] = []
        # cnnx's own metrics keep their state in plain attributes that reset_state sets; a
        # user's subclass makes its state with add_variable after this returns, as in Keras.
        owner = next(c for c in type(self).__mro__ if "reset_state" in c.__dict__)
        if owner is not Metric and owner.__module__ == __name__:
            self.reset_state()

    def add_variable(
        self, shape: Any = (), initializer: Any = "zeros", dtype: Any = None, aggregation: str = "sum", name: Any = None
    ) -> MetricVariable:
        """Keras' ``Metric.add_variable``: a state variable that ``reset_state`` (by default)
        sets back to its initial value."""
        variable = MetricVariable(shape, initializer, dtype or self.dtype, name or f"variable_{len(self._variables)}")
        self._variables.append(variable)
        return variable

    def add_weight(
        self, name: Any = None, shape: Any = (), initializer: Any = "zeros", dtype: Any = None, aggregation: str = "sum"
    ) -> MetricVariable:
        """Keras' older spelling of ``add_variable`` (name first)."""
        return self.add_variable(shape=shape, initializer=initializer, dtype=dtype, aggregation=aggregation, name=name)

    @property
    def variables(self) -> list:
        return list(self._variables)

    def reset_state(self) -> None:
        """Sets every variable made with ``add_variable`` back to its initial value."""
        for variable in self._variables:
            variable.reset()

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


def _samplewise(values: Any, sample_weight: Any, reduce: Callable) -> tuple[np.ndarray, Any]:
    """Keras' reduce_to_samplewise_values: values reduced over the axes the weights lack, times
    the weights, then reduced to one value per sample."""
    values = _f64(values)
    w = None
    if sample_weight is not None:
        w = _f64(sample_weight)
        if values.ndim > w.ndim:
            values = reduce(values, axis=tuple(range(w.ndim, values.ndim)))
        w = np.broadcast_to(w, values.shape)
        values = values * w
        if w.ndim > 1:
            w = reduce(w, axis=tuple(range(1, w.ndim)))
    if values.ndim > 1:
        values = reduce(values, axis=tuple(range(1, values.ndim)))
    return values, w


class Mean(Metric):
    """The (weighted) mean of the values given to update_state."""

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        values, w = _samplewise(values, sample_weight, np.mean)
        self.total += float(np.sum(values))
        if w is not None:
            self.count += float(np.sum(w))
        else:
            self.count += float(values.shape[0]) if values.ndim >= 1 else 1.0

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0


class Sum(Metric):
    """The (weighted) sum of the values given to update_state."""

    def reset_state(self) -> None:
        self.total = 0.0

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        values, _ = _samplewise(values, sample_weight, np.sum)
        self.total += float(np.sum(values))

    def result(self) -> float:
        return self.total


class MeanMetricWrapper(Mean):
    """The weighted mean of ``fn(y_true, y_pred, **kwargs)`` (Keras' MeanMetricWrapper); what
    compile() makes of a plain metric function."""

    def __init__(self, fn: Callable, name: str | None = None, dtype: Any = None, **kwargs: Any) -> None:
        if not callable(fn):
            raise TypeError(f"MeanMetricWrapper: expected a function, received {fn!r}")
        self._fn = fn
        self._fn_kwargs = kwargs
        super().__init__(name=name or getattr(fn, "__name__", "mean_metric_wrapper"), dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        super().update_state(self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight)

    def get_config(self) -> dict:
        config = {**super().get_config(), **self._fn_kwargs}
        if type(self) is MeanMetricWrapper:
            config["fn"] = getattr(self._fn, "__name__", repr(self._fn))
        return config

    @classmethod
    def from_config(cls, config: dict) -> Metric:
        if cls is MeanMetricWrapper:
            raise ValueError("MeanMetricWrapper.from_config: the function must come from custom_objects")
        return cls(**config)


def _wrapper(fn: Callable, default_name: str, doc: str, **defaults: Any) -> type:
    """A MeanMetricWrapper subclass with Keras' constructor: (name, dtype, then fn's options)."""

    def __init__(self: Any, name: str = default_name, dtype: Any = None, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(unknown)}")
        MeanMetricWrapper.__init__(self, fn, name=name, dtype=dtype, **{**defaults, **kwargs})

    return __init__  # type: ignore[return-value]


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly."""

    __init__ = _wrapper(accuracy, "accuracy", "")


class BinaryAccuracy(MeanMetricWrapper):
    """How often y_pred > threshold matches a 0/1 y_true."""

    __init__ = _wrapper(binary_accuracy, "binary_accuracy", "", threshold=0.5)


class CategoricalAccuracy(MeanMetricWrapper):
    __init__ = _wrapper(categorical_accuracy, "categorical_accuracy", "")


class SparseCategoricalAccuracy(MeanMetricWrapper):
    __init__ = _wrapper(sparse_categorical_accuracy, "sparse_categorical_accuracy", "")


class TopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(
        self,
        k: int = 5,
        name: str = "sparse_top_k_categorical_accuracy",
        dtype: Any = None,
        from_sorted_ids: bool = False,
    ) -> None:
        super().__init__(
            sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k, from_sorted_ids=from_sorted_ids
        )


class MeanSquaredError(MeanMetricWrapper):
    __init__ = _wrapper(mean_squared_error, "mean_squared_error", "")


class MeanAbsoluteError(MeanMetricWrapper):
    __init__ = _wrapper(mean_absolute_error, "mean_absolute_error", "")


class MeanAbsolutePercentageError(MeanMetricWrapper):
    __init__ = _wrapper(mean_absolute_percentage_error, "mean_absolute_percentage_error", "")


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    __init__ = _wrapper(mean_squared_logarithmic_error, "mean_squared_logarithmic_error", "")


class CosineSimilarity(MeanMetricWrapper):
    __init__ = _wrapper(cosine_similarity, "cosine_similarity", "", axis=-1)


class LogCoshError(MeanMetricWrapper):
    __init__ = _wrapper(log_cosh, "logcosh", "")


class Hinge(MeanMetricWrapper):
    __init__ = _wrapper(hinge, "hinge", "")


class SquaredHinge(MeanMetricWrapper):
    __init__ = _wrapper(squared_hinge, "squared_hinge", "")


class CategoricalHinge(MeanMetricWrapper):
    __init__ = _wrapper(categorical_hinge, "categorical_hinge", "")


class KLDivergence(MeanMetricWrapper):
    __init__ = _wrapper(kl_divergence, "kl_divergence", "")


class Poisson(MeanMetricWrapper):
    __init__ = _wrapper(poisson, "poisson", "")


class CategoricalCrossentropy(MeanMetricWrapper):
    __init__ = _wrapper(
        categorical_crossentropy, "categorical_crossentropy", "", from_logits=False, label_smoothing=0.0, axis=-1
    )


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    __init__ = _wrapper(
        sparse_categorical_crossentropy, "sparse_categorical_crossentropy", "", from_logits=False, axis=-1
    )


class BinaryCrossentropy(MeanMetricWrapper):
    __init__ = _wrapper(binary_crossentropy, "binary_crossentropy", "", from_logits=False, label_smoothing=0.0)


class RootMeanSquaredError(Mean):
    """sqrt of the (weighted) mean squared error over every value."""

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        t, p = _same_rank(_f64(y_true), _f64(y_pred))
        super().update_state(np.square(p - t), sample_weight)

    def result(self) -> float:
        return float(np.sqrt(super().result()))


# -- confusion-matrix metrics ------------------------------------------------------------------------
def _thresholds(thresholds: Any, default: float) -> list[float]:
    if thresholds is None:
        return [default]
    values = [float(t) for t in np.atleast_1d(np.asarray(thresholds, dtype=np.float64))]
    if not all(0.0 <= t <= 1.0 for t in values):
        raise ValueError(f"Threshold values must be in [0, 1]. Received: thresholds={thresholds}")
    return values


def _confusion(
    y_true: Any,
    y_pred: Any,
    sample_weight: Any,
    thresholds: np.ndarray,
    top_k: int | None = None,
    class_id: int | None = None,
    multi_label: bool = False,
    label_weights: Any = None,
) -> dict[str, np.ndarray]:
    """Keras' update_confusion_matrix_variables: weighted counts of each threshold's
    predictions (y_pred > threshold) against the labels (y_true != 0); per label with
    multi_label, else over every value."""
    t, p = _same_rank(_f64(y_true), _f64(y_pred))
    if t.shape != p.shape:
        t = np.broadcast_to(t, p.shape)
    w = np.ones_like(p)
    if sample_weight is not None:
        sw = _f64(sample_weight)
        if sw.ndim == 1 and p.ndim > 1 and sw.shape[0] == p.shape[0]:
            sw = sw.reshape((-1,) + (1,) * (p.ndim - 1))
        w = w * np.broadcast_to(sw, p.shape)
    if top_k is not None:  # predictions outside each row's top k count as negative
        order = np.argsort(-p, axis=-1, kind="stable")
        keep = np.zeros(p.shape, bool)
        np.put_along_axis(keep, order[..., :top_k], True, axis=-1)
        p = np.where(keep, p, -1e10)
    if class_id is not None:
        t, p, w = t[..., class_id], p[..., class_id], w[..., class_id]
    if label_weights is not None and not multi_label:
        w = w * np.broadcast_to(_f64(label_weights), w.shape)
    if multi_label:
        labels = p.shape[-1] if p.ndim else 1
        t, p, w = t.reshape(-1, labels), p.reshape(-1, labels), w.reshape(-1, labels)
    else:
        t, p, w = t.reshape(-1, 1), p.reshape(-1, 1), w.reshape(-1, 1)
    # Sorted thresholds: a value is above the first `searchsorted(..., "left")` of them (those
    # strictly below it), so one weighted histogram per label and a reversed cumulative sum give
    # every threshold's counts in O(values log thresholds) (AUC has 200 thresholds).
    order = np.argsort(thresholds, kind="stable")
    sorted_thr = thresholds[order]
    n_thr, labels = len(thresholds), p.shape[1]
    above = np.searchsorted(sorted_thr, p, side="left") + (n_thr + 1) * np.arange(labels)
    pos = t != 0

    def hist(mask: np.ndarray) -> np.ndarray:
        h = np.bincount(above[mask], weights=w[mask], minlength=(n_thr + 1) * labels)
        h = h.reshape(labels, n_thr + 1).T  # [count of thresholds below the value, label]
        return np.cumsum(h[::-1], axis=0)[::-1]  # [i]: weight of values above i thresholds or more

    hp, hn = hist(pos), hist(~pos)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(n_thr)
    tp, fp = hp[1:][inverse], hn[1:][inverse]
    return {"tp": tp, "fp": fp, "tn": hn[0] - fp, "fn": hp[0] - tp}


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1.0), 0.0)


def _scalar(values: np.ndarray) -> Any:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    return float(values[0]) if values.size == 1 else values


class _Confusion(Metric):
    _counts: tuple = ()

    def __init__(
        self,
        thresholds: Any = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        # Keras: with top_k and no thresholds, every prediction in the top k counts as positive.
        default = 0.5 if top_k is None else -1e10
        self.thresholds = np.asarray(_thresholds(thresholds, default), dtype=np.float64)
        super().__init__(name=name, dtype=dtype)

    def reset_state(self) -> None:
        for c in ("tp", "fp", "tn", "fn"):
            setattr(self, c, np.zeros(len(self.thresholds)))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        counts = _confusion(y_true, y_pred, sample_weight, self.thresholds, self.top_k, self.class_id)
        for c, v in counts.items():
            setattr(self, c, getattr(self, c) + v[:, 0])

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


class Precision(_Confusion):
    """tp / (tp + fp) at each threshold (0.5 by default)."""

    def result(self) -> Any:
        return _scalar(_divide(self.tp, self.tp + self.fp))


class Recall(_Confusion):
    """tp / (tp + fn) at each threshold (0.5 by default)."""

    def result(self) -> Any:
        return _scalar(_divide(self.tp, self.tp + self.fn))


class _Count(_Confusion):
    _which = ""

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(thresholds=thresholds, name=name, dtype=dtype)

    def result(self) -> Any:
        return _scalar(getattr(self, self._which))

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "thresholds": self.init_thresholds}


class TruePositives(_Count):
    _which = "tp"


class FalsePositives(_Count):
    _which = "fp"


class TrueNegatives(_Count):
    _which = "tn"


class FalseNegatives(_Count):
    _which = "fn"


class AUC(Metric):
    """Area under the ROC or PR curve from ``num_thresholds`` thresholds (Keras' AUC: evenly spaced
    in (0, 1) plus -1e-7 and 1 + 1e-7; trapezoids for ROC, Davis & Goadrich's interpolation for PR)."""

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        dtype: Any = None,
        thresholds: Any = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights: Any = None,
        from_logits: bool = False,
    ) -> None:
        curve = str(curve).upper()
        if curve not in ("ROC", "PR"):
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are ["ROC", "PR"]')
        summation_method = str(summation_method).lower()
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(
                f'Invalid AUC summation method value: "{summation_method}". '
                'Expected values are ["interpolation", "majoring", "minoring"]'
            )
        if thresholds is not None:
            inner = sorted(_thresholds(thresholds, 0.5))
            self.num_thresholds = len(inner) + 2
        else:
            if num_thresholds <= 1:
                raise ValueError(
                    f"Argument `num_thresholds` must be an integer > 1. Received: num_thresholds={num_thresholds}"
                )
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) * 1.0 / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
        self._init_from_thresholds = thresholds is not None
        self.thresholds = np.asarray([0.0 - EPSILON, *inner, 1.0 + EPSILON], dtype=np.float64)
        self.curve = curve
        self.summation_method = summation_method
        self.multi_label = bool(multi_label)
        self.num_labels = num_labels
        self.label_weights = None if label_weights is None else _f64(label_weights)
        self.from_logits = bool(from_logits)
        super().__init__(name=name, dtype=dtype)

    def reset_state(self) -> None:
        labels = self.num_labels if (self.multi_label and self.num_labels) else 1
        for c in ("tp", "fp", "tn", "fn"):
            setattr(self, c, np.zeros((self.num_thresholds, labels)))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        p = _f64(y_pred)
        if self.from_logits:
            p = 1.0 / (1.0 + np.exp(-p))
        counts = _confusion(
            y_true, p, sample_weight, self.thresholds, multi_label=self.multi_label, label_weights=self.label_weights
        )
        for c, v in counts.items():
            old = getattr(self, c)
            setattr(self, c, (old if old.shape == v.shape else np.zeros_like(v)) + v)

    def _interpolate_pr_auc(self) -> np.ndarray:
        tp, fp, fn = self.tp, self.fp, self.fn
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        ratio = np.where((p[:-1] > 0) & (p[1:] > 0), _divide(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore"):
            log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))
        return np.sum(_divide(slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0)), axis=0)

    def result(self) -> float:
        if self.curve == "PR" and self.summation_method == "interpolation":
            by_label = self._interpolate_pr_auc()
        else:
            recall = _divide(self.tp, self.tp + self.fn)
            if self.curve == "ROC":
                x, y = _divide(self.fp, self.fp + self.tn), recall
            else:
                x, y = recall, _divide(self.tp, self.tp + self.fp)
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / 2.0
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:-1], y[1:])
            else:
                heights = np.maximum(y[:-1], y[1:])
            by_label = np.sum((x[:-1] - x[1:]) * heights, axis=0)
        if not self.multi_label:
            return float(by_label[0])
        if self.label_weights is None:
            return float(np.mean(by_label))
        return float(_divide(np.sum(by_label * self.label_weights), np.sum(self.label_weights)))

    def get_config(self) -> dict:
        config = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
            "from_logits": self.from_logits,
        }
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1].tolist()
        return config


# -- lookup ---------------------------------------------------------------------------------------------
_CLASSES = {
    cls.__name__: cls
    for cls in (
        Mean,
        Sum,
        Accuracy,
        BinaryAccuracy,
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        MeanSquaredError,
        MeanAbsoluteError,
        RootMeanSquaredError,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        CosineSimilarity,
        LogCoshError,
        Hinge,
        SquaredHinge,
        CategoricalHinge,
        KLDivergence,
        Poisson,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
        BinaryCrossentropy,
        TruePositives,
        FalsePositives,
        TrueNegatives,
        FalseNegatives,
        Precision,
        Recall,
        AUC,
    )
}
# Keras 3's string names (keras.metrics.get): snake_case class names and function names, plus
# the short aliases. A function name gives the function (wrapped in a MeanMetricWrapper named as
# written), a class name an instance.
_BY_NAME: dict[str, Any] = {_losses._snake(name): cls for name, cls in _CLASSES.items()}
_BY_NAME.update(
    {
        fn.__name__: fn
        for fn in (
            accuracy,
            binary_accuracy,
            categorical_accuracy,
            sparse_categorical_accuracy,
            top_k_categorical_accuracy,
            sparse_top_k_categorical_accuracy,
            mean_squared_error,
            mean_absolute_error,
            mean_absolute_percentage_error,
            mean_squared_logarithmic_error,
            binary_crossentropy,
            categorical_crossentropy,
            sparse_categorical_crossentropy,
            hinge,
            squared_hinge,
            categorical_hinge,
            kl_divergence,
            poisson,
            log_cosh,
        )
    }
)
_BY_NAME.update(
    {
        "acc": accuracy,
        "mse": mean_squared_error,
        "mae": mean_absolute_error,
        "mape": mean_absolute_percentage_error,
        "msle": mean_squared_logarithmic_error,
        "bce": binary_crossentropy,
        "auc": AUC,
        "logcosh": log_cosh,
        "rmse": RootMeanSquaredError,
        "kld": kl_divergence,
    }
)
_BY_NAME["auc"] = AUC


def get(identifier: Any) -> Any:
    """A metric object, or a metric function, from a Keras name, a Metric or class, or a function.
    Strings are looked up case-insensitively ("mae", "precision", "top_k_categorical_accuracy")."""
    if isinstance(identifier, Metric) or (callable(identifier) and not inspect.isclass(identifier)):
        return identifier
    if inspect.isclass(identifier) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        obj = _BY_NAME.get(identifier.lower()) or _CLASSES.get(identifier)
        if obj is None:
            raise ValueError(
                f"Could not interpret metric identifier: {identifier!r}; expected one of {sorted(_BY_NAME)}, "
                "a cnnx.metrics.Metric or a function fn(y_true, y_pred) -> per-sample values"
            )
        return obj() if inspect.isclass(obj) else obj
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")


def resolve(identifier: Any) -> Metric:
    """What compile() makes of one entry of ``metrics=[...]``: a Metric named as Keras 3 names
    its log key (the string as given, a function's __name__, a Metric's own name)."""
    obj = get(identifier)
    if isinstance(obj, Metric):
        if isinstance(identifier, str):
            obj.name = identifier
        return obj
    name = identifier if isinstance(identifier, str) else getattr(obj, "__name__", "metric")
    return MeanMetricWrapper(obj, name=name)


def serialize(metric: Any) -> Any:
    """A compile metrics entry as the model file holds it: strings as given; a cnnx metric as
    {"class_name", "config"}; a custom metric (class or function) also with "registered_name", the
    key load_model's custom_objects must hold."""
    if isinstance(metric, str):
        return metric
    if isinstance(metric, Metric):
        cls = type(metric).__name__
        if _CLASSES.get(cls) is type(metric):
            return {"class_name": cls, "config": metric.get_config()}
        if type(metric) is MeanMetricWrapper:
            fn = metric._fn
            if fn in _BY_NAME.values():
                return (
                    fn.__name__
                    if metric.name == fn.__name__
                    else {
                        "class_name": "function",
                        "config": {"name": fn.__name__},
                        "registered_name": None,
                        "log_name": metric.name,
                    }
                )
            return _custom_function(fn)
        return {"class_name": cls, "config": metric.get_config(), "registered_name": cls}
    if callable(metric):
        if metric in _BY_NAME.values():
            return metric.__name__
        return _custom_function(metric)
    raise TypeError(f"cannot save the metric {metric!r}")


def _custom_function(fn: Callable) -> dict:
    name = getattr(fn, "__name__", None)
    if not name or name == "<lambda>":
        raise ValueError(
            f"save: the metric {fn!r} is an anonymous function: cnnx cannot name it in the file; use a named "
            "function (then load_model(..., custom_objects={name: fn}))"
        )
    return {"class_name": "function", "config": {"name": name}, "registered_name": name}


def deserialize(entry: Any, custom_objects: dict | None = None) -> Any:
    """The inverse of serialize: what compile(metrics=[...]) is given again on load."""
    if isinstance(entry, str):
        return entry
    cls_name = str(entry.get("class_name"))
    config = dict(entry.get("config") or {})
    registered = entry.get("registered_name")
    if cls_name == "function" and registered is None:  # one of cnnx's functions, under another name
        return MeanMetricWrapper(_BY_NAME[config["name"]], name=entry.get("log_name") or config["name"])
    if registered is not None:
        obj = dict(custom_objects or {}).get(registered)
        if obj is None:
            raise ValueError(
                f"Could not locate the custom metric {registered!r}: the model was compiled with a metric written "
                f"in Python. Pass load_model(..., custom_objects={{{registered!r}: ...}}) or load it with compile=False"
            )
        if inspect.isclass(obj) and issubclass(obj, Metric):
            return obj.from_config(config)
        return obj
    cls = _CLASSES.get(cls_name)
    if cls is None:
        raise ValueError(f"unknown metric class {cls_name!r}")
    return cls.from_config(config)
