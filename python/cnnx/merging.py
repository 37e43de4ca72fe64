"""Keras' merge layers: ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``,
``Minimum`` and ``Concatenate``, and their functional forms ``add``, ``subtract``, ...

A merge layer takes a list of inputs. Called on a list of NumPy arrays (one batch size) it
computes at once, like a Keras layer called eagerly: ``Add()([a, b])``. Called on symbolic
tensors it leaves the call to ``Layer.__call__`` (Keras' functional API).

The element-wise layers need inputs of one shape (Keras also broadcasts size-1 axes; cnnx does
not). Subtract takes exactly 2 inputs, the others at least 1, as in Keras 3. Maximum and Minimum
send each element's gradient to the first input attaining the extreme.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from .layers import Layer, _budget, _core_seed, _int, _shape_tuple

__all__ = [
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "add",
    "subtract",
    "multiply",
    "average",
    "maximum",
    "minimum",
    "concatenate",
]


def _is_eager(x: Any) -> bool:
    """Data to compute on now: a NumPy array or anything NumPy converts (nested lists, numbers).
    A symbolic tensor (Keras' KerasTensor carries ``_keras_history``; cnnx's defines no
    ``__array__``) is not."""
    if isinstance(x, np.ndarray):
        return True
    if hasattr(x, "_keras_history"):
        return False
    return isinstance(x, (list, tuple, int, float, np.generic)) or hasattr(x, "__array__")


class _MergeLayer(Layer):
    """What every merge layer shares: a list of input shapes to build from, and calls on a list
    of inputs."""

    def _shape_list(self, input_shape: Any) -> list[list[int]]:
        """One per-sample shape per input; each may start with the batch dimension None."""
        if not isinstance(input_shape, (list, tuple)) or not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(
                f"{self._where}: a merge layer should be called on a list of inputs; expected a list of "
                f"shapes, received input_shape={input_shape!r}"
            )
        shapes = []
        for shape in input_shape:
            shape = tuple(shape)
            if shape and shape[0] is None:
                shape = shape[1:]
            shapes.append(list(_shape_tuple(shape, "input_shape", self._where)))
        return shapes

    def build(self, input_shape: Any) -> None:
        """Checks the list of input shapes (one per input) and builds; the parameter budget of
        ``layers._param_budget`` applies as in ``Layer.build`` (merge layers have no weights)."""
        shapes = self._shape_list(input_shape)
        budget = _budget.get()
        was_built = self.built
        limit = -1 if budget is None else max(budget[0], 0)
        # A built layer only checks the shapes: drawing a seed would shift every later layer's.
        self._core.build_inputs(shapes, 0 if was_built else _core_seed(), limit)
        if budget is not None and not was_built:
            budget[0] -= int(self._core.count_params())

    @property
    def input_shape(self) -> list[tuple]:
        """One shape per input, as Keras gives for layers with several inputs."""
        self._require_built("input_shape")
        return [(None, *shape) for shape in self._core.input_shapes]

    def compute_output_shape(self, input_shape: Any) -> tuple:
        self.build(input_shape)
        return self.output_shape

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """``layer([a, b])``: on NumPy arrays, the merged batch now (builds on first use); on
        symbolic tensors, ``Layer.__call__``."""
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{self._where}: a merge layer should be called on a list of inputs, received {type(inputs).__name__}"
            )
        if not all(_is_eager(x) for x in inputs):
            return super().__call__(inputs, **kwargs)
        training = kwargs.pop("training", False)
        if kwargs:
            raise TypeError(f"{self._where}: unexpected keyword arguments {sorted(kwargs)}")
        from .models import _as_float_array

        xs = [_as_float_array(x, f"inputs[{i}]", self._where) for i, x in enumerate(inputs)]
        for i, x in enumerate(xs):
            if x.ndim < 2:
                raise ValueError(
                    f"{self._where}: expected inputs with a leading batch axis, received inputs[{i}] of shape {x.shape}"
                )
        if len({x.shape[0] for x in xs}) > 1:
            raise ValueError(
                f"{self._where}: Cannot merge tensors with different batch sizes. "
                f"Received tensors with shapes {[x.shape for x in xs]}"
            )
        if not self.built:
            self.build([x.shape[1:] for x in xs])
        from .ops import Tensor

        return self._core.forward_inputs(xs, bool(training)).view(Tensor)  # with Keras' .numpy()


class Add(_MergeLayer):
    """``keras.layers.Add``: the element-wise sum of the inputs."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._core = _core.Add(self.name)


class Subtract(_MergeLayer):
    """``keras.layers.Subtract``: ``inputs[0] - inputs[1]``, exactly 2 inputs."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._core = _core.Subtract(self.name)


class Multiply(_MergeLayer):
    """``keras.layers.Multiply``: the element-wise product of the inputs."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._core = _core.Multiply(self.name)


class Average(_MergeLayer):
    """``keras.layers.Average``: the element-wise mean of the inputs."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._core = _core.Average(self.name)


class Maximum(_MergeLayer):
    """``keras.layers.Maximum``: the element-wise maximum; on ties the first input gets the
    gradient."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._core = _core.Maximum(self.name)


class Minimum(_MergeLayer):
    """``keras.layers.Minimum``: the element-wise minimum; on ties the first input gets the
    gradient."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._core = _core.Minimum(self.name)


class Concatenate(_MergeLayer):
    """``keras.layers.Concatenate(axis=-1)``: joins the inputs along ``axis`` (counting the batch
    axis, as Keras does; the batch axis itself is refused). Other dimensions must match."""

    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = _int(axis, "axis", self._where)
        self._core = _core.Concatenate(self.name, self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


def add(inputs: Any, **kwargs: Any) -> Any:
    """``keras.layers.add``: ``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(inputs)


def subtract(inputs: Any, **kwargs: Any) -> Any:
    """``keras.layers.subtract``: ``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: Any, **kwargs: Any) -> Any:
    """``keras.layers.multiply``: ``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs: Any, **kwargs: Any) -> Any:
    """``keras.layers.average``: ``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def maximum(inputs: Any, **kwargs: Any) -> Any:
    """``keras.layers.maximum``: ``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: Any, **kwargs: Any) -> Any:
    """``keras.layers.minimum``: ``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: Any, axis: int = -1, **kwargs: Any) -> Any:
    """``keras.layers.concatenate``: ``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)
