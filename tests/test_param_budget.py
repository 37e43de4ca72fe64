"""The parameter budget: Layer.build's max_param_floats (core) and cnnx.layers._param_budget, which
load_model uses so that a model file's config cannot make it allocate more weights than the file
holds (a 3 KB file asking for units=2**62 used to be obeyed)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import UNDER_ASAN

import cnnx
from cnnx import Sequential
from cnnx.layers import Dense, Input, _param_budget
from cnnx.saving import read_file, write_file


def _saved_model(tmp_path, units):
    """A valid model file (checksum and all) whose config asks the first Dense for `units`."""
    model = Sequential([Input((4,)), Dense(3, name="hidden"), Dense(2, name="out")])
    model.compile(optimizer="sgd", loss="mse")
    path = tmp_path / "model.cnnx"
    model.save(path)
    tensors, meta = read_file(path)
    config = json.loads(meta["model_config"])
    config["layers"][0]["config"]["units"] = units
    meta["model_config"] = json.dumps(config)
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version", "sha256")}
    write_file(path, tensors, meta)
    return path


def test_config_asking_for_more_params_than_the_file_holds_is_refused(tmp_path):
    path = _saved_model(tmp_path, 2**16)
    with pytest.raises(
        ValueError,
        match=r"Dense 'hidden': the kernel of shape \(4, 65536\) has 262144 elements, "
        r"more than the 23 parameters this layer may create",
    ):
        cnnx.models.load_model(path)


def test_unmodified_file_loads_within_its_budget(tmp_path):
    path = _saved_model(tmp_path, 3)
    model = cnnx.models.load_model(path)
    assert model.count_params() == 4 * 3 + 3 + 3 * 2 + 2


@pytest.mark.skipif(UNDER_ASAN, reason="AddressSanitizer's shadow memory needs more than the address-space cap")
@pytest.mark.parametrize("units", [2**24, 2**30, 2**62])
def test_huge_units_in_a_small_file_allocate_nothing(tmp_path, units):
    """2**24 passes the reader's config bounds and meets the core's parameter budget; larger
    values are refused by the reader's bounds first. Either way: a ValueError naming the file."""
    path = _saved_model(tmp_path, units)
    assert path.stat().st_size < 4096
    # A subprocess with a 2 GB address-space cap: loading must be refused before any large
    # allocation (before the fix it allocated 16 GB for 2**30 and crashed for 2**62).
    code = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))
        import cnnx
        try:
            cnnx.models.load_model({str(path)!r})
        except ValueError as e:
            print("REFUSED:", e)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"REFUSED: cannot load {str(path)!r}" in out and str(units) in out, out
    if units == 2**24:
        assert "Dense 'hidden': the kernel of shape (4, 16777216)" in out, out


def test_budget_is_shared_by_the_layers_built_in_the_block():
    with _param_budget(4 * 3 + 3 + 3 * 2 + 2):
        model = Sequential([Input((4,)), Dense(3), Dense(2)])  # exactly enough
    assert model.count_params() == 23
    with _param_budget(22):
        with pytest.raises(ValueError, match=r"the bias of shape \(2,\) has 2 elements, more than the 1 parameters"):
            Sequential([Input((4,)), Dense(3), Dense(2)])


def test_failed_build_leaves_the_layer_unbuilt_and_the_budget_ends_with_the_block():
    layer = Dense(8)
    with _param_budget(10):
        with pytest.raises(ValueError, match="max_param_floats=10"):
            layer.build((None, 4))
    assert not layer.built and layer.get_weights() == []
    layer.build((None, 4))  # no budget outside the block
    assert layer.count_params() == 40


def test_layers_built_before_the_block_are_not_charged():
    layer = Dense(8)
    layer.build((None, 4))
    with _param_budget(0):
        layer.build((None, 4))  # already built: a no-op, nothing charged
        Sequential([Input((4,)), layer])  # building it again in a model is free too
        with pytest.raises(ValueError, match="more than the 0 parameters"):
            Dense(1).build((None, 4))


def test_core_build_max_param_floats():
    core = Dense(8)._core
    with pytest.raises(ValueError, match=r"expected max_param_floats >= 0 or -1 \(no limit\), received -2"):
        core.build([4], 1, -2)
    with pytest.raises(ValueError, match="max_param_floats=39"):
        core.build([4], 1, 39)
    core.build([4], 1, max_param_floats=40)
    assert core.count_params() == 40 and np.all(np.isfinite(core.get_weights()[0]))
