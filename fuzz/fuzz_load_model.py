"""Coverage-guided fuzz target for the model-file reader (atheris, i.e. libFuzzer for Python).

The contract under test: whatever the bytes, `load_model` either returns a model or raises a
ValueError whose message names the file; the only other acceptable cause inside it is a
ValueError or TypeError from a layer/optimizer/loss constructor (which names the argument).
Anything else -- another exception type, a ValueError wrapping e.g. a KeyError or
AttributeError, a crash, a hang, or memory beyond the limit -- is a finding.

Inputs are plain model files (the seed corpus is fuzz/corpus/). A mutated file almost always
fails the SHA-256 check, which would hide everything behind it from the fuzzer, so an input
whose structure is sound but whose checksum does not match is loaded a second time with the
checksum recomputed: that reaches the configuration checks and the model rebuild. Weights-only
files go on to `load_weights` into a fixed model. Everything runs in memory (no disk I/O).

Byte mutations rarely produce a different but well-formed configuration, so half of the
mutations are structure-aware (`mutate`): one value somewhere in the header, the model or
compile configuration or the class names is replaced by an edge case (huge, negative, wrong
type, deep, long, another layer's name...), deleted, or duplicated, and the file re-serialised.

    python fuzz/fuzz_load_model.py WORK_CORPUS_DIR fuzz/corpus -max_total_time=60

(fuzz/run.py wraps this with sensible limits and prints a summary.)
"""

from __future__ import annotations

import json
import os
import random
import resource
import struct
import sys

import atheris

with atheris.instrument_imports(include=["cnnx"]):
    import cnnx
    from cnnx import layers as L
    from cnnx import saving

NAME = "<fuzz>"
PREFIX = f"cannot load {NAME!r}: "
ALLOW_MEMORY_ERROR = os.environ.get("CNNX_FUZZ_ALLOW_MEMORY_ERROR") == "1"


class Finding(Exception):
    """The reader broke its contract on this input."""


def check(e: ValueError) -> str:
    message = str(e)
    if not message.startswith(PREFIX):
        raise Finding(f"ValueError that does not name the file: {message[:500]!r}") from e
    if len(message) > 20_000:
        raise Finding(f"a {len(message)}-character message: {message[:500]!r}") from e
    cause = e.__cause__
    if cause is not None and type(cause) not in (ValueError, TypeError):
        raise Finding(f"{type(cause).__name__} escaped the checks: {message[:500]!r}") from e
    return message


def guarded(action) -> str | None:
    """None if the action succeeded, else the (checked) ValueError message."""
    try:
        action()
        return None
    except ValueError as e:
        return check(e)
    except MemoryError:
        if not ALLOW_MEMORY_ERROR:
            raise
        return "MemoryError"


def with_fixed_checksum(blob: bytes) -> bytes | None:
    """The same file with its checksum recomputed, or None if it cannot be re-serialised."""
    try:
        n = struct.unpack("<Q", blob[:8])[0]
        header = json.loads(blob[8 : 8 + n].decode("utf-8"))
        data = blob[8 + n :]
        header["__metadata__"]["sha256"] = saving._checksum(header, [data])
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    except Exception:  # the reader accepted it, so this is rare; nothing to test then
        return None
    return struct.pack("<Q", len(raw)) + raw + data


_weights_model = None


def weights_model():
    """The architecture of fuzz/corpus/conv_weights_only.cnnx, built once."""
    global _weights_model
    if _weights_model is None:
        _weights_model = cnnx.Sequential(
            [
                L.Input((6, 6, 1)),
                L.Conv2D(2, 3, padding="same", activation="relu"),
                L.MaxPooling2D(2),
                L.Flatten(),
                L.Dense(3, activation="softmax"),
            ]
        )
    return _weights_model


def TestOneInput(blob: bytes) -> None:
    message = guarded(lambda: saving._load_model_bytes(blob, NAME))
    if message is not None and "SHA-256" in message:
        fixed = with_fixed_checksum(blob)
        if fixed is not None:
            blob = fixed
            message = guarded(lambda: saving._load_model_bytes(blob, NAME))
    if message is not None and "not a whole model" in message:
        guarded(lambda: saving._load_weights_bytes(weights_model(), blob, NAME))


