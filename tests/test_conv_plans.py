"""Conv2D plans: which algorithms the planner picks for given shapes on each ISA, every
algorithm (forced) against the im2col reference and numpy on awkward shapes, and layer
workspaces: what is planned for a batch is what reserve() allocates, and forward / backward
allocate nothing more."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import np_conv2d, pad_amounts

import cnnx
from cnnx import _core
from cnnx.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalMaxPooling2D,
    Input,
    MaxPooling2D,
    RandomContrast,
    RandomRotation,
)

_ORDER = ["generic", "avx2", "avx512"]
# The ISAs this run may select: the active one (capped by CNNX_ISA) and those below it.
ISAS = [isa for isa in _ORDER if _ORDER.index(isa) <= _ORDER.index(_core.get_isa())]


@pytest.fixture(params=ISAS)
def isa(request):
    before, threads = _core.get_isa(), cnnx.get_num_threads()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(before)
    cnnx.set_num_threads(threads)


def conv(shape, filters, k, stride=1, dilation=1, padding="same", activation=None, use_bias=True, seed=0):
    layer = Conv2D(
        filters, k, strides=stride, padding=padding, dilation_rate=dilation, activation=activation, use_bias=use_bias
    )
    layer.build(shape)
    r = np.random.default_rng(seed)
    layer.set_weights([r.normal(size=w.shape).astype(np.float32) for w in layer.get_weights()])
    return layer


def implicit_ok(isa, kw, dil_w, channels):
    """The rule the implicit kernels follow (kernels/conv_gemm.cpp): AVX-512 only, taps contiguous
    along x (no dilation there) and kernel rows of at least 16 floats."""
    return isa == "avx512" and dil_w == 1 and kw * channels >= 16


# -- which plan -----------------------------------------------------------------------------


def test_1x1_stride_1_reads_x_directly(isa):
    p = conv((6, 6, 16), 24, 1)._core.plan(64)
    assert (p["forward"], p["weight_grad"], p["input_grad"]) == ("direct_1x1",) * 3
    assert p["bias_grad"] == "column_sums"  # no panel, so no row of ones for the bias
    assert p["isa"] == isa
    # strided or padded 1x1 convolutions are not the identity: im2col (or implicit, AVX-512)
    strided = conv((6, 6, 16), 24, 1, stride=2)._core.plan(1)
    assert strided["forward"] == strided["input_grad"] == "im2col_gemm"


def test_batch_1_is_one_chunk_on_threaded_im2col_gemm(isa):
    p = conv((14, 14, 32), 64, 3, activation="relu")._core.plan(1)
    assert p["single_chunk"] and p["chunks"] == 1 and p["chunk_images"] == 1 and p["groups"] == 1
    assert (p["forward"], p["weight_grad"], p["input_grad"]) == ("im2col_gemm",) * 3
    assert p["bias_grad"] == "gemm_row" and not p["shared_padded_dz"]


def test_chunks_and_groups():
    # about 512 output pixels a chunk, a power of two of images: 14x14 -> 2 images
    p = conv((14, 14, 32), 64, 3)._core.plan(64)
    assert (p["chunk_images"], p["chunks"], p["groups"], p["single_chunk"]) == (2, 32, 8, False)
    p = conv((7, 7, 64), 128, 3)._core.plan(61)  # 8 images a chunk, the last one shorter
    assert (p["chunk_images"], p["chunks"], p["groups"]) == (8, 8, 8)
    p = conv((28, 28, 1), 32, 3)._core.plan(3)  # 784 pixels: one image a chunk
    assert (p["chunk_images"], p["chunks"]) == (1, 3)
    assert p["batch_size"] == 3 and p["threads"] == cnnx.get_num_threads()


def test_several_chunks_go_implicit_where_the_isa_has_the_kernel(isa):
    p = conv((14, 14, 32), 64, 3, activation="relu")._core.plan(64)
    fast = isa == "avx512"
    assert p["forward"] == p["weight_grad"] == p["input_grad"] == ("implicit_gemm" if fast else "im2col_gemm")
    # 3 x 32 = 96 floats a kernel row, not a multiple of 14: the bias rides in the kernel's spare
    # row; cout = 64 lets the weight gradient read the padded dz that dX convolves
    assert p["bias_grad"] == ("weight_grad_row" if fast else "gemm_row")
    assert p["shared_padded_dz"] == fast


def test_stride_2_takes_im2col_for_the_input_gradient(isa):
    p = conv((14, 14, 32), 64, 3, stride=2)._core.plan(64)
    fast = isa == "avx512"
    assert p["input_grad"] == "im2col_gemm"
    assert p["forward"] == p["weight_grad"] == ("implicit_gemm" if fast else "im2col_gemm")
    assert not p["shared_padded_dz"]


def test_short_kernel_rows_and_dilation_along_x_stay_on_im2col(isa):
    # conv1 of the article: 3 floats a kernel row; its dX (rows of 3 x 32 floats) may go implicit
    p = conv((28, 28, 1), 32, 3, activation="relu")._core.plan(64)
    assert p["forward"] == p["weight_grad"] == "im2col_gemm"
    assert p["input_grad"] == ("implicit_gemm" if implicit_ok(isa, 3, 1, 32) else "im2col_gemm")
    p = conv((10, 10, 32), 32, 3, dilation=(1, 2))._core.plan(64)
    assert (p["forward"], p["weight_grad"], p["input_grad"]) == ("im2col_gemm",) * 3
    p = conv((10, 10, 32), 32, 3, dilation=(2, 1))._core.plan(64)  # along y only: windows stay contiguous
    assert p["forward"] == ("implicit_gemm" if isa == "avx512" else "im2col_gemm")


def test_shared_padded_dz_conditions():
    if "avx512" not in ISAS:
        pytest.skip("the implicit kernels are AVX-512 only")
    plan = lambda layer: layer._core.plan(64)  # noqa: E731
    assert plan(conv((14, 14, 32), 64, 3, activation="relu"))["shared_padded_dz"]
    assert plan(conv((14, 14, 32), 64, 3, padding="valid", use_bias=False))["shared_padded_dz"]
    # cout not a multiple of 32: the weight gradient packs dz instead of reading the padded copy
    assert not plan(conv((14, 14, 32), 40, 3, activation="relu"))["shared_padded_dz"]
    # tanh's derivative needs its own pass over dz
    assert not plan(conv((14, 14, 32), 64, 3, activation="tanh"))["shared_padded_dz"]
    # 3 x 14 = 42 floats a kernel row: no spare row for the bias, which then needs dz unpadded
    p = plan(conv((14, 14, 14), 64, 3, activation="relu"))
    assert p["bias_grad"] == "column_sums" and not p["shared_padded_dz"]
    assert p["weight_grad"] == p["input_grad"] == "implicit_gemm"


def test_frozen_layer_plans_no_weight_gradient(isa):
    layer = conv((14, 14, 32), 64, 3)
    layer._core.trainable = False
    p = layer._core.plan(64)
    assert p["weight_grad"] == p["bias_grad"] == "none" and p["input_grad"] != "none"
    frozen = layer._core.workspace_floats(64)
    layer._core.trainable = True
    assert layer._core.workspace_floats(64) > frozen  # the weight-gradient partials


def test_plan_follows_threads_and_isa():
    layer = conv((14, 14, 32), 64, 3)
    before = cnnx.get_num_threads()
    try:
        cnnx.set_num_threads(1)
        one = layer._core.workspace_floats(64)
        cnnx.set_num_threads(3)
        threads = cnnx.get_num_threads()  # 1 on a build without OpenMP
        assert layer._core.plan(64)["threads"] == threads
        if threads > 1:
            assert layer._core.workspace_floats(64) > one  # per-thread panels
        # a single chunk uses one set of panels whatever the thread count
        assert layer._core.plan(1)["workspace_floats"] == layer._core.workspace_floats(1)
        cnnx.set_num_threads(1)
        assert layer._core.workspace_floats(1) == layer._core.plan(1)["workspace_floats"]
    finally:
        cnnx.set_num_threads(before)


def test_plan_errors():
    layer = Conv2D(4, 3)
    with pytest.raises(ValueError, match="build the layer before planning"):
        layer._core.plan(4)
    layer.build((6, 6, 2))
    with pytest.raises(ValueError, match="batch_size >= 1, received 0"):
        layer._core.workspace_floats(0)
    with pytest.raises(ValueError, match="expected 'auto', 'im2col_gemm'.*received 'fft'"):
        layer._core._force_algorithms(forward="fft")
    layer._core._force_algorithms(forward="direct_1x1")  # a 3x3 kernel is not the identity
    with pytest.raises(ValueError, match="forced forward algorithm direct_1x1 cannot run"):
        layer._core.plan(4)
    with pytest.raises(ValueError, match="forced forward algorithm direct_1x1 cannot run"):
        layer(np.zeros((4, 6, 6, 2), np.float32))
    layer._core._force_algorithms()
    assert layer._core.plan(4)["forward"] == "im2col_gemm"
    pool = MaxPooling2D(2)
    with pytest.raises(ValueError, match="MaxPooling2D .*build the layer before planning"):
        pool._core.workspace_floats(1)
    pool.build((4, 4, 3))
    assert pool._core.plan(8) == {}


# -- every algorithm against the reference ------------------------------------------------

# n, h, w, cin, filters, kernel, strides, dilation, padding, activation, use_bias: batch 1,
# primes, channels not multiples of 16, both dilations, both paddings, and the bias routes.
SHAPES = [
    (1, 7, 5, 17, 33, 3, 1, 1, "same", None, True),
    (13, 7, 5, 17, 32, 3, 1, 1, "same", "relu", True),
    (11, 9, 8, 20, 19, 3, 1, (2, 1), "same", "tanh", False),
    (9, 10, 10, 16, 24, 3, 1, (1, 2), "valid", None, True),
    (17, 11, 7, 5, 40, (2, 3), 2, 1, "same", "relu", True),
    (17, 9, 9, 6, 64, 3, 1, 1, "valid", None, False),
    (23, 6, 6, 48, 21, 1, 1, 1, "valid", "relu", True),
    (5, 6, 6, 3, 8, 1, 2, 1, "same", None, True),
    (29, 5, 5, 32, 64, 5, 1, 1, "same", "relu", True),
    (20, 6, 6, 14, 32, 3, 1, 1, "same", "relu", True),
    (37, 3, 3, 16, 32, 3, (1, 2), 1, "valid", None, True),
]


def np_conv2d_backward(x, kernel, dz, strides, padding, dilation):
    """dx, dkernel, dbias of y = conv(x, kernel) + bias for dL/dy = dz, in float64."""
    x = np.asarray(x, np.float64)
    n, h, w, c = x.shape
    kh, kw = kernel.shape[:2]
    oh, pt, pb = pad_amounts(h, kh, strides[0], dilation[0], padding)
    ow, pl, pr = pad_amounts(w, kw, strides[1], dilation[1], padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    dxp = np.zeros_like(xp)
    dk = np.zeros(kernel.shape)
    for ky, kx in itertools.product(range(kh), range(kw)):
        y0, x0 = ky * dilation[0], kx * dilation[1]
        rows = slice(y0, y0 + (oh - 1) * strides[0] + 1, strides[0])
        cols = slice(x0, x0 + (ow - 1) * strides[1] + 1, strides[1])
        dk[ky, kx] = np.einsum("nhwc,nhwo->co", xp[:, rows, cols, :], dz)
        dxp[:, rows, cols, :] += dz @ np.asarray(kernel[ky, kx], np.float64).T
    return dxp[:, pt : pt + h, pl : pl + w, :], dk, dz.sum(axis=(0, 1, 2))


def run(layer, x, dy):
    y = layer(x, training=True)
    dx = layer._core.backward(x, y, dy)
    return [y, dx, *layer._core.get_gradients()]


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[:5])) + f"k{s[5]}s{s[6]}d{s[7]}{s[8]}")
def test_every_algorithm_matches_the_im2col_reference(isa, shape):
    n, h, w, cin, filters, k, stride, dil, padding, act, bias = shape
    layer = conv((h, w, cin), filters, k, stride, dil, padding, act, bias, seed=n)
    kh, kw = pair(k)
    (sh, sw), (dh, dw) = pair(stride), pair(dil)
    r = np.random.default_rng(n + 1)
    x = r.normal(size=(n, h, w, cin)).astype(np.float32)
    identity = (kh, kw, sh, sw) == (1, 1, 1, 1)
    forward_algs = ["im2col_gemm"] + (["direct_1x1"] if identity else [])
    dx_algs = list(forward_algs)
    if implicit_ok(isa, kw, dw, cin):
        forward_algs.append("implicit_gemm")
    if implicit_ok(isa, kw, dw, filters) and (sh, sw) == (1, 1):
        dx_algs.append("implicit_gemm")

    layer._core._force_algorithms("im2col_gemm", "im2col_gemm", "im2col_gemm")
    y0 = layer(x, training=True)
    dy = r.normal(size=y0.shape).astype(np.float32)
    ref = run(layer, x, dy)

    # the reference itself against numpy (float64)
    kernel, *b = layer.get_weights()
    pre = np_conv2d(x, kernel, b[0] if bias else None, (sh, sw), padding, (dh, dw))
    y64 = {None: pre, "relu": np.maximum(pre, 0), "tanh": np.tanh(pre)}[act]
    deriv = {None: 1.0, "relu": (ref[0] > 0), "tanh": 1 - ref[0].astype(np.float64) ** 2}[act]
    want = [y64, *np_conv2d_backward(x, kernel, dy * deriv, (sh, sw), padding, (dh, dw))]
    if not bias:
        want.pop()
    for got, expect, what in zip(ref, want, ["y", "dx", "dkernel", "dbias"]):
        scale = max(1.0, float(np.abs(expect).max()))
        np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-4 * scale, err_msg=f"im2col {what}")

    routes = set()
    for fwd, dwk, dxa in itertools.product(forward_algs, forward_algs, dx_algs):
        layer._core._force_algorithms(fwd, dwk, dxa)
        p = layer._core.plan(n)
        assert (p["forward"], p["weight_grad"], p["input_grad"]) == (fwd, dwk, dxa)
        routes.add((p["bias_grad"], p["shared_padded_dz"]))
        got = run(layer, x, dy)
        label = f"{isa} forward={fwd} weight_grad={dwk} input_grad={dxa} bias={p['bias_grad']}"
        # the implicit forward sums in the GEMM's K blocks: the same bits as im2col + GEMM
        np.testing.assert_array_equal(got[0], ref[0], err_msg=label)
        for a, e, what in zip(got[1:], ref[1:], ["dx", "dkernel", "dbias"]):
            scale = max(1.0, float(np.abs(e).max()))
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=2e-5 * scale, err_msg=f"{label}: {what}")
        assert layer._core.workspace_floats(n) == p["workspace_floats"]
    if bias:
        assert ("gemm_row", False) in routes
    layer._core._force_algorithms()


def test_the_shapes_cover_every_backward_route():
    """The shapes above reach each bias route and both implicit dz routes on AVX-512."""
    if "avx512" not in ISAS:
        pytest.skip("the implicit kernels are AVX-512 only")
    before = _core.get_isa()
    _core.set_isa("avx512")
    seen = set()
    try:
        for n, h, w, cin, filters, k, stride, dil, padding, act, bias in SHAPES:
            layer = conv((h, w, cin), filters, k, stride, dil, padding, act, bias)
            for algs in itertools.product(["im2col_gemm", "implicit_gemm", "direct_1x1"], repeat=3):
                layer._core._force_algorithms(*algs)
                try:
                    p = layer._core.plan(n)
                except ValueError:
                    continue
                seen.add(("bias", p["bias_grad"]))
                if p["weight_grad"] == p["input_grad"] == "implicit_gemm":
                    seen.add(("shared", p["shared_padded_dz"]))
    finally:
        _core.set_isa(before)
    assert seen >= {("bias", r) for r in ("none", "gemm_row", "weight_grad_row", "column_sums")}
    assert seen >= {("shared", True), ("shared", False)}


def test_fused_pool_and_threads_give_the_same_bits_on_every_forced_route(isa):
    """Training through a model (conv fused with its pooling) on two thread counts, once per
    forced route: each route is thread-count independent and agrees with im2col."""

    def train(algs, threads):
        cnnx.set_num_threads(threads)
        cnnx.utils.set_random_seed(3)
        c = Conv2D(32, 3, padding="same", activation="relu")
        if algs:  # before the model clones the layer for its nodes
            c._core._force_algorithms(*algs)
        model = cnnx.Sequential([Input((10, 10, 16)), c, MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")])
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        r = np.random.default_rng(4)
        x = r.normal(size=(40, 10, 10, 16)).astype(np.float32)
        y = np.eye(3, dtype=np.float32)[r.integers(0, 3, 40)]
        model.fit(x, y, batch_size=20, epochs=1, verbose=0, shuffle=False)
        plans = [p["plan"] for p in model._core.layer_plans(20) if p["plan"]]
        return model.get_weights(), plans[0]

    routes = [None, ("im2col_gemm",) * 3]
    if isa == "avx512":
        routes += [("implicit_gemm",) * 3, ("implicit_gemm", "im2col_gemm", "implicit_gemm")]
    ref, _ = train(("im2col_gemm",) * 3, 1)
    for algs in routes:
        w1, p1 = train(algs, 1)
        w2, p2 = train(algs, 2)
        if algs:
            assert (p1["forward"], p1["weight_grad"], p1["input_grad"]) == algs
        for a, b, r in zip(w1, w2, ref):
            np.testing.assert_array_equal(a, b, err_msg=str(algs))
            np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-5, err_msg=str(algs))


# -- workspaces ------------------------------------------------------------------------------


def _workspace_layers():
    return [
        (conv((14, 14, 32), 64, 3, activation="relu"), (14, 14, 32)),
        (conv((9, 9, 16), 40, 3, stride=2, use_bias=False), (9, 9, 16)),
        (conv((6, 6, 16), 24, 1), (6, 6, 16)),
        (conv((28, 28, 1), 32, 3, activation="tanh"), (28, 28, 1)),
        (MaxPooling2D(2), (8, 8, 5)),
        (Dropout(0.3), (4, 6)),
        (Dropout(0.3, noise_shape=(None, 1, 6)), (4, 6)),
        (BatchNormalization(), (5, 5, 7)),
        (GlobalMaxPooling2D(), (5, 5, 7)),
        (RandomContrast(0.2), (6, 6, 3)),
        (RandomRotation(0.1), (6, 6, 3)),
        (Dense(4), (6,)),
    ]


@pytest.mark.parametrize("index", range(len(_workspace_layers())))
def test_workspace_floats_is_what_reserve_allocates(index):
    layer, shape = _workspace_layers()[index]
    if not layer._core.built:
        layer.build(shape)
    core = layer._core
    for batch in (1, 3, 64):
        fresh = _workspace_layers()[index][0]
        if not fresh._core.built:
            fresh.build(shape)
        fresh._core.reserve(batch)
        assert fresh._core.allocated_workspace_floats() == fresh._core.workspace_floats(batch), (batch, core.class_name)
    # workspaces only grow: a smaller batch afterwards allocates nothing and needs no more
    core.reserve(64)
    held = core.allocated_workspace_floats()
    assert held == core.workspace_floats(64)
    core.reserve(3)
    assert core.allocated_workspace_floats() == held >= core.workspace_floats(3)
    # the steps of a reserved batch allocate nothing more
    x = np.random.default_rng(0).normal(size=(64, *shape)).astype(np.float32)
    y = core.forward(x, True)
    core.backward(x, y, np.ones_like(y))
    for n in (3, 1):  # a batch of one chunk may take another route: reserve(64) covered it too
        y = core.forward(x[:n].copy(), True)
        core.backward(x[:n].copy(), y, np.ones_like(y))
    assert core.allocated_workspace_floats() == held
    if layer._core.class_name not in (
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "BatchNormalization",
        "GlobalMaxPooling2D",
        "RandomContrast",
        "RandomRotation",
    ):
        assert held == 0


def test_model_layer_plans_are_the_runners_workspaces():
    model = cnnx.Sequential(
        [
            Input((12, 12, 3)),
            Conv2D(32, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Dropout(0.2),
            Conv2D(32, 3, activation="tanh"),
            Flatten(),
            Dense(4, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.build()
    r = np.random.default_rng(0)
    x = r.normal(size=(16, 12, 12, 3)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[r.integers(0, 4, 16)]
    before = model._core.layer_plans(16)
    assert before[0] == {"layer": "", "workspace_floats": 0, "allocated_workspace_floats": 0, "plan": {}}
    assert all(p["allocated_workspace_floats"] == 0 for p in before)
    model.train_on_batch(x, y)
    plans = model._core.layer_plans(16)
    names = [p["layer"] for p in plans[1:]]
    assert names == [layer.name for layer in model.layers]
    for p in plans:
        assert p["allocated_workspace_floats"] == p["workspace_floats"], p["layer"]
    conv1 = plans[1]["plan"]
    # the layer also holds what a one-chunk batch (2 images here) needs, where its routes differ
    # (on AVX-512, several chunks read x or dz in place where one chunk has im2col panels)
    one_chunk = model.layers[0]._core.plan(2)
    assert one_chunk["single_chunk"] and one_chunk["forward"] == "im2col_gemm"
    routes = ("forward", "weight_grad", "input_grad")
    differ = any(one_chunk[r] != conv1[r] for r in routes)
    assert conv1["batch_size"] == 16 and differ == (_core.get_isa() == "avx512")
    assert (conv1["workspace_floats"] < plans[1]["workspace_floats"]) == differ
    # the fused conv keeps a per-thread panel of its output; the user's own (unfused) layer
    # plans the same route, and its workspaces are not the model's
    assert model.layers[0]._core.allocated_workspace_floats() == 0
    assert model.layers[0]._core.plan(16)["forward"] == conv1["forward"]
    assert plans[2]["workspace_floats"] == 16 * 6 * 6 * 32  # the pool's argmax
    with pytest.raises(ValueError, match="build the model before planning"):
        cnnx.Sequential([Dense(2)])._core.layer_plans(4)
