"""Real Keras files, both ways: Keras 3's ``.keras`` (a zip of metadata.json, config.json and
model.weights.h5), Keras 3's ``.weights.h5``, and the legacy full-model ``.h5`` of Keras 2 /
tf.keras (a ``model_config`` attribute and a ``model_weights`` group), read and written with
h5py (``pip install cnnx[h5]``).

What is carried: the architecture (Sequential and Functional models, nested models, every layer
class cnnx has), the weights, and the compile configuration with the optimizer's state (Adam,
AdamW, SGD, RMSprop, Adagrad; in ``.keras`` files only: a legacy ``.h5`` written by cnnx holds
no optimizer state, and one read by cnnx has its optimizer state ignored). A layer class cnnx
does not have, or an argument it cannot honour (a constraint, groups > 1, a float16 dtype
policy, ...), is refused with a ValueError naming the layer. A model compiled with a loss or
metric Keras has no name for (a custom Python loss) is written without its compile config.

Files are written atomically (a temp file next to the destination, then os.replace). Files are
read through _h5_guard: libhdf5 runs on a user's file only in a child process with a time limit,
since a corrupt file can make it hang or crash.
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from ..saving import _Bad, _clip
from . import _h5_guard, _models

__all__ = ["file_kind", "save_keras", "save_legacy_h5", "save_weights_h5", "load_keras_model", "load_weights_into"]

# The Keras release whose file layout this module writes (what Keras reads the files as).
KERAS_VERSION = "3.15.1"
ZIP_MAGIC = b"PK\x03\x04"
# A model's config is kilobytes; the bound keeps a hostile archive from inflating gigabytes of
# JSON (zipfile stops at the declared size and checks the CRC, so the declaration holds).
_MAX_CONFIG_BYTES = 64 << 20
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def file_kind(name: Any) -> str:
    """ "zip", "hdf5" or "other", from the file's first bytes (OSError for a missing file)."""
    with open(name, "rb") as f:
        head = f.read(8)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head == HDF5_MAGIC:
        return "hdf5"
    return "other"


def _h5py(what: str) -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError(f"{what} needs h5py: pip install 'cnnx[h5]' (or pip install h5py)") from None
    return h5py


def _write_atomically(path: Any, write: Any) -> None:
    """Calls write(file object) on a temp file next to `path`, then renames it over `path`."""
    name = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(folder):  # as Keras, no folder is made; name the file asked for, not the temp file
        raise FileNotFoundError(errno.ENOENT, f"cannot write {name!r}: no such directory {folder!r}", name)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(name)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        mode = os.stat(name).st_mode & 0o777 if os.path.exists(name) else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, name)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- the weights store: Keras 3's layers/<class>/vars/<i> ----------------------------------------
def _write_store(h5: Any, model: Any, paths: list, optimizer_vars: list | None) -> None:
    for path, layer in paths:
        group = h5.require_group(path).create_group("vars")
        group.attrs["name"] = layer.name
        for i, w in enumerate(layer.get_weights()):
            group.create_dataset(str(i), data=np.asarray(w, dtype=np.float32))
    h5.create_group("vars").attrs["name"] = model.name
    if optimizer_vars is not None:
        group = h5.create_group("optimizer").create_group("vars")
        group.attrs["name"] = model.optimizer.name
        for i, v in enumerate(optimizer_vars):
            group.create_dataset(str(i), data=v)


def _read_vars(h5: Any, path: str) -> list[np.ndarray]:
    """The arrays of group path/vars, in order 0, 1, ...; [] when the group is absent (a layer
    without weights)."""
    if path not in h5 or not isinstance(h5[path], _h5_guard.Group) or "vars" not in h5[path]:
        return []
    group = h5[path]["vars"]
    keys = list(group.keys())
    if sorted(keys) != sorted(str(i) for i in range(len(keys))):
        raise _Bad(f"the weights group {path}/vars holds {_clip(keys)}, expected 0, 1, ...")
    out = []
    for i in range(len(keys)):
        item = group[str(i)]
        if not isinstance(item, _h5_guard.Dataset):
            raise _Bad(f"{path}/vars/{i} is not an array")
        out.append(np.asarray(item[()]))
    return out


