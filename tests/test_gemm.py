"""The blocked GEMM against the naive reference kernel, for every instruction set this CPU has,
on awkward shapes: 1s, primes, sizes around the micro-tile, K smaller than the tile."""

import itertools
import os

import numpy as np
import pytest

from cnnx import _core

ORDER = ["generic", "avx2", "avx512"]
ISAS = ORDER[: ORDER.index(_core.best_isa()) + 1]
SIZES = [1, 2, 3, 7, 13, 14, 15, 17, 31, 33, 97]


@pytest.fixture(params=ISAS)
def isa(request):
    before = _core.get_isa()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(before)


def operands(rng, m, n, k, ta, tb):
    a = rng.normal(size=(k, m) if ta else (m, k)).astype(np.float32)
    b = rng.normal(size=(n, k) if tb else (k, n)).astype(np.float32)
    return a, b


@pytest.mark.parametrize("ta,tb", list(itertools.product((False, True), repeat=2)))
def test_edge_shapes_match_reference(rng, isa, ta, tb):
    for m, n, k in itertools.product(SIZES, SIZES, (1, 5, 33)):
        a, b = operands(rng, m, n, k, ta, tb)
        got = _core.gemm(a, b, ta, tb)
        want = _core.gemm_ref(a, b, ta, tb)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.sqrt(k), err_msg=f"{isa} m={m} n={n} k={k}")


@pytest.mark.parametrize(
    "m,n,k,ta",
    [
        (12544, 64, 288, False),
        (288, 64, 3136, True),
        (64, 100, 1152, False),
        (257, 300, 511, False),
        (3, 1000, 2, True),
    ],
)
def test_layer_shapes_match_numpy(rng, isa, m, n, k, ta):
    a, b = operands(rng, m, n, k, ta, False)
    got = _core.gemm(a, b, ta, False)
    want = (a.T if ta else a).astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(k))


@pytest.mark.parametrize("m", [1, 2, 5, 13, 14, 29])
@pytest.mark.parametrize("n,k", [(1, 1), (10, 100), (17, 33), (100, 1152), (130, 7)])
def test_accumulate_bias_relu_match_reference(rng, isa, m, n, k):
    # beta = 1 with several K blocks (k = 1152), the bias + ReLU epilogue on full and edge
    # tiles, and C with fewer rows than a tile (the small-M path of batch-1 dense layers).
    a, b = operands(rng, m, n, k, False, False)
    c = rng.normal(size=(m, n)).astype(np.float32)
    bias = rng.normal(size=n).astype(np.float32)
    for kwargs in ({"c": c}, {"bias": bias, "relu": True}, {"c": c, "bias": bias}, {"relu": True}):
        got = _core.gemm(a, b, **kwargs)
        want = _core.gemm_ref(a, b, **kwargs)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.sqrt(k), err_msg=f"{isa} {sorted(kwargs)}")
    relu = _core.gemm(a, b, bias=bias, relu=True)
    assert (relu >= 0).all()


def test_row_results_do_not_depend_on_the_batch(rng, isa):
    # A row of C gets the same bits whether it is computed alone (small-M path, B in place),
    # in a few tiles (B in place) or in a tall matrix (B packed): every path sums in k order,
    # in the same K blocks, with the same epilogue.
    a, b = operands(rng, 700, 100, 1152, False, False)
    bias = rng.normal(size=100).astype(np.float32)
    tall = _core.gemm(a, b, bias=bias, relu=True)
    for rows in (1, 3, 20, 100):
        np.testing.assert_array_equal(_core.gemm(a[:rows], b, bias=bias, relu=True), tall[:rows], err_msg=f"{rows}")


def test_relu_epilogue_maps_nan_to_zero(isa):
    a = np.full((20, 3), np.nan, dtype=np.float32)
    b = np.ones((3, 40), dtype=np.float32)
    got = _core.gemm(a, b, relu=True)
    np.testing.assert_array_equal(got, np.zeros((20, 40), np.float32))


def test_thread_count_gives_identical_bits(rng, isa):
    import cnnx

    a, b = operands(rng, 500, 70, 300, False, False)
    before = cnnx.get_num_threads()
    try:
        cnnx.set_num_threads(1)
        one = _core.gemm(a, b)
        cnnx.set_num_threads(2)
        two = _core.gemm(a, b)
    finally:
        cnnx.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_isa_override_and_errors():
    env = os.environ.get("CNNX_ISA")
    if env:
        assert _core.get_isa() == env  # CI runs the suite once per CNNX_ISA value
    with pytest.raises(ValueError, match="expected 'avx512', 'avx2' or 'generic'"):
        _core.set_isa("sse9")
