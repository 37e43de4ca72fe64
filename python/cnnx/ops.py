"""``cnnx.ops``: a NumPy-backed subset of ``keras.ops``, the helpers that everyday model code
calls around a model (softmax on predictions, one_hot on labels, argmax, expand_dims, ...).

Every function takes Keras' argument names and defaults and computes with NumPy, eagerly;
none of them is differentiated or runs in cnnx's core. Array results are ``cnnx.ops.Tensor``:
a NumPy array (a subclass of ``np.ndarray``, so anything NumPy accepts it) that also has
Keras' ``.numpy()``, which returns a plain ``np.ndarray``; so ``ops.softmax(x).numpy()``,
``np.argmax(ops.softmax(x))`` and ``float(ops.sum(x))`` all work as they do with Keras.

Dtypes follow Keras: Python floats and float lists become float32 and Python ints int32 (as in
Keras' NumPy, JAX and PyTorch backends), NumPy arrays keep their dtype, and functions that
need floats (softmax, exp, log, sqrt, mean, divide, ...) compute integer inputs in float32.
argmax, argmin and top_k's indices are int32.

The functions: activations ``relu``, ``sigmoid``, ``softmax``, ``log_softmax``; losses
``binary_crossentropy``, ``categorical_crossentropy``, ``sparse_categorical_crossentropy``
(Keras' ``ops`` signatures: ``(target, output, from_logits=False[, axis=-1])``, per-sample
values, probabilities clipped to [1e-7, 1 - 1e-7] as Keras does; logits unclipped, as Keras'
TensorFlow and JAX backends); ``one_hot``; creation
``ones``, ``zeros``, ``ones_like``, ``zeros_like``, ``arange``; conversion ``cast``,
``convert_to_tensor``, ``convert_to_numpy``, ``stop_gradient``, ``shape``; shapes
``reshape``, ``transpose``, ``expand_dims``, ``squeeze``, ``concatenate``, ``stack``;
reductions ``sum``, ``mean``, ``max``, ``min``, ``argmax``, ``argmin``, ``top_k``;
element-wise ``add``, ``subtract``, ``multiply``, ``divide``, ``maximum``, ``minimum``,
``equal``, ``exp``, ``log``, ``sqrt``, ``square``, ``abs`` (``absolute``), ``clip``,
``where``; ``matmul``; and ``ops.image.resize`` (bilinear or nearest, half-pixel centres as
TensorFlow's ``tf.image.resize``, no antialiasing).
"""

from __future__ import annotations

import types
import warnings
from typing import Any

import numpy as np

__all__ = [
    "Tensor",
    "abs",
    "absolute",
    "add",
    "arange",
    "argmax",
    "argmin",
    "binary_crossentropy",
    "cast",
    "categorical_crossentropy",
    "clip",
    "concatenate",
    "convert_to_numpy",
    "convert_to_tensor",
    "divide",
    "equal",
    "exp",
    "expand_dims",
    "image",
    "log",
    "log_softmax",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "multiply",
    "one_hot",
    "ones",
    "ones_like",
    "relu",
    "reshape",
    "shape",
    "sigmoid",
    "softmax",
    "sparse_categorical_crossentropy",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "stop_gradient",
    "subtract",
    "sum",
    "top_k",
    "transpose",
    "where",
    "zeros",
    "zeros_like",
]

_EPSILON = 1e-7  # keras.config.epsilon()
_FLOATX = "float32"  # keras.config.floatx()


class Tensor(np.ndarray):
    """What ``cnnx.ops`` functions return: a NumPy array with Keras' ``.numpy()``."""

    def numpy(self) -> np.ndarray:
        """The values as a plain ``np.ndarray`` (a view, like Keras' NumPy backend's array)."""
        return self.view(np.ndarray)


def _wrap(result: Any) -> Tensor:
    return np.asarray(result).view(Tensor)


def _dtype(dtype: Any) -> np.dtype | None:
    if dtype is None:
        return None
    try:
        return np.dtype(getattr(dtype, "name", dtype) if not isinstance(dtype, str) else dtype)
    except TypeError:
        raise ValueError(f"Invalid dtype: {dtype!r}") from None