def _set_layer(layer: Any, arrays: list[np.ndarray], where: str) -> None:
    expected = layer._core.weight_names()
    if len(arrays) != len(expected):
        raise _Bad(
            f"layer '{layer.name}' expects {len(expected)} weights ({', '.join(expected)}), {where} holds {len(arrays)}"
        )
    for wname, w, have in zip(expected, arrays, layer.get_weights()):
        if tuple(np.shape(w)) != tuple(np.shape(have)):
            raise _Bad(
                f"layer '{layer.name}': weight {wname} has shape {tuple(np.shape(have))} in the model, "
                f"{tuple(np.shape(w))} in {where}"
            )
    layer.set_weights([np.asarray(w, dtype=np.float32) for w in arrays])


def _assign_store(h5: Any, pairs: list[tuple[str, Any]]) -> None:
    for path, layer in pairs:
        arrays = _read_vars(h5, path)
        if layer._core is None or not layer._core.weight_names():
            if arrays:
                raise _Bad(f"{path} holds {len(arrays)} weights for layer '{layer.name}', which has none")
            continue
        _set_layer(layer, arrays, path)


def _dataset_floats(h5: Any) -> int:
    """All the numbers the file's arrays hold: the most weights its config may ask for."""
    total = [0]

    def visit(_: str, item: Any) -> None:
        if isinstance(item, _h5_guard.Dataset):
            total[0] += int(item.size)

    h5.visititems(visit)
    return total[0]


# -- building a cnnx model from a Keras config -------------------------------------------------------
def _build(keras_config: Any, held: int) -> Any:
    from .. import _core
    from ..layers import _param_budget
    from ..models import model_from_config

    config = _models.model_from_keras(keras_config)
    # The core's checks of a cnnx file's configuration (structure, known classes, bounds on
    # every size, graph references and cycles) apply to a Keras file's as well.
    meta = {"format": "cnnx", "format_version": "2", "contents": "model", "model_config": json.dumps(config)}
    _core.check_model_metadata(meta, False)
    with _param_budget(held):
        model = model_from_config(config)
        if not model.built:
            model.build()
    return model


def _layers_by_name(model: Any) -> dict[str, Any]:
    return {layer.name: layer for layer in model._flat_layers()}


# -- .keras --------------------------------------------------------------------------------------
def save_keras(model: Any, path: Any) -> None:
    """model.save("x.keras"): a Keras 3 zip Keras' load_model reads."""
    h5py = _h5py("saving a .keras file")
    from .. import __version__

    weights, slots, iterations = model._core.snapshot()
    del weights  # the layers' get_weights below read the same state between two steps
    config = _models.model_to_keras(model)
    compile_config = _models.compile_to_keras(model)
    config["compile_config"] = compile_config
    paths = _models.keras_paths_from_model(model)
    opt_vars = None
    if compile_config is not None:
        opt_vars = _models.optimizer_vars_to_keras(model, paths, slots, iterations)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        _write_store(h5, model, paths, opt_vars)
    import datetime

    metadata = {
        "keras_version": KERAS_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        "written_by": f"cnnx {__version__}",
    }

    def write(f: Any) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("metadata.json", json.dumps(metadata))
            z.writestr("config.json", json.dumps(config))
            z.writestr("model.weights.h5", buffer.getvalue())

    _write_atomically(path, write)


def _open_archive(name: Any) -> tuple[dict, bytes]:
    """config.json (parsed) and model.weights.h5 (bytes) of a .keras file."""
    try:
        with zipfile.ZipFile(name) as z:
            names = set(z.namelist())
            if "config.json" not in names:
                raise _Bad(
                    f"the archive holds no config.json (it holds {_clip(sorted(names))}): not a Keras .keras file"
                )
            if "model.weights.h5" not in names:
                raise _Bad("the archive holds no model.weights.h5: not a Keras .keras file")
            if z.getinfo("config.json").file_size > _MAX_CONFIG_BYTES:
                raise _Bad(f"its config.json is larger than {_MAX_CONFIG_BYTES >> 20} MiB: not a model cnnx reads")
            config_text = z.read("config.json")
            weights = z.read("model.weights.h5")
    except zipfile.BadZipFile as e:
        raise _Bad(f"it is not a valid zip archive, or it is truncated ({e})") from None
    except (zipfile.LargeZipFile, EOFError, NotImplementedError) as e:
        raise _Bad(f"the archive cannot be read ({type(e).__name__}: {e})") from None
    try:
        config = json.loads(config_text)
    except (ValueError, UnicodeDecodeError) as e:
        raise _Bad(f"config.json is not valid JSON ({e})") from None
    return config, weights


