"""Corrupt HDF5 files (.h5, .weights.h5, and the model.weights.h5 inside a .keras) are refused
within a bounded time with a ValueError naming the file: libhdf5 runs in a child process
(cnnx.keras_format._h5_guard) that is killed when it does not finish, and a crash ends only the
child. tests/data/h5-hang-repro.h5 is a byte-mutated legacy .h5 on which reading any root
attribute makes libhdf5 (1.14) spin forever, in plain h5py too."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import time
import zipfile

import numpy as np
import pytest

import cnnx
from cnnx import layers

h5py = pytest.importorskip("h5py")

from cnnx.keras_format import _h5_child, _h5_guard  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")
REPRO = os.path.join(DATA, "h5-hang-repro.h5")
# The tests shorten the child's time limit (seconds); the margin is for a loaded machine.
LIMIT = 1.5
MARGIN = 10.0


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def small_model() -> cnnx.Model:
    model = cnnx.Sequential([cnnx.Input((4,)), layers.Dense(3, activation="relu"), layers.Dense(2)])
    rng = np.random.default_rng(3)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.fixture
def short_limit(monkeypatch):
    monkeypatch.setenv("CNNX_H5_READ_TIMEOUT", str(LIMIT))


def test_hanging_file_is_refused_in_time(tmp_path, short_limit):
    path = tmp_path / "hang.h5"
    shutil.copyfile(REPRO, path)
    for call in (cnnx.models.load_model, small_model().load_weights):
        start = time.monotonic()
        with pytest.raises(
            ValueError,
            match=rf"cannot load '.*hang\.h5': it is a corrupt or unreadable HDF5 file "
            rf"\(libhdf5 did not finish reading it within {LIMIT:g} s; .*CNNX_H5_READ_TIMEOUT",
        ):
            call(path)
        assert time.monotonic() - start < LIMIT + MARGIN


def test_hanging_weights_inside_a_keras_file(tmp_path, short_limit):
    model = small_model()
    model.save(tmp_path / "m.keras")
    blob = io.BytesIO()
    with zipfile.ZipFile(tmp_path / "m.keras") as z, zipfile.ZipFile(blob, "w") as out:
        for name in z.namelist():
            out.writestr(name, _read(REPRO) if name == "model.weights.h5" else z.read(name))
    (tmp_path / "bad.keras").write_bytes(blob.getvalue())
    for call in (cnnx.models.load_model, model.load_weights):
        with pytest.raises(ValueError, match=r"'.*bad\.keras': its model\.weights\.h5 is a corrupt .*did not finish"):
            call(tmp_path / "bad.keras")


def test_the_limit_setting_is_checked(monkeypatch):
    monkeypatch.setenv("CNNX_H5_READ_TIMEOUT", "soon")
    with pytest.raises(ValueError, match=r"CNNX_H5_READ_TIMEOUT: expected a number of seconds, received 'soon'"):
        _h5_guard.time_limit(0)
    monkeypatch.setenv("CNNX_H5_READ_TIMEOUT", "0")
    with pytest.raises(ValueError, match=r"expected a positive number"):
        _h5_guard.time_limit(0)
    monkeypatch.delenv("CNNX_H5_READ_TIMEOUT")
    assert _h5_guard.time_limit(_h5_guard.READ_RATE) == _h5_guard.TIMEOUT_S + 1


def _walk(item, path=""):
    """(path, attrs, array or None) for every object below an h5py group or a guard Group."""
    out = [(path, {k: item.attrs[k] for k in item.attrs}, None)]
    for key in item.keys():
        child = item[key]
        if isinstance(child, (h5py.Dataset, _h5_guard.Dataset)):
            out.append((f"{path}/{key}", {k: child.attrs[k] for k in child.attrs}, np.asarray(child[()])))
        else:
            out.extend(_walk(child, f"{path}/{key}"))
    return out


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.all(a == b))


@pytest.mark.parametrize("suffix", ["h5", "weights.h5"])
def test_valid_files_read_the_same_as_h5py(tmp_path, suffix):
    model = small_model()
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 4), np.float32), np.zeros((4, 2), np.float32), epochs=1, verbose=0)
    path = tmp_path / f"m.{suffix}"
    model.save(path) if suffix == "h5" else model.save_weights(path)
    with h5py.File(path, "r") as f:
        expected = _walk(f)
    got = _walk(_h5_guard.read_file(path))
    assert [p for p, _, _ in got] == [p for p, _, _ in expected]
    for (p, attrs, value), (_, want_attrs, want_value) in zip(got, expected):
        assert sorted(attrs) == sorted(want_attrs), p
        for k in attrs:
            assert _same(attrs[k], want_attrs[k]), (p, k)
        assert (value is None) == (want_value is None) and (value is None or _same(value, want_value)), p
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    if suffix == "h5":
        loaded = cnnx.models.load_model(path)
    else:
        loaded = small_model()
        loaded.set_weights([np.zeros_like(w) for w in loaded.get_weights()])
        loaded.load_weights(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_crashing_reader_is_refused(tmp_path, monkeypatch):
    model = small_model()
    model.save(tmp_path / "m.h5")
    child = tmp_path / "crash.py"
    child.write_text("import os\nos.abort()\n")
    monkeypatch.setattr(_h5_guard, "_CHILD", str(child))
    with pytest.raises(
        ValueError, match=r"'.*m\.h5': it is a corrupt or unreadable HDF5 file \(reading it with libhdf5 ended in"
    ):
        cnnx.models.load_model(tmp_path / "m.h5")


def test_a_reader_that_cannot_start_is_named(tmp_path, monkeypatch):
    small_model().save(tmp_path / "m.h5")
    monkeypatch.setattr(_h5_guard.sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(
        ValueError, match=r"'.*m\.h5': the process that reads HDF5 files, '.*no-python', could not be started"
    ):
        cnnx.models.load_model(tmp_path / "m.h5")


def test_the_reply_may_hold_only_plain_values():
    with pytest.raises(pickle.UnpicklingError, match=r"is not expected"):
        _h5_guard._Unpickler(pickle.dumps(os.system)).load()
    reply = ("ok", [np.arange(3.0), np.array([b"a"]), np.float32(1), "s", b"b", 1, None])
    assert _h5_guard._Unpickler(pickle.dumps(reply, protocol=4)).load()[0] == "ok"


def test_links_to_other_files_are_not_followed(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["secret"] = np.arange(3)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f["here"] = np.arange(2)
        f["away"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/secret")
        f["alias"] = h5py.SoftLink("/here")
    root = _h5_guard.read_file(tmp_path / "m.h5")
    assert root.keys() == ["here"]


def test_declared_arrays_larger_than_the_file_are_refused(tmp_path):
    with h5py.File(tmp_path / "big.h5", "w") as f:
        f.create_dataset("huge", shape=(1 << 40,), dtype="f4")  # never written: reads as its fill value
    blob = (tmp_path / "big.h5").read_bytes()
    status, message = _h5_child.snapshot(blob)
    assert status == "bad" and "its arrays take more than" in message
    with pytest.raises(
        ValueError, match=r"'.*big\.h5': it is a corrupt or unreadable HDF5 file \(its arrays take more than"
    ):
        small_model().load_weights(tmp_path / "big.h5")


def _mutants(blob: bytes, count: int, seed: int):
    """`count` copies of `blob`, each with one byte changed: half in the first 4 KiB (superblock
    and object headers), half anywhere."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        pos = int(rng.integers(0, min(4096, len(blob)) if i % 2 == 0 else len(blob)))
        bad = bytearray(blob)
        bad[pos] ^= int(rng.integers(1, 256))
        yield pos, bytes(bad)


@pytest.mark.slow
def test_mutated_files_load_or_are_refused(tmp_path, monkeypatch):
    """120 one-byte mutations of a .h5 and a .weights.h5: each load ends in time, with the
    model or a ValueError naming the file (a missing-file OSError cannot happen here)."""
    monkeypatch.setenv("CNNX_H5_READ_TIMEOUT", "3")
    model = small_model()
    model.save(tmp_path / "m.h5")
    model.save_weights(tmp_path / "w.weights.h5")
    outcomes = {"loaded": 0, "refused": 0}
    for name, count, load in (
        ("m.h5", 60, cnnx.models.load_model),
        ("w.weights.h5", 60, lambda p: small_model().load_weights(p)),
    ):
        blob = (tmp_path / name).read_bytes()
        for pos, bad in _mutants(blob, count, seed=14):
            path = tmp_path / f"mutant-{name}"
            path.write_bytes(bad)
            start = time.monotonic()
            try:
                load(path)
                outcomes["loaded"] += 1
            except ValueError as e:
                assert f"cannot load {str(path)!r}: " in str(e), (pos, e)
                outcomes["refused"] += 1
            assert time.monotonic() - start < 3 + MARGIN, pos
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0, outcomes
