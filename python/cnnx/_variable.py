"""``Variable``: what ``layer.weights`` / ``model.weights`` (and the trainable / non-trainable
lists) hold, as Keras' variables: a live handle on one weight of a layer, not a copy.

``.numpy()`` (and ``np.asarray(v)``) read the weight's current value from the core, under the
lock of the model that runs the layer, so they see what training wrote; ``.assign(value)``
writes it back (between two steps). The value lives in the core; a Variable holds only the
layer and the weight's index, so it stays valid as long as the layer does."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Variable"]


class Variable:
    """One weight of a layer: ``name`` ("kernel", "bias", "gamma", "moving_mean", ...),
    ``path`` ("<layer name>/<name>"), ``shape``, ``dtype`` (float32), ``trainable`` (the
    weight's own flag: False for BatchNormalization's moving statistics, as Keras), ``numpy()``,
    ``value``, ``assign()``; arithmetic and indexing work on its current value, as NumPy."""

    __array_priority__ = 20  # `array * variable` defers to Variable.__rmul__

    def __init__(self, layer: Any, index: int, name: str, shape: tuple, trainable: bool):
        self._layer = layer
        self._index = int(index)
        self.name = name
        self.shape = tuple(int(d) for d in shape)
        self.trainable = bool(trainable)

    @property
    def path(self) -> str:
        return f"{self._layer.name}/{self.name}"

    @property
    def dtype(self) -> str:
        return "float32"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def numpy(self) -> np.ndarray:
        """The current value (a copy)."""
        return self._layer.get_weights()[self._index]

    @property
    def value(self) -> np.ndarray:
        return self.numpy()

    def assign(self, value: Any) -> np.ndarray:
        """Writes ``value`` (same shape) into the layer's weight."""
        array = np.asarray(value.numpy() if isinstance(value, Variable) else value, dtype=np.float32)
        if array.shape != self.shape:
            raise ValueError(
                "The shape of the target variable and the shape of the target value in `variable.assign(value)` "
                f"must match. variable.shape={self.shape}, Received: value.shape={array.shape}. "
                f"Target variable: {self!r}"
            )
        weights = self._layer.get_weights()
        weights[self._index] = array
        self._layer.set_weights(weights)
        return array

    def assign_add(self, value: Any) -> np.ndarray:
        return self.assign(self.numpy() + np.asarray(value, dtype=np.float32))

    def assign_sub(self, value: Any) -> np.ndarray:
        return self.assign(self.numpy() - np.asarray(value, dtype=np.float32))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self.numpy()
        return value if dtype is None else value.astype(dtype)

    def __repr__(self) -> str:
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}, value={self.numpy()}>"

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __getitem__(self, index: Any) -> Any:
        return self.numpy()[index]

    def __float__(self) -> float:
        return float(self.numpy())

    def __int__(self) -> int:
        return int(self.numpy())

    __hash__ = object.__hash__  # identity: Variables are handles, compared element-wise below


def _binary(op: Any, reflected: bool = False) -> Any:
    def method(self: Variable, other: Any) -> Any:
        other = other.numpy() if isinstance(other, Variable) else other
        return op(other, self.numpy()) if reflected else op(self.numpy(), other)

    return method


def _unary(op: Any) -> Any:
    return lambda self: op(self.numpy())


for _name, _op in {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "truediv": np.true_divide,
    "floordiv": np.floor_divide,
    "mod": np.mod,
    "pow": np.power,
    "matmul": np.matmul,
}.items():
    setattr(Variable, f"__{_name}__", _binary(_op))
    setattr(Variable, f"__r{_name}__", _binary(_op, reflected=True))
for _name, _op in {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal}.items():
    setattr(Variable, f"__{_name}__", _binary(_op))
for _name, _op in {"gt": np.greater, "ge": np.greater_equal}.items():
    setattr(Variable, f"__{_name}__", _binary(_op))
for _name, _op in {"neg": np.negative, "pos": np.positive, "abs": np.abs}.items():
    setattr(Variable, f"__{_name}__", _unary(_op))
del _name, _op