def _load_keras_zip(name: Any, compile: bool) -> Any:
    config, blob = _open_archive(name)
    with _h5_guard.read_bytes(blob, "its model.weights.h5") as h5:
        model = _build(config, _dataset_floats(h5))
        by_name = _layers_by_name(model)
        keras_paths = _models.keras_paths_from_config(config)
        pairs = []
        for path, lname in keras_paths:
            if lname not in by_name:
                raise _Bad(f"the config names layer {lname!r}, which the rebuilt model does not have")
            pairs.append((path, by_name[lname]))
        _assign_store(h5, pairs)
        if compile and config.get("compile_config"):
            _models.compile_from_keras(model, config["compile_config"])
            model.build()
            values = _read_vars(h5, "optimizer")
            if values:
                _models.optimizer_vars_from_keras(model, pairs, values)
    return model


# -- legacy .h5 (Keras 2 / tf.keras, and Keras 3's model.save("x.h5")) -------------------------------------
def _strings(values: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).reshape(-1)]


def _attr_json(h5: Any, key: str) -> Any:
    value = h5.attrs[key]
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    try:
        return json.loads(value)
    except (ValueError, TypeError) as e:
        raise _Bad(f"its {key} attribute is not valid JSON ({e})") from None


def _legacy_groups(root: Any) -> list[tuple[str, list[np.ndarray]]]:
    """(layer name, arrays) of each layer that has weights, in the file's order."""
    if "layer_names" not in root.attrs:
        raise _Bad("it holds no layer_names: not a Keras weights file")
    out = []
    for lname in _strings(root.attrs["layer_names"]):
        if lname not in root:
            raise _Bad(f"it lists layer {lname!r} but holds no group for it")
        group = root[lname]
        names = _strings(group.attrs.get("weight_names", []))
        if names:
            try:
                out.append((lname, [np.asarray(group[w][()]) for w in names]))
            except KeyError:
                raise _Bad(f"layer group {lname!r} lacks some of its weights {_clip(names)}") from None
    return out


def _assign_legacy(model: Any, root: Any) -> None:
    """Keras' legacy loading: one group per top-level layer (a nested model's group holds all
    its layers' weights), matched by name when every name matches, else by position, as Keras
    does."""
    from ..models import Model

    groups = _legacy_groups(root)
    items = [
        item
        for item in model._sublayers()
        if (item.count_params() if isinstance(item, Model) else item.built and item._core.weight_names())
    ]
    by_name = {item.name: item for item in items}
    if all(lname in by_name for lname, _ in groups) and len(groups) == len(items):
        pairs = [(by_name[lname], lname, arrays) for lname, arrays in groups]
    elif len(groups) == len(items):
        pairs = [(item, lname, arrays) for item, (lname, arrays) in zip(items, groups)]
    else:
        raise _Bad(f"it holds weights for {len(groups)} layers, the model has {len(items)} layers with weights")
    for item, lname, arrays in pairs:
        if isinstance(item, Model):
            rest = list(arrays)
            for _, layer in _models.keras_paths_from_model(item):
                k = len(layer._core.weight_names()) if layer._core is not None else 0
                if k:
                    _set_layer(layer, rest[:k], f"the group of {lname!r}")
                    rest = rest[k:]
            if rest:
                raise _Bad(f"the group of {lname!r} holds {len(rest)} more weights than model '{item.name}' has")
        else:
            _set_layer(item, arrays, f"the group of {lname!r}")


def _load_legacy_h5(h5: Any, compile: bool) -> Any:
    if "model_config" not in h5.attrs:
        if "layers" in h5 or "layer_names" in h5.attrs:
            raise _Bad(
                "it holds weights only (a Keras weights file): build the model and call model.load_weights() on it"
            )
        raise _Bad("it is an HDF5 file without a model_config attribute: not a Keras model file")
    config = _attr_json(h5, "model_config")
    root = h5["model_weights"] if "model_weights" in h5 else h5
    model = _build(config, _dataset_floats(root))
    _assign_legacy(model, root)
    if compile and "training_config" in h5.attrs:
        training = _attr_json(h5, "training_config")
        if isinstance(training, dict):
            training = {**training, "optimizer": training.get("optimizer_config")}
            _models.compile_from_keras(model, training)
    return model


