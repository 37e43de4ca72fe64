"""One model file: architecture, weights, optimizer state and training config, in the
safetensors container (an 8-byte header length, a JSON header, then raw little-endian tensors).

The layout is documented in docs/model-format.md so that the C++ core (and any safetensors
reader) can load the same file without Python. Writes are atomic: the file is written next to
its destination and renamed over it, so a crash while saving never destroys the previous file.
Reads check every structural fact and a SHA-256 of the tensor data, so a truncated, corrupted
or foreign file is refused with a ValueError that names the problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from typing import Any

import numpy as np

FORMAT = "cnnx"
FORMAT_VERSION = "1"
_MAX_HEADER = 64 * 1024 * 1024  # far above any real header; guards against a garbage length

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "write_file", "read_file"]


# -- the container ---------------------------------------------------------------------------
def write_file(path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Writes `tensors` (float32) and string `metadata` as one safetensors file, atomically."""
    path = os.fspath(path)
    arrays = {name: np.ascontiguousarray(t, dtype="<f4") for name, t in tensors.items()}
    header: dict[str, Any] = {}
    offset = 0
    for name, a in arrays.items():
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    header["__metadata__"] = {**metadata, "format": FORMAT, "format_version": FORMAT_VERSION}
    header["__metadata__"]["sha256"] = _checksum(header, arrays.values())  # contiguous arrays hash in place
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header so the data starts 8-aligned

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for a in arrays.values():
                f.write(a.data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _checksum(header: dict, chunks: Any) -> str:
    """SHA-256 over the header (canonical JSON, without the checksum itself) and the data, so a
    flipped byte anywhere -- a shape, a name, a config string or a weight -- is detected."""
    meta = {k: v for k, v in header["__metadata__"].items() if k != "sha256"}
    canonical = json.dumps({**header, "__metadata__": meta}, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8"))
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def read_file(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Reads a file written by write_file; ValueError naming the problem if it is not one."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        blob = f.read()
    where = f"cannot load {path!r}"
    if len(blob) == 0:
        raise ValueError(f"{where}: the file is empty")
    if len(blob) < 8:
        raise ValueError(f"{where}: the file is truncated ({len(blob)} bytes; expected at least an 8-byte header length)")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise ValueError(f"{where}: the header length field says {n} bytes but the file has {len(blob) - 8} after it "
                         "(truncated, or not a cnnx/safetensors file)")
    try:
        header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: the header is not valid JSON ({e}); the file is corrupted or not a cnnx model") from None
    if not isinstance(header, dict):
        raise ValueError(f"{where}: the header is not a JSON object; the file is corrupted or not a cnnx model")
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{where}: not a cnnx model file (no '__metadata__' with format 'cnnx')")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{where}: format version {meta.get('format_version')!r} is not supported "
                         f"(this cnnx reads version {FORMAT_VERSION})")
    data = memoryview(blob)[8 + n :]
    spans = []
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            ok = dtype == "F32" and all(isinstance(d, int) and d >= 0 for d in shape)
            ok = ok and isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{where}: tensor {name!r} has a malformed entry in the header: {info!r}")
        if end - begin != 4 * int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{where}: tensor {name!r} of shape {tuple(shape)} does not match its byte range "
                             f"[{begin}, {end})")
        if end > len(data):
            raise ValueError(f"{where}: the file is truncated: tensor {name!r} ends at byte {end} of the data "
                             f"but only {len(data)} bytes are present")
        spans.append((begin, end))
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(shape).astype(np.float32)
    spans.sort()
    covered = 0
    for begin, end in spans:
        if begin != covered:
            raise ValueError(f"{where}: tensor data overlaps or leaves gaps at byte {covered}; the file is corrupted")
        covered = end
    if covered != len(data):
        raise ValueError(f"{where}: {len(data) - covered} unexpected bytes after the tensor data; the file is corrupted")
    if meta.get("sha256") != _checksum(header, [data]):
        raise ValueError(f"{where}: the header and data do not match their SHA-256 checksum; the file is corrupted")
    return tensors, {k: str(v) for k, v in meta.items()}


# -- models ----------------------------------------------------------------------------------
def _weight_tensors(model: Any, weights: list | None = None) -> dict[str, np.ndarray]:
    """`weights`: per-layer lists from model._core.snapshot(); taken here if not given."""
    if weights is None:
        weights = model._core.snapshot(False)[0]
    out = {}
    for layer, per_layer in zip(model.layers, weights):
        for wname, w in zip(layer._core.weight_names(), per_layer):
            out[f"weights/{layer.name}/{wname}"] = w
    return out


def save_model(model: Any, path: str | os.PathLike) -> None:
    """``model.save(path)``: everything needed to rebuild, predict and resume training."""
    from .models import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"save_model: expected a cnnx Sequential, received {type(model).__name__}")
    model._require_built("save()")
    if not model.built:
        model.build()
    # Weights, slots and iterations of one step boundary, even while fit runs in another thread.
    weights, slots, iterations = model._core.snapshot()
    tensors = _weight_tensors(model, weights)
    meta = {"contents": "model", "model_config": json.dumps(model.get_config())}
    if model.class_names is not None:
        meta["class_names"] = json.dumps([str(c) for c in model.class_names])
    if model.compiled:
        meta["compile_config"] = json.dumps(model._compile_config())
        meta["optimizer_iterations"] = str(iterations)
        params = _trainable_weights(model)
        if slots:
            for (lname, wname), per_param in zip(params, slots):
                for i, s in enumerate(per_param):
                    tensors[f"optimizer/{lname}/{wname}/{i}"] = s
    write_file(path, tensors, meta)