def _array(x: Any, dtype: Any = None) -> np.ndarray:
    """Keras' ``convert_to_tensor``: arrays keep their dtype; Python numbers and lists take
    Keras' defaults (float32, int32) rather than NumPy's 64-bit ones."""
    if dtype is not None:
        return np.array(np.asarray(x), dtype=_dtype(dtype))
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x).view(np.ndarray)
    if hasattr(x, "numpy") and not isinstance(x, (list, tuple)):  # a framework tensor
        return np.asarray(x.numpy())
    a = np.asarray(x)
    if a.dtype == np.float64:
        return a.astype(_FLOATX)
    if a.dtype == np.int64:
        return a.astype("int32")
    if a.dtype.kind not in "biufc":
        raise TypeError(f"Expected a numeric array-like, received {type(x).__name__} of dtype {a.dtype}")
    return a


def _float(x: Any) -> np.ndarray:
    """The array in a float dtype: integer and bool inputs are computed in float32."""
    a = _array(x)
    return a if a.dtype.kind in "fc" else a.astype(_FLOATX)


def _operands(x1: Any, x2: Any) -> tuple:
    """Keras' type promotion for two operands: a Python scalar takes the other's dtype (weak
    typing), arrays promote as NumPy does."""

    def one(x: Any) -> Any:
        if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
            return x  # NumPy >= 2 treats Python scalars as weakly typed, as Keras does
        return _array(x)

    a, b = one(x1), one(x2)
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        a = _array(a)
    # An integer array with a Python float computes in float32 (NumPy would pick float64).
    if isinstance(b, float) and a.dtype.kind in "biu":
        a = a.astype(_FLOATX)
    if isinstance(a, float) and b.dtype.kind in "biu":
        b = b.astype(_FLOATX)
    return a, b


def _axes(axis: Any, ndim: int, who: str) -> Any:
    if axis is None:
        return None
    many = isinstance(axis, (tuple, list))
    out = []
    for a in axis if many else (axis,):
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"{who}: expected axis to be an int or a tuple of ints, received axis={axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"{who}: axis {int(a)} is out of bounds for a tensor of rank {ndim}")
        out.append(int(a) % ndim)
    return tuple(out) if many else out[0]


# -- activations --------------------------------------------------------------------------------
def relu(x: Any) -> Tensor:
    """``max(x, 0)``, element-wise."""
    a = _float(x)
    return _wrap(np.maximum(a, np.zeros((), a.dtype)))


def sigmoid(x: Any) -> Tensor:
    """``1 / (1 + exp(-x))``, element-wise, without overflow for large ``|x|``."""
    a = _float(x)
    e = np.exp(-np.abs(a))
    return _wrap(np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False))


def softmax(x: Any, axis: Any = -1) -> Tensor:
    """``exp(x) / sum(exp(x), axis)``, computed stably; ``axis`` may be a tuple of axes.
    Warns, as Keras does, when the axis has size 1 (the result is then all ones)."""
    a = _float(x)
    checked = _axes(axis, a.ndim, "softmax")
    if isinstance(checked, int) and a.shape[checked] == 1:
        warnings.warn(
            f"You are using a softmax over axis {axis} of a tensor of shape {a.shape}. This axis has size 1. "
            "The softmax operation will always return the value 1, which is likely not what you intended. "
            "Did you mean to use a sigmoid instead?",
            stacklevel=2,
        )
    e = np.exp(a - np.max(a, axis=checked, keepdims=True))
    return _wrap(e / np.sum(e, axis=checked, keepdims=True))


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """``x - logsumexp(x, axis)``, computed stably."""
    a = _float(x)
    axis = _axes(axis, a.ndim, "log_softmax")
    shifted = a - np.max(a, axis=axis, keepdims=True)
    return _wrap(shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True)))


# -- losses (keras.ops' per-sample forms) -------------------------------------------------------
def _same_shape(t: np.ndarray, o: np.ndarray) -> None:
    if t.shape != o.shape:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. "
            f"Received: target.shape={t.shape}, output.shape={o.shape}"
        )


