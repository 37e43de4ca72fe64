"""Losses with Keras 3's names, arguments and reduction.

Built-in losses (CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
MeanSquaredError, MeanAbsoluteError) are computed, with their gradients, in the core; one that
ends the model's own activation (softmax for cross-entropy, sigmoid for binary cross-entropy) is
differentiated through it in one exact step.

Every other loss is written in Python (NumPy) and runs inside the core's training step (the core
calls back into Python for each batch, see benchmarks/python_loss.py for the cost):
  - a ``Loss`` subclass implementing ``call(y_true, y_pred)`` -> per-sample values (shape
    ``(batch,)`` or ``(batch, ...)``) and, for training, ``gradient(y_true, y_pred)`` -> the
    derivative of each sample's value(s), summed, with respect to ``y_pred`` (y_pred's shape). The
    reduction, sample weights and the division by the batch are applied by the base class;
  - a plain function ``loss(y_true, y_pred)`` -> per-sample values, as in Keras; or a subclass
    without ``gradient``. Their gradient is computed numerically: central differences in float64,
    perturbing one output coordinate of every sample at once (a sample's loss depends only on its
    own prediction), so a batch costs 2 K + 1 calls for K outputs per sample. That keeps Keras code
    working unchanged, accurate to ~1e-8 relative for smooth losses; for more than 256 outputs per
    sample it would be too slow and a TypeError asks for ``gradient``.
The Python losses here (Huber, LogCosh, KLDivergence, ...) implement ``gradient`` exactly.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import numpy as np

from . import _core
from .ops import Tensor

__all__ = [
    "Loss",
    "LossFunctionWrapper",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryCrossentropy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "Huber",
    "LogCosh",
    "KLDivergence",
    "Poisson",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "CosineSimilarity",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_crossentropy",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "huber",
    "log_cosh",
    "kl_divergence",
    "poisson",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "cosine_similarity",
    "mse",
    "mae",
    "mape",
    "msle",
    "get",
    "serialize",
    "deserialize",
    "from_config",
]

EPSILON = 1e-7  # keras.config.epsilon()
_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)
# Outputs per sample up to which a loss without `gradient` is differentiated numerically.
MAX_NUMERIC_GRADIENT_OUTPUTS = 256


def _returns_tensor(fn: Callable) -> Callable:
    """The function forms return, as Keras' ops do, a tensor with ``.numpy()`` (cnnx.ops.Tensor:
    an ndarray), e.g. ``keras.losses.mean_squared_error(y, p).numpy()``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return np.asarray(fn(*args, **kwargs)).view(Tensor)

    return wrapper


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def same_rank(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras' squeeze_or_expand_to_same_rank: when the ranks differ by one and the larger ends
    in a 1, a rank-1 array gains that axis, otherwise the other loses it."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        return (a, b[..., None]) if b.ndim == 1 else (a[..., 0], b)
    if b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        return (a[..., None], b) if a.ndim == 1 else (a, b[..., 0])
    return a, b


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    return same_rank(_f64(y_true), _f64(y_pred))


# -- function forms (per-sample values, as keras.losses.*) --------------------------------------
@_returns_tensor
def mean_squared_error(y_true: Any, y_pred: Any) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    return np.mean(np.square(p - t), axis=-1)


@_returns_tensor
def mean_absolute_error(y_true: Any, y_pred: Any) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    return np.mean(np.abs(p - t), axis=-1)


@_returns_tensor
def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    return 100.0 * np.mean(np.abs((t - p) / np.maximum(np.abs(t), EPSILON)), axis=-1)


@_returns_tensor
def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    return np.mean(np.square(np.log1p(np.maximum(p, EPSILON)) - np.log1p(np.maximum(t, EPSILON))), axis=-1)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


@_returns_tensor
def categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1
) -> np.ndarray:
    """-sum(y_true * log(y_pred)) over `axis`; probabilities are renormalised and clipped to
    [1e-7, 1 - 1e-7] as in Keras; one-hot targets are mixed with the uniform distribution by
    label_smoothing."""
    t, p = _f64(y_true), _f64(y_pred)
    if t.shape != p.shape:
        raise ValueError(
            f"categorical_crossentropy: expected y_true and y_pred of the same shape, received {t.shape} and {p.shape}"
        )
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + label_smoothing / t.shape[axis]
    if from_logits:
        return -np.sum(t * _log_softmax(p, axis), axis=axis)
    p = p / np.sum(p, axis=axis, keepdims=True)
    return -np.sum(t * np.log(np.clip(p, EPSILON, 1.0 - EPSILON)), axis=axis)