# -- structure-aware mutations ------------------------------------------------------------------
_EDGE_VALUES = [
    0,
    1,
    2,
    -1,
    3,
    255,
    2**24,
    2**24 + 1,
    2**31 - 1,
    2**31,
    2**32,
    2**63 - 1,
    2**63,
    2**64,
    10**30,
    0.0,
    -0.5,
    0.5,
    1.5,
    1e308,
    -1e308,
    float("inf"),
    float("nan"),
    None,
    True,
    False,
    "",
    "x" * 5000,
    "same",
    "valid",
    "relu",
    "channels_first",
    [],
    {},
    [1],
    [None, 4],
    [2**24] * 9,
    [[[[[[0]]]]]],
    {"class_name": "L2", "config": {"l2": 0.01}},
    {"class_name": []},
]
_NAMES = [
    "Dense",
    "Conv2D",
    "Flatten",
    "Reshape",
    "Resizing",
    "BatchNormalization",
    "MaxPooling2D",
    "Layer",
    "InputLayer",
    "Input",
    "Adam",
    "SGD",
    "ExponentialDecay",
    "__init__",
    "units",
    "filters",
    "kernel_size",
    "input_shape",
    "target_shape",
    "name",
    "config",
    "class_name",
    "layers",
    "optimizer",
    "loss",
    "metrics",
    "Functional",
    "Sequential",
    "Add",
    "Concatenate",
    "inbound_nodes",
    "input_layers",
    "output_layers",
    "keras_history",
    "__keras_tensor__",
    "batch_shape",
    "input_layer",
    "dense",
]


def _nodes(value, out):
    """(container, key) pairs for every value in a JSON tree."""
    if isinstance(value, dict):
        for k in list(value):
            out.append((value, k))
            _nodes(value[k], out)
    elif isinstance(value, list):
        for i in range(len(value)):
            out.append((value, i))
            _nodes(value[i], out)
    return out


def _mutate_tree(tree, rng: random.Random):
    nodes = _nodes(tree, [])
    if not nodes:
        return rng.choice(_EDGE_VALUES)
    container, key = rng.choice(nodes)
    action = rng.random()
    if action < 0.6:
        container[key] = rng.choice(_EDGE_VALUES + _NAMES)
    elif action < 0.75:
        del container[key]
    elif action < 0.9 and isinstance(container, list):
        container.insert(key, json.loads(json.dumps(container[key])))  # duplicate (e.g. a layer)
    elif isinstance(container, dict):
        container[rng.choice(_NAMES)] = container.pop(key)  # rename a key
    return tree


def _structured(blob: bytes, rng: random.Random) -> bytes | None:
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    data = blob[8 + n :]
    meta = header["__metadata__"]
    targets = [k for k in ("model_config", "compile_config", "class_names") if k in meta]
    choice = rng.choice(targets + ["header", "meta"])
    if choice == "header":
        header = _mutate_tree(header, rng)
    elif choice == "meta":
        key = rng.choice(list(meta))
        meta[key] = rng.choice(["", "model", "weights", "1", "-1", "18446744073709551616", "x" * 5000, "[]", "{}"])
    else:
        meta[choice] = json.dumps(_mutate_tree(json.loads(meta[choice]), rng))
    if isinstance(header, dict) and isinstance(header.get("__metadata__"), dict):
        header["__metadata__"]["sha256"] = saving._checksum(header, [data])
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw + data


def mutate(blob: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if rng.random() < 0.5:
        try:
            out = _structured(blob, rng)
            if out is not None and len(out) <= max_size:
                return out
        except Exception:  # not a well-formed file (yet): mutate bytes instead
            pass
    return atheris.Mutate(blob, max_size)


def main() -> None:
    # A hostile file must not make the reader allocate gigabytes: past this limit an allocation
    # fails at once (MemoryError, a finding) instead of swapping the machine.
    limit = int(os.environ.get("CNNX_FUZZ_MEMORY_MB", "3072")) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    atheris.Setup(sys.argv, TestOneInput, custom_mutator=mutate)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
