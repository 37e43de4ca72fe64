"""Conv2D: forward against the numpy reference, backward against finite differences of it."""

import itertools

import numpy as np
import pytest
from conftest import check_layer_gradients, np_activation, np_conv2d

from cnnx.layers import Conv2D


def _core_best_isa():
    from cnnx import _core

    return _core.best_isa()


CASES = [
    # batch, h, w, cin, filters, k, stride, padding
    (n, 5, 7, cin, 4, k, s, p)
    for n, cin, k, s, p in itertools.product((1, 3), (1, 3), (1, 3, 5), (1, 2), ("valid", "same"))
    if not (p == "valid" and k == 5 and s == 2 and cin == 3)  # keep the grid small but complete
]


def make(rng, n, h, w, cin, filters, k, stride, padding, dilation=1, activation=None):
    layer = Conv2D(filters, k, strides=stride, padding=padding, dilation_rate=dilation, activation=activation)
    layer.build((h, w, cin))
    kernel = rng.normal(size=(k if isinstance(k, int) else k[0], k if isinstance(k, int) else k[1], cin, filters))
    bias = rng.normal(size=filters)
    layer.set_weights([kernel, bias])
    x = rng.normal(size=(n, h, w, cin)).astype(np.float32)
    return layer, x


@pytest.mark.parametrize("n,h,w,cin,filters,k,stride,padding", CASES)
def test_forward_matches_numpy(rng, n, h, w, cin, filters, k, stride, padding):
    layer, x = make(rng, n, h, w, cin, filters, k, stride, padding)
    kernel, bias = layer.get_weights()
    got = layer(x)
    want = np_conv2d(x, kernel, bias, (stride, stride), padding)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dilation,padding", [(2, "valid"), (2, "same"), ((1, 2), "same")])
def test_dilated_forward(rng, dilation, padding):
    layer, x = make(rng, 2, 9, 8, 3, 5, 3, 1, padding, dilation=dilation)
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    want = np_conv2d(x, *layer.get_weights(), (1, 1), padding, d)
    np.testing.assert_allclose(layer(x), want, rtol=1e-4, atol=1e-4)


def test_rectangular_kernel_and_strides(rng):
    layer = Conv2D(6, (2, 3), strides=(2, 1), padding="same")
    x = rng.normal(size=(3, 7, 5, 2)).astype(np.float32)
    got = layer(x)
    want = np_conv2d(x, *layer.get_weights(), (2, 1), "same")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_fused_activation(rng, activation):
    layer, x = make(rng, 2, 6, 6, 3, 4, 3, 1, "same", activation=activation)
    want = np_activation(activation, np_conv2d(x, *layer.get_weights(), (1, 1), "same"))
    np.testing.assert_allclose(layer(x), want, rtol=1e-4, atol=1e-5)


def check_gradients(rng, layer, x, activation="linear", stride=1, padding="valid", dilation=(1, 1)):
    s = (stride, stride) if isinstance(stride, int) else stride
    check_layer_gradients(
        rng, layer, x, lambda x64, k, b: np_activation(activation, np_conv2d(x64, k, b, s, padding, dilation))
    )


@pytest.mark.parametrize("n,h,w,cin,filters,k,stride,padding", CASES[::3])
def test_backward_finite_differences(rng, n, h, w, cin, filters, k, stride, padding):
    layer, x = make(rng, n, h, w, cin, filters, k, stride, padding)
    check_gradients(rng, layer, x, stride=stride, padding=padding)


def test_backward_relu_and_dilation(rng):
    layer, x = make(rng, 2, 8, 7, 3, 5, 3, 1, "same", dilation=2, activation="relu")
    check_gradients(rng, layer, x, activation="relu", padding="same", dilation=(2, 2))