@_returns_tensor
def sparse_categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, ignore_class: int | None = None, axis: int = -1
) -> np.ndarray:
    """categorical_crossentropy of integer labels (one per row of y_pred's last axis)."""
    p = _f64(y_pred)
    t = _f64(y_true)
    if t.ndim == p.ndim and t.shape[-1] == 1:
        t = t[..., 0]
    if t.shape != p.shape[:-1]:
        raise ValueError(
            f"sparse_categorical_crossentropy: expected y_true of shape {p.shape[:-1]} for y_pred of shape "
            f"{p.shape}, received {t.shape}"
        )
    labels = t.astype(np.int64)
    valid = np.ones(labels.shape, bool) if ignore_class is None else labels != ignore_class
    safe = np.where(valid, labels, 0)
    if ((safe < 0) | (safe >= p.shape[-1])).any():
        raise ValueError(f"sparse_categorical_crossentropy: expected labels in [0, {p.shape[-1] - 1}]")
    logp = _log_softmax(p, -1) if from_logits else np.log(np.clip(p / p.sum(-1, keepdims=True), EPSILON, 1 - EPSILON))
    out = -np.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    return np.where(valid, out, 0.0)


@_returns_tensor
def binary_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1
) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        e = np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))
    else:
        p = np.clip(p, EPSILON, 1.0 - EPSILON)
        e = -(t * np.log(p) + (1.0 - t) * np.log(1.0 - p))
    return np.mean(e, axis=axis)


@_returns_tensor
def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    a = np.abs(p - t)
    return np.mean(np.where(a <= delta, 0.5 * a * a, delta * a - 0.5 * delta * delta), axis=-1)


@_returns_tensor
def log_cosh(y_true: Any, y_pred: Any) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    x = p - t
    return np.mean(x + np.logaddexp(0.0, -2.0 * x) - np.log(2.0), axis=-1)


@_returns_tensor
def kl_divergence(y_true: Any, y_pred: Any) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    t, p = np.clip(t, EPSILON, 1.0), np.clip(p, EPSILON, 1.0)
    return np.sum(t * np.log(t / p), axis=-1)


@_returns_tensor
def poisson(y_true: Any, y_pred: Any) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    return np.mean(p - t * np.log(p + EPSILON), axis=-1)


def _signed(t: np.ndarray) -> np.ndarray:
    """Hinge targets: 0/1 labels become -1/1 (Keras converts them when they are all 0 or 1)."""
    return 2.0 * t - 1.0 if np.all((t == 0) | (t == 1)) else t


@_returns_tensor
def hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    return np.mean(np.maximum(1.0 - _signed(t) * p, 0.0), axis=-1)


@_returns_tensor
def squared_hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    return np.mean(np.square(np.maximum(1.0 - _signed(t) * p, 0.0)), axis=-1)


@_returns_tensor
def categorical_hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    t, p = _f64(y_true), _f64(y_pred)
    pos = np.sum(t * p, axis=-1)
    neg = np.max((1.0 - t) * p, axis=-1)
    return np.maximum(neg - pos + 1.0, 0.0)


def _l2_normalize(x: np.ndarray, axis: int) -> np.ndarray:
    return x / np.sqrt(np.maximum(np.sum(x * x, axis=axis, keepdims=True), 1e-12))


@_returns_tensor
def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    return -np.sum(_l2_normalize(t, axis) * _l2_normalize(p, axis), axis=axis)