def _strip_for_legacy(entry: dict) -> dict:
    """Keras 3's legacy .h5 lists a model's layers as {"class_name", "config"} (plus "name" and
    "inbound_nodes" in a functional model), without module, registered_name and build_config."""
    out = {k: v for k, v in entry.items() if k not in ("module", "registered_name", "build_config")}
    if entry.get("class_name") in ("Sequential", "Functional"):
        config = dict(entry["config"])
        config["layers"] = [_strip_for_legacy(e) for e in config["layers"]]
        out["config"] = config
    return out


def save_legacy_h5(model: Any, path: Any) -> None:
    """model.save("x.h5"): Keras' legacy HDF5 model file (architecture, weights and compile
    configuration; no optimizer state)."""
    h5py = _h5py("saving a .h5 file")
    config = _strip_for_legacy(_models.model_to_keras(model))
    config = {"class_name": config["class_name"], "config": config["config"]}
    compile_config = _models.compile_to_keras(model)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.attrs["backend"] = "tensorflow"
        h5.attrs["keras_version"] = KERAS_VERSION
        h5.attrs["model_config"] = json.dumps(config)
        if compile_config is not None:
            training = dict(compile_config)
            opt = training.pop("optimizer")
            training["optimizer_config"] = {"class_name": opt["class_name"], "config": opt["config"]}
            h5.attrs["training_config"] = json.dumps(training)
        _write_legacy_weights(h5.create_group("model_weights"), model)

    _write_atomically(path, lambda f: f.write(buffer.getvalue()))


def _write_legacy_weights(root: Any, model: Any) -> None:
    from ..models import Model

    items = list(model.layers)
    root.attrs["backend"] = "tensorflow"
    root.attrs["keras_version"] = KERAS_VERSION
    root.attrs["layer_names"] = np.array([item.name.encode("utf-8") for item in items])
    for item in items:
        group = root.create_group(item.name)
        if isinstance(item, Model):
            layers = [layer for _, layer in _models.keras_paths_from_model(item)]
        else:
            layers = [item]
        names, arrays = [], []
        for layer in layers:
            if layer._core is None:
                continue
            for wname, w in zip(layer._core.weight_names(), layer.get_weights()):
                names.append(f"{item.name}/{layer.name}/{wname}")
                arrays.append(w)
        group.attrs["weight_names"] = np.array([n.encode("utf-8") for n in names])
        for n, w in zip(names, arrays):
            group.create_dataset(n, data=np.asarray(w, dtype=np.float32))


# -- .weights.h5 ------------------------------------------------------------------------------------
def save_weights_h5(model: Any, path: Any) -> None:
    """model.save_weights("x.weights.h5"): Keras 3's weights file."""
    h5py = _h5py("saving a .weights.h5 file")
    _, slots, iterations = model._core.snapshot()
    paths = _models.keras_paths_from_model(model)
    opt_vars = None
    if _models.compile_to_keras(model) is not None:  # Keras keeps the optimizer's state here too
        opt_vars = _models.optimizer_vars_to_keras(model, paths, slots, iterations)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        _write_store(h5, model, paths, opt_vars)
    _write_atomically(path, lambda f: f.write(buffer.getvalue()))


def load_weights_into(model: Any, name: Any, kind: str) -> None:
    """model.load_weights on a Keras file: a Keras 3 weights file, a legacy (Keras 2) weights or
    full-model .h5, or a .keras archive (its weights)."""
    if kind == "zip":
        _, blob = _open_archive(name)
        h5 = _h5_guard.read_bytes(blob, "its model.weights.h5")
    else:
        h5 = _h5_guard.read_file(name)
    with h5:
        if "layers" in h5:
            paths = _models.keras_paths_from_model(model)
            _assign_store(h5, paths)
            values = _read_vars(h5, "optimizer")
            if values and model.compiled:
                _models.optimizer_vars_from_keras(model, paths, values)
        elif "model_weights" in h5:
            _assign_legacy(model, h5["model_weights"])
        else:
            _assign_legacy(model, h5)


def load_keras_model(name: Any, kind: str, compile: bool) -> Any:
    """load_model on a Keras file whose kind ("zip" or "hdf5") file_kind found."""
    if kind == "zip":
        return _load_keras_zip(name, compile)
    with _h5_guard.read_file(name) as h5:
        return _load_legacy_h5(h5, compile)