@pytest.mark.parametrize(
    "h,w,k,padding",
    [
        (1, 1, 3, "same"),
        (2, 1, 5, "same"),
        (3, 2, 5, "same"),
        (4, 12, 3, "same"),
        (5, 11, (3, 4), "valid"),
        (6, 4, (2, 5), "same"),
    ],
)
def test_kernel_rows_wider_than_or_inside_the_image(rng, h, w, k, padding):
    # im2col / col2im copy a whole kernel row as one run where all its taps are inside the
    # image, and tap by tap elsewhere; images narrower than the kernel have no such interior.
    layer, x = make(rng, 2, h, w, 3, 4, k, 1, padding)
    np.testing.assert_allclose(layer(x), np_conv2d(x, *layer.get_weights(), (1, 1), padding), rtol=1e-4, atol=1e-4)
    check_gradients(rng, layer, x, padding=padding)


def test_backward_one_by_one_shortcut(rng):
    # 1x1, stride 1, valid: the layer skips im2col and reads x directly.
    layer, x = make(rng, 3, 4, 5, 7, 6, 1, 1, "valid")
    check_gradients(rng, layer, x)


def test_no_bias(rng):
    layer = Conv2D(3, 3, use_bias=False)
    x = rng.normal(size=(2, 5, 5, 2)).astype(np.float32)
    y = layer(x)
    (kernel,) = layer.get_weights()
    np.testing.assert_allclose(y, np_conv2d(x, kernel), rtol=1e-4, atol=1e-5)
    assert layer.count_params() == 3 * 3 * 2 * 3


def test_article_first_layer_has_320_params():
    layer = Conv2D(32, 3, padding="same", activation="relu")
    layer.build((28, 28, 1))
    assert layer.count_params() == 320
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 3, 1, 32) and bias.shape == (32,)
    assert layer.output_shape == (None, 28, 28, 32)


def test_glorot_uniform_limits():
    layer = Conv2D(64, 3)
    layer.build((10, 10, 32))
    kernel, bias = layer.get_weights()
    limit = np.sqrt(6.0 / (9 * 32 + 9 * 64))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.95 * limit
    assert abs(kernel.std() - limit / np.sqrt(3)) < 0.05 * limit
    assert not bias.any()


def test_he_normal_std():
    layer = Conv2D(64, 3, kernel_initializer="he_normal")
    layer.build((10, 10, 32))
    kernel = layer.get_weights()[0]
    assert abs(kernel.std() - np.sqrt(2.0 / (9 * 32))) < 0.05 * np.sqrt(2.0 / (9 * 32))
    assert np.abs(kernel).max() <= 2.0 * np.sqrt(2.0 / (9 * 32)) / 0.87962566103423978 + 1e-6


@pytest.mark.parametrize(
    "n,h,w,cin,k,stride,padding",
    [
        (21, 6, 5, 3, 3, 1, "same"),  # 30 pixels: chunks of 16 images, the last one partial
        (3, 24, 25, 2, 3, 2, "valid"),  # 132 output pixels: chunks of 2 images
        (3, 30, 30, 1, 5, 1, "same"),  # 900 pixels: one image per chunk
    ],
)
def test_chunked_batches(rng, n, h, w, cin, k, stride, padding):
    """Batches that span several L2-sized chunks, with a partial last chunk."""
    layer, x = make(rng, n, h, w, cin, 7, k, stride, padding, activation="relu")
    want = np_activation("relu", np_conv2d(x, *layer.get_weights(), (stride, stride), padding))
    np.testing.assert_allclose(layer(x), want, rtol=1e-4, atol=1e-4)
    check_gradients(rng, layer, x, activation="relu", stride=stride, padding=padding)


@pytest.mark.parametrize("use_bias,k", [(False, 3), (False, 1), (True, 1)])
def test_chunked_gradients_with_and_without_bias(rng, use_bias, k):
    # With a bias, its gradient is an extra row of the weight-gradient GEMM (a column of ones
    # beside the im2col panel); without one, or for a 1x1 convolution that reads x in place,
    # there is no such column. Several chunks, a partial last one.
    layer = Conv2D(6, k, padding="same", use_bias=use_bias)
    layer.build((6, 5, 3))
    x = rng.normal(size=(21, 6, 5, 3)).astype(np.float32)
    if use_bias:
        check_gradients(rng, layer, x, padding="same")
    else:
        check_layer_gradients(rng, layer, x, lambda x64, kernel: np_conv2d(x64, kernel, None, (1, 1), "same"))


