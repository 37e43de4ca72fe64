"""Keras' models: ``Model(inputs, outputs)`` (functional API) and ``Sequential``, composing
layers and driving the core's one-call-per-batch training step.

Python validates and converts the data (one pass, before training), shuffles indices and
reports progress; the forward pass, loss, backward pass and optimizer update of each batch run
in C++ with the GIL released. A model used as a layer of another (nested models) is not known
to the core: its layers are inlined into the outer model's core graph, so using the same
model twice shares its weights, as in Keras.

``Model`` here holds what both kinds share (compile, fit, evaluate, predict, weights, saving,
trainable); ``Functional`` is in _functional.py, ``Sequential`` in _sequential.py.
"""

from __future__ import annotations

import time
import weakref
from collections import Counter
from typing import Any

import numpy as np

from . import _epoch
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from .callbacks import CallbackList, History
from .layers import InputLayer, Layer, _auto_name, _check_bool, _set_core_trainable

__all__ = ["Model", "Functional", "Sequential", "clone_model", "load_model", "model_from_config"]

_ACCURACY_NAMES = ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy")
_TOP_K_NAMES = ("top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy")


class _Tally:
    """Running sums of one pass (epoch, evaluation) from the core's per-batch results. With
    metrics computed in Python the core also returns each batch's (y_pred, y_true,
    sample_weight); they wait in `pending` until Model._logs feeds them to the metric objects."""

    def __init__(self) -> None:
        self.loss = 0.0
        self.correct = self.rows = self.top_k = self.samples = 0
        self.pending: list = []
        self.kept: list | None = None  # a copy of every batch's outputs, when set to a list

    def add(self, result: tuple, n: int) -> None:
        loss, correct, rows, top_k = result[:4]
        if len(result) > 4:
            self.pending.append(result[4])
            if self.kept is not None:
                self.kept.append(result[4])
        self.loss += loss * n
        self.correct += correct
        self.rows += rows
        self.top_k += top_k
        self.samples += n


class _StopOnInterrupt:
    """Within fit: Ctrl-C (SIGINT) asks training to stop after the batch that is running, so the
    model is never left half-updated; a second Ctrl-C interrupts at once as usual. Only in the
    main thread (the only place Python delivers signals)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopOnInterrupt:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)

            def handler(signum: int, frame: Any) -> None:
                if self.requested:  # second Ctrl-C: give up waiting
                    raise KeyboardInterrupt
                self.requested = True

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _as_float_array(x: Any, arg: str, who: str) -> np.ndarray:
    """float32, C-contiguous, converting numbers (uint8 pixels, float64, ints) like Keras does."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{who}: expected {arg} to be a numeric array, received dtype {x.dtype}")
        return np.ascontiguousarray(x, dtype=np.float32)
    if x is None:
        raise TypeError(f"{who}: expected {arg} to be a numpy array, received None")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{who}: expected {arg} to be a numpy array, received {type(x).__name__}: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{who}: expected {arg} to be a numeric array, received {type(x).__name__} of dtype {arr.dtype}"
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def _check_finite(a: np.ndarray, arg: str, who: str) -> None:
    # min and max carry any NaN or infinity without a temporary the size of `a` (the training
    # set, tens of MB); only a bad array pays for the full mask that locates the sample.
    if a.size and not (np.isfinite(a.min()) and np.isfinite(a.max())):
        bad = int(np.argmax((~np.isfinite(a.reshape(len(a), -1))).any(axis=1))) if a.ndim else 0
        raise ValueError(f"{who}: {arg} contains NaN or infinity (first in sample {bad}); expected finite values")


def _is_dataset(x: Any) -> bool:
    """A dataset: any object with ``__len__`` (batches) and ``__iter__`` yielding batches, such as
    ``cnnx.utils.image_dataset_from_directory``'s; arrays and lists are data, not datasets."""
    return (
        hasattr(x, "__iter__")
        and hasattr(x, "__len__")
        and not hasattr(x, "__array__")
        and not isinstance(x, (list, tuple, dict, str, bytes))
    )


