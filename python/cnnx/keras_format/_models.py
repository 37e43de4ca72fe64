"""Model configurations Keras 3 (and Keras 2) <-> cnnx, where Keras 3's weights file keeps each
layer's variables, and the compile configuration and optimizer variables.

Keras 3 files its weights by position, not by layer name: the groups are named after the layer
class, snake_case, counted per class among the model's layers in order (layers/conv2d,
layers/conv2d_1, ...; a nested model's under layers/sequential/layers/...), each holding
vars/0, vars/1, ... in the layer's variable order (trainable ones first). cnnx's weights are
in Keras' order and shapes (Conv2D kernel (kh, kw, cin, filters), Dense (in, units),
BatchNormalization gamma, beta, moving_mean, moving_variance, DepthwiseConv2D kernel
(kh, kw, cin, depth_multiplier), SeparableConv2D depthwise, pointwise, bias), so a layer's
vars map onto its weights one to one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..saving import _Bad, _clip
from ._layers import dtype_policy, layer_config_from_keras, layer_config_to_keras, snake_case

_MODELS = ("Sequential", "Functional", "Model")


# -- Keras -> cnnx ------------------------------------------------------------------------------
def _entries(config: dict, who: str) -> list:
    layers = config.get("layers")
    if not isinstance(layers, list) or not all(isinstance(e, dict) for e in layers):
        raise _Bad(f"{who}: the model's config has no list of layers")
    return layers


def model_from_keras(entry: Any) -> dict:
    """{"class_name": "Sequential" | "Functional", "config": ...} from a Keras file, as cnnx's
    model_from_config takes it."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise _Bad("the model config is not {'class_name': ..., 'config': {...}}")
    class_name = entry.get("class_name")
    config = entry["config"]
    if class_name == "Sequential":
        return {"class_name": "Sequential", "config": _sequential_from_keras(config)}
    if class_name in ("Functional", "Model"):
        return {"class_name": "Functional", "config": _functional_from_keras(config)}
    raise _Bad(
        f"the model is a {_clip(class_name)}; cnnx reads Sequential and Functional models "
        "(a subclassed Keras model's call() is Python code a file does not hold)"
    )


def _sequential_from_keras(config: dict) -> dict:
    layers = []
    input_shape = config.get("build_input_shape")
    for entry in _entries(config, "Sequential"):
        class_name = entry.get("class_name")
        if class_name == "InputLayer":
            cfg = entry.get("config") or {}
            input_shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            continue
        layers.append(_entry_from_keras(entry))
    out = {"name": config.get("name"), "trainable": config.get("trainable", True), "layers": layers}
    if input_shape:
        out["input_shape"] = list(input_shape)
    return out


def _entry_from_keras(entry: dict) -> dict:
    class_name = entry.get("class_name")
    if class_name in _MODELS:
        return model_from_keras(entry)
    return {"class_name": class_name, "config": layer_config_from_keras(class_name, entry.get("config"))}


def _node_from_keras(node: Any, layer: Any) -> dict:
    """A call of a layer: Keras 3's {"args": [...], "kwargs": {...}}, or Keras 2's
    [[name, node, tensor, kwargs], ...], as cnnx's {"args": [...], "kwargs": {}}. The call
    arguments Keras records, training= (the model's call decides it, in Keras too) and an
    absent mask, change nothing; any other is refused."""
    if isinstance(node, dict):
        kwargs = node.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise _Bad(f"a call of layer {layer!r} has kwargs {_clip(kwargs)}, expected a JSON object")
        for key, value in kwargs.items():
            if key != "training" and not (key == "mask" and value is None):
                raise _Bad(f"a call of layer {layer!r} passes {key}={_clip(value)}, which cnnx does not support")
        return {**node, "kwargs": {}}
    if isinstance(node, list) and all(isinstance(r, list) and len(r) >= 3 for r in node):
        refs = [{"class_name": "__keras_tensor__", "config": {"keras_history": [r[0], r[1], r[2]]}} for r in node]
        for r in node:  # each reference may carry the call's kwargs
            _node_from_keras({"args": [], "kwargs": r[3] if len(r) > 3 else {}}, layer)
        return {"args": [refs if len(refs) > 1 else refs[0]], "kwargs": {}}
    raise _Bad(f"a layer call in the config is not in a form cnnx reads: {_clip(node)}")