@pytest.mark.parametrize(
    "h,w,cin,filters,k,stride,padding,dilation",
    [
        (14, 14, 32, 64, 3, 1, "same", 1),  # the article's conv2: 14-pixel tiles, one per row
        (7, 7, 64, 45, 3, 1, "same", 1),  # tiles across rows and images, 45 = 32 + a partial sliver
        (9, 11, 17, 33, 5, 2, "same", 1),  # stride 2, 5x5, odd channel counts
        (8, 9, 16, 7, (3, 2), 1, "valid", 1),  # no padding: the images are read in place
        (9, 8, 16, 5, 3, 1, "same", (2, 1)),  # dilated rows, contiguous kernel rows
        (9, 8, 16, 5, 3, 1, "same", (1, 2)),  # dilated along x: im2col path
        (6, 7, 8, 40, 5, 1, "same", 1),  # 5x5: the top and bottom two rows skip 2 or 1 kernel rows
        (1, 8, 8, 12, (2, 3), 1, "same", (5, 1)),  # every kernel row falls in the padding: z = epi(bias)
    ],
)
def test_batched_forward_matches_single_images_bit_for_bit(rng, h, w, cin, filters, k, stride, padding, dilation):
    # Several chunks run the implicit GEMM (the micro-kernel reads windows from the padded
    # images, AVX-512); a single image runs im2col + the GEMM. Same K blocks, same sums: the
    # same bits, and both match numpy.
    layer = Conv2D(filters, k, strides=stride, padding=padding, dilation_rate=dilation, activation="relu")
    layer.build((h, w, cin))
    x = rng.normal(size=(37, h, w, cin)).astype(np.float32)
    batched = layer(x)
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    want = np_activation("relu", np_conv2d(x, *layer.get_weights(), (stride, stride), padding, d))
    np.testing.assert_allclose(batched, want, rtol=1e-4, atol=1e-4)
    for i in (0, 17, 36):
        np.testing.assert_array_equal(layer(x[i : i + 1]), batched[i : i + 1])


@pytest.mark.parametrize(
    "h,w,cin,filters,k,padding,dilation,use_bias",
    [
        (5, 6, 3, 16, 3, "same", 1, True),  # dX as a flipped-kernel forward convolution (implicit GEMM)
        (6, 5, 8, 9, (2, 3), "valid", 1, True),  # dK from the windows (implicit), no padding, rectangular kernel
        (5, 6, 8, 33, 3, "same", 1, False),  # implicit dK and dX, no bias, a partial 32-column sliver
        (5, 6, 8, 64, 3, "same", 1, True),  # implicit dK reading dz in place (whole 32-column slivers)
        (6, 5, 14, 20, (3, 2), "same", 1, True),  # kernel rows of 28 floats: no spare slice row, db summed apart
        (6, 7, 8, 40, 5, "same", 1, True),  # 5x5: border rows skip up to 2 kernel rows in dK and dX
        (8, 6, 8, 16, 3, "same", (2, 1), True),  # dilated rows skip kernel rows on two output rows each
        (1, 8, 8, 12, (2, 3), "same", (5, 1), True),  # all kernel rows in the padding: dK = 0, db apart
        (14, 14, 8, 16, 3, "same", 1, True),  # 14-pixel tiles skip the left/right padding columns (fwd, dX)
        (7, 7, 8, 16, 3, "same", 1, True),  # 7-pixel rows: two rows of each tile skip at each edge
        (7, 6, 2, 8, 3, "same", (2, 1), True),  # dilated rows
        (7, 6, 8, 8, 3, "same", (1, 2), True),  # dilated along x: im2col, dcol + col2im
        (5, 5, 2, 3, 3, "same", 1, True),  # kernel rows of 6 floats: im2col, dcol + col2im
    ],
)
def test_chunked_gradient_paths(rng, h, w, cin, filters, k, padding, dilation, use_bias):
    layer = Conv2D(filters, k, padding=padding, dilation_rate=dilation, use_bias=use_bias)
    layer.build((h, w, cin))
    x = rng.normal(size=(40, h, w, cin)).astype(np.float32)  # several chunks
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    if use_bias:
        check_gradients(rng, layer, x, padding=padding, dilation=d)
    else:
        check_layer_gradients(rng, layer, x, lambda x64, kernel: np_conv2d(x64, kernel, None, (1, 1), padding, d))