def _array_batch_size(batch_size: int | None, n: int, steps: int | None) -> int:
    """Keras' ArrayDataAdapter: without batch_size, ceil(n / steps) when steps are given, else 32."""
    if batch_size:
        return batch_size
    return max(-(-n // steps), 1) if steps else 32


def _unpack_batch(batch: Any, who: str, need_y: bool) -> tuple:
    """(x, y, sample_weight) of one batch yielded by a dataset (a list counts as a tuple, as in Keras)."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if isinstance(batch, tuple) and len(batch) in (1, 2, 3):
        x, y, w = (*batch, None, None)[:3]
    elif isinstance(batch, tuple):
        raise ValueError(
            f"{who}: expected the dataset to yield (x, y) or (x, y, sample_weight) batches, "
            f"received a tuple of {len(batch)}"
        )
    else:
        x, y, w = batch, None, None
    if need_y and y is None:
        raise ValueError(
            f"{who}: expected the dataset to yield (x, y) or (x, y, sample_weight) batches, "
            "received batches without labels"
        )
    return x, y, w


def _check_class_weight(class_weight: Any, who: str) -> dict:
    """{class index: weight} with non-negative int keys and finite non-negative weights. Keras
    would look a negative key up as a label that never occurs and let NaN reach the loss."""
    if not isinstance(class_weight, dict):
        raise TypeError(
            f"{who}: expected class_weight to be a dict {{class index: weight}}, "
            f"received {type(class_weight).__name__}: {class_weight!r}"
        )
    table = {}
    for key, weight in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            raise TypeError(f"{who}: expected class_weight keys to be int class indices, received key {key!r}")
        if key < 0:
            raise ValueError(
                f"{who}: expected class_weight keys to be non-negative class indices, received key {key!r}"
            )
        if isinstance(weight, bool) or not isinstance(weight, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"{who}: expected class_weight values to be numbers, received class_weight[{key!r}]={weight!r}"
            )
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(
                f"{who}: expected class_weight values to be finite non-negative numbers, "
                f"received class_weight[{key!r}]={weight!r}"
            )
        table[int(key)] = float(weight)
    return table


def _check_int(value: Any, arg: str, who: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{who}: expected {arg} to be an int >= {minimum}, received {arg}={value!r}")
    if value < minimum:
        raise ValueError(f"{who}: expected {arg} to be an int >= {minimum}, received {arg}={value!r}")
    return int(value)


def _check_verbose(verbose: Any, who: str) -> int:
    if isinstance(verbose, str) and verbose == "auto":
        return 1
    if isinstance(verbose, (int, np.integer)) and verbose in (0, 1, 2):  # bools too: False/True are 0/1
        return int(verbose)
    raise ValueError(f"{who}: expected verbose to be 'auto', 0, 1 or 2, received verbose={verbose!r}")


def _check_validation_split(split: Any, who: str) -> float:
    if isinstance(split, bool) or not isinstance(split, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"{who}: expected validation_split to be a float in (0, 1), received validation_split={split!r}"
        )
    if not 0.0 <= float(split) < 1.0:  # also NaN
        raise ValueError(
            f"{who}: expected validation_split in (0, 1), or 0 for none, received validation_split={split!r}"
        )
    return float(split)


def _note_container(obj: Any, model: Any) -> None:
    """Remembers (weakly) that `model` runs `obj`, a layer or nested model: a preprocessing
    model rebuilt for another image size (Sequential._rebuild_for_size) must not pull its
    layers from under another model still built for the old size."""
    obj.__dict__.setdefault("_in_models", weakref.WeakSet()).add(model)


def _shape(shape: tuple) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _single_output(value: Any, arg: str) -> Any:
    """The entry for the model's one output of a list or dict of one (Keras' per-output form)."""
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError(f"compile: cnnx models have one output; expected {arg} for one output, received {value!r}")
        return next(iter(value.values()))
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"compile: cnnx models have one output; expected {arg} for one output, received {value!r}")
        return value[0]
    return value


def _metric_list(metrics: Any, arg: str) -> list:
    """compile's metrics as a flat list: a list, a dict {output: [...]} or a list of one list
    per output (one output here)."""
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        metrics = _single_output(metrics, arg)
    if isinstance(metrics, (str, metrics_mod.Metric)) or callable(metrics) and not isinstance(metrics, (list, tuple)):
        raise TypeError(f"compile: expected {arg} to be a list, received {arg}={metrics!r}")
    out = []
    for m in metrics:
        out.extend(m if isinstance(m, (list, tuple)) else [m])
    return out


class _AutoAccuracy(metrics_mod.MeanMetricWrapper):
    """A weighted "accuracy": Keras' choice of binary, sparse categorical or categorical
    accuracy, made from the shapes of the first batch (and cnnx's rule that binary
    cross-entropy means binary accuracy)."""

    def __init__(self, name: str, model: Model, loss: Any) -> None:
        self._binary_loss = isinstance(loss, losses_mod.BinaryCrossentropy)
        super().__init__(self._pick, name=name)

    def _pick(self, y_true: Any, y_pred: Any) -> np.ndarray:
        t, p = np.asarray(y_true), np.asarray(y_pred)
        if self._binary_loss or p.shape[-1] == 1:
            return metrics_mod.binary_accuracy(t, p)
        if t.ndim < p.ndim or t.shape[-1] == 1:
            return metrics_mod.sparse_categorical_accuracy(t, p)
        return metrics_mod.categorical_accuracy(t, p)


class _Recorder:
    """Stands in for the core graph while a model lists what it would add to it (Model._emit):
    the layers in the core's first-use order and the inputs of each node (node 0: the input)."""

    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.inputs: list[list[int]] = []

    def add_node(self, layer: Layer, inputs: list[int]) -> int:
        self.layers.append(layer)
        self.inputs.append(list(inputs))
        return len(self.layers)


class _CoreGraph:
    """A core graph (``_core.Model``) as Model._emit adds to it: a layer goes in as its core
    layer; the same layer added twice is one layer used twice (shared weights)."""

    def __init__(self, core: Any) -> None:
        self.core = core

    def add_node(self, layer: Layer, inputs: list[int]) -> int:
        return int(self.core.add_node(layer._core, list(inputs)))


def _emit_item(g: Any, item: Any, node: int) -> int:
    """Adds a layer, or a nested model's layers, after `node`; returns the new last node."""
    if isinstance(item, Model):
        return item._emit(g, node)
    return g.add_node(item, [node])


class Model:
    """Keras' ``Model``. ``Model(inputs, outputs)`` makes a functional model (a ``Functional``,
    as in Keras) from the KerasTensors of ``cnnx.Input`` and layer calls; ``Sequential`` is the
    other kind. Both share compile / fit / evaluate / predict / save, and either can be used as
    a layer of another model. They differ in the core object that runs them: ``_core.Sequential``
    (a chain) or ``_core.Model`` (a graph)."""

    _kind = "Model"

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is Model:  # Keras: Model(inputs, outputs) is a Functional
            cls = Functional
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Only a subclass that does not define its own model structure gets here.
        raise TypeError(
            f"{type(self).__name__}: subclassing cnnx.Model (a call() written in Python) is not supported; "
            "build models with cnnx.Model(inputs, outputs) or cnnx.Sequential([...])"
        )

    def _init_model(self, name: Any, trainable: Any) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{self._kind}: expected name to be a string, received name={name!r}")
        self.name = name or _auto_name(self._kind)
        self._trainable = _check_bool(trainable, "trainable", f"{self._kind} '{self.name}'")
        self._input_shape: tuple[int, ...] | None = None  # one sample, no batch dim
        self._output_shape: tuple[int, ...] | None = None
        self._core: Any = None
        self.optimizer: optimizers_mod.Optimizer | None = None
        self.loss: losses_mod.Loss | None = None
        self._metrics: list[str] = []  # log keys of the compiled metrics, in order
        self._metric_entries: list[tuple] = []  # (log key, Metric, "acc" | "top_k" | "py", weighted)
        self._metric_specs: list = []  # what compile was given (saved with the model)
        self._metrics_tally: Any = None  # the pass the metric objects hold the state of
        self._loss_tracker = metrics_mod.Mean(name="loss")
        self.compiled = False
        self.stop_training = False
        self.history: History | None = None
        # Names of the output classes, taken from a folder dataset given to fit (or set by hand);
        # saved with the model.
        self.class_names: list[str] | None = None
        self._inbound_nodes: list = []  # calls of this model as a layer of another (functional API)
        self._flat_cache: list[Layer] | None = None
        self._compiled_trainable: dict[int, bool] = {}  # layer id -> trains, as of the last compile

    # -- structure -----------------------------------------------------------------------------
    @property
    def _where(self) -> str:
        return f"{self._kind} '{self.name}'"

    @property
    def layers(self) -> list:
        raise NotImplementedError

    def _sublayers(self) -> list:
        """The layers and nested models this model calls (not its InputLayer)."""
        return [item for item in self.layers if not isinstance(item, InputLayer)]

    def _emit(self, g: Any, node: int) -> int:
        """Adds this model's layers to graph `g` after node `node` (nested models inlined);
        returns the node of its output."""
        raise NotImplementedError

    def _flat_layers(self) -> list[Layer]:
        """The distinct layers the core runs, nested models' included, in the core's order
        (first use): the model's weights are these layers' weights, in this order."""
        if self._flat_cache is None:
            rec = _Recorder()
            self._emit(rec, 0)
            seen: set[int] = set()
            self._flat_cache = [x for x in rec.layers if not (id(x) in seen or seen.add(id(x)))]
        return self._flat_cache

    def _chain_layers(self) -> list[Layer] | None:
        """The layers in call order when this model is a plain chain (each node reads the one
        before), so a ``_core.Sequential`` can run it; None when it has branches."""
        rec = _Recorder()
        self._emit(rec, 0)
        if all(inputs == [k] for k, inputs in enumerate(rec.inputs)):
            return rec.layers
        return None

    def _check_unique_names(self) -> None:
        """Weights are saved by layer name, so the layers the core runs, nested models'
        included, need distinct names (Keras requires it within each model)."""
        counts = Counter(layer.name for layer in self._flat_layers())
        for name, n in counts.items():
            if n != 1:
                raise ValueError(
                    f'The name "{name}" is used {n} times in the model. '
                    "All operation names should be unique (layers of nested models included)."
                )

    def _check_core_order(self) -> None:
        """Weights travel as one list per entry of the core's layers: its order must be ours."""
        if [id(c) for c in self._core.layers] != [id(layer._core) for layer in self._flat_layers()]:
            raise RuntimeError(f"{self._where}: the core lists the model's layers in another order than cnnx")

    def _claim_layers(self) -> None:
        # A layer's weights are read under the lock of the model that runs it (see Layer).
        for layer in self._flat_layers():
            layer._model_ref = weakref.ref(self)
            _note_container(layer, self)
        for item in self._sublayers():
            if isinstance(item, Model):
                _note_container(item, self)

    def _first_layer(self) -> Any:
        raise NotImplementedError

    def _build_for(self, shape: tuple, who: str) -> tuple | None:
        """Used as a layer on per-sample input `shape`: builds or checks; the output shape."""
        raise NotImplementedError

    @property
    def built(self) -> bool:
        return self._core is not None and bool(self._core.built)

    @property
    def input_shape(self) -> tuple:
        if self._input_shape is None:
            raise ValueError(f"{self._where}: the input shape is not known yet")
        return (None, *self._input_shape)

    @property
    def output_shape(self) -> tuple:
        self._require_built("output_shape")
        return (None, *self._output_shape)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        """A layer of ``model.layers`` by name or by index (Keras' errors otherwise)."""
        if index is not None and name is not None:
            raise ValueError(f"Provide only a layer name or a layer index. Received: index={index}, name={name}.")
        layers = self.layers
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"get_layer: expected index to be an int, received index={index!r}")
            if len(layers) <= index or index < -len(layers):
                raise ValueError(
                    f"Was asked to retrieve layer at index {index} but model only has {len(layers)} layers."
                )
            return layers[index]
        if name is not None:
            for layer in layers:
                if layer.name == name:
                    return layer
            raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in layers]}.")
        raise ValueError("Provide either a layer name or layer index at `get_layer`.")

    # -- as a layer ------------------------------------------------------------------------------
    def __call__(self, x: Any, training: bool = False) -> Any:
        """On arrays: the model's output for the batch, computed now (``training=True`` runs
        augmentation and dropout as in training; nothing is updated). On a KerasTensor: this
        model used as a layer of a functional model (its layers, and weights, shared)."""
        from ._graph import is_symbolic

        if is_symbolic(x):
            return self._symbolic_call(x)
        from .ops import Tensor

        if self._is_single_image(x):
            return self(np.asarray(x)[None], training)[0]
        variant = self._preprocessing_variant(x)
        if variant is not None:
            return variant(x, training)
        x = self._prepare_x(x, self._where)
        # A Tensor (an ndarray with Keras' .numpy()), for code such as model(x).numpy()
        if not training:
            return self._core.predict(x, len(x)).view(Tensor)
        return self._core.call(x, True).view(Tensor)

    def _is_single_image(self, x: Any) -> bool:
        """One image (height, width, channels) given to a model made only of image
        preprocessing layers, which Keras runs without a batch axis."""
        if np.ndim(x) != 3 or (self._input_shape is not None and len(self._input_shape) != 3):
            return False
        layers = self._flat_layers()
        return bool(layers) and all(getattr(layer, "_accepts_single_image", False) for layer in layers)

    def _preprocessing_variant(self, x: Any) -> Model | None:
        """Keras runs a model of weightless image preprocessing layers (Resizing, Rescaling,
        Random*) on images of any size, whatever size built it: cnnx keeps one copy of the
        model per other image size (layers rebuilt from their configs)."""
        if self._input_shape is None or np.ndim(x) != len(self._input_shape) + 1:
            return None
        if tuple(np.shape(x)[1:]) == tuple(self._input_shape):
            return None
        layers = self._flat_layers()
        if not layers or not all(getattr(layer, "_accepts_single_image", False) for layer in layers):
            return None
        key = tuple(np.shape(x)[1:])
        variants = self.__dict__.setdefault("_size_variants", {})
        if key not in variants:
            variants[key] = Sequential([type(layer).from_config(layer.get_config()) for layer in layers])
        return variants[key]

    def _symbolic_call(self, x: Any) -> Any:
        from ._graph import KerasTensor, Node, symbolic_inputs

        tensors, list_call = symbolic_inputs(x, self._where)
        if len(tensors) != 1:
            raise ValueError(
                f"{self._where}: cnnx supports models with one input for now; received {len(tensors)} inputs"
            )
        out_shape = self._build_for(tuple(tensors[0].shape[1:]), self._where)
        out = KerasTensor((None, *out_shape))
        Node(self, tensors, [out], list_call)
        return out

    # -- trainable (Keras semantics) ---------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        """Keras' ``model.trainable``: setting it sets every layer's (nested models' too). As in
        Keras, compile again after changing it; a layer trains only if it and every model it is
        reached through are trainable."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        value = _check_bool(value, "trainable", self._where)
        for item in self._sublayers():
            item.trainable = value
        self._trainable = value

    def _effective_trainable(self) -> dict[int, bool]:
        """Layer id -> whether it trains in this model: it is trainable and so is every model
        on a path to it (a layer shared by several paths trains if one of them allows it)."""
        flags: dict[int, bool] = {}

        def walk(model: Model, on: bool) -> None:
            on = on and model._trainable
            for item in model._sublayers():
                if isinstance(item, Model):
                    walk(item, on)
                else:
                    flags[id(item)] = flags.get(id(item), False) or (on and item._trainable)

        walk(self, True)
        return flags

    def _weights_by_trainability(self, trainable: bool) -> list:
        flags = self._effective_trainable()
        return [
            w for layer in self._flat_layers() for w in layer._weights_split(trainable, flags.get(id(layer), False))
        ]

    @property
    def trainable_weights(self) -> list:
        """The Variables fit updates, layer by layer (see ``weights``)."""
        return self._weights_by_trainability(True)

    @property
    def non_trainable_weights(self) -> list:
        """Frozen layers' weights and BatchNormalization's moving statistics, as Variables."""
        return self._weights_by_trainability(False)

    @property
    def weights(self) -> list:
        """Every weight, layer by layer, as Keras-style Variables: live handles with ``.numpy()``,
        ``.shape``, ``.name``, ``.path`` and ``.assign()`` (``np.asarray(v)`` gives the value).
        ``get_weights()`` gives the same weights as arrays, all from one step boundary."""
        return [v for layer in self._flat_layers() for v in layer._variables()]

    def _trainable_params(self) -> list[tuple[str, str]]:
        """(layer, weight) names of the weights the optimizer updates, in its order, as of the
        last compile (optimizer slots are saved under these names)."""
        flags = self._compiled_trainable or self._effective_trainable()
        return [
            (layer.name, wname)
            for layer in self._flat_layers()
            if flags.get(id(layer), False)
            for wname, trains in zip(layer._core.weight_names(), layer._core.weight_trainable())
            if trains
        ]

    # -- compile -----------------------------------------------------------------------------
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Keras 3's compile: the optimizer (name or object), the loss (name, Loss, or a function
        ``fn(y_true, y_pred)`` -> per-sample values: see cnnx.losses) and the metrics (names such
        as "accuracy", "mae", "precision", Metric objects, or functions). ``metrics`` ignore
        sample weights and ``weighted_metrics`` use them, as in Keras 3. ``run_eagerly``,
        ``jit_compile``, ``steps_per_execution`` and ``auto_scale_loss`` are accepted and change
        nothing: cnnx always runs one compiled C++ step per batch (batch callbacks run after every
        batch)."""
        who = "compile"
        # Kept to compile again the core an unbuilt model may have to remake when it is built
        # (a nested preprocessing model rebuilt for another image size: Sequential._set_input_shape).
        self._compile_args = {
            "optimizer": optimizer,
            "loss": loss,
            "loss_weights": loss_weights,
            "metrics": metrics,
            "weighted_metrics": weighted_metrics,
        }
        if loss is None:
            raise ValueError("compile: expected a loss such as 'categorical_crossentropy', received loss=None")
        _check_int(steps_per_execution, "steps_per_execution", who, 1)
        if not (jit_compile in ("auto", None) or isinstance(jit_compile, bool)):
            raise ValueError(f"compile: expected jit_compile to be True, False or 'auto', received {jit_compile!r}")
        loss = _single_output(loss, "loss")
        if loss_weights is not None:
            lw = _single_output(loss_weights, "loss_weights")
            if isinstance(lw, bool) or not isinstance(lw, (int, float, np.integer, np.floating)):
                raise TypeError(
                    f"compile: expected loss_weights to be a number (or a list or dict of one), received "
                    f"loss_weights={loss_weights!r}; in Keras 3 the third argument of compile is loss_weights: "
                    "pass metrics=[...] by name"
                )
            if float(lw) != 1.0:
                raise ValueError(
                    f"compile: loss_weights={loss_weights!r} would scale the loss; cnnx models have one output and "
                    "support only a weight of 1 (scale the learning rate instead)"
                )
        opt = optimizers_mod.get(optimizer)
        loss_obj = losses_mod.get(loss)
        core_loss = losses_mod._core_loss(loss_obj)
        entries, specs = [], []
        for spec, weighted in [(m, False) for m in _metric_list(metrics, "metrics")] + [
            (m, True) for m in _metric_list(weighted_metrics, "weighted_metrics")
        ]:
            name = spec.lower() if isinstance(spec, str) else None
            if not weighted and name in _ACCURACY_NAMES:
                entries.append((spec, None, "acc", False))
            elif not weighted and name in _TOP_K_NAMES:
                entries.append((spec, None, "top_k", False))
            elif name in ("accuracy", "acc"):  # Keras picks the kind from the shapes at the first batch
                entries.append((spec, _AutoAccuracy(spec, self, loss_obj), "py", weighted))
            else:
                try:
                    m = metrics_mod.resolve(spec)
                except (ValueError, TypeError) as e:
                    raise ValueError(f"compile: unknown metric {spec!r}. {e}") from None
                entries.append((m.name, m, "py", weighted))
            specs.append({"weighted": spec} if weighted else spec)
        names = [e[0] for e in entries]
        for i, (n, m, src, weighted) in enumerate(entries):  # Keras: a clash gets the prefix "weighted_"
            if weighted and names.count(n) > 1:
                entries[i] = ("weighted_" + n, m, src, weighted)
        kinds = {self._accuracy_kind(n, loss_obj) for n, _, src, _ in entries if src == "acc"}
        if len(kinds) > 1 and None not in kinds:
            raise ValueError(f"compile: metrics {names} mix binary and categorical accuracy; use one of them")
        # Keras: trainability is read when the model is compiled.
        flags = self._effective_trainable()
        for layer in self._flat_layers():
            _set_core_trainable(layer._core, flags.get(id(layer), False), layer._where)
        self._core.compile(core_loss, opt._core)
        self._compiled_trainable = flags
        self.optimizer, self.loss = opt, loss_obj
        # One assignment each, complete: another thread's fit may be reading them (_logs).
        self._metric_entries, self._metric_specs = self._core_metric_objects(entries, loss_obj), specs
        self._metrics = [e[0] for e in entries]
        self._metrics_tally = None
        self._core.set_return_outputs(any(src == "py" for _, _, src, _ in entries))
        self.compiled = True
        self._configure_metrics()

    def _accuracy_kind(self, metric: str, loss: Any) -> str | None:
        """Keras' choice for an accuracy metric: binary for binary cross-entropy or a single
        output unit, argmax otherwise; None while the output width is still unknown."""
        metric = metric.lower()
        if metric == "binary_accuracy":
            return "binary"
        if metric in ("categorical_accuracy", "sparse_categorical_accuracy"):
            return "argmax"
        if isinstance(loss, losses_mod.BinaryCrossentropy):
            return "binary"
        if self._output_shape is None:
            return None
        return "binary" if self._output_shape[-1] == 1 else "argmax"

    def _configure_metrics(self) -> None:
        if not self.compiled:
            return
        names = [n for n, _, src, _ in self._metric_entries if src == "acc"]
        kind = next((self._accuracy_kind(m, self.loss) for m in names), None)
        threshold = 0.0 if isinstance(self.loss, losses_mod.BinaryCrossentropy) and self.loss.from_logits else 0.5
        top_k = 5 if any(src == "top_k" for _, _, src, _ in self._metric_entries) else 0
        self._core.set_metrics(kind or "argmax", threshold, top_k)
        self._metric_entries = self._core_metric_objects(self._metric_entries, self.loss)

    def _core_metric_objects(self, entries: list, loss: Any) -> list:
        """The entries with Metric objects standing for what the core counts (model.metrics: the
        accuracy's class follows the output width once known); _logs sets their state from the
        counts."""
        sparse = isinstance(loss, losses_mod.SparseCategoricalCrossentropy)
        threshold = 0.0 if isinstance(loss, losses_mod.BinaryCrossentropy) and loss.from_logits else 0.5
        out = []
        for n, m, src, w in entries:
            if src == "acc":
                k = self._accuracy_kind(n, loss) or "argmax"
                if k == "binary":
                    m = metrics_mod.BinaryAccuracy(name=n, threshold=threshold)
                else:
                    m = (metrics_mod.SparseCategoricalAccuracy if sparse else metrics_mod.CategoricalAccuracy)(name=n)
            elif src == "top_k" and m is None:
                cls = metrics_mod.SparseTopKCategoricalAccuracy if sparse else metrics_mod.TopKCategoricalAccuracy
                m = cls(k=5, name=n)
            out.append((n, m, src, w))
        return out

    @property
    def metrics(self) -> list:
        """The loss tracker (a Mean named "loss") and the compiled metrics, in the order of
        evaluate's results. Keras 3 lists the compiled metrics as one "compile_metrics"
        container; cnnx lists them one by one (Keras 2's way), which is what code reading
        ``metrics_names`` expects."""
        if not self.compiled:
            return []
        return [self._loss_tracker] + [m for _, m, _, _ in self._metric_entries]

    @property
    def metrics_names(self) -> list[str]:
        """["loss", then each metric's log key]: the names of evaluate's results."""
        return ["loss", *self._metrics] if self.compiled else []

    # -- data checks ------------------------------------------------------------------------
    def _prepare_x(self, x: Any, who: str) -> np.ndarray:
        x = _as_float_array(x, "x", who)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{who}: expected at least one sample, received x with shape {x.shape}")
        if self._input_shape is None:
            if not self._sublayers():
                raise ValueError(f"{who}: the model has no layers")
            self.build((None, *x.shape[1:]))
        expected = (None, *self._input_shape)
        if x.ndim != len(expected) or tuple(x.shape[1:]) != self._input_shape:
            first = self._first_layer()
            hint = ""
            if x.ndim == len(expected) - 1 and tuple(x.shape[1:]) == self._input_shape[:-1]:
                hint = "; add the channel axis, e.g. x[..., None]"
            raise ValueError(
                f"{who}: input of layer '{first.name}' ({type(first).__name__}) expected shape "
                f"{_shape(expected)}, received {_shape(x.shape)}{hint}"
            )
        if not self._core.built:
            self.build()
            self._configure_metrics()
        return x

    def _prepare_y(self, y: Any, n: int, who: str) -> np.ndarray:
        y = _as_float_array(y, "y", who)
        if y.ndim == 0 or y.shape[0] != n:
            got = "a scalar" if y.ndim == 0 else f"{y.shape[0]} samples (shape {y.shape})"
            raise ValueError(f"{who}: expected y to have {n} samples to match x, received {got}")
        _check_finite(y, "y", who)
        return y

    def _require_compiled(self, what: str) -> None:
        if not self.compiled:
            raise ValueError(f"{self._where}: call compile() before {what}()")

    def _require_built(self, what: str) -> None:
        if self._output_shape is None or self._input_shape is None:
            raise ValueError(
                f"{self._where}: {what} is not available before the model is built; "
                "start it with Input((h, w, c)) or call build()"
            )

    def _logs(self, t: _Tally, prefix: str = "") -> dict:
        """The logs of a pass so far. The metric objects hold one pass at a time: a new tally
        resets them, then they take in the batches that waited in it."""
        if self._metrics_tally is not t:
            self._metrics_tally = t
            for _, m, src, _ in self._metric_entries:
                if src == "py":
                    m.reset_state()
        for y_pred, y_true, sw in t.pending:
            for _, m, src, weighted in self._metric_entries:
                if src == "py":
                    m.update_state(y_true, y_pred, sw if weighted else None)
        t.pending.clear()
        self._loss_tracker.total, self._loss_tracker.count = t.loss, float(t.samples)
        logs = {prefix + "loss": t.loss / max(t.samples, 1)}
        for name, m, src, _ in self._metric_entries:
            if src == "top_k":
                m.total, m.count = float(t.top_k), float(t.samples * self._rows_per_sample)
            elif src == "acc":
                m.total, m.count = float(t.correct), float(t.rows)
            value = m.result() if m is not None else t.correct / max(t.rows, 1)
            logs[prefix + name] = value if isinstance(value, np.ndarray) else float(value)
        return logs

    @property
    def _rows_per_sample(self) -> int:
        return int(np.prod(self._output_shape[:-1], dtype=np.int64)) if self._output_shape else 1

    def _prepare_weights(self, sample_weight: Any, class_weight: Any, y: np.ndarray, n: int, who: str) -> Any:
        """Per-sample loss weights from sample_weight or class_weight (Keras: not both)."""
        if sample_weight is not None and class_weight is not None:
            raise ValueError(f"{who}: pass sample_weight or class_weight, not both")
        if class_weight is not None:
            table = _check_class_weight(class_weight, who)
            flat = y.reshape(len(y), -1)
            # Keras rounds the labels and gives weight 1 to a class without an entry; keys of
            # classes that never occur weigh nothing. Unique labels, not a table indexed by
            # label, so a huge key or label costs no memory.
            labels = np.round(flat[:, 0] if flat.shape[1] == 1 else flat.argmax(axis=1))
            values, inverse = np.unique(labels, return_inverse=True)
            per_value = np.array([table.get(int(v), 1.0) for v in values], np.float32)
            return np.ascontiguousarray(per_value[inverse.reshape(-1)])
        if sample_weight is None:
            return None
        w = _as_float_array(sample_weight, "sample_weight", who)
        if w.shape != (n,):
            raise ValueError(f"{who}: expected sample_weight of shape ({n},), received {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"{who}: expected finite, non-negative sample weights")
        return w

    def _prepare_data(
        self, x: Any, y: Any, sample_weight: Any, class_weight: Any, who: str, finite: str | None = "x"
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        """x, y and the per-sample weights of one call, converted and checked; x is also checked
        for NaN and infinity under the name `finite` unless that is None (evaluation)."""
        x = self._prepare_x(x, who)
        if finite:
            _check_finite(x, finite, who)
        y = self._prepare_y(y, len(x), who)
        return x, y, self._prepare_weights(sample_weight, class_weight, y, len(x), who)

    # -- training ----------------------------------------------------------------------------
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: list | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: Any = 1,
        distribute: Any = None,
    ) -> History:
        """Trains for ``epochs`` passes over (x, y); returns a ``History``.

        ``x`` may be arrays, a ``cnnx.data.Dataset`` (e.g. from
        ``cnnx.utils.image_dataset_from_directory`` or ``Dataset.from_tensor_slices(...).batch(32)``),
        a ``cnnx.utils.PyDataset``, a Python generator / iterator, or any object with ``__len__``
        and ``__iter__``, yielding ``(x, y)`` or ``(x, y, sample_weight)`` batches. Then ``y``
        must be None, ``batch_size`` and ``shuffle`` are ignored (a PyDataset's batch order is
        shuffled, as in Keras), and batches are converted one at a time.

        ``steps_per_epoch``, ``validation_steps``, ``validation_batch_size`` and
        ``validation_freq`` (an int, or a list of epochs counted from 1) behave as in Keras 3
        (see cnnx/_epoch.py); an infinite dataset (``repeat()``) needs ``steps_per_epoch``.
        Validation runs ``on_test_*`` hooks on the callbacks, and ``on_train_end`` gets the
        last epoch's logs.

        ``distribute=cnnx.distribute.DataParallel()`` trains on every process of an MPI launch
        (``mpirun -np 4 python train.py``) with the same weights everywhere; see cnnx/distribute.py."""
        who = "fit"
        self._require_compiled(who)
        run = self._distributed_run(distribute, who)
        batch_size = self._check_batch_size(batch_size, who, default=None)
        validation_batch_size = self._check_batch_size(
            validation_batch_size, who, default=None, arg="validation_batch_size"
        )
        epochs = _check_int(epochs, "epochs", who, 0)
        # As in Keras, epochs is the index of the last epoch: initial_epoch >= epochs trains none.
        initial_epoch = _check_int(initial_epoch, "initial_epoch", who, 0)
        verbose = _check_verbose(verbose, who)
        validation_split = _check_validation_split(validation_split, who)
        steps_per_epoch = _epoch.check_steps(steps_per_epoch, "steps_per_epoch", who)
        validation_steps = _epoch.check_steps(validation_steps, "validation_steps", who)
        validation_freq = _epoch.check_validation_freq(validation_freq, who)
        if class_weight is not None:
            _check_class_weight(class_weight, who)  # before any data is converted
        kind = _epoch.data_kind(x)
        if kind != "arrays":
            self._check_dataset_args(x, who, y=y, sample_weight=sample_weight, validation_split=validation_split)
            if getattr(x, "class_names", None) and self.class_names is None:
                self.class_names = list(x.class_names)  # kept, and saved with the model
            train = self._stream_iterator(
                x, kind, who, "train", steps_per_epoch, "steps_per_epoch", class_weight, shuffle, run
            )
            if run is not None:
                train = _epoch.EpochIterator(run.stream_source(train), steps_per_epoch)
        else:
            x, y, weights = self._prepare_data(x, y, sample_weight, class_weight, who)
            if validation_data is None and validation_split:
                split = int(len(x) * (1.0 - float(validation_split)))
                if split == 0 or split == len(x):
                    raise ValueError(
                        f"fit: validation_split={validation_split} leaves no training or validation samples"
                    )
                if weights is not None:
                    validation_data = (x[split:], y[split:], weights[split:])
                    weights = weights[:split]
                else:
                    validation_data = (x[split:], y[split:])
                x, y = x[:split], y[:split]
            bs = _array_batch_size(batch_size, len(x), steps_per_epoch)
            if run is not None:
                source = run.array_source(x, y, weights, bs, shuffle)
            else:
                source = _epoch.Source(-(-len(x) // bs), self._array_batches(x, y, weights, bs, shuffle))
            train = _epoch.EpochIterator(source, steps_per_epoch)
        val = None
        if validation_data is not None:
            vwho = "fit (validation_data)"
            vkind = _epoch.data_kind(validation_data)
            if vkind != "arrays":
                self._check_dataset_args(validation_data, vwho)
                val = self._stream_iterator(
                    validation_data, vkind, vwho, "test", validation_steps, "validation_steps", run=run
                )
                if run is not None:
                    val = _epoch.EpochIterator(run.stream_test_source(val), validation_steps)
            else:
                if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                    raise ValueError(
                        "fit: expected validation_data=(x_val, y_val) or (x_val, y_val, sample_weight_val)"
                    )
                vw = validation_data[2] if len(validation_data) == 3 else None
                vx, vy, vw = self._prepare_data(validation_data[0], validation_data[1], vw, None, vwho, finite="x_val")
                if run is not None:
                    vx, vy, vw = run.array_test_share(vwho, vx, vy, vw)
                vbs = _array_batch_size(validation_batch_size or batch_size, len(vx), validation_steps)
                val = _epoch.EpochIterator(self._array_test_source(vx, vy, vw, vbs), validation_steps)

        train.reset()
        if run is not None:
            verbose, callbacks = run.primary_view(verbose, callbacks)
        cb = CallbackList(
            callbacks,
            self,
            {"verbose": verbose, "epochs": int(epochs), "steps": train.num_batches},
            add_history=True,  # History and the progress bar go last, as in Keras
            add_progbar=bool(verbose),
        )
        self.stop_training = False
        self._dp_run = run
        try:
            with _StopOnInterrupt() as interrupt:
                self._fit_epochs(train, epochs, initial_epoch, val, validation_freq, cb, interrupt)
        except BaseException as e:
            if run is not None:
                run.fail(e)  # the other processes would wait for this one: stop them all
            raise
        finally:
            self._dp_run = None
            if run is not None:
                run.close()
            train.close()
            if val is not None:
                val.close()
        return cb.history

    def _distributed_run(self, distribute: Any, who: str) -> Any:
        if distribute is None:
            return None
        from .distribute import DataParallel

        if not isinstance(distribute, DataParallel):
            raise TypeError(
                f"{who}: expected distribute=cnnx.distribute.DataParallel(...) or None, "
                f"received {type(distribute).__name__}"
            )
        return distribute._run(self)

    @staticmethod
    def _array_batches(x, y, weights, batch_size, shuffle):
        """One epoch's batches of in-memory arrays: the whole arrays plus the indices of a batch."""

        def epoch():
            n = len(x)
            order = np.random.permutation(n) if shuffle else np.arange(n)
            order = order.astype(np.int64)
            for start in range(0, n, batch_size):
                yield x, y, order[start : start + batch_size], weights

        return epoch

    @staticmethod
    def _array_test_source(x, y, weights, batch_size) -> _epoch.Source:
        def one_pass():
            for start in range(0, len(x), batch_size):
                end = start + batch_size
                yield x[start:end], y[start:end], None if weights is None else weights[start:end]

        return _epoch.Source(-(-len(x) // batch_size), one_pass)

    def _stream_iterator(
        self, data, kind, who, mode, steps, steps_arg, class_weight=None, shuffle=False, run=None
    ) -> _epoch.EpochIterator:
        """An EpochIterator over a dataset, PyDataset or generator whose batches are converted
        and checked one at a time as they arrive (``mode``: "train", "test" or "predict").
        With a distributed ``run``, a dataset that can read only this process's share does
        (the source is then marked ``sharded``)."""
        sharded = None
        if run is not None:
            sharded = run.shard_batches(data, drop_remainder=mode == "train", shuffle=shuffle and mode == "train")
        if sharded is not None:
            n, raw, begin, end = sharded
            infinite = False
        elif kind == "pydataset":
            n, raw, begin, end, infinite = _epoch.pydataset_batches(data, shuffle and mode == "train")
        else:
            n, raw, begin, end, infinite = _epoch.stream_batches(data, kind)
        if infinite and not steps:
            raise _epoch.infinite_error(who, steps_arg)
        if n == 0:
            raise ValueError(f"{who}: the dataset ({type(data).__name__}) is empty: it has 0 batches")

        def one_pass():
            it = raw()
            try:
                for batch in it:
                    if mode == "predict":
                        yield self._prepare_x(_unpack_batch(batch, who, need_y=False)[0], who)
                        continue
                    xb, yb, wb = _unpack_batch(batch, who, need_y=True)
                    xb, yb, wb = self._prepare_data(xb, yb, wb, class_weight, who)
                    if mode == "train":
                        yield xb, yb, np.arange(len(xb), dtype=np.int64), wb
                    else:
                        yield xb, yb, wb
            finally:
                if it is not data:  # a user's generator is theirs to close
                    getattr(it, "close", lambda: None)()

        source = _epoch.Source(n, one_pass, begin, end)
        source.sharded = sharded is not None
        return _epoch.EpochIterator(source, steps)

    @staticmethod
    def _check_dataset_args(dataset, who, y=None, sample_weight=None, validation_split=0.0):
        kind = type(dataset).__name__
        if y is not None:
            raise ValueError(
                f"{who}: y must be None when x is a dataset ({kind}), which yields (x, y) batches; "
                f"received y of type {type(y).__name__}"
            )
        if sample_weight is not None:
            raise ValueError(
                f"{who}: sample_weight must be None when x is a dataset ({kind}); "
                "yield (x, y, sample_weight) batches instead"
            )
        if validation_split:
            raise ValueError(
                f"{who}: validation_split is not supported when x is a dataset ({kind}); "
                "pass validation_data=another dataset, e.g. from "
                "image_dataset_from_directory(..., validation_split=0.2, subset='both', seed=...)"
            )

    def _fit_epochs(self, train, epochs, initial_epoch, val, validation_freq, cb, interrupt):
        # The hook order of Keras 3's Trainer.fit (keras/src/backend/tensorflow/trainer.py).
        cb.on_train_begin({})
        run = self._dp_run
        if run is not None:  # after on_train_begin: a restored backup on rank 0 reaches everyone
            run.start()
        # BackupAndRestore sets _initial_epoch in on_train_begin to resume (Keras does the same);
        # cnnx clears it once used so that a later fit starts where it is told.
        resume, self._initial_epoch = getattr(self, "_initial_epoch", None), None
        training_logs = None
        for epoch in range(int(resume or initial_epoch), int(epochs)):
            cb.on_epoch_begin(epoch, {})
            tally = _Tally()
            step = -1
            if run is not None:
                run.epoch = epoch
            for step, batch in train.epoch():
                cb.on_train_batch_begin(step, {})
                self.optimizer._before_step()
                if run is not None:
                    tally.add(*run.train_step(batch))
                else:
                    xb, yb, idx, wb = batch
                    tally.add(self._core.train_step(xb, yb, idx, wb), len(idx))
                cb.on_train_batch_end(step, self._logs(tally))
                if run is not None:  # every process stops at the same step
                    stop, interrupted = run.sum([self.stop_training, interrupt.requested], "agreeing on stop")
                    self.stop_training, interrupt.requested = bool(stop), bool(interrupted)
                if self.stop_training or interrupt.requested:
                    break
            if interrupt.requested:
                print(
                    f"\nTraining interrupted (Ctrl-C) at epoch {epoch + 1}, batch {step + 1}; "
                    "the model keeps the weights of the last completed batch.",
                    flush=True,
                )
                self.stop_training = True
                break
            logs = self._logs(tally)
            if val is not None and _epoch.should_eval(epoch, validation_freq):
                val.reset()  # every validation starts from the beginning of its data
                val_logs = self._test_loop(val, cb)
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            cb.on_epoch_end(epoch, logs)
            training_logs = logs
            if run is not None:
                self.stop_training = run.agree(self.stop_training)
            if self.stop_training:
                break
        cb.on_train_end(training_logs if training_logs is not None else {})

    def train_on_batch(
        self, x: Any, y: Any, sample_weight: Any = None, class_weight: dict | None = None, return_dict: bool = False
    ) -> Any:
        """One optimizer step on exactly this batch; returns the loss (and metrics)."""
        self._require_compiled("train_on_batch")
        x, y, w = self._prepare_data(x, y, sample_weight, class_weight, "train_on_batch")
        tally = _Tally()
        self.optimizer._before_step()
        tally.add(self._core.train_step(x, y, np.arange(len(x), dtype=np.int64), w), len(x))
        return self._result(self._logs(tally), return_dict)

    # -- evaluation and inference ------------------------------------------------------------
    def _evaluate_arrays(self, x: np.ndarray, y: np.ndarray, weights: Any, batch_size: int, prefix: str = "") -> dict:
        tally = _Tally()
        for start in range(0, len(x), batch_size):
            end = start + batch_size
            w = None if weights is None else weights[start:end]
            tally.add(self._core.test_step(x[start:end], y[start:end], w), len(x[start:end]))
        return self._logs(tally, prefix)

    def _test_loop(self, it: _epoch.EpochIterator, cb: CallbackList) -> dict:
        """One evaluation pass with Keras' on_test_* hooks; the logs without prefix."""
        cb.on_test_begin({})
        tally = _Tally()
        if getattr(self, "_dp_run", None) is not None:
            tally.kept = []  # the metrics' inputs, gathered from every process at the end
        self.stop_evaluating = False
        self._test_steps = 0
        for step, (xb, yb, wb) in it.epoch():
            self._test_steps = step + 1
            cb.on_test_batch_begin(step, {})
            tally.add(self._core.test_step(xb, yb, wb), len(xb))
            cb.on_test_batch_end(step, self._logs(tally))
            if self.stop_evaluating:
                break
        if getattr(self, "_dp_run", None) is not None:
            self._dp_run.reduce_tally(tally)
        logs = self._logs(tally)
        cb.on_test_end(logs)
        return logs

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Any = None,
        return_dict: bool = False,
        distribute: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Loss (and metrics) over (x, y), in batches; Keras' return convention. ``x`` may be
        any input ``fit`` takes; ``steps`` limits the batches; ``callbacks`` get the
        ``on_test_*`` hooks. ``distribute=cnnx.distribute.DataParallel()``: every process of an
        MPI launch evaluates its share (as fit's validation does) and every process gets the
        logs of the whole data; the weights must be the same on every process."""
        who = "evaluate"
        if kwargs:
            raise ValueError(f"Arguments not recognized: {kwargs}")
        self._require_compiled(who)
        batch_size = self._check_batch_size(batch_size, who, default=None)
        verbose = _check_verbose(verbose, who)
        steps = _epoch.check_steps(steps, "steps", who)
        run = self._distributed_run(distribute, who)
        start = time.perf_counter()
        kind = _epoch.data_kind(x)
        if kind != "arrays":
            self._check_dataset_args(x, who, y=y, sample_weight=sample_weight)
            it = self._stream_iterator(x, kind, who, "test", steps, "steps", run=run)
            if run is not None:
                it = _epoch.EpochIterator(run.stream_test_source(it), steps)
        else:
            x, y, w = self._prepare_data(x, y, sample_weight, None, who, finite=None)
            if run is not None:
                x, y, w = run.array_test_share(who, x, y, w)
            bs = _array_batch_size(batch_size, len(x), steps)
            it = _epoch.EpochIterator(self._array_test_source(x, y, w, bs), steps)
        it.reset()
        if run is not None:
            verbose, callbacks = run.primary_view(verbose, callbacks)
        if not isinstance(callbacks, CallbackList):
            callbacks = CallbackList(
                callbacks, self, {"verbose": verbose, "epochs": 1, "steps": it.num_batches}, who=who
            )
        # Inside a distributed fit (a callback's evaluate) a plain evaluate stays on this process.
        outer, self._dp_run = getattr(self, "_dp_run", None), run
        try:
            if run is not None:
                run.start_evaluation(who)
            logs = self._test_loop(it, callbacks)
        except BaseException as e:
            if run is not None:
                run.fail(e)  # the other processes would wait for this one: stop them all
            raise
        finally:
            self._dp_run = outer
            if run is not None:
                run.close()
            it.close()
        if verbose:
            from .callbacks import _format_logs, _format_time

            n = self._test_steps
            elapsed = time.perf_counter() - start
            print(f"{n}/{n} - {_format_time(elapsed)} - {_format_logs(logs)}", flush=True)
        return self._result(logs, return_dict)

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None, return_dict: bool = False) -> Any:
        self._require_compiled("test_on_batch")
        x, y, w = self._prepare_data(x, y, sample_weight, None, "test_on_batch", finite=None)
        return self._result(self._evaluate_arrays(x, y, w, len(x)), return_dict)

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: Any = None,
        distribute: Any = None,
    ) -> np.ndarray:
        """Model outputs for x, computed in batches of ``batch_size`` (default 32). ``x`` may be
        any input ``fit`` takes (batches of x, or of (x, y[, sample_weight]) whose labels are
        ignored); the outputs are in the order of the batches. ``steps`` limits the batches;
        ``callbacks`` get the ``on_predict_*`` hooks (batch logs ``{"outputs": ...}``).
        ``distribute=cnnx.distribute.DataParallel()``: every process of an MPI launch predicts
        its share (arrays: a contiguous part; datasets: batches r, r+P, ...; ``steps`` then counts
        this process's batches) and every process gets all the outputs, in the data's order."""
        who = "predict"
        batch_size = self._check_batch_size(batch_size, who, default=None)
        verbose = _check_verbose(verbose, who)
        steps = _epoch.check_steps(steps, "steps", who)
        run = self._distributed_run(distribute, who)
        kind = _epoch.data_kind(x)
        if kind == "arrays":
            x = self._prepare_x(x, who)
            if run is not None:
                (x,) = run.array_test_share(who, x)
            bs = _array_batch_size(batch_size, len(x), steps)
            if steps is None and not callbacks and run is None:  # the whole loop in one core call
                return self._core.predict(x, bs)

            def one_pass():
                for start in range(0, len(x), bs):
                    yield x[start : start + bs]

            it = _epoch.EpochIterator(_epoch.Source(-(-len(x) // bs), one_pass), steps)
        else:
            self._check_dataset_args(x, who)
            it = self._stream_iterator(x, kind, who, "predict", steps, "steps", run=run)
            if run is not None:
                it = _epoch.EpochIterator(run.stream_test_source(it), steps)
        it.reset()
        if run is not None:
            verbose, callbacks = run.primary_view(verbose, callbacks)
        if not isinstance(callbacks, CallbackList):
            callbacks = CallbackList(
                callbacks, self, {"verbose": verbose, "epochs": 1, "steps": it.num_batches}, who=who
            )
        outputs = []
        try:
            if run is not None:
                run.start_evaluation(who)
            callbacks.on_predict_begin({})
            self.stop_predicting = False
            for step, xb in it.epoch():
                callbacks.on_predict_batch_begin(step, {})
                out = self._core.predict(xb, len(xb))
                outputs.append(out)
                callbacks.on_predict_batch_end(step, {"outputs": out})
                if self.stop_predicting:
                    break
            callbacks.on_predict_end({})
            if run is not None:
                outputs = run.gather_predictions(outputs, dealt=kind != "arrays")
        except BaseException as e:
            if run is not None:
                run.fail(e)  # the other processes would wait for this one: stop them all
            raise
        finally:
            it.close()
            if run is not None:
                run.close()
        if not outputs:
            raise ValueError("predict: the data yielded no batches")
        return np.concatenate(outputs)

    def predict_on_batch(self, x: Any) -> np.ndarray:
        x = self._prepare_x(x, "predict_on_batch")
        return self._core.predict(x, len(x))

    def _result(self, logs: dict, return_dict: bool) -> Any:
        if return_dict:
            return logs
        values = [logs["loss"]] + [logs[m] for m in self._metrics]
        return values[0] if len(values) == 1 else values

    @staticmethod
    def _check_batch_size(batch_size: Any, who: str, default: int | None = 32, arg: str = "batch_size") -> int | None:
        if batch_size is None:
            return default
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"{who}: expected {arg} to be a positive integer, received {arg}={batch_size!r}")
        return int(batch_size)

    # -- weights and description ---------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """All weights, layer by layer, from one step boundary even while fit runs in another
        thread (one acquisition of the model's lock)."""
        return [w for per_layer in self._core.snapshot(False)[0] for w in per_layer]

    def set_weights(self, weights: list) -> None:
        """Sets all weights at once, between two steps; nothing is written unless every array
        matches its weight's shape."""
        weights = list(weights)
        layers = self._flat_layers()
        expected = sum(len(layer._core.weight_names()) for layer in layers)
        if len(weights) != expected:
            raise ValueError(f"{self._where}: expected a list of {expected} weight arrays, received {len(weights)}")
        per_layer, i = [], 0
        for layer in layers:
            k = len(layer._core.weight_names())
            per_layer.append([np.ascontiguousarray(w, dtype=np.float32) for w in weights[i : i + k]])
            i += k
        self._core.set_weights(per_layer)

    def count_params(self) -> int:
        self._require_built("count_params()")
        return sum(layer.count_params() for layer in self._flat_layers())

    def summary(self, line_length: int | None = None, print_fn: Any = None) -> None:
        """Prints a Keras 3 style table: layer (type), output shape, params, then totals."""
        from ._summary import format_summary

        text = format_summary(self)
        (print_fn or print)(text)

    def _compile_config(self) -> dict:
        """What compile was given, for the model file: metrics as strings or {"class_name",
        "config"}; custom (Python) losses and metrics by name, with "registered_name" (Keras'
        convention: load_model needs them in custom_objects)."""
        metrics = [m for m in self._metric_specs if not isinstance(m, dict)]
        weighted = [metrics_mod.serialize(m["weighted"]) for m in self._metric_specs if isinstance(m, dict)]
        config = {
            "optimizer": {"class_name": type(self.optimizer).__name__, "config": self.optimizer.get_config()},
            "loss": losses_mod.serialize(self.loss),
            "metrics": [metrics_mod.serialize(m) for m in metrics],
        }
        if weighted:
            config["weighted_metrics"] = weighted
        return config

    def _compile_from_config(self, config: dict, custom_objects: dict | None = None) -> None:
        opt = optimizers_mod.from_config(config["optimizer"])
        loss = losses_mod.deserialize(config["loss"], custom_objects)
        metrics = [metrics_mod.deserialize(m, custom_objects) for m in config.get("metrics") or []]
        weighted = [metrics_mod.deserialize(m, custom_objects) for m in config.get("weighted_metrics") or []]
        self.compile(optimizer=opt, loss=loss, metrics=metrics or None, weighted_metrics=weighted or None)

    def plan(self, batch_size: int = 32, input_shape: Any = None, measure: bool = True, steps: int = 5) -> Any:
        """Per-layer shapes, parameters, FLOPs and memory, and a measured epoch-time estimate
        (see cnnx.planning.plan)."""
        from .planning import plan

        return plan(self, batch_size=batch_size, input_shape=input_shape, measure=measure, steps=steps)

    # -- saving ----------------------------------------------------------------------------------
    def save(self, filepath: Any) -> None:
        """Writes architecture, weights, optimizer state and compile config to one file
        (safetensors container; see docs/model-format.md). The write is atomic."""
        from .saving import save_model

        save_model(self, filepath)

    def save_weights(self, filepath: Any) -> None:
        """Writes the weights alone (same container)."""
        from .saving import save_weights

        save_weights(self, filepath)

    def load_weights(self, filepath: Any) -> None:
        """Loads weights saved by ``save_weights`` (or ``save``) into this model, layer by layer."""
        from .saving import load_weights

        load_weights(self, filepath)

    def export(
        self,
        filepath: Any,
        format: str = "tf_saved_model",
        verbose: Any = None,
        input_signature: Any = None,
        **kwargs: Any,
    ) -> None:
        """Keras' ``model.export``: ``format="onnx"`` writes the inference graph as ONNX (needs
        the ``onnx`` package; see cnnx.onnx_export). Keras' default, a TensorFlow SavedModel,
        is not available."""
        if format != "onnx":
            raise ValueError(
                f"export: cnnx supports format='onnx' only (Keras' 'tf_saved_model', 'openvino' and 'litert' "
                f"need TensorFlow or other runtimes); received format={format!r}. "
                "Use model.export(path, format='onnx')"
            )
        from .onnx_export import export_onnx

        export_onnx(self, filepath, verbose=verbose, input_signature=input_signature, **kwargs)

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> Model:
        """Rebuilds a model from ``get_config()`` (weights freshly initialised): a functional
        model's config (with ``input_layers``) or a Sequential's."""
        if cls is Model:
            cls = Functional if isinstance(config, dict) and "input_layers" in config else Sequential
        return cls.from_config(config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, layers={len(self.layers)}, built={self.built}>"


def _nested_class_name(model: Model) -> str:
    return "Sequential" if isinstance(model, Sequential) else "Functional"


def _layer_entry(item: Any) -> dict:
    name = _nested_class_name(item) if isinstance(item, Model) else type(item).__name__
    return {"class_name": name, "config": item.get_config()}


def _layer_from_entry(entry: dict, who: str, registry: dict | None = None) -> Any:
    """A layer or nested model from {"class_name": ..., "config": {...}}. `registry` maps the
    names made so far while rebuilding one model to their objects: a name seen again is the
    same layer or model used again (shared weights), as in the model that was saved."""
    from . import layers as layers_mod

    class_name = entry.get("class_name")
    config = dict(entry.get("config", {}))
    name = config.get("name")
    shared = registry is not None and class_name != "InputLayer" and isinstance(name, str)
    if shared and name in registry:
        obj = registry[name]
        made_as = _nested_class_name(obj) if isinstance(obj, Model) else type(obj).__name__
        if made_as != class_name and not (made_as == "Functional" and class_name == "Model"):
            raise ValueError(f"{who}: the name {name!r} is used by a {made_as} and a {class_name}")
        return obj
    if class_name == "Sequential":
        obj = Sequential._from_config(config, registry)
    elif class_name in ("Functional", "Model"):
        obj = Functional._from_config(config, registry)
    else:
        layer_cls = getattr(layers_mod, str(class_name), None) if class_name in layers_mod.__all__ else None
        if not (isinstance(layer_cls, type) and issubclass(layer_cls, Layer)):
            raise ValueError(f"{who}: unknown layer class {class_name!r}")
        obj = layer_cls.from_config(config)
    if shared:
        registry[name] = obj
    return obj


def model_from_config(config: dict) -> Model:
    """``keras.models.model_from_config``-like: a model from ``{"class_name": "Sequential" or
    "Functional", "config": {...}}`` (weights freshly initialised)."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise TypeError(f"model_from_config: expected {{'class_name': ..., 'config': {{...}}}}, received {config!r}")
    model = _layer_from_entry(config, "model_from_config", {})
    if not isinstance(model, Model):
        raise ValueError(
            f"model_from_config: expected a Sequential or Functional config, received {config.get('class_name')!r}"
        )
    return model


def clone_model(
    model: Model,
    input_tensors: Any = None,
    clone_function: Any = None,
    call_function: Any = None,
    recursive: bool = False,
    **kwargs: Any,
) -> Model:
    """``keras.models.clone_model``: a new model with the same architecture, layer names and
    configs, and freshly initialised weights (copy them with ``set_weights(get_weights())``).
    For a Sequential, ``clone_function(layer)`` may make each new layer (Keras' hook); cnnx
    does not support ``input_tensors`` or ``call_function``, nor ``clone_function`` for
    functional models."""
    if kwargs:
        raise ValueError(f"clone_model: unrecognized keyword arguments: {sorted(kwargs)}")
    if not isinstance(model, Model):
        raise TypeError(f"clone_model: expected a cnnx model, received {type(model).__name__}")
    if input_tensors is not None or call_function is not None:
        raise ValueError("clone_model: input_tensors and call_function are not supported by cnnx")
    if clone_function is None:
        return model_from_config({"class_name": _nested_class_name(model), "config": model.get_config()})
    if not isinstance(model, Sequential):
        raise ValueError("clone_model: clone_function is supported for Sequential models only in cnnx")
    from .layers import Input

    clone = Sequential(name=model.name)
    if model._input_shape is not None:
        clone.add(Input(model._input_shape))
    for item in model.layers:
        if isinstance(item, Model) and recursive:
            clone.add(clone_model(item, clone_function=clone_function, recursive=True))
        else:
            clone.add(clone_function(item))
    return clone


def load_model(
    filepath: Any, custom_objects: dict | None = None, compile: bool = True, safe_mode: bool = True
) -> Model:
    """``cnnx.models.load_model``: rebuilds a model written by ``model.save``. A model compiled
    with a loss or metric written in Python needs it in ``custom_objects`` ({name: function or
    class}), as in Keras."""
    from .saving import load_model as _load

    return _load(filepath, compile=compile, custom_objects=custom_objects)


# The two kinds of model build on Model above; imported last for that reason.
from ._functional import Functional  # noqa: E402
from ._sequential import Sequential  # noqa: E402