def _functional_from_keras(config: dict) -> dict:
    layers = []
    for entry in _entries(config, "Functional"):
        converted = _entry_from_keras(entry)
        name = entry.get("name", (entry.get("config") or {}).get("name"))
        nodes = entry.get("inbound_nodes") or []
        if not isinstance(nodes, list):
            raise _Bad(f"layer {name!r}: its inbound_nodes are not a list")
        layers.append({**converted, "name": name, "inbound_nodes": [_node_from_keras(n, name) for n in nodes]})
    return {
        "name": config.get("name"),
        "trainable": config.get("trainable", True),
        "layers": layers,
        "input_layers": config.get("input_layers"),
        "output_layers": config.get("output_layers"),
    }


def keras_paths_from_config(entry: dict, prefix: str = "") -> list[tuple[str, str]]:
    """(weights-file group, layer name) of every layer of a Keras model config, in Keras' order,
    nested models' layers included (their own groups are not listed)."""
    config = entry.get("config") or {}
    out: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    for item in _entries(config, "model"):
        class_name = str(item.get("class_name"))
        if entry.get("class_name") == "Sequential" and class_name == "InputLayer":
            continue  # Keras' Sequential.layers leaves its InputLayer out
        path = _count(counts, snake_case("Functional" if class_name == "Model" else class_name), prefix)
        if class_name in _MODELS:
            out += keras_paths_from_config(item, path + "/")
        elif class_name != "InputLayer":  # counted, but holds no weights
            out.append((path, (item.get("config") or {}).get("name")))
    return out


def _count(counts: dict[str, int], base: str, prefix: str) -> str:
    n = counts.get(base, -1) + 1
    counts[base] = n
    return f"{prefix}layers/{base}" if n == 0 else f"{prefix}layers/{base}_{n}"


# -- cnnx -> Keras ------------------------------------------------------------------------------
def keras_paths_from_model(model: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(weights-file group, layer) of every layer of a cnnx model, in the order Keras lists the
    same model's layers."""
    from ..models import Model, Sequential

    out: list[tuple[str, Any]] = []
    counts: dict[str, int] = {}
    for item in model.layers:
        if isinstance(item, Model):
            base = "sequential" if isinstance(item, Sequential) else "functional"
            out += keras_paths_from_model(item, _count(counts, base, prefix) + "/")
        else:
            out.append((_count(counts, snake_case(type(item).__name__), prefix), item))
    return out


def model_to_keras(model: Any) -> dict:
    """A cnnx model's config in Keras 3's form: {"module", "class_name", "config",
    "registered_name", "build_config"}."""
    from ..models import Sequential

    if isinstance(model, Sequential):
        shape = [None, *model._input_shape]
        input_names = {layer.name for layer in model._flat_layers()}
        name = "input_layer"
        while name in input_names:
            name += "_0"
        layers = [
            {
                "module": "keras.layers",
                "class_name": "InputLayer",
                "config": {
                    "batch_shape": shape,
                    "dtype": "float32",
                    "sparse": False,
                    "ragged": False,
                    "name": name,
                    "optional": False,
                },
                "registered_name": None,
            }
        ]
        layers += [_item_to_keras(item) for item in model.layers]
        config = {
            "name": model.name,
            "trainable": model.trainable,
            "dtype": dtype_policy(),
            "layers": layers,
            "build_input_shape": shape,
        }
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": config,
            "registered_name": None,
            "build_config": {"input_shape": shape},
        }
    config = dict(model.get_config())
    by_name = {op.name: op for op in model.layers}
    config["layers"] = [
        {**_item_to_keras(by_name[e["name"]]), "name": e["name"], "inbound_nodes": e["inbound_nodes"]}
        for e in config["layers"]
    ]
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": config,
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
    }


def _item_to_keras(item: Any) -> dict:
    from ..layers import InputLayer
    from ..merging import _MergeLayer
    from ..models import Model

    if isinstance(item, Model):
        return model_to_keras(item)
    entry = {
        "module": "keras.layers",
        "class_name": type(item).__name__,
        "config": layer_config_to_keras(item),
        "registered_name": None,
    }
    if not isinstance(item, InputLayer) and item.built:
        if isinstance(item, _MergeLayer):
            entry["build_config"] = {"input_shape": [list(s) for s in item.input_shape]}
        else:
            entry["build_config"] = {"input_shape": list(item.input_shape)}
    return entry


