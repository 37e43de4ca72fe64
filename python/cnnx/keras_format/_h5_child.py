"""Reads a whole HDF5 file (its bytes on stdin) into plain Python and NumPy values and writes
them, pickled, to stdout: run by _h5_guard in a separate process, so that libhdf5 hanging or
crashing on a corrupt file costs a killed child, not the caller.

Run as a script (by path), so it imports neither cnnx nor its core: only the standard library,
NumPy and h5py, which keeps the child's start cheap. Its one argument is the caller's sys.path
(JSON), so the child finds the same h5py the caller would.

The reply is one pickled tuple: ("ok", tree), ("open", message) when h5py cannot open the bytes,
("bad", message) when the file's structure is refused (too many objects, too deep, arrays
larger than the file can hold), ("missing", message) without h5py. A tree node is
("group", attrs, bad_attrs, children) or ("dataset", attrs, bad_attrs, value, error, size):
attributes and arrays that fail to read are recorded with their error and refused only when the
loader asks for them, as reading the file with h5py in-process would do.
"""

from __future__ import annotations

import io
import sys

# Keras files hold a few groups per layer; these bound what a hostile file can make the child
# build (hard links can repeat a group many times, or form a cycle).
MAX_OBJECTS = 1 << 16
MAX_DEPTH = 64
# What the arrays may take once read: a file's data, at most this many times over (gzip
# inflates about 1000x at best), plus a floor for small files. A dataset that was declared but
# never written reads as its fill value, so its declared size alone says nothing.
MAX_INFLATION = 1100
MIN_BUDGET_BYTES = 64 << 20


class Refused(Exception):
    pass


def _plain(value, np, h5py):
    """An attribute's or array's value as str, bytes, int, float, bool, None, a list of those, or
    a NumPy array of numbers or fixed-width strings (what the caller may safely unpickle)."""
    if value is None or isinstance(value, (str, bytes, bool, int, float)):
        return value
    if isinstance(value, h5py.Empty):
        return None
    if isinstance(value, np.generic):
        if value.dtype.kind in "biufSU":
            return value
        raise TypeError(f"a value of type {value.dtype}")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufSU":
            return np.ascontiguousarray(value)
        if value.dtype.kind == "O":
            items = [_plain(v, np, h5py) for v in value.reshape(-1)]
            if any(isinstance(v, list) or v is None for v in items):
                raise TypeError("an array of nested or empty values")
            return items
        raise TypeError(f"an array of type {value.dtype}")
    raise TypeError(f"a value of type {type(value).__name__}")


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def snapshot(blob: bytes) -> tuple:
    """The reply for the HDF5 file `blob` (see the module's docstring)."""
    try:
        import h5py
        import numpy as np
    except ImportError as e:
        return ("missing", str(e))
    try:
        f = h5py.File(io.BytesIO(blob), "r")
    except Exception as e:
        return ("open", _error(e))
    budget = [MIN_BUDGET_BYTES + MAX_INFLATION * len(blob)]
    count = [0]

    def attrs(obj) -> tuple[dict, dict]:
        values, bad = {}, {}
        for key in obj.attrs.keys():
            try:
                values[key] = _plain(obj.attrs[key], np, h5py)
            except Exception as e:
                bad[key] = _error(e)
        return values, bad

    def node(obj, path: str, depth: int) -> tuple:
        count[0] += 1
        if count[0] > MAX_OBJECTS:
            raise Refused(f"it holds more than {MAX_OBJECTS} groups and arrays")
        if depth > MAX_DEPTH:
            raise Refused(f"its groups are nested more than {MAX_DEPTH} deep (at {path})")
        values, bad = attrs(obj)
        if isinstance(obj, h5py.Dataset):
            size = int(obj.size or 0)
            nbytes = size * obj.dtype.itemsize
            if nbytes > budget[0]:
                raise Refused(f"its arrays take more than {MIN_BUDGET_BYTES + MAX_INFLATION * len(blob)} bytes")
            budget[0] -= nbytes
            try:
                return ("dataset", values, bad, _plain(obj[()], np, h5py), None, size)
            except Exception as e:
                return ("dataset", values, bad, None, _error(e), size)
        children = {}
        for key in obj.keys():
            # Soft and external links are not followed: an external link names another file.
            if isinstance(obj.get(key, getlink=True), h5py.HardLink):
                children[key] = node(obj[key], f"{path}/{key}".lstrip("/"), depth + 1)
        return ("group", values, bad, children)

    try:
        with f:
            return ("ok", node(f, "", 0))
    except Refused as e:
        return ("bad", str(e))
    except Exception as e:
        return ("bad", _error(e))


def main() -> None:
    import json
    import pickle

    sys.path[:] = json.loads(sys.argv[1])
    reply = snapshot(sys.stdin.buffer.read())
    sys.stdout.buffer.write(pickle.dumps(reply, protocol=4))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
