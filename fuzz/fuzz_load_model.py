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

    python fuzz/fuzz_load_model.py WORK_CORPUS_DIR fuzz/corpus -max_total_time=60

(fuzz/run.py wraps this with sensible limits and prints a summary.)
"""

from __future__ import annotations

import json
import os
import resource
import struct
import sys

import atheris

with atheris.instrument_imports(include=["cnnx"]):
    import cnnx
    from cnnx import saving
    from cnnx import layers as L

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
        _weights_model = cnnx.Sequential([L.Input((6, 6, 1)), L.Conv2D(2, 3, padding="same", activation="relu"),
                                          L.MaxPooling2D(2), L.Flatten(), L.Dense(3, activation="softmax")])
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


def main() -> None:
    # A hostile file must not make the reader allocate gigabytes: past this limit an allocation
    # fails at once (MemoryError, a finding) instead of swapping the machine.
    limit = int(os.environ.get("CNNX_FUZZ_MEMORY_MB", "3072")) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