# -- compile configuration ----------------------------------------------------------------------
_LOSS_NAMES = {
    "CategoricalCrossentropy": "categorical_crossentropy",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
    "BinaryCrossentropy": "binary_crossentropy",
    "MeanSquaredError": "mean_squared_error",
    "MeanAbsoluteError": "mean_absolute_error",
}


def compile_to_keras(model: Any) -> dict | None:
    """Keras 3's compile_config for a compiled cnnx model; None when the loss or a metric is not
    one Keras has by name (a custom Python loss): the file then loads uncompiled in Keras."""
    from .. import optimizers

    if not model.compiled:
        return None
    loss = model.loss
    loss_cls = type(loss).__name__
    if loss_cls not in _LOSS_NAMES:
        return None
    loss_config = {k: v for k, v in loss.get_config().items() if k != "name"}
    defaults = {"from_logits": False, "label_smoothing": 0.0}
    if all(defaults.get(k) == v for k, v in loss_config.items()):
        keras_loss: Any = _LOSS_NAMES[loss_cls]
    else:
        keras_loss = {
            "module": "keras.losses",
            "class_name": loss_cls,
            "config": {"name": _LOSS_NAMES[loss_cls], "reduction": "sum_over_batch_size", **loss_config},
            "registered_name": None,
        }
    metrics = list(getattr(model, "_metrics", []))
    if not all(isinstance(m, str) for m in metrics):
        return None
    opt = model.optimizer
    opt_config = dict(opt.get_config())
    lr = opt_config.get("learning_rate")
    if isinstance(lr, dict):
        opt_config["learning_rate"] = {"module": "keras.optimizers.schedules", **lr, "registered_name": None}
    if not isinstance(opt, (optimizers.SGD, optimizers.Adam, optimizers.RMSprop, optimizers.Adagrad)):
        return None
    return {
        "optimizer": {
            "module": "keras.optimizers",
            "class_name": type(opt).__name__,
            "config": opt_config,
            "registered_name": None,
        },
        "loss": keras_loss,
        "loss_weights": None,
        "metrics": metrics or None,
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


_OPTIMIZER_KEYS_IGNORED = {
    "use_ema": (False,),
    "ema_momentum": None,
    "ema_overwrite_frequency": (None,),
    "loss_scale_factor": (None,),
    "gradient_accumulation_steps": (None,),
    "amsgrad": (False,),
    "centered": (False,),
    "name": None,
    "decay": (0.0, None),
    "is_legacy_optimizer": None,
    "jit_compile": None,
}


def compile_from_keras(model: Any, config: Any) -> None:
    """Compiles a cnnx model as Keras' compile_config says; _Bad when cnnx cannot."""
    try:
        _compile_from_keras(model, config)
    except (ValueError, TypeError) as e:
        raise _Bad(
            f"its compile config cannot be used by cnnx ({e}); load it with compile=False and compile the model"
        ) from None


def _compile_from_keras(model: Any, config: Any) -> None:
    from .. import losses, optimizers

    if not isinstance(config, dict) or not config:
        return
    opt = config.get("optimizer")
    if isinstance(opt, str):
        optimizer = optimizers.get(opt)
    elif isinstance(opt, dict):
        opt_config = {}
        for key, value in dict(opt.get("config") or {}).items():
            allowed = _OPTIMIZER_KEYS_IGNORED.get(key, ())
            if key in _OPTIMIZER_KEYS_IGNORED and (allowed is None or value in allowed):
                continue
            if value is None and key in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay"):
                continue
            opt_config[key] = value
        lr = opt_config.get("learning_rate")
        if isinstance(lr, dict):
            opt_config["learning_rate"] = {"class_name": lr.get("class_name"), "config": lr.get("config")}
        optimizer = optimizers.from_config({"class_name": opt.get("class_name"), "config": opt_config})
    else:
        raise _Bad(f"the compile config names no optimizer ({_clip(opt)})")
    loss = config.get("loss")
    if isinstance(loss, dict):
        loss_config = {
            k: v for k, v in dict(loss.get("config") or {}).items() if k not in ("name", "reduction", "axis")
        }
        loss = losses.from_config({"class_name": loss.get("class_name"), "config": loss_config})
    metrics = [_metric_name(m) for m in _flatten(config.get("metrics") or [])] or None
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)


