"""The model file under hostile input and hostile conditions: every bad file is a ValueError
naming the file; nothing a header declares is allocated before it is checked; saves keep the
file's mode and symlinks, name the user's path in errors, and leave no temp file behind."""

import json
import os
import struct
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from conftest import file_checksum

import cnnx
from cnnx import Sequential, saving
from cnnx.layers import Dense, Input

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_model():
    model = Sequential([Input((4,)), Dense(3), Dense(2)])
    model.compile("adam", "mse")
    model.fit(np.ones((4, 4), np.float32), np.zeros((4, 2), np.float32), epochs=1, verbose=0)
    return model


def container(entries, meta, data=b"", header_text=None):
    """A container with a valid checksum around arbitrary (possibly hostile) header entries."""
    header = dict(entries)
    header["__metadata__"] = {"format": "cnnx", "format_version": "1", **meta}
    header["__metadata__"]["sha256"] = file_checksum(header, data)
    raw = (header_text if header_text is not None else json.dumps(header)).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def parts(blob):
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def with_meta(blob, **changes):
    """The same model file with some metadata replaced (checksum recomputed)."""
    header, data = parts(blob)
    meta = {k: v for k, v in header.pop("__metadata__").items() if k not in ("sha256", "format", "format_version")}
    meta.update(changes)
    return container(header, meta, data)


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.cnnx"
    tiny_model().save(path)
    return path.read_bytes()


def refused(tmp_path, blob, match, name="bad.cnnx", load=None):
    path = tmp_path / name
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=match) as info:
        (load or cnnx.models.load_model)(path)
    assert str(path) in str(info.value)  # the message names the file the user gave
    return str(info.value)


# -- defect 1: every failure while reading is a ValueError naming the file and the problem --------
@pytest.mark.parametrize(
    "shape",
    [[2**32, 2**32, 1], [2**70], [0, 2**40], [1] * 40, [True], [2.0]],
    ids=["int64-product-wraps", "overflows-int64", "huge-dim-zero-size", "rank-40", "bool", "float"],
)
def test_hostile_tensor_shapes(tmp_path, shape):
    blob = container({"t": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}, {"contents": "weights"})
    message = refused(tmp_path, blob, "tensor 't'", load=saving.read_file)
    assert "reshape" not in message


def test_deeply_nested_header(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    text = '{"__metadata__": {"format": "cnnx", "format_version": "1"}, "t": ' + deep + "}"
    refused(tmp_path, container({}, {}, header_text=text), "nested")


def test_millions_of_tiny_arrays_are_refused_before_parsing(tmp_path):
    """Parsed, each empty array costs ~100 bytes: a 3 MB header could take 500 MB."""
    text = (
        '{"__metadata__": {"format": "cnnx", "format_version": "1"}, "t": ['
        + ",".join(["[]"] * (saving._MAX_CONTAINERS + 1))
        + "]}"
    )
    refused(tmp_path, container({}, {}, header_text=text), "JSON arrays or objects")


@pytest.mark.parametrize("key", ["model_config", "compile_config", "class_names"])
def test_deeply_nested_config(tmp_path, good, key):
    refused(tmp_path, with_meta(good, **{key: "[" * 100_000 + "]" * 100_000}), f"{key} is nested")


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("model_config", '{"layers": 5}', "expected 'layers' to be a list"),
        ("model_config", '{"layers": [{"class_name": "Layer", "config": {}}]}', "unknown layer class 'Layer'"),
        ("model_config", '{"layers": [{"class_name": ["Dense"]}]}', "unknown layer class"),
        ("model_config", '{"layers": [{"class_name": "Dense", "config": []}]}', "expected 'config' to be an object"),
        (
            "model_config",
            '{"input_shape": [null, 4], "layers": [{"class_name": "Dense", "config": {"units": 1099511627776}}]}',
            "units within",
        ),
        (
            "model_config",
            '{"input_shape": [null, 6, 6, 1], "layers": [{"class_name": "Conv2D", "config": '
            '{"filters": 2, "kernel_size": 16777216, "padding": "same"}}]}',
            "kernel_size within",
        ),
        (
            "model_config",
            '{"input_shape": [null, 4611686018427387904, 4611686018427387904], "layers": []}',
            "input_shape",
        ),
        (
            "model_config",
            '{"layers": [{"class_name": "Dense", "config": {"units": 2, "input_shape": [16777216, 16777216]}}]}',
            "input_shape",
        ),
        (
            "model_config",
            '{"input_shape": [null, 4], "layers": [{"class_name": "Reshape", "config": {"target_shape": '
            "[16777216, 16777216, 16777216, 16777216, 0]}}]}",
            "target_shape",
        ),
        (
            "model_config",
            '{"layers": ' + json.dumps([{"class_name": "Flatten", "config": {}}] * 5000) + "}",
            "5000 layers",
        ),
        ("model_config", '{"name": "' + "x" * 10_000 + '", "layers": []}', "10000 characters"),
        ("model_config", "not json", "model_config is not valid JSON"),
        ("compile_config", '{"optimizer": "adam", "loss": "mse"}', "expected 'optimizer'"),
        (
            "compile_config",
            '{"optimizer": {"class_name": "Adam", "config": {"learning_rate": {"class_name": []}}}, '
            '"loss": {"class_name": "MeanSquaredError"}}',
            "learning_rate",
        ),
        ("class_names", "5", "class_names: expected a JSON list"),
        ("optimizer_iterations", "abc", "optimizer_iterations: expected a non-negative integer"),
        ("optimizer_iterations", "99999999999999999999999", "optimizer_iterations"),
        ("optimizer_iterations", "-1", "optimizer_iterations"),
    ],
)
def test_bad_configs_name_the_file_and_the_problem(tmp_path, good, key, value, match):
    refused(tmp_path, with_meta(good, **{key: value}), match)


