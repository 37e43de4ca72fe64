"""One model file: architecture, weights, optimizer state and training config, in the
safetensors container (an 8-byte header length, a JSON header, then raw little-endian tensors).

The layout is documented in docs/model-format.md so that other programs (any safetensors
reader) can load the same file without Python. Writes are atomic: the file is written next to
its destination and renamed over it, so a crash while saving never destroys the previous file,
and the temp file of a save that was killed is removed by a later save or load. Reads check
every structural fact, with bounds, before allocating anything, then a SHA-256 of header and
data, then the configuration's structure: a truncated, corrupted, foreign or hostile file is
refused with a ValueError that names the file and the problem (see `_reading`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import secrets
import socket
import stat
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np

from . import _core

FORMAT = "cnnx"
FORMAT_VERSION = "1"  # weights files and plain Sequential models: what every cnnx reads
GRAPH_FORMAT_VERSION = "2"  # functional models, nested models, shared layers
_READ_VERSIONS = (FORMAT_VERSION, GRAPH_FORMAT_VERSION)

# Bounds on what a file may declare. They are far above anything cnnx writes; they exist so that
# a corrupted or hostile file is refused before it can make the reader allocate, loop or recurse
# without limit (the tensor data itself is bounded by the file's size).
_MAX_HEADER = 16 * 1024 * 1024  # bytes of JSON header (parsed, it takes up to ~10x this in memory)
_MAX_TENSORS = 1 << 17  # tensors in one file (a 4096-layer model with Adam slots has ~25k)
_MAX_RANK = 8  # axes of one tensor or of a declared shape
_MAX_DIM = (1 << 31) - 1  # one axis of a stored tensor (numpy and the core index with int64)
_MAX_DEPTH = 32  # JSON nesting (cnnx writes at most 6 levels)
_MAX_CONTAINERS = 1 << 20  # JSON arrays and objects in one header (each costs ~100 bytes parsed)
_MAX_STRING = 4096  # characters of a tensor name
# The bounds on what a configuration declares (layers, calls, sizes, windows, lists) are the
# core's: src/cpp/io/json_util.hpp, checked by _core.check_model_metadata.

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
_TMP_SUFFIX = ".cnnx-tmp"
_TMP_NAME = re.compile(r"\.(?:.*)\.([0-9a-f]{8})\.([0-9]{1,10})\.[0-9a-f]{16}" + re.escape(_TMP_SUFFIX), re.DOTALL)
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
_writing: set[str] = set()  # temp files this process is writing right now


def _temp_name(target: str) -> str:
    """`.<name>.<host>.<pid>.<random>.cnnx-tmp` next to the target: the host and the process id
    let a later save or load tell a temp file whose writer died (kill -9, power loss) from one
    being written right now."""
    base = os.path.basename(target)[:100]  # room for the rest within the usual 255-byte limit
    return os.path.join(os.path.dirname(target), f".{base}.{_HOST}.{os.getpid()}.{secrets.token_hex(8)}{_TMP_SUFFIX}")


def _remove_stale_temps(directory: str) -> None:
    """Removes temp files of a save that never finished: our naming, this host, a writer process
    that no longer exists (or is this one, but not writing it). Best effort: never fails."""
    try:
        entries = list(os.scandir(os.fsdecode(directory)))
    except OSError:
        return
    me = os.getpid()
    for entry in entries:
        m = _TMP_NAME.fullmatch(entry.name)
        if m is None or m.group(1) != _HOST:
            continue
        pid = int(m.group(2))
        if os.name == "nt" and pid != me:
            continue  # os.kill(pid, 0) would terminate the process on Windows
        if pid == me:
            if entry.path in _writing:
                continue
        else:
            try:
                os.kill(pid, 0)
                continue  # alive (perhaps a reused pid: the file waits until that process ends)
            except ProcessLookupError:
                pass
            except (OSError, OverflowError):
                continue  # e.g. EPERM: alive, owned by someone else
        try:
            os.unlink(entry.path)
        except OSError:
            pass  # gone already (another process cleaned up), or not ours to remove


def write_file(
    path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str], version: str = FORMAT_VERSION
) -> None:
    """Writes `tensors` (float32) and string `metadata` as one safetensors file, atomically;
    `version` is the format version the file declares (2 for a graph model's file).

    A symlink is written through (its target is replaced and the link kept); the file keeps the
    mode of the file it replaces, or gets 0o666 minus the umask, as `open(path, "w")` would."""
    name = os.fspath(path)
    arrays = {key: np.ascontiguousarray(t, dtype="<f4") for key, t in tensors.items()}
    header: dict[str, Any] = {}
    offset = 0
    for key, a in arrays.items():
        header[key] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    header["__metadata__"] = {**metadata, "format": FORMAT, "format_version": version}
    header["__metadata__"]["sha256"] = _checksum(header, arrays.values())  # contiguous arrays hash in place
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header so the data starts 8-aligned

    target = os.path.realpath(os.fsdecode(name))  # str, also for a bytes path: the temp name is built from it
    directory = os.path.dirname(target)
    try:
        _remove_stale_temps(directory)
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = None
        tmp = _temp_name(target)
        # 0o666 lets the kernel apply the umask (and any default ACL) exactly as for open(path, "w")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        _writing.add(tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                if mode is not None:
                    os.chmod(f.fileno() if os.chmod in os.supports_fd else tmp, mode)
                f.write(struct.pack("<Q", len(raw)))
                f.write(raw)
                for a in arrays.values():
                    f.write(a.data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        finally:
            _writing.discard(tmp)
    except OSError as e:
        # the user's path, not the temp file's, is what the message should name
        if e.errno is None:
            raise OSError(f"cannot save {name!r}: {e}") from e
        raise OSError(e.errno, e.strerror, name) from e  # the same message open(path, "w") would give
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
    """Reads a file written by write_file; ValueError naming the file and the problem if it is
    not one (see `_reading` for what is not turned into ValueError)."""
    name = os.fspath(path)
    with _reading(name):
        return _read_path(name)


def _read_path(name: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    _remove_stale_temps(os.path.dirname(os.path.realpath(name)))
    with open(name, "rb") as f:
        return _read(f)


def _read(f: BinaryIO) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parses the container from a seekable binary stream. Everything the header declares is
    checked, with exact integer arithmetic, before anything is allocated from it."""
    size = f.seek(0, io.SEEK_END)
    f.seek(0)
    if size == 0:
        raise _Bad("the file is empty")
    if size < 8:
        raise _Bad(f"the file is truncated ({size} bytes; expected at least an 8-byte header length)")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > _MAX_HEADER or 8 + n > size:
        raise _Bad(
            f"the header length field says {n} bytes but the file has {size - 8} after it "
            "(truncated, or not a cnnx/safetensors file)"
        )
    raw = f.read(n)
    if len(raw) != n:
        raise _Bad(f"the file is truncated (the header ends at byte {8 + n}, the file at {8 + len(raw)})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Bad(f"the header is not valid UTF-8 ({e}); the file is corrupted or not a cnnx model") from None
    header = _json(text, "the header")
    if not isinstance(header, dict):
        raise _Bad("the header is not a JSON object; the file is corrupted or not a cnnx model")
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _Bad("not a cnnx model file (no '__metadata__' with format 'cnnx')")
    if meta.get("format_version") not in _READ_VERSIONS:
        raise _Bad(
            f"format version {_clip(meta.get('format_version'))} is not supported "
            f"(this cnnx reads versions {' and '.join(_READ_VERSIONS)})"
        )
    bad_meta = [k for k, v in meta.items() if not isinstance(v, str)]
    if bad_meta:
        raise _Bad(f"metadata {_clip(bad_meta[0])} is not a string (safetensors metadata values are strings)")
    if len(header) - 1 > _MAX_TENSORS:
        raise _Bad(f"the header lists {len(header) - 1} tensors; expected at most {_MAX_TENSORS}")
    data_size = size - 8 - n
    entries = []
    for key, info in header.items():
        if key == "__metadata__":
            continue
        shape, span = _tensor_entry(key, info)
        count = math.prod(shape)  # Python ints: exact, cannot wrap
        begin, end = span
        if end - begin != 4 * count:
            raise _Bad(f"tensor {_clip(key)} of shape {tuple(shape)} does not match its byte range [{begin}, {end})")
        if end > data_size:
            raise _Bad(
                f"the file is truncated: tensor {_clip(key)} ends at byte {end} of the data "
                f"but only {data_size} bytes are present"
            )
        entries.append((begin, end, key, shape))
    covered = 0
    for begin, end, _, _ in sorted(entries, key=lambda e: (e[0], e[1])):
        if begin != covered:
            raise _Bad(f"tensor data overlaps or leaves gaps at byte {covered}; the file is corrupted")
        covered = end
    if covered != data_size:
        raise _Bad(f"{data_size - covered} unexpected bytes after the tensor data; the file is corrupted")
    # Only now, with every span checked to lie inside the file without overlap, is memory taken:
    # one buffer of the data's size, which the arrays share.
    data = bytearray(data_size)
    got = f.readinto(data)
    if got != data_size:
        raise _Bad(f"the file is truncated (it changed while being read: {got} of {data_size} data bytes)")
    if meta.get("sha256") != _checksum(header, [data]):
        raise _Bad("the header and data do not match their SHA-256 checksum; the file is corrupted")
    tensors: dict[str, np.ndarray] = {}
    for begin, end, key, shape in entries:
        a = np.frombuffer(data, dtype="<f4", count=(end - begin) // 4, offset=begin)
        tensors[key] = a.reshape(shape).astype(np.float32, copy=False)
    return tensors, dict(meta)


def _tensor_entry(key: str, info: Any) -> tuple[list[int], tuple[int, int]]:
    def bad(problem: str) -> _Bad:
        return _Bad(f"tensor {_clip(key)} has a malformed entry in the header ({problem}): {_clip(info)}")

    if len(key) > _MAX_STRING:
        raise _Bad(f"a tensor name is {len(key)} characters long; expected at most {_MAX_STRING}")
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise bad("expected an object with exactly 'dtype', 'shape' and 'data_offsets'")
    if info["dtype"] != "F32":
        raise bad(f"expected dtype 'F32', received {_clip(info['dtype'])}")
    shape, offsets = info["shape"], info["data_offsets"]
    if (
        not isinstance(shape, list)
        or len(shape) > _MAX_RANK
        or not all(_is_int(d) and 0 <= d <= _MAX_DIM for d in shape)
    ):
        raise bad(f"expected 'shape' as a list of at most {_MAX_RANK} integers in [0, {_MAX_DIM}]")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(_is_int(o) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):
        raise bad("expected 'data_offsets' as [begin, end] with 0 <= begin <= end")
    return shape, (offsets[0], offsets[1])


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
        tensors, meta = _read(io.BytesIO(blob))
        return _rebuild(tensors, meta, compile)


def _rebuild(tensors: dict[str, np.ndarray], meta: dict[str, str], compile: bool) -> Any:
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
        model._compile_from_config(compile_config)
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
        tensors, _ = _read(io.BytesIO(blob))
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
