"""One model file: architecture, weights, optimizer state and training config, in the
safetensors container (an 8-byte header length, a JSON header, then raw little-endian tensors).

The layout is documented in docs/model-format.md so that other programs (any safetensors
reader) can load the same file without Python. The container is read and written by the core
(src/cpp/io), which native programs use too. Writes are atomic: the file is written next to
its destination and renamed over it, so a crash while saving never destroys the previous file,
and the temp file of a save that was killed is removed by a later save or load. Reads check
every structural fact, with bounds, before allocating anything, then a SHA-256 of header and
data; then the core checks the configuration's structure: a truncated, corrupted, foreign or
hostile file is refused with a ValueError that names the file and the problem (see `_reading`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _core

FORMAT = "cnnx"
FORMAT_VERSION = "1"  # weights files and plain Sequential models: what every cnnx reads
GRAPH_FORMAT_VERSION = "2"  # functional models, nested models, shared layers

# The bounds on what a file may declare (header and tensors: src/cpp/io/container.hpp and
# json_text.hpp; configurations: src/cpp/io/json_util.hpp) are the core's, which checks them
# before anything is allocated. This one is named here for the tests that exceed it.
_MAX_CONTAINERS = 1 << 20  # JSON arrays and objects in one header or configuration

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
    kind = _keras_kind(name)
    if kind:
        what = "a Keras .keras archive" if kind == "zip" else "an HDF5 file (Keras .h5 or .weights.h5)"
        raise ValueError(
            f"cannot load {name!r}: it is {what}, not a cnnx container; read it with "
            "cnnx.models.load_model or model.load_weights"
        )
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


# -- which file: by suffix when writing, by content when reading ---------------------------------
def _suffix_kind(path: Any) -> str:
    """ "keras" (.keras), "weights_h5" (.weights.h5), "h5" (.h5, .hdf5), "cnnx" (.cnnx) or ""."""
    name = os.fspath(path)
    name = (name.decode("utf-8", "replace") if isinstance(name, bytes) else name).lower()
    if name.endswith(".keras"):
        return "keras"
    if name.endswith(".weights.h5"):
        return "weights_h5"
    if name.endswith((".h5", ".hdf5")):
        return "h5"
    if name.endswith(".cnnx"):
        return "cnnx"
    return ""


def _keras_kind(name: Any) -> str:
    """ "zip" or "hdf5" for a Keras file, "" for anything else (cnnx's own format, or not a
    model file at all: the cnnx reader then says which). OSError for a missing file."""
    from .keras_format import file_kind

    kind = file_kind(name)
    return kind if kind in ("zip", "hdf5") else ""


def save_model(model: Any, path: str | os.PathLike) -> None:
    """``model.save(path)``, by the path's suffix: ``.keras`` a Keras 3 file, ``.h5`` / ``.hdf5``
    Keras' legacy HDF5 file (both need h5py), ``.cnnx`` cnnx's own format (everything needed to
    rebuild, predict and resume training, read without h5py, also by native programs)."""
    from .models import Model, Sequential

    if not isinstance(model, Model):
        raise TypeError(f"save_model: expected a cnnx model (Sequential or Model), received {type(model).__name__}")
    kind = _suffix_kind(path)
    if kind not in ("keras", "h5", "weights_h5", "cnnx"):
        raise ValueError(
            "Invalid filepath extension for saving. Please add either a `.keras` extension for the native "
            "Keras format (recommended), a `.h5` extension, or a `.cnnx` extension for cnnx's own format. "
            f"Use `model.export(filepath)` if you want to export to ONNX. Received: filepath={os.fspath(path)}."
        )
    model._require_built("save()")
    if not model.built:
        model.build()
    if kind != "cnnx":
        from . import keras_format

        _check_names(model)
        if kind == "keras":
            keras_format.save_keras(model, path)
        else:
            keras_format.save_legacy_h5(model, path)
        return
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


def load_model(path: str | os.PathLike, compile: bool = True, custom_objects: dict | None = None) -> Any:
    """Rebuilds a model saved by ``model.save``: architecture, weights and, with compile=True,
    the optimizer (with its state), loss and metrics (custom ones from ``custom_objects``).
    Reads cnnx's own files and Keras' (a ``.keras`` zip, a legacy ``.h5``), told apart by their
    content."""
    name = os.fspath(path)
    kind = _keras_kind(name)
    if kind:
        from . import keras_format

        keras_format._h5py(f"loading {name!r} (a Keras file)")
        with _reading(name):
            return keras_format.load_keras_model(name, kind, compile)
    with _reading(name):
        tensors, meta = _read_path(name)
        return _rebuild(tensors, meta, compile, custom_objects)


def _load_model_bytes(blob: bytes, name: str = "<bytes>", compile: bool = True) -> Any:
    """load_model on the file's bytes, without touching the disk (used by the fuzz target)."""
    with _reading(name):
        tensors, meta = _read_bytes(blob)
        return _rebuild(tensors, meta, compile)


def _rebuild(tensors: dict[str, np.ndarray], meta: dict[str, str], compile: bool, custom_objects: Any = None) -> Any:
    from .layers import _param_budget
    from .models import Sequential, model_from_config

    # Everything the metadata declares is checked before anything is built from it; json.loads
    # then reads text the core has bounded (depth, size).
    _core.check_model_metadata(meta, bool(compile))
    config = json.loads(meta["model_config"])
    compile_config = json.loads(meta["compile_config"]) if compile and "compile_config" in meta else None
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
        model.class_names = json.loads(meta["class_names"])
    _assign_weights(model, tensors)
    if compile_config is not None:
        model._compile_from_config(compile_config, custom_objects)
        model.build()
        model.optimizer._core.iterations = int(meta.get("optimizer_iterations", "0"))
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
# The core checks the configuration (src/cpp/io/config_check.cpp): its structure and types,
# known layer classes, bounds on every size it declares, graph references and cycles (Kahn's
# algorithm), class_names and optimizer_iterations. The C++ loader runs the same checks, so they
# exist once.
def _layer_classes() -> frozenset[str]:
    """The layer classes a model file may name (the core's list; the same as cnnx.layers')."""
    return frozenset(_core.model_file_layer_classes())


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
    """``model.save_weights(path)``: the weights alone; ``.weights.h5`` in Keras 3's layout (needs
    h5py), ``.cnnx`` in cnnx's container."""
    kind = _suffix_kind(path)
    if kind not in ("weights_h5", "cnnx"):
        raise ValueError(
            "The filename must end in `.weights.h5` (Keras' weights file), or in `.cnnx` for cnnx's own "
            f"format. Received: filepath={os.fspath(path)}"
        )
    model._require_built("save_weights()")
    if not model.built:
        model.build()
    if kind == "weights_h5":
        from . import keras_format

        _check_names(model)
        keras_format.save_weights_h5(model, path)
        return
    write_file(path, _weight_tensors(model), {"contents": "weights"})


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """``model.load_weights(path)``: weights matched layer by layer, in order, shapes checked."""
    name = os.fspath(path)
    model._require_built("load_weights()")
    kind = _keras_kind(name)
    if kind:
        from . import keras_format

        keras_format._h5py(f"loading weights from {name!r} (a Keras file)")
        if not model.built:
            model.build()
        with _reading(name):
            keras_format.load_weights_into(model, name, kind)
        return
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