# -- the Loss protocol --------------------------------------------------------------------------
def _check_reduction(reduction: Any, who: str) -> Any:
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"Invalid value for argument `reduction`. Expected one of {list(_REDUCTIONS)}. "
            f"Received: reduction={reduction!r} ({who})"
        )
    return reduction


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _reduce(values: np.ndarray, sample_weight: Any, reduction: Any) -> Any:
    """Keras' reduce_weighted_values: weights broadcast over each sample's values, then
    sum / number of values ("sum_over_batch_size", "mean"), sum / sum of weights
    ("mean_with_sample_weight"), the sum ("sum") or the weighted values ("none")."""
    values = _f64(values)
    w = None
    if sample_weight is not None:
        w = _f64(sample_weight)
        if values.ndim and w.ndim == 1 and w.shape[0] == values.shape[0]:
            w = w.reshape(w.shape + (1,) * (values.ndim - 1))
        values = values * w
    if reduction in (None, "none"):
        return values
    total = float(np.sum(values))
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and w is not None:
        divisor = float(np.sum(np.broadcast_to(w, values.shape)))
    else:
        divisor = float(values.size)
    return total / divisor if divisor else 0.0


class Loss:
    """Keras 3's ``Loss``: ``name``, ``reduction`` and ``dtype``; ``loss(y_true, y_pred,
    sample_weight=None)`` applies ``call`` (per-sample values, to implement in a subclass), the
    sample weights and the reduction. For training a subclass may also implement
    ``gradient(y_true, y_pred)`` (see the module docstring)."""

    # Set by the built-in classes: the core object that computes the loss in the step.
    _core: Any = None
    # A 1-D y_pred is one prediction per sample (a column) for element-wise losses, and a single
    # sample's class scores (a row) for the cross-entropies (built-ins' __call__).
    _vector_is_column = False

    def __init__(self, name: str | None = None, reduction: Any = "sum_over_batch_size", dtype: Any = None) -> None:
        self.name = name or _snake(type(self).__name__)
        self.reduction = _check_reduction(reduction, type(self).__name__)
        self.dtype = dtype

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The reduced loss as Keras returns it: a float32 scalar (a 0-d ``cnnx.ops.Tensor``,
        so ``loss_fn(y, p).numpy()`` works as in the TensorFlow quickstart)."""
        if type(self) in _BUILTIN and self.reduction == "sum_over_batch_size":
            value = self._core_call(self._core, y_true, y_pred, sample_weight)
        else:
            value = _reduce(self.call(y_true, y_pred), sample_weight, self.reduction)
        return np.asarray(value, dtype=np.float32).view(Tensor)

    def _core_call(self, core: Any, y_true: Any, y_pred: Any, sample_weight: Any) -> float:
        y_pred = np.ascontiguousarray(y_pred, dtype=np.float32)
        if y_pred.ndim == 1:
            y_pred = y_pred[:, None] if self._vector_is_column else y_pred[None, :]
        rows = y_pred.reshape(-1, y_pred.shape[-1])
        y_true = np.ascontiguousarray(y_true, dtype=np.float32)
        w = None
        if sample_weight is not None:
            per = rows.shape[0] // max(len(y_pred), 1)
            w = np.repeat(np.ascontiguousarray(sample_weight, dtype=np.float32).reshape(-1), per)
        return float(core.compute(rows, y_true, False, w)[0])

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}: a Loss subclass must implement call(y_true, y_pred)")

    # Subclasses may define gradient(y_true, y_pred); without it training differentiates call()
    # numerically (see the module docstring).
    gradient: Callable[..., Any] | None = None

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


class LossFunctionWrapper(Loss):
    """A function ``fn(y_true, y_pred, **kwargs)`` -> per-sample values as a ``Loss`` (Keras 3's
    ``LossFunctionWrapper``); what ``compile(loss=my_function)`` makes of a plain function."""

    def __init__(
        self, fn: Callable, reduction: Any = "sum_over_batch_size", name: str | None = None, dtype: Any = None, **kwargs
    ):
        if not callable(fn):
            raise TypeError(f"LossFunctionWrapper: expected a function, received {fn!r}")
        super().__init__(name=name or getattr(fn, "__name__", "loss"), reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "fn": getattr(self.fn, "__name__", repr(self.fn)), **self._fn_kwargs}


def _smoothing(value: Any, who: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{who}: expected label_smoothing in [0, 1], received {value!r}")
    return float(value)


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot labels (``keras.losses.CategoricalCrossentropy``)."""

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: Any = "sum_over_batch_size",
        name: str = "categorical_crossentropy",
        dtype: Any = None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if axis != -1:
            raise ValueError(
                f"CategoricalCrossentropy: only axis=-1 (the last axis) is supported, received axis={axis}"
            )
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing, "CategoricalCrossentropy")
        self.axis = axis
        self._core = _core.make_crossentropy(False, self.from_logits, self.label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return categorical_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": self.axis,
        }


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer labels (``keras.losses.SparseCategoricalCrossentropy``)."""

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        reduction: Any = "sum_over_batch_size",
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if ignore_class is not None:
            raise ValueError("SparseCategoricalCrossentropy: ignore_class is not supported by cnnx's core loss")
        self.from_logits = bool(from_logits)
        self.ignore_class = ignore_class
        self._core = _core.make_crossentropy(True, self.from_logits)

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return sparse_categorical_crossentropy(y_true, y_pred, self.from_logits)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_class": self.ignore_class}


class BinaryCrossentropy(Loss):
    """Cross-entropy of 0/1 targets against sigmoid outputs (``keras.losses.BinaryCrossentropy``),
    e.g. one output unit for good vs defective."""

    _vector_is_column = True

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: Any = "sum_over_batch_size",
        name: str = "binary_crossentropy",
        dtype: Any = None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if axis != -1:
            raise ValueError(f"BinaryCrossentropy: only axis=-1 (the last axis) is supported, received axis={axis}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing, "BinaryCrossentropy")
        self.axis = axis
        self._core = _core.make_binary_crossentropy(self.from_logits, self.label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return binary_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": self.axis,
        }


class MeanSquaredError(Loss):
    """Mean of the squared error over the last axis (``keras.losses.MeanSquaredError``)."""

    _vector_is_column = True

    def __init__(self, reduction: Any = "sum_over_batch_size", name: str = "mean_squared_error", dtype: Any = None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._core = _core.make_mean_squared_error()

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return mean_squared_error(y_true, y_pred)


class MeanAbsoluteError(Loss):
    """Mean of the absolute error over the last axis (``keras.losses.MeanAbsoluteError``)."""

    _vector_is_column = True

    def __init__(self, reduction: Any = "sum_over_batch_size", name: str = "mean_absolute_error", dtype: Any = None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._core = _core.make_mean_absolute_error()

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return mean_absolute_error(y_true, y_pred)


# -- Python losses with exact gradients ----------------------------------------------------------
class _Elementwise(Loss):
    """mean over the last axis of an element-wise term; gradient = d term / d y_pred / K."""

    _default_name = ""

    def __init__(self, reduction: Any = "sum_over_batch_size", name: str | None = None, dtype: Any = None):
        super().__init__(name=name or self._default_name, reduction=reduction, dtype=dtype)

    def gradient(self, y_true: Any, y_pred: Any) -> np.ndarray:
        t, p = _pair(y_true, y_pred)
        return np.broadcast_to(self._dterm(t, p), p.shape) / p.shape[-1]


class MeanAbsolutePercentageError(_Elementwise):
    _default_name = "mean_absolute_percentage_error"

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return mean_absolute_percentage_error(y_true, y_pred)

    def _dterm(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return -100.0 * np.sign(t - p) / np.maximum(np.abs(t), EPSILON)


class MeanSquaredLogarithmicError(_Elementwise):
    _default_name = "mean_squared_logarithmic_error"

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return mean_squared_logarithmic_error(y_true, y_pred)

    def _dterm(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        d = np.log1p(np.maximum(p, EPSILON)) - np.log1p(np.maximum(t, EPSILON))
        return np.where(p > EPSILON, 2.0 * d / (1.0 + p), 0.0)


class Huber(_Elementwise):
    def __init__(
        self, delta: float = 1.0, reduction: Any = "sum_over_batch_size", name: str = "huber_loss", dtype: Any = None
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.delta = float(delta)

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return huber(y_true, y_pred, self.delta)

    def _dterm(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.clip(p - t, -self.delta, self.delta)

    def get_config(self) -> dict:
        return {**super().get_config(), "delta": self.delta}


class LogCosh(_Elementwise):
    _default_name = "log_cosh"

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return log_cosh(y_true, y_pred)

    def _dterm(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.tanh(p - t)


class Poisson(_Elementwise):
    _default_name = "poisson"

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return poisson(y_true, y_pred)

    def _dterm(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return 1.0 - t / (p + EPSILON)


class Hinge(_Elementwise):
    _default_name = "hinge"

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return hinge(y_true, y_pred)

    def _dterm(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        s = _signed(t)
        return np.where(1.0 - s * p > 0, -s, 0.0)


class SquaredHinge(_Elementwise):
    _default_name = "squared_hinge"

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return squared_hinge(y_true, y_pred)

    def _dterm(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        s = _signed(t)
        return -2.0 * s * np.maximum(1.0 - s * p, 0.0)


class KLDivergence(Loss):
    def __init__(self, reduction: Any = "sum_over_batch_size", name: str = "kl_divergence", dtype: Any = None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return kl_divergence(y_true, y_pred)

    def gradient(self, y_true: Any, y_pred: Any) -> np.ndarray:
        t, p = _pair(y_true, y_pred)
        t = np.clip(t, EPSILON, 1.0)
        return np.where((p > EPSILON) & (p < 1.0), -t / np.clip(p, EPSILON, 1.0), 0.0)


class CategoricalHinge(Loss):
    def __init__(self, reduction: Any = "sum_over_batch_size", name: str = "categorical_hinge", dtype: Any = None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return categorical_hinge(y_true, y_pred)

    def gradient(self, y_true: Any, y_pred: Any) -> np.ndarray:
        t, p = _f64(y_true), _f64(y_pred)
        active = (categorical_hinge(t, p) > 0)[..., None]
        neg = (1.0 - t) * p
        top = np.zeros_like(p)
        np.put_along_axis(top, np.argmax(neg, axis=-1)[..., None], 1.0, axis=-1)
        return np.where(active, top * (1.0 - t) - t, 0.0)


class CosineSimilarity(Loss):
    def __init__(
        self, axis: int = -1, reduction: Any = "sum_over_batch_size", name: str = "cosine_similarity", dtype: Any = None
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.axis = axis

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return cosine_similarity(y_true, y_pred, self.axis)

    def gradient(self, y_true: Any, y_pred: Any) -> np.ndarray:
        t, p = _pair(y_true, y_pred)
        tn = _l2_normalize(t, self.axis)
        sq = np.sum(p * p, axis=self.axis, keepdims=True)
        norm = np.sqrt(np.maximum(sq, 1e-12))
        dot = np.sum(tn * p, axis=self.axis, keepdims=True)
        # d/dp of -(tn . p) / |p|; below the clamp |p| is a constant
        return -(tn / norm - np.where(sq > 1e-12, dot * p / norm**3, 0.0))

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


# -- lookup ---------------------------------------------------------------------------------------
_BUILTIN = (
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    BinaryCrossentropy,
    MeanSquaredError,
    MeanAbsoluteError,
)
_CLASSES = {
    cls.__name__: cls
    for cls in (
        *_BUILTIN,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        Huber,
        LogCosh,
        KLDivergence,
        Poisson,
        Hinge,
        SquaredHinge,
        CategoricalHinge,
        CosineSimilarity,
    )
}
_FUNCTIONS = {
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    binary_crossentropy: BinaryCrossentropy,
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError,
    huber: Huber,
    log_cosh: LogCosh,
    kl_divergence: KLDivergence,
    poisson: Poisson,
    hinge: Hinge,
    squared_hinge: SquaredHinge,
    categorical_hinge: CategoricalHinge,
    cosine_similarity: CosineSimilarity,
}
_BY_NAME = {fn.__name__: cls for fn, cls in _FUNCTIONS.items()}
_BY_NAME.update({"mse": MeanSquaredError, "mae": MeanAbsoluteError, "mape": MeanAbsolutePercentageError})
_BY_NAME.update({"msle": MeanSquaredLogarithmicError, "kld": KLDivergence, "huber_loss": Huber, "logcosh": LogCosh})
_BY_NAME.update({"bce": BinaryCrossentropy, "kullback_leibler_divergence": KLDivergence})


def get(identifier: Any) -> Loss:
    """A loss from a Keras name ("mse", "categorical_crossentropy", ...), a Loss instance or
    class, or a function ``fn(y_true, y_pred)`` -> per-sample values (cnnx.losses' own functions
    map to their classes, so the core computes the built-in ones)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(
                f"Could not interpret loss identifier: expected one of {sorted(_BY_NAME)} or a Loss "
                f"instance, received loss={identifier!r}"
            )
        return cls()
    if inspect.isclass(identifier) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        cls = _FUNCTIONS.get(identifier)
        return cls() if cls is not None else LossFunctionWrapper(identifier)
    raise TypeError(
        f"Could not interpret loss identifier: expected a string, a Loss or a function, received {identifier!r}"
    )


