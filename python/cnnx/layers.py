"""Layers with Keras' names, arguments and defaults (channels-last).

Each layer turns its Python arguments into plain values and hands them to the C++ core, which
validates them (``ValueError`` naming the layer, the expected and the received value) and owns
the weights. Layers are built with their input shape by ``Sequential``.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _core

__all__ = [
    "Layer",
    "Input",
    "InputLayer",
    "Conv2D",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "MaxPooling2D",
    "Flatten",
    "Dense",
    "Dropout",
    "BatchNormalization",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Softmax",
    "Rescaling",
    "Reshape",
    "Resizing",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "RandomContrast",
    # merging.py: the merge layers and their functional forms
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

_name_counts: defaultdict[str, int] = defaultdict(int)

# The parameter floats that layers built in the current context may still create (a one-item
# list, so that builds can use it up), or None: no limit. See _param_budget.
_budget: contextvars.ContextVar[list | None] = contextvars.ContextVar("cnnx_param_budget", default=None)


@contextlib.contextmanager
def _param_budget(n: int) -> Iterator[None]:
    """Within the block, the layers that ``Layer.build`` builds may create at most ``n``
    parameter floats in all. Each build passes what is left to the core as max_param_floats
    (checked before any weight is allocated: ValueError naming the layer, nothing allocated)
    and then uses up the layer's count_params(); a layer that was already built is not charged.
    The innermost block applies; the limit is per context (thread / task), via contextvars.
    For loaders: a model file's config cannot make cnnx allocate more weights than it holds."""
    token = _budget.set([int(n)])
    try:
        yield
    finally:
        _budget.reset(token)


def _auto_name(cls_name: str) -> str:
    """Keras-style unique names: conv2d, conv2d_1, ... (CamelCase -> snake_case)."""
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls_name).lower()
    base = base.replace("2_d", "2d")  # conv2d, max_pooling2d, global_average_pooling2d
    n = _name_counts[base]
    _name_counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