def test_metadata_values_must_be_strings(tmp_path):
    refused(tmp_path, container({}, {"contents": ["model"]}), "metadata 'contents' is not a string")


def test_load_weights_errors_name_the_file(tmp_path, good):
    model = Sequential([Input((5,)), Dense(3), Dense(2)])  # first kernel (5, 3), the file has (4, 3)
    refused(tmp_path, good, "dense", load=model.load_weights)


def test_relative_path_is_named_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "m.cnnx").write_bytes(b"\x00" * 7)
    with pytest.raises(ValueError, match=r"^cannot load 'sub/m.cnnx': the file is truncated"):
        cnnx.models.load_model("sub/m.cnnx")


def test_overlapping_tensors_are_refused_before_any_allocation(tmp_path):
    """200 tensors all spanning the same 1 MB of data: the old reader copied each one (200 MB)
    before noticing the overlap."""
    n = 2**18
    entries = {f"t{i}": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]} for i in range(200)}
    path = tmp_path / "overlap.cnnx"
    path.write_bytes(container(entries, {"contents": "weights"}, bytes(4 * n)))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="overlaps"):
            saving.read_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


def test_missing_file_stays_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.cnnx"):
        cnnx.models.load_model(tmp_path / "nothere.cnnx")


@pytest.mark.parametrize("exc", [MemoryError, KeyboardInterrupt])
def test_memory_error_and_interrupt_are_not_swallowed(tmp_path, good, monkeypatch, exc):
    path = tmp_path / "m.cnnx"
    path.write_bytes(good)

    def boom(*args):
        raise exc()

    monkeypatch.setattr(saving._core, "read_model_file", boom)  # where the core's std::bad_alloc would surface
    with pytest.raises(exc):
        cnnx.models.load_model(path)


def test_bytes_entry_point_matches_the_file_reader(tmp_path, good):
    a = saving._load_model_bytes(good)
    (tmp_path / "m.cnnx").write_bytes(good)
    b = cnnx.models.load_model(tmp_path / "m.cnnx")
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="^cannot load '<bytes>': the file is truncated"):
        saving._load_model_bytes(good[:-1])


# -- defect 2: temp files, modes, symlinks and error messages of save --------------------------
def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def stale_temp(directory, pid):
    name = f".m.cnnx.{saving._HOST}.{pid}.{'0' * 16}.cnnx-tmp"
    (directory / name).write_bytes(b"x" * 100)
    return name


@pytest.mark.parametrize("action", ["save", "load"])
def test_stale_temp_files_of_dead_writers_are_removed(tmp_path, action):
    model = tiny_model()
    model.save(tmp_path / "m.cnnx")
    dead = stale_temp(tmp_path, dead_pid())
    alive = stale_temp(tmp_path, os.getppid())  # a live writer's file must stay
    mine = stale_temp(tmp_path, os.getpid())  # this process, but not being written: stale
    other_host = f".m.cnnx.{'f' * 8 if saving._HOST != 'f' * 8 else '0' * 8}.{dead_pid()}.{'0' * 16}.cnnx-tmp"
    (tmp_path / other_host).write_bytes(b"x")
    (tmp_path / "m.cnnx.abc123.tmp").write_bytes(b"x")  # not our naming: never touched
    if action == "save":
        model.save(tmp_path / "m.cnnx")
    else:
        cnnx.models.load_model(tmp_path / "m.cnnx")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert dead not in left and mine not in left
    assert alive in left and other_host in left and "m.cnnx.abc123.tmp" in left


def test_new_file_mode_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        tiny_model().save(tmp_path / "m.cnnx")
    finally:
        os.umask(old)
    assert (tmp_path / "m.cnnx").stat().st_mode & 0o777 == 0o640


def test_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "m.cnnx"
    model = tiny_model()
    model.save(path)
    os.chmod(path, 0o644)
    model.save(path)
    assert path.stat().st_mode & 0o777 == 0o644
    os.chmod(path, 0o604)
    model.save_weights(path)
    assert path.stat().st_mode & 0o777 == 0o604


def test_saving_through_a_symlink_keeps_the_link(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "m.cnnx"
    link = tmp_path / "link.cnnx"
    link.symlink_to(target)  # dangling at first: the first save creates the target
    model = tiny_model()
    model.save(link)
    assert link.is_symlink() and target.is_file()
    model.fit(np.ones((4, 4), np.float32), np.zeros((4, 2), np.float32), epochs=1, verbose=0)
    model.save(link)
    assert link.is_symlink()
    loaded = cnnx.models.load_model(target)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["m.cnnx"]


def test_bytes_paths_work(tmp_path):
    path = os.fsencode(tmp_path / "m.cnnx")
    model = tiny_model()
    model.save(path)
    stale_temp(tmp_path, dead_pid())
    loaded = cnnx.models.load_model(path)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.cnnx"]


def test_save_errors_name_the_users_path(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        tiny_model().save(tmp_path / "no" / "such" / "m.cnnx")
    message = str(info.value)
    assert str(tmp_path / "no" / "such" / "m.cnnx") in message and "tmp" not in message.replace(str(tmp_path), "")


# -- defect 3: kill -9 during save --------------------------------------------------------------
def test_kill_during_save_leaves_a_loadable_file_and_no_temp_files():
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "benchmarks", "kill_during_save.py"),
            "--tries",
            "5",
            "--megabytes",
            "4",
            "--max-delay",
            "0.4",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "previous file loaded 5/5" in result.stdout
    assert "after the next load: 0, after the next save: 0" in result.stdout