def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Tensor:
    """Element-wise ``-(t log p + (1 - t) log(1 - p))``, ``p`` clipped to [1e-7, 1 - 1e-7];
    no reduction, as ``keras.ops``. ``from_logits=True``: the exact, unclipped form on logits
    ``max(x, 0) - x t + log(1 + exp(-|x|))``, as Keras' TensorFlow and JAX backends compute it."""
    t, o = _float(target), _float(output)
    _same_shape(t, o)
    if from_logits:
        return _wrap(np.maximum(o, 0) - o * t + np.log1p(np.exp(-np.abs(o))))
    p = np.clip(o, _EPSILON, 1.0 - _EPSILON)
    return _wrap(-(t * np.log(p) + (1.0 - t) * np.log(1.0 - p)))


def _log_probs(o: np.ndarray, from_logits: bool, axis: int) -> np.ndarray:
    if from_logits:
        return log_softmax(o, axis=axis).numpy()
    # Keras rescales the probabilities to sum to 1 before clipping them.
    p = o / np.sum(o, axis=axis, keepdims=True)
    return np.log(np.clip(p, _EPSILON, 1.0 - _EPSILON))


def categorical_crossentropy(target: Any, output: Any, from_logits: bool = False, axis: int = -1) -> Tensor:
    """``-sum(target * log(p), axis)`` per sample, ``p`` the output rescaled to sum to 1
    along ``axis`` and clipped to [1e-7, 1 - 1e-7] (``from_logits=True``: ``log_softmax``)."""
    t, o = _float(target), _float(output)
    _same_shape(t, o)
    if t.ndim < 1:
        raise ValueError(
            "Arguments `target` and `output` must be at least rank 1. "
            f"Received: target.shape={t.shape}, output.shape={o.shape}"
        )
    axis = _axes(axis, o.ndim, "categorical_crossentropy")
    return _wrap(-np.sum(t * _log_probs(o, from_logits, axis), axis=axis))


def sparse_categorical_crossentropy(target: Any, output: Any, from_logits: bool = False, axis: int = -1) -> Tensor:
    """``categorical_crossentropy`` with integer class indices as targets (a trailing axis of
    size 1 is dropped, as in Keras)."""
    t, o = _array(target), _float(output)
    if t.dtype.kind == "f":
        if np.any(t != np.round(t)):
            raise ValueError("sparse_categorical_crossentropy: expected integer class indices in `target`")
    t = t.astype("int64")
    if t.ndim == o.ndim and t.ndim and t.shape[-1] == 1:
        t = np.squeeze(t, axis=-1)
    if o.ndim < 1:
        raise ValueError(f"Argument `output` must be at least rank 1. Received: output.shape={o.shape}")
    if t.shape != o.shape[:-1]:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape up until the last dimension: "
            f"target.shape={t.shape}, output.shape={o.shape}"
        )
    axis = _axes(axis, o.ndim, "sparse_categorical_crossentropy")
    onehot = one_hot(t, o.shape[axis], axis=axis, dtype=o.dtype).numpy()
    return _wrap(-np.sum(onehot * _log_probs(o, from_logits, axis), axis=axis))


def one_hot(x: Any, num_classes: int, axis: int = -1, dtype: Any = None, sparse: bool = False) -> Tensor:
    """A new axis (last by default) of size ``num_classes`` with 1 at each index of ``x``.
    Negative or out-of-range indices give a row of zeros (as TensorFlow and JAX do)."""
    if sparse:
        raise ValueError("one_hot: sparse=True is not supported by cnnx.ops (NumPy)")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"one_hot: expected num_classes to be a positive int, received num_classes={num_classes!r}")
    a = _array(x)
    if a.dtype.kind == "f":
        if np.any(a != np.round(a)):
            raise ValueError("one_hot: expected integer indices in `x`, received non-integer values")
    elif a.dtype.kind not in "biu":
        raise TypeError(f"one_hot: expected integer indices in `x`, received dtype {a.dtype}")
    a = a.astype("int64")
    out = (a[..., None] == np.arange(int(num_classes))).astype(_dtype(dtype) or _FLOATX)
    if axis != -1:
        out = np.moveaxis(out, -1, _axes(axis, out.ndim, "one_hot"))
    return _wrap(out)


