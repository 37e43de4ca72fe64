"""One model file: architecture, weights, optimizer state and training config, in the
safetensors container (an 8-byte header length, a JSON header, then raw little-endian tensors).

The layout is documented in docs/model-format.md so that other programs (any safetensors
reader) can load the same file without Python. The container is read and written by the core
(src/cpp/io), which native programs use too. Writes are atomic: the file is written next to
its destination and renamed over it, so a crash while saving never destroys the previous file,
and the temp file of a save that was killed is removed by a later save or load. Reads check
every structural fact, with bounds, before allocating anything, then a SHA-256 of header and
data; then this module checks the configuration's structure: a truncated, corrupted, foreign or
hostile file is refused with a ValueError that names the file and the problem (see `_reading`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _core

FORMAT = "cnnx"
FORMAT_VERSION = "1"  # weights files and plain Sequential models: what every cnnx reads
GRAPH_FORMAT_VERSION = "2"  # functional models, nested models, shared layers

# Bounds on what a file may declare. They are far above anything cnnx writes; they exist so that
# a corrupted or hostile file is refused before it can make the reader allocate, loop or recurse
# without limit (the tensor data itself is bounded by the file's size). The container's own
# (header size, tensor count, tensor rank and axes) are the core's: src/cpp/io/container.hpp.
_MAX_RANK = 8  # axes of a declared shape
_MAX_DEPTH = 32  # JSON nesting (cnnx writes at most 6 levels)
_MAX_CONTAINERS = 1 << 20  # JSON arrays and objects in one header or configuration (~100 bytes each parsed)
_MAX_LAYERS = 4096  # layers in model_config, nested models' included
_MAX_NODES = 4096  # layer calls in a functional model_config, nested models' included
_MAX_STRING = 4096  # characters of a name or other string in a configuration
_MAX_LIST = 4096  # entries of a list in a configuration (other than 'layers')
_MAX_CLASSES = 1 << 16  # entries of class_names
_MAX_SIZE = 1 << 24  # a size a layer or the input declares: units, filters, depth_multiplier, height...
_MAX_WINDOW = 4096  # kernel_size, pool_size, strides, dilation_rate (each axis)
_MAX_SAMPLE = 1 << 31  # elements of one sample: product of an input, target or noise shape
_SHAPE_KEYS = frozenset({"input_shape", "target_shape", "noise_shape", "batch_shape", "shape"})
_WINDOW_KEYS = frozenset({"kernel_size", "pool_size", "strides", "dilation_rate"})
_SIZE_KEYS = frozenset({"filters", "units", "height", "width", "depth_multiplier"}) | _SHAPE_KEYS

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "write_file", "read_file"]


# -- refusing a file: the one place where a reading failure becomes a ValueError ----------------
class _Bad(ValueError):
    """A problem found in the file; `_reading` adds the file's name."""


@contextlib.contextmanager
def _reading(name: Any) -> Iterator[None]:
    """Every public reader runs inside this: whatever goes wrong while interpreting a file comes
    out as a ValueError that names the file (as the user gave it) and the problem.

    Left alone on purpose: OSError (missing or unreadable file, as `open()` reports it: the file's
    content is not at fault, and callers rightly catch FileNotFoundError), MemoryError (the
    process ran out of memory: the bounds above, and the parameter budget the model is rebuilt
    under, keep a file from demanding much more than its own size, so the machine is the likely
    cause, and a ValueError would hide that), and KeyboardInterrupt / SystemExit, which are not
    errors of the file at all."""
    where = f"cannot load {name!r}"
    try:
        yield
    except _Bad as e:
        raise ValueError(f"{where}: {e}") from None
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, name) from e
        raise
    except MemoryError as e:
        if hasattr(e, "add_note"):
            e.add_note(f"while loading {name!r}")
        raise
    except RecursionError:
        raise ValueError(f"{where}: its contents are nested too deeply; the file is corrupted") from None
    except (ValueError, TypeError) as e:
        # from the layer, optimizer or loss constructors or set_weights, which name what is wrong
        raise ValueError(f"{where}: {e}") from e
    except Exception as e:
        raise ValueError(f"{where}: the saved configuration is invalid ({type(e).__name__}: {e})") from e


