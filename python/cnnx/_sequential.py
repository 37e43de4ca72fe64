"""``Sequential``: a linear stack of layers and models. Run by the core's chain
(``_core.Sequential``), or by a core graph (``_core.Model``) once it holds a model with
branches or uses a layer twice."""

from __future__ import annotations

import weakref
from typing import Any

from . import _core
from .layers import InputLayer, Layer, _check_bool
from .models import Model, _CoreGraph, _emit_item, _layer_entry, _layer_from_entry, _note_container, _shape

__all__ = ["Sequential"]


class Sequential(Model):
    """A linear stack of layers with Keras' ``Sequential`` API; an element may itself be a
    model (e.g. an augmentation ``Sequential``), whose layers are then shared."""

    _kind = "Sequential"

    def __init__(self, layers: list | None = None, name: str | None = None, trainable: bool = True):
        self._init_model(name, trainable)
        self._items: list = []  # layers and nested models, as added
        self._input_layer: InputLayer | None = None
        self._graph_tail: int | None = None  # core node of the last element, once the core is a graph
        self._symbolic: tuple | None = None  # (input, output) KerasTensors, once made
        self._building = False  # building its elements now (see _rebuild_for_size)
        self._flat_cache = []
        self._flat_ids: set[int] = set()
        self._flat_names: set[str] = set()
        self._core = _core.Sequential()
        if layers is not None:
            if not isinstance(layers, (list, tuple)):
                raise TypeError(f"Sequential: expected a list of layers, received {type(layers).__name__}")
            for layer in layers:
                self.add(layer)

    # -- composition -------------------------------------------------------------------------
    def add(self, layer: Any) -> None:
        """Appends a layer or a model; an ``Input`` may only come first. Builds it when the
        input is known."""
        from ._graph import KerasTensor

        if isinstance(layer, KerasTensor):
            op = layer._keras_history.operation if layer._keras_history is not None else None
            if not isinstance(op, InputLayer):
                raise TypeError(
                    f"Sequential.add: expected a cnnx Layer instance or Input(...), received {layer!r} (the output "
                    f"of layer '{getattr(op, 'name', None)}'); for a graph of layer calls use cnnx.Model(inputs, outputs)"
                )
            layer = op
        if isinstance(layer, InputLayer):
            if self._items or self._input_shape is not None:
                raise ValueError("Sequential.add: an Input can only be the first element of a Sequential model")
            self._input_layer = layer
            self._input_shape = tuple(layer.shape[1:])
            self._output_shape = self._input_shape
            return
        if not isinstance(layer, (Layer, Model)):
            raise TypeError(f"Sequential.add: expected a cnnx Layer instance, received {layer!r}")
        if layer is self:
            raise ValueError(f"Sequential.add: model '{self.name}' cannot contain itself")
        if self._core.built:
            # Keras rebuilds the model: the layers keep their weights, the core is made anew
            # (so the model needs compiling again: the optimizer's state was the old stack's).
            self._restack(list(self._items))
        if not self._items and self._input_shape is None:
            given = layer._input_shape if isinstance(layer, Model) else layer._input_shape_arg
            if given is not None:
                self._input_shape = given
                self._output_shape = given
        out = None
        if self._output_shape is not None:
            # Build now, as Keras does when the input is known, so weights and shapes exist and
            # a shape mismatch is reported at the layer that causes it.
            out = _build_item(layer, self._output_shape, "Sequential.add")
        self._append(layer)
        self._output_shape = out
        if self._symbolic is not None:  # model.input / output were asked for already: extend them
            self._symbolic = (self._symbolic[0], layer(self._symbolic[1]))

    def pop(self, rebuild: bool = True) -> Any:
        """Removes the last layer (or nested model) and returns it, as Keras' ``pop``. The
        remaining layers keep their weights; the model can then be extended with ``add``. An
        ``Input`` is not a layer and stays. The model must be compiled again before training
        (the optimizer's state belonged to the old stack of layers). ``rebuild`` is accepted
        for Keras' signature: the remaining layers are already built for the model's input."""
        _check_bool(rebuild, "rebuild", f"Sequential.pop of '{self.name}'")
        if not self._items:
            raise IndexError(f"Sequential.pop: model '{self.name}' has no layers to remove")
        removed, keep = self._items[-1], self._items[:-1]
        symbolic, self._symbolic = self._symbolic, None
        self._restack(keep)
        if symbolic is not None and keep:
            # The graph already holds the output of the element before the removed one: the
            # tensor the removed element was called on (calling the layers again would give
            # each a second inbound node).
            history = symbolic[1]._keras_history
            node = history.operation._inbound_nodes[history.node_index]
            self._symbolic = (symbolic[0], node.input_tensors[0])
        # The removed layers no longer run in this model's core: they read their weights from
        # their own core layers again, as layers that belong to no model.
        for layer in removed._flat_layers() if isinstance(removed, Model) else [removed]:
            if id(layer) not in self._flat_ids:
                layer._model_ref = None
                layer.__dict__.get("_in_models", weakref.WeakSet()).discard(self)
        if isinstance(removed, Model) and all(removed is not item for item in self._items):
            removed.__dict__.get("_in_models", weakref.WeakSet()).discard(self)
        return removed

    def _restack(self, items: list) -> None:
        """A new, unbuilt core running `items` (built layers, which keep their weights); the
        model must be compiled again."""
        self._items = []
        self._graph_tail = None
        self._flat_cache, self._flat_ids, self._flat_names = [], set(), set()
        self._core = _core.Sequential()
        self._output_shape = self._input_shape
        self._building = True
        try:
            for item in items:
                if self._output_shape is not None:
                    self._output_shape = _build_item(item, self._output_shape, self._where)
                self._append(item)
        finally:
            self._building = False
        self.compiled = False
        if self.__dict__.pop("_stale_core", False):
            self._restack(items)

    def _append(self, item: Any) -> None:
        # The distinct layers, kept up to date here: recomputing them per add would make
        # building a long Sequential quadratic.
        before = self._flat_ids
        added = item._flat_layers() if isinstance(item, Model) else [item]
        new = [layer for layer in dict.fromkeys(added) if id(layer) not in before]
        names = self._flat_names.copy()
        for layer in new:
            if layer.name in names:
                raise ValueError(
                    f'The name "{layer.name}" is used 2 times in the model. '
                    "All operation names should be unique (layers of nested models included)."
                )
            names.add(layer.name)
        chain = item._chain_layers() if isinstance(item, Model) else [item]
        if chain is not None and (len({id(x) for x in chain}) < len(chain) or any(id(x) in before for x in chain)):
            chain = None  # a layer used again (shared weights): only a core graph runs that
        if self._graph_tail is None and chain is not None:
            for layer in chain:
                self._core.add(layer._core)
        elif self._graph_tail is None:
            # Branches or a layer used twice: from now on this Sequential runs as a core graph.
            if self._input_shape is None:
                what = (
                    f"{item._where} has branches or uses a layer again"
                    if isinstance(item, Model)
                    else f"layer '{item.name}' is used again"
                )
                raise ValueError(
                    f"Sequential.add: {what}, so Sequential '{self.name}' runs as a graph, which needs "
                    "its input shape first: start it with Input((h, w, c))"
                )
            g = _core.Model()
            node = int(g.add_input(list(self._input_shape)))
            for each in [*self._items, item]:
                node = _emit_item(_CoreGraph(g), each, node)
            self._core, self._graph_tail = g, node
        else:
            self._graph_tail = _emit_item(_CoreGraph(self._core), item, self._graph_tail)
        self._items.append(item)
        self._flat_cache = [*self._flat_layers(), *new]
        self._flat_ids = before | {id(layer) for layer in new}
        self._flat_names = names
        for layer in new:
            layer._model_ref = weakref.ref(self)
        for obj in [*new, *([item] if isinstance(item, Model) else [])]:
            _note_container(obj, self)

    def _emit(self, g: Any, node: int) -> int:
        for item in self._items:
            node = _emit_item(g, item, node)
        return node

    @property
    def layers(self) -> list:
        """The layers and nested models, in order (Keras: the InputLayer is not listed)."""
        return list(self._items)

    def _first_layer(self) -> Any:
        return self._items[0]

    def _set_input_shape(self, shape: tuple) -> None:
        """Builds every element for per-sample input `shape`, in order."""
        self._input_shape = tuple(int(d) for d in shape)
        out = self._input_shape
        self._building = True
        try:
            for item in self._items:
                out = _build_item(item, out, self._where)
        finally:
            self._building = False
        self._output_shape = out
        if self.__dict__.pop("_stale_core", False):  # an element was rebuilt for another size
            compiled = self.compiled
            self._restack(list(self._items))
            if compiled:  # compiled before it was built: no step was taken, compile the new core
                self.compile(**self._compile_args)

    def build(self, input_shape: Any = None) -> None:
        """Builds every layer for ``input_shape`` ((None, h, w, c) or (h, w, c))."""
        if input_shape is not None:
            shape = tuple(input_shape)
            if shape and shape[0] is None:
                shape = shape[1:]
            if (
                self._input_shape is not None
                and tuple(shape) != self._input_shape
                and not self._rebuild_for_size(tuple(shape))
            ):
                raise ValueError(
                    f"Sequential '{self.name}': expected input shape {_shape((None, *self._input_shape))}, "
                    f"received {_shape((None, *shape))}"
                )
            if self._input_shape is None:
                self._set_input_shape(shape)
        if self._input_shape is None:
            raise ValueError(
                f"Sequential '{self.name}': the input shape is unknown; start the model with "
                "Input((h, w, c)), pass input_shape= to the first layer, or call fit() with data"
            )
        if not self._items:
            raise ValueError(f"Sequential '{self.name}': cannot build a model with no layers")
        if self._graph_tail is None:
            self._core.build(list(self._input_shape))
        elif not self._core.built:
            self._core.set_output(self._graph_tail)
            self._core.build()
        self._check_core_order()
        self._ensure_symbolic()

    def _build_for(self, shape: tuple, who: str) -> tuple:
        if self._input_shape is None:
            if not self._items:
                raise ValueError(f"{who}: Sequential '{self.name}' has no layers")
            self._set_input_shape(shape)
        elif tuple(shape) != self._input_shape and not self._rebuild_for_size(tuple(shape)):
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: expected shape='
                f"{_shape((None, *self._input_shape))}, found shape={_shape((None, *shape))}"
            )
        return self._output_shape

    def _rebuild_for_size(self, shape: tuple) -> bool:
        """Keras' image preprocessing layers hold no weights and take any image size, so a
        Sequential made only of them runs at a new size even after a call built it for another.
        cnnx's core layers are built for one size: this model's layers get new core layers
        (from their configs: names, seeds and settings kept) and the model is built again for
        `shape`. False (nothing changed) when the model is not of that kind; an error when it is
        also part of another built model, which still runs the layers at the old size."""
        models = _preprocessing_sequentials(self)
        if models is None or len(shape) != 3 or len(self._input_shape) != 3:
            return False
        layers = self._flat_layers()
        inside = {id(m) for m in models}
        others: list = []
        for obj in [*models, *layers]:
            for m in list(obj.__dict__.get("_in_models", ())):
                if id(m) not in inside and all(m is not o for o in others):
                    others.append(m)
        for m in others:
            if m.built or (m._input_shape is not None and not m.__dict__.get("_building")):
                old = _shape((None, *self._input_shape))
                raise ValueError(
                    f"{self._where} was built for input shape {old} and cannot be rebuilt for "
                    f"{_shape((None, *shape))}: it is also part of {m._where}, which still needs {old}. "
                    f"Use a copy for the new size, e.g. keras.models.clone_model({self.name})"
                )
        for layer in layers:
            layer._core = type(layer).from_config(layer.get_config())._core
        for m in models:  # nested ones first, so each outer stack takes their new core layers
            m._input_shape = m._output_shape = None
            m._input_layer = None
            m._symbolic = None
            if m is self:
                m._input_shape = tuple(shape)
            m._restack(list(m._items))
        for m in others:  # models not built yet that hold the layers: take the new core layers
            if m.__dict__.get("_building"):
                m._stale_core = True  # it is building its elements now: it restacks when done
            else:
                m._restack(list(m._items))
        return True

    # -- symbolic input and output (Keras: a built Sequential has them) ---------------------------
    def _ensure_symbolic(self) -> tuple:
        """Calls the elements on the model's Input once, so that ``model.input`` and each
        layer's ``output`` exist, e.g. for ``cnnx.Model(model.input, model.layers[-2].output)``."""
        if self._symbolic is None:
            if self._input_shape is None:
                raise AttributeError(
                    f"Sequential model '{self.name}' has no defined input: its input shape is unknown. "
                    "Start it with Input((h, w, c)) or call build(input_shape)"
                )
            if self._input_layer is None:
                self._input_layer = InputLayer(self._input_shape)
            x = self._input_layer.output
            for item in self._items:
                x = item(x)
            self._symbolic = (self._input_layer.output, x)
        return self._symbolic

    @property
    def inputs(self) -> list:
        return [self._ensure_symbolic()[0]]

    @property
    def outputs(self) -> list:
        return [self._ensure_symbolic()[1]]

    @property
    def input(self) -> Any:
        return self._ensure_symbolic()[0]

    @property
    def output(self) -> Any:
        return self._ensure_symbolic()[1]

    # -- configuration -----------------------------------------------------------------------------
    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self._trainable,
            "input_shape": None if self._input_shape is None else (None, *self._input_shape),
            "layers": [_layer_entry(item) for item in self._items],
        }

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        """Rebuilds the architecture from ``get_config()`` (weights freshly initialised)."""
        return cls._from_config(config, {})

    @classmethod
    def _from_config(cls, config: dict, registry: dict | None) -> Sequential:
        from . import layers as layers_mod

        model = cls(name=config.get("name"))
        if config.get("input_shape"):
            model.add(layers_mod.Input(tuple(config["input_shape"])[1:]))
        for entry in config.get("layers", []):
            model.add(_layer_from_entry(entry, "Sequential.from_config", registry))
        if config.get("trainable") is False:
            model._trainable = False  # the layers' own flags come from their configs
        return model


def _preprocessing_sequentials(model: Sequential) -> list | None:
    """`model` and the models nested in it, innermost first, when all are Sequentials run as a
    chain and every layer is a weightless image preprocessing layer; None otherwise."""
    found: list = []

    def walk(m: Any) -> bool:
        if not isinstance(m, Sequential) or m._graph_tail is not None or not m._items:
            return False
        for item in m._items:
            if isinstance(item, Model):
                if not walk(item):
                    return False
            elif not getattr(item, "_accepts_single_image", False):
                return False
        if all(m is not f for f in found):
            found.append(m)
        return True

    return found if walk(model) else None


def _build_item(item: Any, shape: tuple, who: str) -> tuple:
    """Builds a layer or nested model of a Sequential for per-sample input `shape`; returns
    its per-sample output shape."""
    if isinstance(item, Model):
        return tuple(item._build_for(tuple(shape), who))
    item.build(shape)
    return tuple(item._core.output_shape)
