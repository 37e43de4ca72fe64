"""Size arithmetic: shapes whose element counts overflow int64 or exceed the per-sample limit
(2**31 - 1 floats, tensor.hpp) are refused at build with a ValueError naming the layer, never a
wrapped-around allocation; an allocation the system refuses is a MemoryError naming the bytes.
Each case runs in a subprocess, since before the fix several of them crashed the interpreter."""

import subprocess
import sys
import textwrap

import pytest

import cnnx


def _run(body: str) -> str:
    """Runs `body` in a fresh interpreter; it must exit cleanly. Returns its output."""
    code = "from cnnx import Sequential\nfrom cnnx.layers import *\n" + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{out}"
    return out


def _refused(model_expr: str, error: str = "ValueError") -> str:
    out = _run(f"""
        try:
            {model_expr}
        except {error} as e:
            print("REFUSED:", e)
        else:
            print("ACCEPTED")
    """)
    assert "REFUSED:" in out, out
    return out


@pytest.mark.parametrize(
    "model, names",
    [
        # the kernel (1, 2**62) used to overflow the byte count and segfault
        ("Sequential([Input((1,)), Dense(2**62)])", ["Dense 'dense", "4611686018427387904"]),
        ("Sequential([Input((8, 8, 1)), Conv2D(2**62, 3)])", ["Conv2D 'conv2d", "4611686018427387904"]),
        # the known dims' product wrapped to 0, then `size % 0`: SIGFPE
        ("Sequential([Input((4,)), Reshape((-1, 2**32, 2**32))])", ["Reshape 'reshape", "4294967296"]),
        # a dilated kernel whose padded image has more than 2**63 floats
        ("Sequential([Input((8, 8, 1)), Conv2D(1, 2, dilation_rate=2**62, padding='same')])", ["Conv2D 'conv2d"]),
        # a pooling window whose padding arithmetic overflows
        (
            "Sequential([Input((8, 8, 1)), MaxPooling2D(2**63 - 1, strides=3, padding='same')])",
            ["MaxPooling2D 'max_pooling2d"],
        ),
    ],
)
def test_overflowing_shapes_are_refused_naming_the_layer(model, names):
    out = _refused(model)
    for name in names:
        assert name in out, out


@pytest.mark.parametrize(
    "model, layer, count",
    [
        ("Sequential([Input((2**16, 2**16, 1)), Flatten()])", "Flatten 'flatten", "4294967296"),
        ("Sequential([Input((4, 4, 1)), Resizing(2**16, 2**16)])", "Resizing 'resizing", "4294967296"),
        # refused before its (tiny) kernel is even allocated
        ("Sequential([Input((2**8, 2**8, 1)), Conv2D(2**16, 1)])", "Conv2D 'conv2d", "4294967296"),
    ],
)
def test_samples_above_the_per_sample_limit_are_refused(model, layer, count):
    out = _refused(model)
    assert layer in out and count in out and "2147483647" in out, out


def test_refused_allocation_is_a_memory_error_naming_the_bytes():
    # a (2**20, 2**20) kernel: 4 TiB, which no allocator grants
    out = _refused("Sequential([Input((2**20,)), Dense(2**20)])", error="MemoryError")
    assert "Dense 'dense'" in out and "4398046511104 bytes" in out, out


def test_the_limit_itself_is_accepted():
    out = _run("""
        m = Sequential([Input((2**31 - 1,)), Reshape((1, 2**31 - 1))])
        print("OUTPUT", m.output_shape)
    """)
    assert "OUTPUT (None, 1, 2147483647)" in out, out


@pytest.mark.parametrize("n", [0, -1, 1025, 10**6, 10**30])
def test_set_num_threads_refuses_out_of_range(n):
    before = cnnx.get_num_threads()
    with pytest.raises(
        ValueError,
        match=r"set_num_threads: expected a number of threads between 1 and 1024, "
        rf"received {n}$",
    ):
        cnnx.set_num_threads(n)
    assert cnnx.get_num_threads() == before


def test_set_num_threads_accepts_the_bound():
    before = cnnx.get_num_threads()
    try:
        cnnx.set_num_threads(1024)
        assert cnnx.get_num_threads() in (1, 1024)  # 1 without OpenMP
    finally:
        cnnx.set_num_threads(before)