# -- creation and conversion --------------------------------------------------------------------
def ones(shape: Any, dtype: Any = None) -> Tensor:
    return _wrap(np.ones(shape, dtype=_dtype(dtype) or _FLOATX))


def zeros(shape: Any, dtype: Any = None) -> Tensor:
    return _wrap(np.zeros(shape, dtype=_dtype(dtype) or _FLOATX))


def ones_like(x: Any, dtype: Any = None) -> Tensor:
    return _wrap(np.ones_like(_array(x), dtype=_dtype(dtype)))


def zeros_like(x: Any, dtype: Any = None) -> Tensor:
    return _wrap(np.zeros_like(_array(x), dtype=_dtype(dtype)))


def arange(start: Any, stop: Any = None, step: Any = None, dtype: Any = None) -> Tensor:
    """Keras' ``arange``: int32 for Python ints, float32 when any argument is a float."""
    step = 1 if step is None else step
    if dtype is None:
        given = [v for v in (start, stop, step) if v is not None]
        dtype = _array(list(given)).dtype
    if stop is None:
        return _wrap(np.arange(start, step=step, dtype=_dtype(dtype)))
    return _wrap(np.arange(start, stop, step, dtype=_dtype(dtype)))


def cast(x: Any, dtype: Any) -> Tensor:
    return _wrap(_array(x).astype(_dtype(dtype)))


def convert_to_tensor(x: Any, dtype: Any = None, sparse: Any = None, ragged: Any = None) -> Tensor:
    if sparse or ragged:
        raise ValueError("convert_to_tensor: sparse and ragged tensors are not supported by cnnx.ops (NumPy)")
    return _wrap(_array(x, dtype))


def convert_to_numpy(x: Any) -> np.ndarray:
    """A plain ``np.ndarray`` (a copy)."""
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    return np.array(x)


def stop_gradient(variable: Any) -> Tensor:
    """The input unchanged (nothing in ``cnnx.ops`` is differentiated)."""
    return _wrap(_array(variable))


def shape(x: Any) -> tuple:
    return tuple(int(d) for d in np.shape(x))


# -- shapes -------------------------------------------------------------------------------------
def reshape(x: Any, newshape: Any) -> Tensor:
    return _wrap(np.reshape(_array(x), newshape))


def transpose(x: Any, axes: Any = None) -> Tensor:
    return _wrap(np.transpose(_array(x), axes))


def expand_dims(x: Any, axis: Any) -> Tensor:
    return _wrap(np.expand_dims(_array(x), tuple(axis) if isinstance(axis, list) else axis))


def squeeze(x: Any, axis: Any = None) -> Tensor:
    a = _array(x)
    axes = _axes(axis, a.ndim, "squeeze")
    for ax in (axes,) if isinstance(axes, int) else axes or ():
        if a.shape[ax] != 1:
            raise ValueError(f"Cannot squeeze axis {ax}, because the dimension is not 1.")
    return _wrap(np.squeeze(a, axis=axes))


def concatenate(xs: Any, axis: int = 0) -> Tensor:
    return _wrap(np.concatenate([_array(x) for x in xs], axis=axis))


def stack(x: Any, axis: int = 0) -> Tensor:
    return _wrap(np.stack([_array(v) for v in x], axis=axis))


# -- reductions ---------------------------------------------------------------------------------
def _sum_dtype(a: np.ndarray) -> Any:
    # Keras: small ints and bools sum in int32, small unsigned ints in uint32; others keep theirs.
    if a.dtype.kind == "b" or a.dtype in (np.int8, np.int16):
        return np.int32
    if a.dtype in (np.uint8, np.uint16):
        return np.uint32
    return a.dtype


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    a = _array(x)
    return _wrap(np.sum(a, axis=_axes(axis, a.ndim, "sum"), keepdims=keepdims, dtype=_sum_dtype(a)))


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    a = _float(x)
    return _wrap(np.mean(a, axis=_axes(axis, a.ndim, "mean"), keepdims=keepdims, dtype=a.dtype))


