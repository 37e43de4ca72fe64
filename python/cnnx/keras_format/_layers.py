"""One layer's configuration, Keras 3 <-> cnnx.

cnnx's layer configs use Keras' keys; they differ in four ways, handled here: Keras writes a
dtype policy, initializers and regularizers as {"module", "class_name", "config",
"registered_name"} dicts where cnnx keeps names; Keras has arguments cnnx does not (constraints,
activity regularizers, groups, renorm, quantization, ...), accepted on reading only at the value
that means "off"; Keras 2 (tf.keras) files spell a few things their own way (batch_input_shape,
LeakyReLU's alpha, string dtypes); and the layer classes cnnx does not have are refused by name.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from .. import layers as layers_mod
from ..saving import _Bad, _clip

# Keras arguments cnnx has no counterpart for, with the value(s) under which ignoring them
# changes nothing; any other value is refused (the model would compute something else).
_ANY = object()
_IGNORABLE: dict[str, tuple] = {
    "groups": (1,),
    "activity_regularizer": (None,),
    "kernel_constraint": (None,),
    "bias_constraint": (None,),
    "depthwise_constraint": (None,),
    "pointwise_constraint": (None,),
    "beta_constraint": (None,),
    "gamma_constraint": (None,),
    "quantization_config": (None,),
    "lora_rank": (None,),
    "lora_alpha": (None,),
    "renorm": (False,),
    "renorm_clipping": (None,),
    "renorm_momentum": (_ANY,),  # only read when renorm is on
    "antialias": (False,),
    "ragged": (False,),
    "optional": (False,),
    "data_format": ("channels_last", None),  # e.g. RandomContrast's, which cnnx does not take
    "input_axes": (None,),
    "output_axes": (None,),
}

_INITIALIZERS = {
    "zeros": "Zeros",
    "ones": "Ones",
    "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal",
    "he_uniform": "HeUniform",
    "he_normal": "HeNormal",
    "lecun_uniform": "LecunUniform",
    "lecun_normal": "LecunNormal",
}
_INITIALIZER_NAMES = {v: k for k, v in _INITIALIZERS.items()}
_MODEL_CLASSES = ("Sequential", "Functional", "Model")


def snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: the names Keras 3 gives the groups of its weights
    file (layers/conv2d, layers/conv2d_1, layers/re_lu, ...)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def layer_classes() -> list[str]:
    """The layer classes cnnx has (what a Keras file may name)."""
    return [n for n in layers_mod.__all__ if n[0].isupper() and n not in ("Layer", "Input")]


def dtype_policy(name: str = "float32") -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


def check_dtype(value: Any, where: str) -> None:
    """A Keras dtype (a string, or a DTypePolicy dict): cnnx computes in float32 only."""
    name = value
    if isinstance(value, dict):
        name = (value.get("config") or {}).get("name")
    if name not in (None, "float32"):
        raise _Bad(f"{where} has dtype policy {_clip(name)}; cnnx computes in float32 only")


def _accepted_args(cls: type) -> set[str]:
    args = {"name", "trainable", "dtype", "input_shape"}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            args |= {
                p.name
                for p in inspect.signature(klass.__init__).parameters.values()
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"
            }
    return args


def _initializer_from_keras(value: Any) -> Any:
    """A Keras initializer (name or dict) as cnnx's name, or None when cnnx has no such
    initializer: the weights are read from the file, so the initializer only matters to a
    later re-initialisation, for which cnnx then uses its default."""
    if isinstance(value, str):
        return value if value in _INITIALIZERS else None
    if isinstance(value, dict):
        return _INITIALIZER_NAMES.get(value.get("class_name"))
    return None


def _initializer_to_keras(name: str) -> dict:
    cls = _INITIALIZERS[name]
    config: dict = {} if name in ("zeros", "ones") else {"seed": None}
    return {"module": "keras.initializers", "class_name": cls, "config": config, "registered_name": None}


def _regularizer_from_keras(value: Any, key: str, where: str) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("class_name") in ("L1", "L2", "L1L2"):
        config = {k: v for k, v in dict(value.get("config") or {}).items() if k in ("l1", "l2")}
        return {"class_name": value["class_name"], "config": config}
    raise _Bad(f"{where}: {key} {_clip(value)} is not one cnnx has (L1, L2, L1L2)")


def _regularizer_to_keras(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return {"module": "keras.regularizers", **value, "registered_name": None}


def layer_config_from_keras(class_name: Any, config: Any) -> dict:
    """A Keras layer's config as cnnx's constructor takes it; _Bad naming the layer for a class
    cnnx does not have, or an argument it cannot honour."""
    if not isinstance(config, dict):
        raise _Bad(f"the config of a {_clip(class_name)} layer is not a JSON object")
    name = config.get("name")
    where = f"layer {name!r} ({class_name})"
    if class_name not in layer_classes():
        raise _Bad(
            f"layer {name!r} is a Keras {class_name} layer, which cnnx does not have "
            f"(cnnx has: {', '.join(layer_classes())})"
        )
    cls = getattr(layers_mod, class_name)
    accepted = _accepted_args(cls)
    out: dict = {}
    for key, value in config.items():
        if key == "dtype":
            check_dtype(value, where)
        elif key == "batch_input_shape" and class_name == "InputLayer":
            continue  # Keras 2's name for batch_shape: below
        elif key in ("batch_input_shape", "batch_shape") and class_name != "InputLayer":
            if value is not None:  # Keras 2: the first layer of a Sequential carries the input shape
                out["input_shape"] = tuple(value)[1:]
        elif key.endswith("_initializer"):
            init = _initializer_from_keras(value)
            if init is not None:
                out[key] = init
        elif key.endswith("_regularizer") and key != "activity_regularizer":
            out[key] = _regularizer_from_keras(value, key, where)
        elif key == "activation" and isinstance(value, dict):
            raise _Bad(f"{where}: activation {_clip(value)} is not one cnnx has")
        elif key == "alpha" and class_name == "LeakyReLU":
            out["negative_slope"] = value  # Keras 2's name
        elif key in accepted:
            out[key] = value
        elif key in _IGNORABLE and (_ANY in _IGNORABLE[key] or value in _IGNORABLE[key]):
            continue
        else:
            raise _Bad(f"{where}: cnnx does not support {key}={_clip(value)}")
    if class_name == "InputLayer":
        out.pop("trainable", None)
        if "batch_input_shape" in config:
            out["batch_shape"] = config["batch_input_shape"]
        out.pop("batch_input_shape", None)
        out["dtype"] = None
    return out


def layer_config_to_keras(layer: Any) -> dict:
    """A cnnx layer's get_config() in Keras 3's form."""
    config = dict(layer.get_config())
    if type(layer).__name__ == "InputLayer":
        return {**config, "ragged": False, "optional": False}
    out = {"name": config.pop("name"), "trainable": config.pop("trainable", True), "dtype": dtype_policy()}
    for key, value in config.items():
        if key.endswith("_initializer") and isinstance(value, str) and value in _INITIALIZERS:
            value = _initializer_to_keras(value)
        elif key.endswith("_regularizer"):
            value = _regularizer_to_keras(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out