def _int_tuple(value: Any, n: int, arg: str, layer: str) -> tuple[int, ...]:
    """Accept an int or a tuple/list of n ints, as Keras does for kernel_size, strides, ..."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    if (
        isinstance(value, (tuple, list))
        and len(value) == n
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        return tuple(int(v) for v in value)
    raise TypeError(f"{layer}: expected {arg} to be an int or a tuple of {n} ints, received {arg}={value!r}")


def _positive_int_tuple(value: Any, n: int, arg: str, layer: str) -> tuple[int, ...]:
    """``_int_tuple`` whose entries must be >= 1: a zero stride must not pass for the default."""
    values = _int_tuple(value, n, arg, layer)
    if any(v < 1 for v in values):
        raise ValueError(f"{layer}: expected positive {arg}, received {arg}={values!r}")
    return values


def _activation_name(value: Any, layer: str) -> str:
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    raise TypeError(f"{layer}: expected activation to be a string such as 'relu' or None, received {value!r}")


def _string(value: Any, arg: str, layer: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{layer}: expected {arg} to be a string, received {arg}={value!r}")
    return value.lower()


def _check_data_format(data_format: Any, layer: str) -> None:
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"{layer}: cnnx is channels-last; expected data_format=None or 'channels_last', "
            f"received data_format={data_format!r}"
        )


def _shape_tuple(shape: Any, arg: str, who: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    if not isinstance(shape, (tuple, list)) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape
    ):
        raise TypeError(f"{who}: expected {arg} to be a tuple of ints such as (28, 28, 1), received {arg}={shape!r}")
    shape = tuple(int(d) for d in shape)
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(
            f"{who}: expected {arg} with positive dimensions such as (28, 28, 1), received {arg}={shape!r}"
        )
    return shape


def _check_bool(value: Any, arg: str, who: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{who}: expected {arg} to be True or False, received {arg}={value!r}")


def _set_core_trainable(core: Any, value: bool, who: str) -> None:
    """Keras' layer.trainable, handed to the core: a frozen layer's weights get no gradient
    and no update, and a frozen BatchNormalization normalizes with its moving statistics."""
    core.trainable = bool(value)


class Layer:
    """Base class: name, weights (as numpy arrays in Keras' shapes), config and shapes.

    Called on arrays, a layer computes (eagerly, in the core); called on KerasTensors (from
    ``cnnx.Input`` or another layer's call), it is built for their shapes and returns a new
    KerasTensor, recording the call in the graph of Keras' functional API."""

    # Keras' image preprocessing layers also take one image (height, width, channels) without
    # a batch axis, as the tf.data tutorials call them inside map().
    _accepts_single_image = False

    def __init__(self, name: str | None = None, input_shape: Any = None, trainable: bool = True, **kwargs: Any):
        cls = type(self).__name__
        kwargs.pop("dtype", None)  # float32 is the only dtype; accept Keras' argument
        input_dim = kwargs.pop("input_dim", None)
        if input_dim is not None:  # Keras: input_dim=n means input_shape=(n,), and wins over it
            input_shape = (input_dim,)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {cls}: {kwargs}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{cls}: expected name to be a string, received name={name!r}")
        self._trainable = _check_bool(trainable, "trainable", cls)
        self.name = name or _auto_name(cls)
        self._input_shape_arg = None if input_shape is None else _shape_tuple(input_shape, "input_shape", cls)
        self._core = None
        # The model this layer was last added to (weakly: the model owns its layers). Weights
        # of a layer inside a model are read and written under the model's lock (its core's
        # get_layer_weights / set_layer_weights), so they never race with a step running in
        # another thread.
        self._model_ref: Any = None
        # One Node per call on KerasTensors (functional API); a layer called twice shares its
        # weights between the calls.
        self._inbound_nodes: list = []

    # The core layer. Set by each subclass's constructor once its arguments are checked; a
    # layer constructed with trainable=False is frozen as soon as its core exists.
    @property
    def _core(self) -> Any:
        return self.__dict__["_core_layer"]

    @_core.setter
    def _core(self, core: Any) -> None:
        self.__dict__["_core_layer"] = core
        if core is not None and not self._trainable:
            _set_core_trainable(core, False, self._where)

    # -- state -----------------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return bool(self._core.built)

    @property
    def trainable(self) -> bool:
        """Keras' ``layer.trainable``: False freezes the weights (no updates in fit; a frozen
        BatchNormalization normalizes with its moving statistics). As in Keras, compile the
        model again after changing it."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        value = _check_bool(value, "trainable", self._where)
        if self._core is not None:
            _set_core_trainable(self._core, value, self._where)
        self._trainable = value

    @property
    def input_shape(self) -> tuple:
        self._require_built("input_shape")
        return (None, *self._core.input_shape)

    @property
    def output_shape(self) -> tuple:
        self._require_built("output_shape")
        return (None, *self._core.output_shape)

    def build(self, input_shape: Any) -> None:
        """Builds the weights for ``input_shape`` (with or without the leading batch dim None),
        or for a list of shapes, one per input (merge layers)."""
        shapes = _input_shapes(input_shape, self._where)
        budget = _budget.get()
        was_built = self.built
        limit = -1 if budget is None else max(budget[0], 0)
        # A built layer only checks the shape: drawing a seed would shift every later layer's.
        seed = 0 if was_built else _core_seed()
        if len(shapes) == 1:
            self._core.build(list(shapes[0]), seed, limit)
        else:
            # the core checks the number of inputs against the layer's min/max_inputs
            self._core.build_inputs([list(s) for s in shapes], seed, limit)
        if budget is not None and not was_built:
            budget[0] -= int(self._core.count_params())

    def compute_output_shape(self, input_shape: Any) -> tuple:
        self.build(input_shape)
        return self.output_shape

    def __call__(self, x: Any, training: bool = False) -> Any:
        """On arrays: runs this layer alone on a batch (builds it on first use), like calling a
        Keras layer eagerly. On KerasTensors: builds the layer for their shapes and returns the
        KerasTensor of its output (functional API); a list of KerasTensors for merge layers."""
        from ._graph import is_symbolic

        if is_symbolic(x):
            return self._symbolic_call(x)
        from .models import _as_float_array

        x = _as_float_array(x, "x", self._where)
        if self._accepts_single_image and x.ndim == 3 and (not self.built or len(self._core.input_shape) == 3):
            return self(x[None], training)[0]
        if x.ndim < 2:
            raise ValueError(f"{self._where}: expected a batch with a leading batch axis, received shape {x.shape}")
        if not self.built:
            self.build(x.shape[1:])
        from .ops import Tensor

        model = self._model_core()
        if model is not None:  # its workspaces are the model's: run between two of its steps
            return model.layer_forward(self._core, x, bool(training)).view(Tensor)
        return self._core.forward(x, bool(training)).view(Tensor)  # with Keras' .numpy()

    def _symbolic_call(self, x: Any) -> Any:
        from ._graph import KerasTensor, Node, symbolic_inputs

        tensors, list_call = symbolic_inputs(x, self._where)
        shapes = [tuple(t.shape[1:]) for t in tensors]
        self.build(shapes if list_call else shapes[0])
        out = KerasTensor((None, *self._core.output_shape))
        Node(self, tensors, [out], list_call)
        return out

    # -- the graph (functional API) ------------------------------------------------------------
    def _single_node(self, what: str) -> Any:
        if not self._inbound_nodes:
            raise AttributeError(f"The layer {self.name} has never been called and thus has no defined {what}.")
        if len(self._inbound_nodes) > 1:
            raise AttributeError(
                f'Layer {self.name} has multiple inbound nodes, hence the notion of "layer {what}" is ill-defined. '
                f"Use `get_{what}_at(node_index)` instead."
            )
        return self._inbound_nodes[0]

    def _node_at(self, node_index: int, what: str) -> Any:
        if not self._inbound_nodes:
            raise AttributeError(f"The layer {self.name} has never been called and thus has no defined {what}.")
        if isinstance(node_index, bool) or not isinstance(node_index, (int, np.integer)):
            raise TypeError(f"{self._where}: expected node_index to be an int, received {node_index!r}")
        if not 0 <= node_index < len(self._inbound_nodes):
            raise ValueError(
                f"Asked to get {what} at node {node_index}, but the operation has only "
                f"{len(self._inbound_nodes)} inbound nodes."
            )
        return self._inbound_nodes[node_index]

    @staticmethod
    def _unpack(tensors: list) -> Any:
        return tensors[0] if len(tensors) == 1 else list(tensors)

    @property
    def input(self) -> Any:
        """The KerasTensor (or list, for merge layers) this layer was called on; only defined
        for a layer called once (Keras: "multiple inbound nodes" otherwise)."""
        return self._unpack(self._single_node("input").input_tensors)

    @property
    def output(self) -> Any:
        """The KerasTensor this layer's only call returned."""
        return self._unpack(self._single_node("output").output_tensors)

    def get_input_at(self, node_index: int) -> Any:
        return self._unpack(self._node_at(node_index, "input").input_tensors)

    def get_output_at(self, node_index: int) -> Any:
        return self._unpack(self._node_at(node_index, "output").output_tensors)

    # -- weights ---------------------------------------------------------------------------
    def _model_core(self) -> Any:
        """The core of the model this layer belongs to, or None."""
        model = self._model_ref() if getattr(self, "_model_ref", None) is not None else None
        return None if model is None else model._core

    def get_weights(self) -> list[np.ndarray]:
        if not self.built:
            return []
        model = self._model_core()
        return list(model.get_layer_weights(self._core) if model is not None else self._core.get_weights())

    def set_weights(self, weights: list) -> None:
        arrays = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
        model = self._model_core()
        if model is not None:
            model.set_layer_weights(self._core, arrays)
        else:
            self._core.set_weights(arrays)

    def _variables(self) -> list:
        """The layer's weights as Variables (live handles, made once per core layer, so the
        same weight is the same object each time, as in Keras); [] before the layer is built."""
        if not self.built:
            return []
        core, cached = self.__dict__.get("_variable_cache", (None, None))
        if core is not self._core:
            from ._variable import Variable

            names, flags = self._core.weight_names(), self._core.weight_trainable()
            values = self.get_weights()
            cached = [Variable(self, i, n, v.shape, t) for i, (n, t, v) in enumerate(zip(names, flags, values))]
            self.__dict__["_variable_cache"] = (self._core, cached)
        return list(cached)

    _WEIGHT_ATTRIBUTES = frozenset(
        ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance", "depthwise_kernel", "pointwise_kernel")
    )

    def __getattr__(self, name: str) -> Any:
        # Only for attributes not found otherwise: Keras' layer.kernel, layer.bias, ... as the
        # Variables of a built layer's weights of that name.
        if name in Layer._WEIGHT_ATTRIBUTES and self.__dict__.get("_core_layer") is not None and self.built:
            for v in self._variables():
                if v.name == name:
                    return v
        if hasattr(type(self), name):  # a property that raised AttributeError: raise its own message
            return object.__getattribute__(self, name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    @property
    def weights(self) -> list:
        """The weights as Keras-style Variables (``.numpy()``, ``.shape``, ``.name``, ``.path``,
        ``.assign()``; ``np.asarray(v)`` gives the value); ``get_weights()`` gives arrays."""
        return self._variables()

    def _weights_split(self, trainable: bool, layer_trainable: bool | None = None) -> list:
        """The Variables that train (or do not): Keras counts every weight of a frozen layer,
        and BatchNormalization's moving statistics, as non-trainable."""
        on = self._trainable if layer_trainable is None else layer_trainable
        return [v for v in self._variables() if (on and v.trainable) == trainable]

    @property
    def trainable_weights(self) -> list:
        return self._weights_split(True)

    @property
    def non_trainable_weights(self) -> list:
        return self._weights_split(False)

    def count_params(self) -> int:
        self._require_built("count_params()")
        return int(self._core.count_params())

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self._trainable}

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**config)

    # -- helpers ---------------------------------------------------------------------------
    def _set_regularizers(self, kernel: Any, bias: Any) -> None:
        from . import regularizers

        self.kernel_regularizer = regularizers.get(kernel)
        self.bias_regularizer = regularizers.get(bias)
        for weight, reg in (("kernel", self.kernel_regularizer), ("bias", self.bias_regularizer)):
            if reg is not None:
                self._core.set_regularizer(weight, reg.l1, reg.l2)

    def _regularizer_config(self) -> dict:
        from . import regularizers

        return {
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }

    @property
    def _where(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(f"{self._where}: {what} is not available before the layer is built")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _input_shapes(input_shape: Any, who: str) -> list[tuple[int, ...]]:
    """One per-sample shape, or several (a list of shapes: one per input of a merge layer),
    each with or without its leading batch dim None."""
    if (
        isinstance(input_shape, (tuple, list))
        and input_shape
        and all(isinstance(s, (tuple, list)) for s in input_shape)
    ):
        shapes = list(input_shape)
    else:
        shapes = [input_shape]
    out = []
    for shape in shapes:
        shape = tuple(shape)
        if shape and shape[0] is None:
            shape = shape[1:]
        out.append(_shape_tuple(shape, "input_shape", who))
    return out


class InputLayer(Layer):
    """The model's input, Keras' ``InputLayer``: made by ``Input((28, 28, 1))``, whose result
    (a KerasTensor) starts a functional model or a ``Sequential``."""

    def __init__(
        self,
        shape: Any = None,
        batch_size: int | None = None,
        dtype: Any = None,
        sparse: Any = None,
        batch_shape: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        if "input_shape" in kwargs and shape is None:
            shape = kwargs.pop("input_shape")
        if kwargs.get("optional") is False:  # Keras' default; optional inputs are not supported
            del kwargs["optional"]
        if kwargs:
            raise TypeError(f"Input: unrecognized keyword arguments: {sorted(kwargs)}")
        if dtype not in (None, "float32"):
            raise ValueError(f"Input: cnnx computes in float32; expected dtype=None or 'float32', received {dtype!r}")
        if sparse:
            raise ValueError(
                f"Input: sparse inputs are not supported; expected sparse=None or False, received {sparse!r}"
            )
        if batch_shape is not None:
            if shape is not None:
                raise ValueError("Input: pass shape or batch_shape, not both")
            if not isinstance(batch_shape, (tuple, list)) or not batch_shape:
                raise TypeError(f"Input: expected batch_shape such as (None, 28, 28, 1), received {batch_shape!r}")
            batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
        if shape is None:
            raise ValueError("Input: expected shape, e.g. Input((28, 28, 1)), received shape=None")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
        ):
            raise ValueError(f"Input: expected batch_size to be None or a positive int, received {batch_size!r}")
        super().__init__(name=name or _auto_name("InputLayer"))
        self.shape = (None, *_shape_tuple(shape, "shape", "Input"))
        self.batch_size = None if batch_size is None else int(batch_size)
        from ._graph import KerasTensor, Node

        Node(self, [], [KerasTensor(self.shape, name=self.name)])

    @property
    def built(self) -> bool:
        return True

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = _check_bool(value, "trainable", self._where)

    @property
    def input_shape(self) -> tuple:
        return self.shape

    @property
    def output_shape(self) -> tuple:
        return self.shape

    def build(self, input_shape: Any) -> None:
        pass

    def get_weights(self) -> list[np.ndarray]:
        return []

    def set_weights(self, weights: list) -> None:
        if list(weights):
            raise ValueError(f"{self._where}: an InputLayer has no weights; received {len(list(weights))} arrays")

    def _variables(self) -> list:
        return []

    def count_params(self) -> int:
        return 0

    def __call__(self, x: Any, training: bool = False) -> Any:
        raise TypeError(f"{self._where}: an InputLayer is not called; use the KerasTensor Input(...) returns")

    def get_config(self) -> dict:
        return {"batch_shape": list(self.shape), "dtype": "float32", "sparse": False, "name": self.name}

    def __repr__(self) -> str:
        return f"<InputLayer name={self.name}, shape={self.shape}>"


def Input(
    shape: Any = None,
    batch_size: int | None = None,
    dtype: Any = None,
    sparse: Any = None,
    batch_shape: Any = None,
    name: str | None = None,
    **kwargs: Any,
) -> Any:
    """Keras' ``keras.Input``: the symbolic input of a model (a KerasTensor of shape
    (None, *shape), channels-last). Starts a functional model, ``Model(inputs, outputs)``,
    or a ``Sequential([Input((28, 28, 1)), ...])``."""
    layer = InputLayer(
        shape, batch_size=batch_size, dtype=dtype, sparse=sparse, batch_shape=batch_shape, name=name, **kwargs
    )
    return layer.output


def _core_seed() -> int:
    """A fresh seed from the core's global generator (seeded by cnnx.utils.set_random_seed)."""
    return int(_core.next_seed())


class Conv2D(Layer):
    """2-D convolution, ``keras.layers.Conv2D``: kernel (kh, kw, cin, filters), bias (filters,)."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        w = f"Conv2D '{self.name}'"
        if not isinstance(filters, (int, np.integer)) or isinstance(filters, bool):
            raise TypeError(f"{w}: expected filters to be a positive integer, received filters={filters!r}")
        _check_data_format(data_format, w)
        self.filters = int(filters)
        self.kernel_size = _positive_int_tuple(kernel_size, 2, "kernel_size", w)
        self.strides = _positive_int_tuple(strides, 2, "strides", w)
        self.dilation_rate = _positive_int_tuple(dilation_rate, 2, "dilation_rate", w)
        self.padding = _string(padding, "padding", w)
        self.activation = _activation_name(activation, w)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _string(kernel_initializer, "kernel_initializer", w)
        self.bias_initializer = _string(bias_initializer, "bias_initializer", w)
        self._core = _core.Conv2D(
            self.name,
            self.filters,
            self.kernel_size,
            self.strides,
            self.padding,
            self.dilation_rate,
            self.activation,
            self.use_bias,
            self.kernel_initializer,
            self.bias_initializer,
        )
        self._set_regularizers(kernel_regularizer, bias_regularizer)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": "channels_last",
            "dilation_rate": self.dilation_rate,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            **self._regularizer_config(),
        }


class _Pooling2D(Layer):
    """Shared arguments of the 2-D window poolings; ``strides=None`` means the pool size."""

    _core_class: Any = None

    def __init__(
        self,
        pool_size: Any = (2, 2),
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        w = self._where
        _check_data_format(data_format, w)
        self.pool_size = _positive_int_tuple(pool_size, 2, "pool_size", w)
        # Only None means "the pool size": the core also reads a zero stride that way.
        self.strides = self.pool_size if strides is None else _positive_int_tuple(strides, 2, "strides", w)
        self.padding = _string(padding, "padding", w)
        self._core = type(self)._core_class(self.name, self.pool_size, self.strides, self.padding)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": "channels_last",
        }


class MaxPooling2D(_Pooling2D):
    """2-D max pooling, ``keras.layers.MaxPooling2D``; ``strides=None`` means the pool size."""

    _core_class = _core.MaxPooling2D


class Flatten(Layer):
    """Flattens each sample to 1-D in channels-last order, ``keras.layers.Flatten``."""

    def __init__(self, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        _check_data_format(data_format, f"Flatten '{self.name}'")
        self._core = _core.Flatten(self.name)

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": "channels_last"}


class Dense(Layer):
    """Fully-connected layer on the last axis, ``keras.layers.Dense``: kernel (in, units)."""

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        w = f"Dense '{self.name}'"
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool):
            raise TypeError(f"{w}: expected units to be a positive integer, received units={units!r}")
        self.units = int(units)
        self.activation = _activation_name(activation, w)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _string(kernel_initializer, "kernel_initializer", w)
        self.bias_initializer = _string(bias_initializer, "bias_initializer", w)
        self._core = _core.Dense(
            self.name, self.units, self.activation, self.use_bias, self.kernel_initializer, self.bias_initializer
        )
        self._set_regularizers(kernel_regularizer, bias_regularizer)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            **self._regularizer_config(),
        }


def _number(value: Any, arg: str, layer: str) -> float:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{layer}: expected {arg} to be a number, received {arg}={value!r}")


def _int(value: Any, arg: str, layer: str) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"{layer}: expected {arg} to be an int, received {arg}={value!r}")


def _unsupported(layer: str, **values: Any) -> None:
    """Keras arguments cnnx accepts only at their default (None / False)."""
    for arg, value in values.items():
        if value not in (None, False):
            raise ValueError(f"{layer}: {arg} is not supported; expected {arg}=None, received {arg}={value!r}")


class Dropout(Layer):
    """Inverted dropout, ``keras.layers.Dropout``: active only with ``training=True``."""

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        w = f"Dropout '{self.name}'"
        self.rate = _number(rate, "rate", w)
        if noise_shape is not None:
            if not isinstance(noise_shape, (tuple, list)) or not all(
                d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool)) for d in noise_shape
            ):
                raise TypeError(
                    f"{w}: expected noise_shape to be None or a tuple of ints and None such as "
                    f"(None, 1, 1, 8), received noise_shape={noise_shape!r}"
                )
            noise_shape = tuple(None if d is None else int(d) for d in noise_shape)
            if any(d is not None and d < 1 for d in noise_shape):
                # The core reads -1 as None, so a negative entry would pass silently.
                raise ValueError(
                    f"{w}: expected noise_shape entries to be positive or None, received noise_shape={noise_shape!r}"
                )
        self.noise_shape = noise_shape
        self.seed = seed = _seed(seed, w)
        core_noise = [] if noise_shape is None else [-1 if d is None else d for d in noise_shape]
        self._core = _core.Dropout(self.name, self.rate, core_noise, seed)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


class BatchNormalization(Layer):
    """``keras.layers.BatchNormalization`` over the channels (last) axis: weights gamma, beta,
    moving_mean, moving_variance (the last two non-trainable)."""

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: str = "zeros",
        gamma_initializer: str = "ones",
        moving_mean_initializer: str = "zeros",
        moving_variance_initializer: str = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        synchronized: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        w = f"BatchNormalization '{self.name}'"
        if isinstance(axis, (tuple, list)) and len(axis) == 1:
            axis = axis[0]
        self.axis = _int(axis, "axis", w)
        self.momentum = _number(momentum, "momentum", w)
        self.epsilon = _number(epsilon, "epsilon", w)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = _string(beta_initializer, "beta_initializer", w)
        self.gamma_initializer = _string(gamma_initializer, "gamma_initializer", w)
        self.moving_mean_initializer = _string(moving_mean_initializer, "moving_mean_initializer", w)
        self.moving_variance_initializer = _string(moving_variance_initializer, "moving_variance_initializer", w)
        _unsupported(w, beta_constraint=beta_constraint, gamma_constraint=gamma_constraint)
        if synchronized:
            raise ValueError(f"{w}: synchronized=True is not supported (cnnx runs on one device)")
        self._core = _core.BatchNormalization(
            self.name,
            self.axis,
            self.momentum,
            self.epsilon,
            self.center,
            self.scale,
            self.beta_initializer,
            self.gamma_initializer,
            self.moving_mean_initializer,
            self.moving_variance_initializer,
        )
        from . import regularizers

        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        for weight, reg in (("beta", self.beta_regularizer), ("gamma", self.gamma_regularizer)):
            if reg is not None:
                self._core.set_regularizer(weight, reg.l1, reg.l2)

    def get_config(self) -> dict:
        from . import regularizers

        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
            "moving_mean_initializer": self.moving_mean_initializer,
            "moving_variance_initializer": self.moving_variance_initializer,
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
        }


class AveragePooling2D(_Pooling2D):
    """2-D average pooling, ``keras.layers.AveragePooling2D``; with ``padding="same"`` padded
    positions are not counted in the average (as in Keras/TensorFlow)."""

    _core_class = _core.AveragePooling2D


class _GlobalPooling2D(Layer):
    _core_class: Any = None

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        _check_data_format(data_format, self._where)
        self.keepdims = bool(keepdims)
        self._core = self._core_class(self.name, self.keepdims)

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": "channels_last", "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """Mean over height and width, ``keras.layers.GlobalAveragePooling2D``: (h, w, c) -> (c,)."""

    _core_class = _core.GlobalAveragePooling2D


class GlobalMaxPooling2D(_GlobalPooling2D):
    """Max over height and width, ``keras.layers.GlobalMaxPooling2D``: (h, w, c) -> (c,)."""

    _core_class = _core.GlobalMaxPooling2D


class Activation(Layer):
    """Applies an activation by name, ``keras.layers.Activation``: linear, relu, sigmoid, tanh,
    softmax (last axis), leaky_relu (negative_slope 0.2), elu (alpha 1.0)."""

    def __init__(self, activation: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.activation = _activation_name(activation, self._where)
        self._core = _core.Activation(self.name, self.activation)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation}


class ReLU(Layer):
    """``keras.layers.ReLU``: x > threshold -> min(x, max_value), else negative_slope * (x - threshold)."""

    def __init__(
        self, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0, **kwargs: Any
    ):
        super().__init__(**kwargs)
        w = self._where
        self.max_value = None if max_value is None else _number(max_value, "max_value", w)
        self.negative_slope = _number(negative_slope, "negative_slope", w)
        self.threshold = _number(threshold, "threshold", w)
        self._core = _core.ReLU(self.name, self.max_value, self.negative_slope, self.threshold)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


class LeakyReLU(Layer):
    """``keras.layers.LeakyReLU``: x if x > 0 else negative_slope * x (``alpha=`` is Keras 2's name)."""

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = _number(negative_slope, "negative_slope", self._where)
        self._core = _core.LeakyReLU(self.name, self.negative_slope)

    def get_config(self) -> dict:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """``keras.layers.ELU``: x if x > 0 else alpha * (exp(x) - 1); alpha >= 0."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.alpha = _number(alpha, "alpha", self._where)
        self._core = _core.ELU(self.name, self.alpha)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(Layer):
    """``keras.layers.Softmax`` over the last axis (the only axis cnnx supports)."""

    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axis, (tuple, list)) and len(axis) == 1:
            axis = axis[0]
        self.axis = _int(axis, "axis", self._where)
        self._core = _core.Softmax(self.name, self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


class Rescaling(Layer):
    """``keras.layers.Rescaling``: y = x * scale + offset, e.g. ``Rescaling(1 / 255)``."""

    _accepts_single_image = True

    def __init__(self, scale: float, offset: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.scale = _number(scale, "scale", self._where)
        self.offset = _number(offset, "offset", self._where)
        self._core = _core.Rescaling(self.name, self.scale, self.offset)

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Reshape(Layer):
    """``keras.layers.Reshape``: per-sample ``target_shape`` (no batch axis); one entry may be -1."""

    def __init__(self, target_shape: Any, **kwargs: Any):
        super().__init__(**kwargs)
        w = self._where
        if isinstance(target_shape, (int, np.integer)) and not isinstance(target_shape, bool):
            target_shape = (target_shape,)
        if not isinstance(target_shape, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in target_shape
        ):
            raise TypeError(
                f"{w}: expected target_shape to be a tuple of ints such as (7, 7, 3), "
                f"received target_shape={target_shape!r}"
            )
        self.target_shape = tuple(int(d) for d in target_shape)
        self._core = _core.Reshape(self.name, list(self.target_shape))

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": self.target_shape}


# -- image preprocessing and augmentation ---------------------------------------------------------


def _seed(seed: Any, layer: str) -> int | None:
    if seed is None:
        return None
    seed = _int(seed, "seed", layer)
    if seed < 0:
        raise ValueError(f"{layer}: expected seed to be a non-negative int or None, received seed={seed}")
    return seed


def _factor(value: Any, arg: str, layer: str, single: str) -> tuple[float, float]:
    """Keras' factor argument: a number or a (lower, upper) pair. A single number f gives
    (-|f|, |f|) ("abs"), (-f, f) ("neg") or (f, f) ("same"); the core checks the ranges."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (_number(value[0], arg, layer), _number(value[1], arg, layer))
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        f = float(value)
        return {"abs": (-abs(f), abs(f)), "neg": (-f, f), "same": (f, f)}[single]
    raise TypeError(
        f"{layer}: expected {arg} to be a number or a tuple of 2 numbers (lower, upper), received {arg}={value!r}"
    )


class Resizing(Layer):
    """``keras.layers.Resizing``: resizes (h, w, c) images to (height, width, c) in training and
    inference alike, as ``tf.image.resize`` (half-pixel centres, no antialiasing); interpolation
    "bilinear" or "nearest". ``crop_to_aspect_ratio=True`` first crops the largest centred window
    with the target aspect ratio."""

    _accepts_single_image = True

    def __init__(
        self,
        height: int,
        width: int,
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        pad_to_aspect_ratio: bool = False,
        fill_mode: str = "constant",
        fill_value: float = 0.0,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        w = self._where
        _check_data_format(data_format, w)
        self.height = _int(height, "height", w)
        self.width = _int(width, "width", w)
        self.interpolation = _string(interpolation, "interpolation", w)
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        if pad_to_aspect_ratio:
            raise ValueError(
                f"{w}: pad_to_aspect_ratio is not supported; expected pad_to_aspect_ratio=False, "
                f"received pad_to_aspect_ratio={pad_to_aspect_ratio!r}"
            )
        self.fill_mode = _string(fill_mode, "fill_mode", w)
        self.fill_value = _number(fill_value, "fill_value", w)
        self._core = _core.Resizing(self.name, self.height, self.width, self.interpolation, self.crop_to_aspect_ratio)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
            "pad_to_aspect_ratio": False,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "data_format": "channels_last",
        }


class RandomFlip(Layer):
    """``keras.layers.RandomFlip``: in training, each image is flipped left-right and/or
    top-bottom with probability 1/2 each ("horizontal", "vertical", "horizontal_and_vertical");
    at inference the exact identity."""

    _accepts_single_image = True

    def __init__(
        self,
        mode: str = "horizontal_and_vertical",
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        w = self._where
        _check_data_format(data_format, w)
        self.mode = _string(mode, "mode", w)
        self.seed = _seed(seed, w)
        self._core = _core.RandomFlip(self.name, self.mode, self.seed)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode, "seed": self.seed, "data_format": "channels_last"}


class _RandomAffine(Layer):
    """Shared fill_mode / interpolation / seed / fill_value of the geometric random layers."""

    _accepts_single_image = True

    def _affine_args(self, fill_mode: Any, interpolation: Any, seed: Any, fill_value: Any, data_format: Any) -> None:
        w = self._where
        _check_data_format(data_format, w)
        self.fill_mode = _string(fill_mode, "fill_mode", w)
        self.interpolation = _string(interpolation, "interpolation", w)
        self.seed = _seed(seed, w)
        self.fill_value = _number(fill_value, "fill_value", w)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "seed": self.seed,
            "fill_value": self.fill_value,
            "data_format": "channels_last",
        }


class RandomRotation(_RandomAffine):
    """``keras.layers.RandomRotation``: in training, rotates each image about its centre by a
    random fraction of 2 pi drawn in [lower, upper] (factor f means (-f, f)); positive turns
    counter-clockwise. Exact identity at inference."""

    def __init__(
        self,
        factor: Any,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self._affine_args(fill_mode, interpolation, seed, fill_value, data_format)
        self.factor = factor
        lo_hi = _factor(factor, "factor", self._where, "abs")
        self._core = _core.RandomRotation(
            self.name, lo_hi, self.fill_mode, self.interpolation, self.seed, self.fill_value
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor}


class RandomTranslation(_RandomAffine):
    """``keras.layers.RandomTranslation``: in training, shifts each image by a random fraction
    of its height (positive: down) and width (positive: right), each factor a number f
    (meaning (-f, f)) or a (lower, upper) pair in [-1, 1]. Exact identity at inference."""

    def __init__(
        self,
        height_factor: Any,
        width_factor: Any,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self._affine_args(fill_mode, interpolation, seed, fill_value, data_format)
        self.height_factor = height_factor
        self.width_factor = width_factor
        hf = _factor(height_factor, "height_factor", self._where, "neg")
        wf = _factor(width_factor, "width_factor", self._where, "neg")
        self._core = _core.RandomTranslation(
            self.name, hf, wf, self.fill_mode, self.interpolation, self.seed, self.fill_value
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


class RandomZoom(_RandomAffine):
    """``keras.layers.RandomZoom``: in training, scales each image about its centre by 1 + u
    vertically and 1 + v horizontally (u, v drawn from the factors; width_factor=None keeps the
    aspect ratio). Keras' convention: a positive factor zooms out, a negative one zooms in.
    Exact identity at inference."""

    def __init__(
        self,
        height_factor: Any,
        width_factor: Any = None,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self._affine_args(fill_mode, interpolation, seed, fill_value, data_format)
        self.height_factor = height_factor
        self.width_factor = width_factor
        hf = _factor(height_factor, "height_factor", self._where, "neg")
        wf = None if width_factor is None else _factor(width_factor, "width_factor", self._where, "neg")
        self._core = _core.RandomZoom(self.name, hf, wf, self.fill_mode, self.interpolation, self.seed, self.fill_value)

    def get_config(self) -> dict:
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


class RandomContrast(Layer):
    """``keras.layers.RandomContrast``: in training, per image a factor c in [1 - lower,
    1 + upper] (factor f means lower = upper = f, all in [0, 1]); per channel
    y = clip((x - mean) * c + mean, value_range) with the mean over height and width. Exact
    identity at inference."""

    _accepts_single_image = True

    def __init__(self, factor: Any, value_range: Any = (0, 255), seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        w = self._where
        self.factor = factor
        lo_hi = _factor(factor, "factor", w, "same")
        if not (isinstance(value_range, (tuple, list)) and len(value_range) == 2):
            raise TypeError(
                f"{w}: expected value_range to be a tuple of 2 numbers (min, max), received value_range={value_range!r}"
            )
        self.value_range = (_number(value_range[0], "value_range", w), _number(value_range[1], "value_range", w))
        self.seed = _seed(seed, w)
        self._core = _core.RandomContrast(self.name, lo_hi, self.value_range, self.seed)

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range, "seed": self.seed}


# The merge layers (merging.py) and the depthwise convolutions (convolutional.py) build on the
# Layer base class and helpers above; imported last for that reason.
from .convolutional import DepthwiseConv2D, SeparableConv2D  # noqa: E402
from .merging import (  # noqa: E402
    Add,
    Average,
    Concatenate,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    maximum,
    minimum,
    multiply,
    subtract,
)