def _extreme(fn: Any, name: str, x: Any, axis: Any, keepdims: bool, initial: Any) -> Tensor:
    a = _array(x)
    axis = _axes(axis, a.ndim, name)
    if initial is None and (a.size == 0):
        raise ValueError(f"Cannot compute the {name} of an empty tensor.")
    kwargs = {} if initial is None else {"initial": initial}
    return _wrap(fn(a, axis=axis, keepdims=keepdims, **kwargs))


def max(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> Tensor:
    return _extreme(np.max, "max", x, axis, keepdims, initial)


def min(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> Tensor:
    return _extreme(np.min, "min", x, axis, keepdims, initial)


def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Index of the largest value (the first one on ties), as int32; ``axis=None``: of the
    flattened tensor."""
    a = _array(x)
    return _wrap(np.argmax(a, axis=_axes(axis, a.ndim, "argmax"), keepdims=keepdims).astype("int32"))


def argmin(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    a = _array(x)
    return _wrap(np.argmin(a, axis=_axes(axis, a.ndim, "argmin"), keepdims=keepdims).astype("int32"))


def top_k(x: Any, k: int, sorted: bool = True) -> tuple:
    """(values, indices) of the ``k`` largest entries along the last axis, largest first; on
    ties the lower index comes first (as TensorFlow). Indices are int32."""
    a = _array(x)
    if a.ndim < 1:
        raise ValueError(f"top_k: expected a tensor of rank >= 1, received shape {a.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= a.shape[-1]:
        raise ValueError(f"top_k: expected k to be an int in [0, {a.shape[-1]}] (the last axis), received k={k!r}")
    # A stable sort of the negated values keeps equal values in index order.
    order = np.argsort(-a if a.dtype.kind != "b" else ~a, axis=-1, kind="stable")[..., : int(k)]
    return _wrap(np.take_along_axis(a, order, axis=-1)), _wrap(order.astype("int32"))


# -- element-wise -------------------------------------------------------------------------------
def add(x1: Any, x2: Any) -> Tensor:
    return _wrap(np.add(*_operands(x1, x2)))


def subtract(x1: Any, x2: Any) -> Tensor:
    return _wrap(np.subtract(*_operands(x1, x2)))


def multiply(x1: Any, x2: Any) -> Tensor:
    return _wrap(np.multiply(*_operands(x1, x2)))


def divide(x1: Any, x2: Any) -> Tensor:
    """True division; integer operands give float32 (Keras), not NumPy's float64."""
    a, b = _operands(x1, x2)
    kinds = {getattr(v, "dtype", np.dtype(type(v))).kind for v in (a, b)}
    if not kinds & {"f", "c"}:
        a, b = np.asarray(a, dtype=_FLOATX), np.asarray(b, dtype=_FLOATX)
    return _wrap(np.true_divide(a, b))


def maximum(x1: Any, x2: Any) -> Tensor:
    return _wrap(np.maximum(*_operands(x1, x2)))


def minimum(x1: Any, x2: Any) -> Tensor:
    return _wrap(np.minimum(*_operands(x1, x2)))


def equal(x1: Any, x2: Any) -> Tensor:
    return _wrap(np.equal(*_operands(x1, x2)))


def matmul(x1: Any, x2: Any) -> Tensor:
    return _wrap(np.matmul(_array(x1), _array(x2)))


def exp(x: Any) -> Tensor:
    return _wrap(np.exp(_float(x)))


def log(x: Any) -> Tensor:
    return _wrap(np.log(_float(x)))


def sqrt(x: Any) -> Tensor:
    return _wrap(np.sqrt(_float(x)))


def square(x: Any) -> Tensor:
    a = _array(x)
    return _wrap(np.square(a.astype("int32") if a.dtype.kind == "b" else a))


def absolute(x: Any) -> Tensor:
    return _wrap(np.abs(_array(x)))


abs = absolute  # noqa: A001 (Keras' name)


def clip(x: Any, x_min: Any, x_max: Any) -> Tensor:
    """``x`` limited to [x_min, x_max]; keeps ``x``'s dtype (bools become int32, as Keras)."""
    a = _array(x)
    dtype = np.int32 if a.dtype.kind == "b" else a.dtype
    return _wrap(np.clip(a, x_min, x_max).astype(dtype))


def where(condition: Any, x1: Any = None, x2: Any = None) -> Any:
    """``x1`` where ``condition`` holds, else ``x2``; with neither, the indices of the
    non-zero entries (a tuple of arrays, one per axis), as ``np.nonzero``."""
    if (x1 is None) != (x2 is None):
        raise ValueError("`x1` and `x2` either both should be `None` or both should have non-None value.")
    cond = _array(condition).astype(bool)
    if x1 is None:
        return tuple(_wrap(i.astype("int32")) for i in np.nonzero(cond))
    return _wrap(np.where(cond, *_operands(x1, x2)))


# -- image ----------------------------------------------------------------------------------------
def _resize_axis(n_in: int, n_out: int) -> tuple:
    """Bilinear sampling of an axis with half-pixel centres: lower index, upper index, weight."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, pos - lo


def _resize(
    images: Any,
    size: Any,
    interpolation: str = "bilinear",
    antialias: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    fill_mode: str = "constant",
    fill_value: float = 0.0,
    data_format: Any = None,
) -> Tensor:
    """``keras.ops.image.resize`` for channels-last images ``(h, w, c)`` or batches
    ``(n, h, w, c)``: ``"bilinear"`` or ``"nearest"`` with half-pixel centres (TensorFlow's
    ``tf.image.resize``), no antialiasing or aspect-ratio cropping/padding."""
    who = "image.resize"
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{who}: cnnx.ops supports data_format='channels_last' only, received {data_format!r}")
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(
            f"{who}: cnnx.ops supports interpolation 'bilinear' and 'nearest', received interpolation={interpolation!r}"
        )
    if antialias or crop_to_aspect_ratio or pad_to_aspect_ratio:
        raise ValueError(
            f"{who}: antialias, crop_to_aspect_ratio and pad_to_aspect_ratio are not supported by cnnx.ops"
        )
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"Expected `size` to be a tuple of 2 integers. Received: size={size!r}")
    height, width = (int(s) for s in size)
    if height < 1 or width < 1:
        raise ValueError(f"{who}: expected a positive size, received size={tuple(size)!r}")
    a = _array(images)
    if a.ndim not in (3, 4):
        raise ValueError(
            "Invalid images rank: expected rank 3 (single image) or rank 4 (batch of images). "
            f"Received input with shape: images.shape={a.shape}"
        )
    batch = a if a.ndim == 4 else a[None]
    src = batch.astype(_FLOATX) if a.dtype.kind not in "f" else batch
    h_in, w_in = src.shape[1], src.shape[2]
    if interpolation == "nearest":
        rows = np.minimum(np.floor((np.arange(height) + 0.5) * (h_in / height)).astype(np.int64), h_in - 1)
        cols = np.minimum(np.floor((np.arange(width) + 0.5) * (w_in / width)).astype(np.int64), w_in - 1)
        out = src[:, rows][:, :, cols]
    else:
        r0, r1, rw = _resize_axis(h_in, height)
        c0, c1, cw = _resize_axis(w_in, width)
        rw = rw.astype(src.dtype)[None, :, None, None]
        cw = cw.astype(src.dtype)[None, None, :, None]
        top = src[:, r0][:, :, c0] * (1 - cw) + src[:, r0][:, :, c1] * cw
        bottom = src[:, r1][:, :, c0] * (1 - cw) + src[:, r1][:, :, c1] * cw
        out = top * (1 - rw) + bottom * rw
    return _wrap(out if a.ndim == 4 else out[0])


image = types.SimpleNamespace(resize=_resize)
image.__doc__ = "``keras.ops.image``: ``resize`` only."
