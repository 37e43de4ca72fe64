"""``Functional``: a model defined as a graph of layer calls (Keras' functional API), made by
``cnnx.Model(inputs, outputs)``. Run by a core graph (``_core.Model``) whose nodes are the
layer calls, nested models' layers inlined."""

from __future__ import annotations

from typing import Any

from . import _core
from .layers import InputLayer, _check_bool
from .models import Model, _CoreGraph, _layer_from_entry, _shape

__all__ = ["Functional"]


class Functional(Model):
    """A model defined as a graph of layer calls, Keras' functional API::

        inputs = cnnx.Input((32, 32, 3))
        x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
        y = layers.Conv2D(16, 3, padding="same")(x)
        outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(y))
        model = cnnx.Model(inputs, outputs)

    Made by ``cnnx.Model(inputs, outputs)``. One input and one output for now."""

    _kind = "Functional"

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None, trainable: bool = True, **kwargs: Any):
        from ._graph import map_graph

        if kwargs:
            raise TypeError(f"Model: unrecognized keyword arguments: {sorted(kwargs)}")
        self._init_model(name, True)
        self._inputs_struct, self._outputs_struct = inputs, outputs
        self._inputs = self._tensor_list(inputs, "inputs")
        self._outputs = self._tensor_list(outputs, "outputs")
        for t in self._inputs:
            op = t._keras_history.operation if t._keras_history is not None else None
            if not isinstance(op, InputLayer):
                raise ValueError(
                    f"Model: expected inputs made by cnnx.Input(...); received {t}, the output of layer "
                    f"'{getattr(op, 'name', None)}' (cnnx does not cut models at intermediate tensors yet)"
                )
        self._nodes, self._operations = map_graph(self._inputs, self._outputs)
        self._node_ids = {id(node) for node in self._nodes}
        if not any(not node.is_input for node in self._nodes):
            raise ValueError(f"{self._where}: expected at least one layer between the input and the output")
        self._input_shape = tuple(self._inputs[0].shape[1:])
        self._output_shape = tuple(self._outputs[0].shape[1:])
        self._check_unique_names()
        self._core = self._make_core()
        self._check_core_order()
        self._claim_layers()
        if not _check_bool(trainable, "trainable", self._where):
            self.trainable = False

    @staticmethod
    def _tensor_list(value: Any, arg: str) -> list:
        from ._graph import KerasTensor

        items = list(value) if isinstance(value, (list, tuple)) else [value]
        for x in items:
            if not isinstance(x, KerasTensor):
                raise ValueError(
                    f"All `{arg}` values must be KerasTensors. Received: {arg}={value} including invalid "
                    f"value {x} of type {type(x)}"
                )
        if not items:
            raise ValueError(f"`{arg}` argument cannot be empty. Received: {arg}={value}")
        if len(items) > 1:
            raise ValueError(
                f"Model: cnnx supports one input and one output per model for now; received {len(items)} {arg}"
            )
        return items

    def _make_core(self) -> Any:
        g = _core.Model()
        out = self._emit(_CoreGraph(g), int(g.add_input(list(self._input_shape))))
        g.set_output(out)
        g.build()
        return g

    def _emit(self, g: Any, node: int) -> int:
        ids = {id(self._inputs[0]): node}
        for n in self._nodes:
            if n.is_input:
                continue
            inputs = [ids[id(t)] for t in n.input_tensors]
            op = n.operation
            ids[id(n.output_tensors[0])] = op._emit(g, inputs[0]) if isinstance(op, Model) else g.add_node(op, inputs)
        return ids[id(self._outputs[0])]

    @property
    def layers(self) -> list:
        """The InputLayer, layers and nested models, in Keras' order (by depth from the input)."""
        return list(self._operations)

    @property
    def inputs(self) -> list:
        return list(self._inputs)

    @property
    def outputs(self) -> list:
        return list(self._outputs)

    @property
    def input(self) -> Any:
        return self._inputs_struct

    @property
    def output(self) -> Any:
        return self._outputs_struct

    def _first_layer(self) -> Any:
        return self._inputs[0]._keras_history.operation

    def build(self, input_shape: Any = None) -> None:
        """A functional model is built when it is made; checks ``input_shape`` if given."""
        if input_shape is not None:
            shape = tuple(input_shape)
            self._build_for(shape[1:] if shape and shape[0] is None else shape, self._where)

    def _build_for(self, shape: tuple, who: str) -> tuple:
        if tuple(shape) != self._input_shape:
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: expected shape='
                f"{_shape((None, *self._input_shape))}, found shape={_shape((None, *shape))}"
            )
        return self._output_shape

    def get_config(self) -> dict:
        """Keras' functional config: layers with their inbound nodes, input and output layers."""
        from ._graph import functional_config

        return functional_config(self)

    @classmethod
    def from_config(cls, config: dict) -> Functional:
        """Rebuilds the graph from ``get_config()`` (weights freshly initialised)."""
        return cls._from_config(config, {})

    @classmethod
    def _from_config(cls, config: dict, registry: dict | None) -> Functional:
        from ._graph import functional_from_config

        return functional_from_config(cls, config, lambda entry, who: _layer_from_entry(entry, who, registry))
