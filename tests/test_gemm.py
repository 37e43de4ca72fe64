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


@pytest.mark.parametrize("m,n,k,ta", [(12544, 64, 288, False), (288, 64, 3136, True), (64, 100, 1152, False),
                                      (257, 300, 511, False), (3, 1000, 2, True)])
def test_layer_shapes_match_numpy(rng, isa, m, n, k, ta):
    a, b = operands(rng, m, n, k, ta, False)
    got = _core.gemm(a, b, ta, False)
    want = (a.T if ta else a).astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(k))


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
