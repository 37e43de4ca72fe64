"""The one way cnnx reads a user's HDF5 file: in a child process with a time limit.

libhdf5 can loop forever or crash on a corrupt file (a byte-mutated legacy .h5 makes reading any
attribute spin; plain h5py hangs too), and neither can be interrupted from Python. So the file's
bytes are read once, here, and handed to a child (_h5_child.py, a fresh interpreter: no fork of
the caller's threads, no re-import of the caller's __main__), which reads everything (attributes,
groups, arrays) into plain values and sends them back. The caller never runs libhdf5 on the
file: a child that does not finish in time is killed, and one that crashes only ends itself;
either way the load is refused with a ValueError naming the file. The loader then works on
`Group` / `Dataset` below, which answer the few h5py calls it makes.

The child costs one interpreter start with NumPy and h5py imported (about 0.1 s) per file read.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any, Callable

import numpy as np

from ..saving import _Bad

# Seconds the child may take: this much, plus one second per READ_RATE bytes of the file. The
# environment variable CNNX_H5_READ_TIMEOUT replaces the first term (the tests shorten it).
TIMEOUT_S = 30.0
READ_RATE = 50 << 20
_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_h5_child.py")


def time_limit(nbytes: int) -> float:
    base = TIMEOUT_S
    env = os.environ.get("CNNX_H5_READ_TIMEOUT")
    if env:
        try:
            base = float(env)
        except ValueError:
            raise ValueError(f"CNNX_H5_READ_TIMEOUT: expected a number of seconds, received {env!r}") from None
        if not base > 0:
            raise ValueError(f"CNNX_H5_READ_TIMEOUT: expected a positive number of seconds, received {env!r}")
    return base + nbytes / READ_RATE


def read_file(name: Any, what: str = "it") -> Group:
    """The whole HDF5 file `name` (OSError when it cannot be opened, as open() reports it)."""
    with open(name, "rb") as f:
        blob = f.read()
    return read_bytes(blob, what)


def read_bytes(blob: bytes, what: str = "it") -> Group:
    """The HDF5 file `blob`; `what` names it in messages ("it", "its model.weights.h5")."""
    limit = time_limit(len(blob))
    command = [sys.executable, _CHILD, json.dumps(sys.path)]
    try:
        done = subprocess.run(command, input=blob, capture_output=True, timeout=limit)
    except subprocess.TimeoutExpired:  # run() has killed the child
        raise _Bad(
            f"{what} is a corrupt or unreadable HDF5 file (libhdf5 did not finish reading it within {round(limit, 1):g} s; "
            "for a file that is merely large, CNNX_H5_READ_TIMEOUT=<seconds> gives it longer)"
        ) from None
    except OSError as e:  # not the file's fault: said so, rather than an OSError carrying the file's name
        raise _Bad(f"the process that reads HDF5 files, {command[0]!r}, could not be started ({e})") from None
    if done.returncode != 0:
        how = f"signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        detail = f": {last[0][:300]}" if last else ""
        raise _Bad(f"{what} is a corrupt or unreadable HDF5 file (reading it with libhdf5 ended in {how}{detail})")
    try:
        status, payload = _Unpickler(done.stdout).load()
    except Exception as e:
        raise _Bad(f"{what}: the HDF5 reader's reply could not be decoded ({type(e).__name__}: {e})") from None
    if status == "ok":
        return _node(payload, "")
    if status == "open":
        raise _Bad(f"{what} is not a readable HDF5 file, or it is truncated ({payload})")
    if status == "missing":
        raise _Bad(f"{what} could not be read: the HDF5 reader found no h5py ({payload}); pip install 'cnnx[h5]'")
    raise _Bad(f"{what} is a corrupt or unreadable HDF5 file ({payload})")


class _Unpickler(pickle.Unpickler):
    """The child's reply holds builtins and NumPy arrays of numbers or strings, nothing else."""

    _ALLOWED = {"_reconstruct", "scalar", "_frombuffer", "ndarray", "dtype"}

    def __init__(self, data: bytes) -> None:
        import io

        super().__init__(io.BytesIO(data))

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "numpy" and name in self._ALLOWED:
            return super().find_class(module, name)
        if module.startswith("numpy") and name.endswith("DType"):  # numpy 2's dtype classes
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not expected in the reply")


# -- what the loader reads: the few parts of h5py's Group / Dataset / AttributeManager it uses --------
class Attrs(Mapping):
    def __init__(self, values: dict, bad: dict, where: str) -> None:
        self._values, self._bad, self._where = values, bad, where

    def __getitem__(self, key: str) -> Any:
        if key in self._bad:
            raise _Bad(f"the attribute {key!r} of {self._where} cannot be read ({self._bad[key]})")
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter([*self._values, *self._bad])

    def __len__(self) -> int:
        return len(self._values) + len(self._bad)

    def __contains__(self, key: object) -> bool:
        return key in self._values or key in self._bad


class Dataset:
    def __init__(self, value: Any, error: str | None, size: int, attrs: Attrs, name: str) -> None:
        self._value, self._error, self.size, self.attrs, self.name = value, error, size, attrs, name

    def __getitem__(self, key: Any) -> Any:
        if key != ():
            raise TypeError(f"only dataset[()] is supported, received {key!r}")
        if self._error is not None:
            raise _Bad(f"the array {self.name} cannot be read ({self._error})")
        return self._value


class Group:
    def __init__(self, children: dict, attrs: Attrs, name: str) -> None:
        self._children, self.attrs, self.name = children, attrs, name

    def _find(self, path: str) -> Any:
        item: Any = self
        for part in str(path).split("/"):
            if not part:
                continue
            if not isinstance(item, Group) or part not in item._children:
                raise KeyError(path)
            item = item._children[part]
        return item

    def __getitem__(self, path: str) -> Group | Dataset:
        return self._find(path)

    def __contains__(self, path: object) -> bool:
        try:
            self._find(str(path))
        except KeyError:
            return False
        return True

    def keys(self) -> list[str]:
        return list(self._children)

    def __iter__(self) -> Iterator[str]:
        return iter(self._children)

    def visititems(self, fn: Callable[[str, Any], Any]) -> None:
        """fn(relative path, item) for every group and array below, as h5py's visititems."""
        stack = [("", self)]
        while stack:
            prefix, group = stack.pop()
            for key, item in group._children.items():
                path = f"{prefix}{key}"
                if fn(path, item) is not None:
                    return
                if isinstance(item, Group):
                    stack.append((f"{path}/", item))

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def _node(entry: Any, name: str) -> Group | Dataset:
    kind = entry[0]
    attrs = Attrs(entry[1], entry[2], name or "the file")
    if kind == "dataset":
        _, _, _, value, error, size = entry
        return Dataset(np.asarray(value) if isinstance(value, list) else value, error, int(size), attrs, name)
    children = {key: _node(child, f"{name}/{key}".lstrip("/")) for key, child in entry[3].items()}
    return Group(children, attrs, name or "/")