def _json(text: str, what: str) -> Any:
    """json.loads with bounds: millions of tiny arrays would take ~50x the text's size in
    memory, so their number is capped by a count of brackets (those inside strings included,
    which only errs on the safe side) before parsing; the depth is checked right after."""
    containers = text.count("[") + text.count("{")
    if containers > _MAX_CONTAINERS:
        raise _Bad(f"{what} holds {containers} JSON arrays or objects; expected at most {_MAX_CONTAINERS}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise _Bad(f"{what} is not valid JSON ({e})") from None
    except RecursionError:
        raise _Bad(f"{what} is nested more than {_MAX_DEPTH} levels deep") from None
    level, depth = [value], 0
    while level:  # breadth first and iterative, so the check itself cannot recurse too deeply
        level = [v for v in level if isinstance(v, (dict, list))]
        if level:
            depth += 1
            if depth > _MAX_DEPTH:
                raise _Bad(f"{what} is nested more than {_MAX_DEPTH} levels deep")
        level = [c for v in level for c in (v.values() if isinstance(v, dict) else v)]
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# -- the container ---------------------------------------------------------------------------
# Read and written by the core (src/cpp/io: checks, SHA-256, atomic write, stale temp files), so
# that Python and native programs share one implementation. The core's messages start with the
# name given to it; _container puts the user's spelling of the path there instead (via _reading).
_IN_CORE_MESSAGES = "<file>"
_HOST = _core._model_file_host_tag()  # the <host> of temp file names: .<name>.<host>.<pid>.<random>.cnnx-tmp


def _container(call: Any, source: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    try:
        metadata, tensors = call(source, _IN_CORE_MESSAGES)
    except ValueError as e:
        message = str(e)
        prefix = _IN_CORE_MESSAGES + ": "
        raise _Bad(message[len(prefix) :] if message.startswith(prefix) else message) from None
    return dict(tensors), metadata


def write_file(
    path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str], version: str = FORMAT_VERSION
) -> None:
    """Writes `tensors` (float32) and string `metadata` as one safetensors file, atomically;
    `version` is the format version the file declares (2 for a graph model's file).

    A symlink is written through (its target is replaced and the link kept); the file keeps the
    mode of the file it replaces, or gets 0o666 minus the umask, as `open(path, "w")` would."""
    name = os.fspath(path)
    arrays = [(key, np.asarray(t, dtype=np.float32, order="C")) for key, t in tensors.items()]
    try:
        _core.write_model_file(os.fsencode(name), {**metadata, "format_version": version}, arrays)
    except OSError as e:
        # the user's path, not the temp file's, is what the message should name
        raise OSError(e.errno, e.strerror, name) from e  # the same message open(path, "w") would give


def read_file(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Reads a file written by write_file; ValueError naming the file and the problem if it is
    not one (see `_reading` for what is not turned into ValueError)."""
    name = os.fspath(path)
    with _reading(name):
        return _read_path(name)


def _read_path(name: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The container's tensors and metadata (with 'format' and 'format_version', without
    'sha256'); the core also removes stale temp files of dead writers in the file's directory."""
    return _container(_core.read_model_file, os.fsencode(name))


def _read_bytes(blob: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    return _container(_core.parse_model_file, blob)


def _clip(value: Any, limit: int = 200) -> str:
    """repr for messages, shortened: a hostile file must not produce a megabyte-long message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " ...)"


# -- models ----------------------------------------------------------------------------------
def _weight_tensors(model: Any, weights: list | None = None) -> dict[str, np.ndarray]:
    """`weights`: per-layer lists from model._core.snapshot(); taken here if not given."""
    if weights is None:
        weights = model._core.snapshot(False)[0]
    out = {}
    for layer, per_layer in zip(model._flat_layers(), weights):
        for wname, w in zip(layer._core.weight_names(), per_layer):
            out[f"weights/{layer.name}/{wname}"] = w
    return out


def _is_graph(model: Any) -> bool:
    """Whether the model needs format version 2: a functional model, or a Sequential holding a
    model or a layer used twice."""
    from .models import Model, Sequential

    if not isinstance(model, Sequential):
        return True
    return any(isinstance(item, Model) for item in model.layers) or len(model._flat_layers()) != len(model.layers)


def _check_names(model: Any) -> None:
    """A graph file names each layer and nested model once and refers to it by name (weights,
    shared layers), so distinct objects need distinct names."""
    from .models import Model

    seen: dict[str, Any] = {}
    visited: set[int] = set()
    stack = list(model._sublayers())
    while stack:
        item = stack.pop()
        if id(item) in visited:
            continue
        visited.add(id(item))
        if seen.setdefault(item.name, item) is not item:
            raise ValueError(
                f"save: two different layers or models are named '{item.name}'; "
                "a model file refers to them by name: rename one"
            )
        if isinstance(item, Model):
            stack.extend(item._sublayers())


def save_model(model: Any, path: str | os.PathLike) -> None:
    """``model.save(path)``: everything needed to rebuild, predict and resume training."""
    from .models import Model, Sequential

    if not isinstance(model, Model):
        raise TypeError(f"save_model: expected a cnnx model (Sequential or Model), received {type(model).__name__}")
    model._require_built("save()")
    if not model.built:
        model.build()
    graph = _is_graph(model)
    if graph:
        _check_names(model)
    # Weights, slots and iterations of one step boundary, even while fit runs in another thread.
    weights, slots, iterations = model._core.snapshot()
    tensors = _weight_tensors(model, weights)
    config = model.get_config()
    if graph:
        config = {"class_name": "Sequential" if isinstance(model, Sequential) else "Functional", "config": config}
    meta = {"contents": "model", "model_config": json.dumps(config)}
    if model.class_names is not None:
        meta["class_names"] = json.dumps([str(c) for c in model.class_names])
    if model.compiled:
        meta["compile_config"] = json.dumps(model._compile_config())
        meta["optimizer_iterations"] = str(iterations)
        params = model._trainable_params()
        if slots:
            if len(slots) != len(params):
                raise RuntimeError(
                    f"save: the optimizer holds state for {len(slots)} weights, cnnx expected {len(params)}"
                )
            for (lname, wname), per_param in zip(params, slots):
                for i, s in enumerate(per_param):
                    tensors[f"optimizer/{lname}/{wname}/{i}"] = s
    write_file(path, tensors, meta, GRAPH_FORMAT_VERSION if graph else FORMAT_VERSION)


def load_model(path: str | os.PathLike, compile: bool = True) -> Any:
    """Rebuilds a model saved by ``model.save``: architecture, weights and, with compile=True,
    the optimizer (with its state), loss and metrics."""
    name = os.fspath(path)
    with _reading(name):
        tensors, meta = _read_path(name)
        return _rebuild(tensors, meta, compile)


def _load_model_bytes(blob: bytes, name: str = "<bytes>", compile: bool = True) -> Any:
    """load_model on the file's bytes, without touching the disk (used by the fuzz target)."""
    with _reading(name):
        tensors, meta = _read_bytes(blob)
        return _rebuild(tensors, meta, compile)


def _rebuild(tensors: dict[str, np.ndarray], meta: dict[str, str], compile: bool) -> Any:
    from .layers import _param_budget
    from .models import Sequential, model_from_config

    if meta.get("contents") != "model":
        raise _Bad(
            f"it holds {_clip(meta.get('contents'))}, not a whole model (use model.load_weights for a weights file)"
        )
    config = _check_model_config(meta)
    compile_config = _check_compile_config(meta) if compile and "compile_config" in meta else None
    # The config may not ask for more weights than the file holds: refused before allocating.
    held = sum(t.size for name, t in tensors.items() if name.startswith("weights/"))
    with _param_budget(held):
        if meta.get("format_version") == FORMAT_VERSION:
            model = Sequential.from_config(config)
        else:
            model = model_from_config(config)
        if not model.built:
            model.build()
    if "class_names" in meta:
        model.class_names = _check_class_names(meta["class_names"])
    _assign_weights(model, tensors)
    if compile_config is not None:
        model._compile_from_config(compile_config)
        model.build()
        model.optimizer._core.iterations = _check_iterations(meta.get("optimizer_iterations", "0"))
        params = model._trainable_params()
        slot_count = sum(1 for name in tensors if name.startswith("optimizer/"))
        if slot_count:
            slots = []
            for lname, wname in params:
                per_param, i = [], 0
                while f"optimizer/{lname}/{wname}/{i}" in tensors:
                    per_param.append(tensors[f"optimizer/{lname}/{wname}/{i}"])
                    i += 1
                slots.append(per_param)
            model._core.set_optimizer_slots(slots)
    return model


# -- checking the configuration before anything is built from it ------------------------------
def _layer_classes() -> frozenset[str]:
    from . import layers

    # Classes only: layers also exports Keras' functional forms (add, concatenate, ...).
    return frozenset(
        n for n in layers.__all__ if n not in ("Layer", "Input", "InputLayer") and isinstance(getattr(layers, n), type)
    )


_MODEL_CLASSES = ("Sequential", "Functional")


class _Tally:
    """Layers and layer calls declared so far across a model_config and its nested models."""

    def __init__(self) -> None:
        self.layers = 0
        self.nodes = 0

    def add(self, layers: int, nodes: int, where: str) -> None:
        self.layers += layers
        self.nodes += nodes
        if self.layers > _MAX_LAYERS:
            raise _Bad(f"{where}: {self.layers} layers; expected at most {_MAX_LAYERS} (nested models included)")
        if self.nodes > _MAX_NODES:
            raise _Bad(f"{where}: {self.nodes} layer calls; expected at most {_MAX_NODES} (nested models included)")


def _check_model_config(meta: dict[str, str]) -> Any:
    """model_config's structure and types, and sanity bounds on what it declares (the layers
    themselves check their arguments' values when they are constructed); returns it parsed.
    Version 1: a Sequential's config. Version 2: {"class_name": "Sequential" or "Functional",
    "config": {...}}, whose layers may be nested models, and whose functional graphs are
    checked to be well formed (every call refers to a call that exists; no cycle)."""
    if "model_config" not in meta:
        raise _Bad("the metadata has no 'model_config'")
    config = _json(meta["model_config"], "model_config")
    tally = _Tally()
    if meta.get("format_version") == FORMAT_VERSION:
        _check_sequential(config, "model_config", tally, nested=False)
        return config
    if not (isinstance(config, dict) and config.get("class_name") in _MODEL_CLASSES):
        raise _Bad(
            f"model_config: expected {{'class_name': 'Sequential' or 'Functional', 'config': {{...}}}}, "
            f"received {_clip(config)}"
        )
    _check_model(config["class_name"], config.get("config"), "model_config", tally)
    return config


def _check_model(class_name: str, config: Any, where: str, tally: _Tally) -> None:
    if class_name == "Sequential":
        _check_sequential(config, where, tally, nested=True)
    else:
        _check_functional(config, where, tally)


def _check_header(config: Any, where: str) -> None:
    """The name and trainable flag every model config has."""
    if not isinstance(config, dict):
        raise _Bad(f"{where}: expected a JSON object, received {_clip(config)}")
    name = config.get("name")
    if name is not None and not isinstance(name, str):
        raise _Bad(f"{where}: expected 'name' to be a string, received {_clip(name)}")
    _check_values(name, where, "name")
    if not isinstance(config.get("trainable", True), bool):
        raise _Bad(f"{where}: expected 'trainable' to be true or false, received {_clip(config.get('trainable'))}")


def _check_sequential(config: Any, where: str, tally: _Tally, nested: bool) -> None:
    _check_header(config, where)
    shape = config.get("input_shape")
    if shape is not None:
        if not (
            isinstance(shape, list)
            and 2 <= len(shape) <= _MAX_RANK + 1
            and shape[0] is None
            and all(_is_int(d) and 0 < d <= _MAX_SIZE for d in shape[1:])
        ):
            raise _Bad(
                f"{where}: expected 'input_shape' as [null, d1, ...] with 1 to {_MAX_RANK} "
                f"dimensions in [1, {_MAX_SIZE}], received {_clip(shape)}"
            )
        if math.prod(shape[1:]) > _MAX_SAMPLE:
            raise _Bad(f"{where}: input_shape {_clip(shape)} has more than {_MAX_SAMPLE} elements per sample")
    layers = config.get("layers", [])
    if not isinstance(layers, list):
        raise _Bad(f"{where}: expected 'layers' to be a list, received {_clip(layers)}")
    tally.add(len(layers), 0, where)
    known = _layer_classes()
    for i, entry in enumerate(layers):
        at = f"{where}: layer {i}"
        if not isinstance(entry, dict):
            raise _Bad(f"{at}: expected an object with 'class_name' and 'config', received {_clip(entry)}")
        cls = entry.get("class_name")
        if nested and cls in _MODEL_CLASSES:
            _check_model(cls, entry.get("config"), f"{at} ({cls})", tally)
            continue
        if not isinstance(cls, str) or cls not in known:
            raise _Bad(f"{at}: unknown layer class {_clip(cls)}; expected one of {sorted(known)}")
        if not isinstance(entry.get("config", {}), dict):
            raise _Bad(f"{at} ({cls}): expected 'config' to be an object, received {_clip(entry.get('config'))}")
        _check_values(entry.get("config", {}), f"{at} ({cls})")


def _check_functional(config: Any, where: str, tally: _Tally) -> None:
    """A functional config (Keras' layout): every layer entry named once, every call's
    arguments references [layer, node, 0] to calls that exist, the calls free of cycles
    (checked with Kahn's algorithm, so the rebuild that replays them always finishes), and
    input_layers / output_layers one reference each, the input to an InputLayer."""
    _check_header(config, where)
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _Bad(f"{where}: expected 'layers' to be a non-empty list, received {_clip(layers)}")
    tally.add(len(layers), 0, where)
    known = _layer_classes()
    calls: dict[str, int] = {}  # layer name -> number of calls (an InputLayer has its one node)
    classes: dict[str, str] = {}
    edges: list[tuple[tuple[str, int], list[tuple[str, int]]]] = []  # call -> calls it reads
    for i, entry in enumerate(layers):
        at = f"{where}: layer {i}"
        if not isinstance(entry, dict):
            raise _Bad(f"{at}: expected an object with 'class_name', 'name', 'config', 'inbound_nodes'")
        cls, name, nodes = entry.get("class_name"), entry.get("name"), entry.get("inbound_nodes")
        if not isinstance(name, str) or not name or len(name) > _MAX_STRING:
            raise _Bad(f"{at}: expected 'name' to be a non-empty string, received {_clip(name)}")
        if name in calls:
            raise _Bad(f"{at}: the layer name {_clip(name)} is used twice")
        at = f"{where}: layer {_clip(name)}"
        if not isinstance(entry.get("config"), dict):
            raise _Bad(f"{at}: expected 'config' to be an object, received {_clip(entry.get('config'))}")
        if not isinstance(nodes, list) or len(nodes) > _MAX_LIST:
            raise _Bad(f"{at}: expected 'inbound_nodes' to be a list of at most {_MAX_LIST} calls")
        if cls == "InputLayer":
            if nodes:
                raise _Bad(f"{at} (InputLayer): expected no inbound nodes, received {_clip(nodes)}")
            _check_input_layer(entry["config"], at)
        elif cls in _MODEL_CLASSES:
            _check_model(cls, entry["config"], f"{at} ({cls})", tally)
        elif isinstance(cls, str) and cls in known:
            _check_values(entry["config"], f"{at} ({cls})")
        else:
            raise _Bad(f"{at}: unknown layer class {_clip(cls)}; expected one of {sorted(known)}")
        tally.add(0, len(nodes), where)
        calls[name] = 1 if cls == "InputLayer" else len(nodes)
        classes[name] = cls
        for k, node in enumerate(nodes):
            edges.append(((name, k), _node_references(node, f"{at}, call {k}")))

    for (name, k), reads in edges:
        for ref in reads:
            if ref[0] not in calls or ref[1] >= calls[ref[0]]:
                raise _Bad(
                    f"{where}: call {k} of layer {_clip(name)} reads {_clip(list(ref))}, a call that does not exist"
                )
    # Kahn: a call runs after the calls it reads and after the layer's previous call.
    waiting: dict[tuple[str, int], int] = {}
    readers: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for (name, k), reads in edges:
        needs = set(reads) | ({(name, k - 1)} if k else set())
        waiting[(name, k)] = len(needs)
        for need in needs:
            readers.setdefault(need, []).append((name, k))
    ready = [(name, 0) for name, cls in classes.items() if cls == "InputLayer"]
    ready += [call for call, n in waiting.items() if n == 0]
    done = 0
    while ready:
        call = ready.pop()
        done += 1
        for reader in readers.get(call, []):
            waiting[reader] -= 1
            if waiting[reader] == 0:
                ready.append(reader)
    if done != len(edges) + sum(1 for cls in classes.values() if cls == "InputLayer"):
        raise _Bad(f"{where}: the layer calls form a cycle (or read calls that never run)")

    for key in ("input_layers", "output_layers"):
        ref = _io_reference(config.get(key), f"{where}: {key}")
        offset = 1 if classes.get(ref[0]) == "Functional" else 0  # Keras counts the model's own graph
        if ref[0] not in calls or not offset <= ref[1] < calls[ref[0]] + offset:
            raise _Bad(f"{where}: {key} refers to {_clip(list(ref))}, a call that does not exist")
        if key == "input_layers" and classes[ref[0]] != "InputLayer":
            raise _Bad(f"{where}: input_layers must refer to an InputLayer, received {_clip(list(ref))}")


def _check_input_layer(config: dict, where: str) -> None:
    shape = config.get("batch_shape")
    if not (
        isinstance(shape, list)
        and 2 <= len(shape) <= _MAX_RANK + 1
        and shape[0] is None
        and all(_is_int(d) and 0 < d <= _MAX_SIZE for d in shape[1:])
    ):
        raise _Bad(
            f"{where} (InputLayer): expected 'batch_shape' as [null, d1, ...] with 1 to {_MAX_RANK} "
            f"dimensions in [1, {_MAX_SIZE}], received {_clip(shape)}"
        )
    if math.prod(shape[1:]) > _MAX_SAMPLE:
        raise _Bad(f"{where} (InputLayer): batch_shape {_clip(shape)} has more than {_MAX_SAMPLE} elements per sample")
    _check_values(config, f"{where} (InputLayer)")


def _tensor_reference(value: Any, where: str) -> tuple[str, int]:
    """{"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, 0], ...}}."""
    config = value.get("config") if isinstance(value, dict) else None
    history = config.get("keras_history") if isinstance(config, dict) else None
    if not (
        isinstance(value, dict)
        and value.get("class_name") == "__keras_tensor__"
        and isinstance(value.get("config"), dict)
        and isinstance(history, list)
        and len(history) == 3
        and isinstance(history[0], str)
        and _is_int(history[1])
        and 0 <= history[1] < _MAX_NODES
        and _is_int(history[2])
        and history[2] == 0
    ):
        raise _Bad(
            f"{where}: expected a tensor as {{'class_name': '__keras_tensor__', 'config': "
            f"{{'keras_history': [layer name, node index, 0]}}}}, received {_clip(value)}"
        )
    _check_values(value["config"], where)
    return history[0], history[1]


def _node_references(node: Any, where: str) -> list[tuple[str, int]]:
    """The calls one layer call reads: {"args": [tensor or list of tensors], "kwargs": {}}."""
    if not (isinstance(node, dict) and set(node) <= {"args", "kwargs"} and node.get("kwargs", {}) == {}):
        raise _Bad(f"{where}: expected {{'args': [...], 'kwargs': {{}}}}, received {_clip(node)}")
    args = node.get("args")
    if not (isinstance(args, list) and len(args) == 1):
        raise _Bad(
            f"{where}: expected 'args' to hold one argument (a tensor or a list of them), received {_clip(args)}"
        )
    arg = args[0]
    if isinstance(arg, list):
        if not 1 <= len(arg) <= _MAX_LIST:
            raise _Bad(f"{where}: expected a list of 1 to {_MAX_LIST} tensors, received {len(arg)}")
        return [_tensor_reference(t, where) for t in arg]
    return [_tensor_reference(arg, where)]


def _io_reference(value: Any, where: str) -> tuple[str, int]:
    """[layer, node, 0], or a list holding exactly one (cnnx: one input and one output)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if not (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and _is_int(value[1])
        and 0 <= value[1] <= _MAX_NODES
        and _is_int(value[2])
        and value[2] == 0
    ):
        raise _Bad(f"{where}: expected [layer name, node index, 0] (one input and one output), received {_clip(value)}")
    return value[0], value[1]


def _check_values(value: Any, where: str, key: str = "") -> None:
    """Generic bounds on a configuration: string and list lengths, integer ranges, sizes, and
    the {"class_name": str, "config": {...}} shape of nested objects (regularizers, schedules)."""
    if isinstance(value, str):
        if len(value) > _MAX_STRING:
            raise _Bad(f"{where}: {key or 'a string'} is {len(value)} characters long; expected at most {_MAX_STRING}")
    elif _is_int(value):
        limit = _MAX_WINDOW if key in _WINDOW_KEYS else _MAX_SIZE if key in _SIZE_KEYS else (1 << 63) - 1
        if not -limit <= value <= limit:
            raise _Bad(f"{where}: expected {key or 'an integer'} within +-{limit}, received {_clip(value)}")
    elif isinstance(value, list):
        if len(value) > _MAX_LIST:
            raise _Bad(f"{where}: {key or 'a list'} has {len(value)} entries; expected at most {_MAX_LIST}")
        if key in _SHAPE_KEYS:
            # the core multiplies these out in 64-bit integers: keep the product far from wrapping
            dims = [max(abs(d), 1) for d in value if _is_int(d)]  # a 0 must not hide huge others
            if len(value) > _MAX_RANK + 1 or math.prod(dims) > _MAX_SAMPLE:
                raise _Bad(
                    f"{where}: {key} {_clip(value)} has more than {_MAX_RANK + 1} axes or {_MAX_SAMPLE} elements"
                )
        for v in value:
            _check_values(v, where, key)
    elif isinstance(value, dict):
        if "class_name" in value:
            if not isinstance(value["class_name"], str) or not isinstance(value.get("config", {}), dict):
                raise _Bad(
                    f"{where}: expected {key or 'an entry'} as {{'class_name': str, 'config': {{...}}}}, "
                    f"received {_clip(value)}"
                )
        for k, v in value.items():
            _check_values(v, where, k)


def _check_compile_config(meta: dict[str, str]) -> dict:
    config = _json(meta["compile_config"], "compile_config")
    if not isinstance(config, dict):
        raise _Bad(f"compile_config: expected a JSON object, received {_clip(config)}")
    for part in ("optimizer", "loss"):
        entry = config.get(part)
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("class_name"), str)
            and isinstance(entry.get("config", {}), dict)
        ):
            raise _Bad(
                f"compile_config: expected {part!r} as {{'class_name': str, 'config': {{...}}}}, "
                f"received {_clip(entry)}"
            )
    metrics = config.get("metrics", [])
    if not (metrics is None or isinstance(metrics, list) and all(isinstance(m, str) for m in metrics)):
        raise _Bad(f"compile_config: expected 'metrics' to be a list of strings, received {_clip(metrics)}")
    _check_values(config, "compile_config")
    return config


def _check_class_names(text: str) -> list[str]:
    names = _json(text, "class_names")
    if not (isinstance(names, list) and len(names) <= _MAX_CLASSES and all(isinstance(c, str) for c in names)):
        raise _Bad(f"class_names: expected a JSON list of at most {_MAX_CLASSES} strings, received {_clip(names)}")
    return names


def _check_iterations(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) < 1 << 63):
        raise _Bad(f"optimizer_iterations: expected a non-negative integer below 2**63, received {_clip(text)}")
    return int(text)


def _assign_weights(model: Any, tensors: dict[str, np.ndarray]) -> None:
    for layer in model._flat_layers():
        names = layer._core.weight_names()
        if not names:
            continue
        missing = [n for n in names if f"weights/{layer.name}/{n}" not in tensors]
        if missing:
            raise _Bad(f"no weights for layer '{layer.name}' ({', '.join(missing)})")
        layer.set_weights([tensors[f"weights/{layer.name}/{n}"] for n in names])


def save_weights(model: Any, path: str | os.PathLike) -> None:
    """``model.save_weights(path)``: the weights alone, in the same container."""
    model._require_built("save_weights()")
    if not model.built:
        model.build()
    write_file(path, _weight_tensors(model), {"contents": "weights"})


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """``model.load_weights(path)``: weights matched layer by layer, in order, shapes checked."""
    name = os.fspath(path)
    model._require_built("load_weights()")
    with _reading(name):
        tensors, _ = _read_path(name)
        _assign_by_order(model, tensors)


def _load_weights_bytes(model: Any, blob: bytes, name: str = "<bytes>") -> None:
    """load_weights from the file's bytes, without touching the disk (used by the fuzz target)."""
    model._require_built("load_weights()")
    with _reading(name):
        tensors, _ = _read_bytes(blob)
        _assign_by_order(model, tensors)


def _assign_by_order(model: Any, tensors: dict[str, np.ndarray]) -> None:
    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    order: list[str] = []
    for key, t in tensors.items():
        parts = key.split("/")
        if len(parts) != 3 or parts[0] != "weights":
            continue
        if parts[1] not in groups:
            groups[parts[1]] = []
            order.append(parts[1])
        groups[parts[1]].append((parts[2], t))
    layers = [layer for layer in model._flat_layers() if layer._core.weight_names()]
    if len(order) != len(layers):
        raise _Bad(f"it holds weights for {len(order)} layers, the model has {len(layers)} layers with weights")
    for layer, saved in zip(layers, order):
        by_name = dict(groups[saved])
        names = layer._core.weight_names()
        if sorted(by_name) != sorted(names):
            raise _Bad(
                f"layer '{layer.name}' expects weights {names}, the file has {_clip(sorted(by_name))} "
                f"for {_clip(saved)}"
            )
        layer.set_weights([by_name[n] for n in names])