@pytest.mark.parametrize(
    "h,w,cin,filters,k,use_bias",
    [
        (6, 5, 8, 64, 3, True),  # ReLU derivative written into the padded dz that dK and dX share
        (7, 7, 8, 32, 3, False),  # the same without a bias
        (6, 5, 14, 32, (3, 2), True),  # kernel rows of 28 floats: db summed apart, so dz stays unpadded
    ],
)
def test_chunked_relu_gradients(rng, h, w, cin, filters, k, use_bias):
    layer = Conv2D(filters, k, padding="same", activation="relu", use_bias=use_bias)
    layer.build((h, w, cin))
    x = rng.normal(size=(40, h, w, cin)).astype(np.float32)  # several chunks
    # Among this many units some pre-activations lie within float32 rounding of zero, where the
    # float64 reference's ReLU may take the other side: the reference keeps the layer's own
    # ReLU mask instead, which is what backward must apply.
    mask = layer(x) > 0

    def reference(x64, kernel, bias=None):
        return np_conv2d(x64, kernel, bias, (1, 1), "same") * mask

    check_layer_gradients(rng, layer, x, reference)


@pytest.mark.parametrize("cin", [5, 8])  # im2col paths / implicit GEMM paths (AVX-512)
def test_gradients_identical_on_any_thread_count(rng, cin):
    import cnnx

    layer, x = make(rng, 37, 9, 9, cin, 16, 3, 1, "same", activation="relu")
    y = layer(x, training=True)
    dy = rng.normal(size=y.shape).astype(np.float32)
    before = cnnx.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            cnnx.set_num_threads(threads)
            dx = layer._core.backward(x, layer(x, training=True), dy)
            results.append([dx, *layer._core.get_gradients()])
    finally:
        cnnx.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(_core_best_isa() != "avx512", reason="the implicit-GEMM kernels are AVX-512 only")
@pytest.mark.parametrize("seed", range(12))
def test_implicit_gemm_paths_match_the_portable_path(seed):
    # Random geometries over several chunks: the AVX-512 run reads windows straight from the
    # padded images (forward, dK, dX) where it can; the generic run uses im2col, col2im and
    # the portable GEMM. Forward and all gradients must agree.
    from cnnx import _core

    r = np.random.default_rng(100 + seed)
    k = (int(r.integers(1, 5)), int(r.integers(1, 5)))
    stride = (1, 1) if r.random() < 0.6 else (int(r.integers(1, 3)), int(r.integers(1, 3)))
    dilation = (1, 1) if stride != (1, 1) or r.random() < 0.6 else (int(r.integers(1, 3)), int(r.integers(1, 3)))
    padding = str(r.choice(["same", "valid"]))
    h = int(r.integers(max(k[0], 3) + 2 * dilation[0], 13))
    w = int(r.integers(max(k[1], 3) + 2 * dilation[1], 13))
    cin, filters, n = int(r.integers(1, 41)), int(r.integers(1, 70)), int(r.integers(9, 40))
    # linear: a ReLU would turn last-bit differences near zero into different gradients
    layer = Conv2D(filters, k, strides=stride, padding=padding, dilation_rate=dilation, use_bias=bool(r.random() < 0.8))
    layer.build((h, w, cin))
    x = r.normal(size=(n, h, w, cin)).astype(np.float32)
    results = {}
    before = _core.get_isa()
    try:
        for isa in ("avx512", "generic"):
            _core.set_isa(isa)
            y = layer(x, training=True)
            dy = np.random.default_rng(7).normal(size=y.shape).astype(np.float32)
            dx = layer._core.backward(x, y, dy)
            results[isa] = [y, dx, *layer._core.get_gradients()]
    finally:
        _core.set_isa(before)
    geometry = f"k={k} stride={stride} dilation={dilation} {padding} h={h} w={w} cin={cin} filters={filters} n={n}"
    for fast, ref in zip(results["avx512"], results["generic"]):
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-4 * scale, err_msg=geometry)