def load_model(path: str | os.PathLike, compile: bool = True) -> Any:
    """Rebuilds a model saved by ``model.save``: architecture, weights and, with compile=True,
    the optimizer (with its state), loss and metrics."""
    tensors, meta = read_file(path)
    try:
        return _rebuild(path, tensors, meta, compile)
    except (KeyError, TypeError, AttributeError, IndexError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot load {os.fspath(path)!r}: the saved configuration is invalid ({type(e).__name__}: {e})") from None


def _rebuild(path: Any, tensors: dict[str, np.ndarray], meta: dict[str, str], compile: bool) -> Any:
    from .layers import _param_budget
    from .models import Sequential

    if meta.get("contents") != "model":
        raise ValueError(f"cannot load {os.fspath(path)!r}: it holds {meta.get('contents')!r}, not a whole model "
                         "(use model.load_weights for a weights file)")
    # The config may not ask for more weights than the file holds: refused before allocating.
    held = sum(t.size for name, t in tensors.items() if name.startswith("weights/"))
    with _param_budget(held):
        model = Sequential.from_config(json.loads(meta["model_config"]))
        model.build()
    if "class_names" in meta:
        model.class_names = list(json.loads(meta["class_names"]))
    _assign_weights(model, tensors, os.fspath(path))
    if compile and "compile_config" in meta:
        model._compile_from_config(json.loads(meta["compile_config"]))
        model.build()
        model.optimizer._core.iterations = int(meta.get("optimizer_iterations", "0"))
        params = _trainable_weights(model)
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


def _trainable_weights(model: Any) -> list[tuple[str, str]]:
    """(layer, weight) names of the trainable weights, in the order the optimizer keeps them."""
    return [(layer.name, wname) for layer in model.layers
            for wname, trainable in zip(layer._core.weight_names(), layer._core.weight_trainable()) if trainable]


def _assign_weights(model: Any, tensors: dict[str, np.ndarray], path: str) -> None:
    for layer in model.layers:
        names = layer._core.weight_names()
        if not names:
            continue
        missing = [n for n in names if f"weights/{layer.name}/{n}" not in tensors]
        if missing:
            raise ValueError(f"cannot load {path!r}: no weights for layer '{layer.name}' ({', '.join(missing)})")
        layer.set_weights([tensors[f"weights/{layer.name}/{n}"] for n in names])


def save_weights(model: Any, path: str | os.PathLike) -> None:
    """``model.save_weights(path)``: the weights alone, in the same container."""
    model._require_built("save_weights()")
    if not model.built:
        model.build()
    write_file(path, _weight_tensors(model), {"contents": "weights"})


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """``model.load_weights(path)``: weights matched layer by layer, in order, shapes checked."""
    tensors, _ = read_file(path)
    model._require_built("load_weights()")
    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    order: list[str] = []
    for name, t in tensors.items():
        parts = name.split("/")
        if len(parts) != 3 or parts[0] != "weights":
            continue
        if parts[1] not in groups:
            groups[parts[1]] = []
            order.append(parts[1])
        groups[parts[1]].append((parts[2], t))
    layers = [layer for layer in model.layers if layer._core.weight_names()]
    if len(order) != len(layers):
        raise ValueError(f"cannot load {os.fspath(path)!r}: it holds weights for {len(order)} layers, "
                         f"the model has {len(layers)} layers with weights")
    for layer, saved in zip(layers, order):
        by_name = dict(groups[saved])
        names = layer._core.weight_names()
        if sorted(by_name) != sorted(names):
            raise ValueError(f"cannot load {os.fspath(path)!r}: layer '{layer.name}' expects weights {names}, "
                             f"the file has {sorted(by_name)} for '{saved}'")
        layer.set_weights([by_name[n] for n in names])