def serialize(loss: Loss) -> dict:
    """``{"class_name", "config"}``; a loss that is not cnnx's own also records
    ``"registered_name"``, the key load_model's custom_objects must hold (as in Keras)."""
    if isinstance(loss, LossFunctionWrapper):
        if loss.fn in _FUNCTIONS:
            return {"class_name": _FUNCTIONS[loss.fn].__name__, "config": {}}
        name = getattr(loss.fn, "__name__", None)
        if not name or name == "<lambda>":
            raise ValueError(
                f"save: the loss {loss.fn!r} is an anonymous function: cnnx cannot name it in the file. "
                "Use a named function (then load_model(..., custom_objects={name: fn})) or compile the model "
                "with a cnnx loss before saving"
            )
        return {"class_name": "function", "config": {"name": name}, "registered_name": name}
    cls_name = type(loss).__name__
    entry = {"class_name": cls_name, "config": loss.get_config()}
    if _CLASSES.get(cls_name) is not type(loss):
        entry["registered_name"] = cls_name
    return entry


def deserialize(entry: dict, custom_objects: dict | None = None) -> Loss:
    """The inverse of serialize; custom losses come from ``custom_objects`` (name -> class or
    function), as with Keras' load_model."""
    cls_name = str(entry.get("class_name"))
    config = dict(entry.get("config") or {})
    custom = dict(custom_objects or {})
    registered = entry.get("registered_name")
    if registered is not None or cls_name not in _CLASSES:
        key = registered if registered is not None else cls_name
        obj = custom.get(key)
        if obj is None:
            raise ValueError(
                f"Could not locate the custom loss {key!r}: the model was compiled with a loss written in Python. "
                f"Pass load_model(..., custom_objects={{{key!r}: ...}}) or load it with compile=False"
            )
        if inspect.isclass(obj) and issubclass(obj, Loss):
            return obj.from_config(config)
        if callable(obj):
            return LossFunctionWrapper(obj)
        raise TypeError(f"custom_objects[{key!r}]: expected a Loss subclass or a function, received {obj!r}")
    cls = _CLASSES[cls_name]
    return cls.from_config(config)