def _flatten(items: Any) -> list:
    """Keras 2 writes metrics per output, as a list of lists."""
    if not isinstance(items, list):
        return [items]
    return [m for item in items for m in _flatten(item)]


def _metric_name(metric: Any) -> Any:
    if isinstance(metric, dict):  # {"class_name": "MeanMetricWrapper", "config": {"name": "accuracy", ...}}
        return (metric.get("config") or {}).get("name", metric.get("class_name"))
    return metric


# -- optimizer variables --------------------------------------------------------------------------
def _slot_blocks(optimizer: Any, slots_per_param: int) -> list[list[int]]:
    """Keras creates each optimizer's per-variable state in blocks, one per
    add_optimizer_variables call, interleaving the names of one call: Adam's momentum and
    velocity alternate per variable; RMSprop's velocities come first, then its momentums.
    cnnx's slots per weight are, in the same meaning, Keras' names in call order."""
    from .. import optimizers

    if slots_per_param == 0:
        return []
    if isinstance(optimizer, optimizers.Adam):  # AdamW too
        return [list(range(slots_per_param))]
    return [[i] for i in range(slots_per_param)]


def _expected_slots(optimizer: Any) -> int:
    from .. import optimizers

    if isinstance(optimizer, optimizers.Adam):
        return 2
    if isinstance(optimizer, optimizers.SGD):
        return 1 if optimizer._core.momentum != 0 else 0
    if isinstance(optimizer, optimizers.RMSprop):
        return 2 if optimizer._core.momentum > 0 else 1
    return 1  # Adagrad


def keras_trainable_order(model: Any, paths: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """(layer name, weight name) of the weights Keras trains, in model.trainable_variables order."""
    flags = model._compiled_trainable or model._effective_trainable()
    out = []
    for _, layer in paths:
        if layer._core is None or not flags.get(id(layer), False):
            continue
        for wname, trains in zip(layer._core.weight_names(), layer._core.weight_trainable()):
            if trains:
                out.append((layer.name, wname))
    return out


def optimizer_vars_to_keras(model: Any, paths: list, slots: list, iterations: int) -> list[np.ndarray]:
    """The optimizer's variables as Keras 3 lists them: iteration, learning_rate (when not a
    schedule), then the per-weight state blocks."""
    opt = model.optimizer
    params = [tuple(p) for p in model._trainable_params()]
    order = keras_trainable_order(model, paths)
    k = _expected_slots(opt)
    by_param = dict(zip(params, slots)) if slots else {}
    out = [np.asarray(iterations, dtype=np.int64)]
    if opt._schedule is None:
        out.append(np.asarray(opt.learning_rate, dtype=np.float32))
    shapes = {
        (layer.name, w): np.shape(v)
        for _, layer in paths
        if layer._core is not None
        for w, v in zip(layer._core.weight_names(), layer.get_weights())
    }
    initial = float(getattr(opt._core, "initial_accumulator_value", 0.0))
    for block in _slot_blocks(opt, k):
        for param in order:
            for i in block:
                state = by_param.get(param)
                if state is not None and len(state) == k:
                    out.append(np.asarray(state[i], dtype=np.float32))
                else:
                    out.append(np.full(shapes[param], initial, dtype=np.float32))
    return out


def optimizer_vars_from_keras(model: Any, paths: list, values: list[np.ndarray]) -> None:
    """Sets the cnnx optimizer's iterations and state from Keras' variables, when they are the
    ones this optimizer has; otherwise leaves them fresh, as Keras does (with its warning)."""
    import warnings

    opt = model.optimizer
    order = keras_trainable_order(model, paths)
    k = _expected_slots(opt)
    head = 1 if opt._schedule is not None else 2
    if len(values) != head + k * len(order) or not values:
        warnings.warn(
            f"Skipping variable loading for optimizer '{opt.name}', because it has {head + k * len(order)} "
            f"variables whereas the saved optimizer has {len(values)} variables.",
            stacklevel=3,
        )
        return
    opt._core.iterations = int(np.asarray(values[0]))
    state: dict[tuple[str, str], list] = {p: [None] * k for p in order}
    pos = head
    for block in _slot_blocks(opt, k):
        for param in order:
            for i in block:
                state[param][i] = np.ascontiguousarray(values[pos], dtype=np.float32)
                pos += 1
    if k:
        params = [tuple(p) for p in model._trainable_params()]
        model._core.set_optimizer_slots([state[p] for p in params])