def from_config(entry: dict) -> Loss:
    """A loss from ``{"class_name": ..., "config": get_config()}``."""
    return deserialize(entry)


# -- running a Python loss in the core's step ------------------------------------------------------
def _numeric_gradient(loss: Loss, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """d(sum of each sample's values)/d y_pred by central differences in float64, one output
    coordinate of every sample at a time; one-sided where a central step leaves the domain."""
    n = y_pred.shape[0]
    flat = y_pred.reshape(n, -1).astype(np.float64)
    k = flat.shape[1]
    if k > MAX_NUMERIC_GRADIENT_OUTPUTS:
        raise TypeError(
            f"loss {loss.name!r}: it has no gradient() and the model has {k} outputs per sample; cnnx "
            f"differentiates a Python loss numerically only up to {MAX_NUMERIC_GRADIENT_OUTPUTS}. Subclass "
            "cnnx.losses.Loss and implement call(y_true, y_pred) and gradient(y_true, y_pred)"
        )
    t = _f64(y_true)

    def per_sample(p: np.ndarray) -> np.ndarray:
        return _f64(loss.call(t, p.reshape(y_pred.shape))).reshape(n, -1).sum(axis=1)

    base = per_sample(flat)
    g = np.empty_like(flat)
    for j in range(k):
        h = 6e-6 * np.maximum(1.0, np.abs(flat[:, j]))  # ~ cube root of float64 epsilon
        plus, minus = flat.copy(), flat.copy()
        plus[:, j] += h
        minus[:, j] -= h
        vp, vm = per_sample(plus), per_sample(minus)
        central = (vp - vm) / (2 * h)
        g[:, j] = np.where(np.isfinite(central), central, np.where(np.isfinite(vp), (vp - base) / h, (base - vm) / h))
    return g.reshape(y_pred.shape)


def _core_function(loss: Loss) -> Callable:
    """What the core's PythonLoss calls for a batch: fn(y_true, y_pred, sample_weight,
    need_grad) -> (reduced loss, dL/dy_pred as float32 or None)."""
    reduction = loss.reduction

    def fn(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: Any, need_grad: bool) -> tuple:
        values = _f64(loss.call(y_true, y_pred))
        n = y_pred.shape[0]
        if values.ndim == 0 or values.shape[0] != n:
            raise ValueError(
                f"loss {loss.name!r}: expected call(y_true, y_pred) to return per-sample values of shape "
                f"({n}, ...), received shape {values.shape}"
            )
        w = None if sample_weight is None else _f64(sample_weight)
        value = _reduce(values, w, reduction)
        if not need_grad:
            return value, None
        grad = loss.gradient(y_true, y_pred) if loss.gradient is not None else _numeric_gradient(loss, y_true, y_pred)
        grad = _f64(grad)
        if grad.shape != y_pred.shape:
            raise ValueError(
                f"loss {loss.name!r}: expected gradient(y_true, y_pred) of y_pred's shape {y_pred.shape}, "
                f"received {grad.shape}"
            )
        if w is not None:
            grad = grad * w.reshape((n,) + (1,) * (grad.ndim - 1))
        if reduction == "sum":
            scale = 1.0
        elif reduction == "mean_with_sample_weight" and w is not None:
            scale = 1.0 / max(
                float(np.sum(np.broadcast_to(w.reshape((n,) + (1,) * (values.ndim - 1)), values.shape))), 1e-300
            )
        else:
            scale = 1.0 / values.size
        return value, np.ascontiguousarray(grad * scale, dtype=np.float32)

    return fn


def _core_loss(loss: Loss) -> Any:
    """The core object compile() gives the model: a built-in's own, else a PythonLoss (a new one
    per compile: it belongs to one model)."""
    if loss._core is not None and type(loss) in _BUILTIN:
        if loss.reduction != "sum_over_batch_size":
            raise ValueError(
                f"compile: {type(loss).__name__}(reduction={loss.reduction!r}) would train on another quantity "
                "than cnnx's core loss computes; only reduction='sum_over_batch_size' (Keras' default) is "
                "supported for the built-in losses"
            )
        return loss._core
    if loss.reduction in (None, "none"):
        raise ValueError(f"compile: loss {loss.name!r} has reduction={loss.reduction!r}; training needs a scalar loss")
    return _core.PythonLoss(_core_function(loss), str(loss.name))
