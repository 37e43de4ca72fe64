"""Random image layers (RandomFlip, RandomRotation, RandomTranslation, RandomZoom,
RandomContrast): exact identity at inference, seeded reproducibility, shapes, outputs rebuilt
from the per-image parameters of the last training call (layer._core.last_parameters()) with
numpy references and, where its conventions match, Pillow; backward as the exact transpose
(gradient checks); argument errors; and a model that trains with them."""

import numpy as np
import pytest
from conftest import check_layer_gradients

import cnnx
from cnnx import Sequential
from cnnx.layers import (
    Conv2D,
    Dense,
    Flatten,
    Input,
    MaxPooling2D,
    RandomContrast,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    Rescaling,
)

# -- numpy references -------------------------------------------------------------------------


def map_tap(i, size, mode):
    """Integer taps -> pixel indices (-1: fill value), Keras' fill modes."""
    i = np.asarray(i)
    if mode == "constant":
        return np.where((i >= 0) & (i < size), i, -1)
    if mode == "nearest":
        return np.clip(i, 0, size - 1)
    if mode == "wrap":
        return np.mod(i, size)
    m = np.mod(i, 2 * size)  # reflect: d c b a | a b c d | d c b a
    return np.where(m < size, m, 2 * size - 1 - m)


def np_transform(x, m, fill_mode="reflect", interpolation="bilinear", fill_value=0.0):
    """One image x [h, w, c] (float64) through Keras' 8-float transform m."""
    h, w, c = x.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    k = m[6] * xx + m[7] * yy + 1
    sx = (m[0] * xx + m[1] * yy + m[2]) / k
    sy = (m[3] * xx + m[4] * yy + m[5]) / k
    out = np.zeros((h, w, c))

    def read(iy, ix):
        ix, iy = map_tap(ix, w, fill_mode), map_tap(iy, h, fill_mode)
        ok = (ix >= 0) & (iy >= 0)
        return np.where(ok[..., None], x[np.maximum(iy, 0), np.maximum(ix, 0)], fill_value)

    if interpolation == "nearest":
        return read(np.floor(sy + 0.5).astype(int), np.floor(sx + 0.5).astype(int))
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    x0, y0 = x0.astype(int), y0.astype(int)
    out = (1 - fy) * ((1 - fx) * read(y0, x0) + fx * read(y0, x0 + 1)) + fy * (
        (1 - fx) * read(y0 + 1, x0) + fx * read(y0 + 1, x0 + 1)
    )
    return out


def rotation_matrix(angle, h, w):
    c, s = np.cos(angle), np.sin(angle)
    return [c, -s, ((w - 1) - (c * (w - 1) - s * (h - 1))) / 2, s, c, ((h - 1) - (s * (w - 1) + c * (h - 1))) / 2, 0, 0]


def translation_matrix(dy, dx):
    return [1, 0, -dx, 0, 1, -dy, 0, 0]


def zoom_matrix(zh, zw, h, w):
    return [zw, 0, (w - 1) / 2 * (1 - zw), 0, zh, (h - 1) / 2 * (1 - zh), 0, 0]


def matrices(layer, h, w):
    p = layer._core.last_parameters().astype(np.float64)
    if isinstance(layer, RandomRotation):
        return [rotation_matrix(a, h, w) for a in p[:, 0]]
    if isinstance(layer, RandomTranslation):
        return [translation_matrix(dy, dx) for dy, dx in p]
    return [zoom_matrix(zh, zw, h, w) for zh, zw in p]


def np_batch(layer, x, **kw):
    n, h, w, _ = x.shape
    return np.stack([np_transform(np.asarray(x[i], np.float64), m, **kw) for i, m in enumerate(matrices(layer, h, w))])


def np_contrast(x, c, lo=0.0, hi=255.0):
    x = np.asarray(x, np.float64)
    m = x.mean(axis=(1, 2), keepdims=True)
    return np.clip((x - m) * c.reshape(-1, 1, 1, 1) + m, lo, hi)


ALL = [
    lambda seed=None: RandomFlip(seed=seed),
    lambda seed=None: RandomRotation(0.2, seed=seed),
    lambda seed=None: RandomTranslation(0.3, (-0.2, 0.4), seed=seed),
    lambda seed=None: RandomZoom((-0.3, 0.3), seed=seed),
    lambda seed=None: RandomContrast(0.5, seed=seed),
]


# -- common behaviour -------------------------------------------------------------------------


@pytest.mark.parametrize("make", ALL)
def test_identity_at_inference_and_shapes(rng, make):
    layer = make(seed=1)
    x = rng.uniform(0, 255, size=(4, 7, 9, 3)).astype(np.float32)
    assert np.array_equal(layer(x), x)
    assert np.array_equal(layer(x, training=False), x)
    dy = rng.normal(size=x.shape).astype(np.float32)
    assert np.array_equal(layer._core.backward(x, x, dy), dy)
    y = layer(x, training=True)
    assert y.shape == x.shape and layer.output_shape == (None, 7, 9, 3) and layer.count_params() == 0
    assert layer._core.last_parameters().shape[0] == 4
    assert np.array_equal(layer(x), x)  # back to the identity after a training call


@pytest.mark.parametrize("make", ALL)
def test_seed_reproducible(rng, make):
    x = rng.uniform(0, 255, size=(8, 6, 6, 2)).astype(np.float32)
    a, b, c = make(seed=7), make(seed=7), make(seed=8)
    ya = a(x, training=True)
    assert np.array_equal(ya, b(x, training=True))
    assert not np.array_equal(ya, c(x, training=True))
    assert not np.array_equal(ya, a(x, training=True))  # fresh draws per call
    outs = []
    for _ in range(2):  # no seed argument: drawn from the global seed at build
        cnnx.utils.set_random_seed(3)
        outs.append(make()(x, training=True))
    assert np.array_equal(*outs)


@pytest.mark.parametrize("make", ALL)
def test_independent_of_thread_count(make):
    x = np.random.default_rng(0).uniform(0, 255, size=(16, 32, 32, 3)).astype(np.float32)  # threaded path
    before = cnnx.get_num_threads()
    try:
        outs = []
        for threads in (1, 2):
            cnnx.set_num_threads(threads)
            outs.append(make(seed=5)(x, training=True))
    finally:
        cnnx.set_num_threads(before)
    assert np.array_equal(*outs)


# -- outputs against references -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_flip_against_numpy(rng, mode):
    layer = RandomFlip(mode, seed=2)
    x = rng.normal(size=(32, 5, 6, 3)).astype(np.float32)
    y = layer(x, training=True)
    p = layer._core.last_parameters()
    if mode == "horizontal":
        assert not p[:, 1].any()
    if mode == "vertical":
        assert not p[:, 0].any()
    for col in range(2):
        if mode == "horizontal_and_vertical" or col == (mode == "vertical"):
            assert 0 < p[:, col].mean() < 1  # both outcomes occur
    for i in range(len(x)):
        ref = x[i]
        if p[i, 0]:
            ref = np.flip(ref, axis=1)
        if p[i, 1]:
            ref = np.flip(ref, axis=0)
        assert np.array_equal(y[i], ref)


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: RandomRotation((-0.5, 0.5), **kw),
        lambda **kw: RandomTranslation((-0.6, 0.6), (-0.6, 0.6), **kw),
        lambda **kw: RandomZoom((-0.5, 0.8), (-0.5, 0.8), **kw),
        lambda **kw: RandomZoom(0.5, **kw),
    ],
)
def test_geometric_against_numpy(rng, make, fill_mode, interpolation):
    kw = dict(fill_mode=fill_mode, interpolation=interpolation, fill_value=-3.0)
    layer = make(seed=4, **kw)
    x = rng.uniform(0, 1, size=(6, 7, 9, 2)).astype(np.float32)
    y = layer(x, training=True)
    ref = np_batch(layer, x, **kw)
    if interpolation == "bilinear":
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    else:  # float32 vs float64 coordinates may round a rare near-tie differently
        assert np.mean(np.abs(y - ref) > 1e-5) < 0.01


def test_zoom_keeps_aspect_ratio_without_width_factor_and_sign_convention(rng):
    layer = RandomZoom((0.2, 0.5), seed=0)
    layer(np.zeros((5, 8, 8, 1), np.float32), training=True)
    zh, zw = layer._core.last_parameters().T
    assert np.array_equal(zh, zw) and np.all((zh >= 1.2) & (zh <= 1.5))  # positive: zoom out
    # Zooming out of a constant-filled image shrinks it: the border becomes fill.
    x = np.ones((1, 9, 9, 1), np.float32)
    y = RandomZoom((0.5, 0.5), fill_mode="constant", seed=0)(x, training=True)
    assert y[0, 0, 0, 0] == 0 and y[0, 4, 4, 0] == 1
    y = RandomZoom((-0.5, -0.5), fill_mode="constant", seed=0)(x, training=True)  # zoom in: no fill
    assert np.all(y == 1)


def test_translation_by_whole_pixels_is_a_shift(rng):
    x = rng.normal(size=(1, 6, 8, 2)).astype(np.float32)
    layer = RandomTranslation((0.5, 0.5), (-0.25, -0.25), fill_mode="constant", seed=0)  # dy = 3, dx = -2
    y = layer(x, training=True)
    np.testing.assert_allclose(layer._core.last_parameters(), [[3, -2]])
    ref = np.zeros_like(x)
    ref[0, 3:, :6] = x[0, :3, 2:]
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize(
    "fill_mode,example",
    [
        ("reflect", [3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]),  # d c b a | a b c d | d c b a
        ("wrap", [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]),  # a b c d | a b c d | a b c d
        ("nearest", [0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3]),  # a a a a | a b c d | d d d d
        ("constant", [-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1]),
    ],
)
def test_fill_modes_as_keras_documents(fill_mode, example):
    np.testing.assert_array_equal(map_tap(np.arange(-4, 8), 4, fill_mode), example)
    # The layer itself: a shift by the full width shows the pattern to the left of the image.
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 4, 1)
    layer = RandomTranslation(0.0, (1.0, 1.0), fill_mode=fill_mode, fill_value=-1.0, seed=0)
    y = layer(x, training=True)
    np.testing.assert_array_equal(y[0, 0, :, 0], example[:4])


@pytest.mark.parametrize("angle_deg", [17.0, -33.0, 90.0, 141.0])
def test_rotation_matches_pillow_nearest_constant(rng, angle_deg):
    Image = pytest.importorskip("PIL.Image")
    frac = angle_deg / 360.0
    layer = RandomRotation((frac, frac), fill_mode="constant", interpolation="nearest", fill_value=0.0, seed=0)
    x = rng.uniform(1, 2, size=(1, 15, 21, 1)).astype(np.float32)  # odd sizes: 90 degrees lands on pixels
    y = layer(x, training=True)
    np.testing.assert_allclose(layer._core.last_parameters()[0, 0], np.radians(angle_deg), rtol=1e-6)
    ref = np.asarray(Image.fromarray(x[0, :, :, 0], mode="F").rotate(angle_deg, resample=Image.NEAREST, fillcolor=0.0))
    assert np.mean(y[0, :, :, 0] != ref) < 0.02  # rare rounding near-ties only
    assert np.mean(y == 0) > 0.05  # the corners were filled


def test_contrast_against_numpy(rng):
    layer = RandomContrast((0.3, 0.6), seed=3)
    x = rng.uniform(0, 255, size=(8, 6, 7, 3)).astype(np.float32)
    y = layer(x, training=True)
    c = layer._core.last_parameters()[:, 0]
    assert np.all((c >= 0.7) & (c <= 1.6)) and c.std() > 0
    np.testing.assert_allclose(y, np_contrast(x, c), rtol=1e-5, atol=1e-3)
    assert y.min() >= 0 and y.max() <= 255
    layer = RandomContrast(0.9, value_range=(-1.0, 1.0), seed=3)
    x = rng.uniform(-1, 1, size=(8, 6, 7, 3)).astype(np.float32)
    y = layer(x, training=True)
    np.testing.assert_allclose(y, np_contrast(x, layer._core.last_parameters()[:, 0], -1, 1), rtol=1e-5, atol=1e-5)


# -- backward: the exact transpose of the last training call ----------------------------------


def test_flip_gradients(rng):
    layer = RandomFlip(seed=6)
    x = rng.normal(size=(6, 4, 5, 2)).astype(np.float32)

    def ref(x64):
        p = layer._core.last_parameters()
        out = x64.copy()
        for i in range(len(x64)):
            if p[i, 0]:
                out[i] = out[i, :, ::-1]
            if p[i, 1]:
                out[i] = out[i, ::-1]
        return out

    check_layer_gradients(rng, layer, x, ref)


@pytest.mark.parametrize("fill_mode", ["reflect", "constant", "wrap"])
@pytest.mark.parametrize(
    "make",
    [
        lambda fm: RandomTranslation(0.4, 0.4, fill_mode=fm, seed=2),
        lambda fm: RandomRotation(0.3, fill_mode=fm, seed=2),
        lambda fm: RandomZoom(0.4, fill_mode=fm, seed=2),
    ],
)
def test_geometric_gradients(rng, make, fill_mode):
    layer = make(fill_mode)
    x = rng.normal(size=(3, 6, 7, 2)).astype(np.float32)
    check_layer_gradients(rng, layer, x, lambda x64: np_batch(layer, x64, fill_mode=fill_mode))


def test_contrast_gradients(rng):
    layer = RandomContrast(0.5, seed=1)
    x = rng.uniform(100, 150, size=(3, 5, 6, 2)).astype(np.float32)  # never clipped: exact derivative
    check_layer_gradients(
        rng,
        layer,
        x,
        lambda x64: np_contrast(x64, layer._core.last_parameters()[:, 0].astype(np.float64)),
        rtol=2e-3,
        atol=5e-3,
    )


# -- arguments ----------------------------------------------------------------------------------


def test_config_round_trip(rng):
    x = rng.uniform(0, 255, size=(3, 5, 6, 2)).astype(np.float32)
    for layer in (
        RandomFlip("vertical", seed=1),
        RandomRotation((-0.1, 0.2), fill_mode="wrap", seed=2),
        RandomTranslation(0.1, 0.2, interpolation="nearest", seed=3),
        RandomZoom(0.2, (-0.1, 0.1), fill_mode="constant", fill_value=1.0, seed=4),
        RandomContrast((0.1, 0.2), value_range=(0, 1), seed=5),
    ):
        config = layer.get_config()
        clone = type(layer).from_config({**config, "name": config["name"] + "_clone"})
        assert {**clone.get_config(), "name": config["name"]} == config
        assert np.array_equal(clone(x, training=True), layer(x, training=True))


@pytest.mark.parametrize(
    "make,error,message",
    [
        (
            lambda: RandomFlip("diagonal"),
            ValueError,
            r"RandomFlip '.*': expected mode to be 'horizontal', 'vertical' or 'horizontal_and_vertical', received mode='diagonal'",
        ),
        (lambda: RandomFlip(seed=-1), ValueError, r"expected seed to be a non-negative int or None, received seed=-1"),
        (
            lambda: RandomRotation(1.5),
            ValueError,
            r"RandomRotation '.*': expected factor values in \[-1, 1\], received factor=\(-1.5, 1.5\)",
        ),
        (lambda: RandomRotation((0.3, 0.1)), ValueError, r"expected factor as \(lower, upper\) with lower <= upper"),
        (lambda: RandomRotation("0.1"), TypeError, r"expected factor to be a number or a tuple of 2 numbers"),
        (lambda: RandomRotation((0.1, 0.2, 0.3)), TypeError, r"expected factor to be a number or a tuple of 2 numbers"),
        (
            lambda: RandomRotation(0.1, fill_mode="mirror"),
            ValueError,
            r"expected fill_mode to be one of 'reflect', 'wrap', 'constant', 'nearest', received fill_mode='mirror'",
        ),
        (
            lambda: RandomRotation(0.1, interpolation="bicubic"),
            ValueError,
            r"expected interpolation to be 'bilinear' or 'nearest', received interpolation='bicubic'",
        ),
        (lambda: RandomRotation(0.1, fill_value=float("nan")), ValueError, r"expected a finite fill_value"),
        (
            lambda: RandomTranslation(1.2, 0.1),
            ValueError,
            r"expected height_factor values in \[-1, 1\], received height_factor=\(-1.2, 1.2\)",
        ),
        (
            lambda: RandomTranslation(0.1, -0.2),
            ValueError,
            r"expected width_factor as \(lower, upper\) with lower <= upper",
        ),
        (lambda: RandomTranslation(0.1, None), TypeError, r"expected width_factor to be a number or a tuple"),
        (lambda: RandomZoom((-1.5, 0.2)), ValueError, r"expected height_factor values in \[-1, 1\]"),
        (
            lambda: RandomZoom(0.2, (0.3, 0.1)),
            ValueError,
            r"expected width_factor as \(lower, upper\) with lower <= upper",
        ),
        (lambda: RandomContrast(1.5), ValueError, r"RandomContrast '.*': expected factor values in \[0, 1\]"),
        (lambda: RandomContrast(-0.1), ValueError, r"expected factor values in \[0, 1\]"),
        (
            lambda: RandomContrast(0.2, value_range=(1, 0)),
            ValueError,
            r"expected value_range as finite \(min, max\) with min < max",
        ),
        (lambda: RandomContrast(0.2, value_range=255), TypeError, r"expected value_range to be a tuple of 2 numbers"),
        (lambda: RandomContrast(0.2, seed="a"), TypeError, r"expected seed to be an int, received seed='a'"),
    ],
)
def test_invalid_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_rank_checked_at_build():
    with pytest.raises(
        ValueError,
        match=r"RandomFlip '.*': expected images of shape \(height, width, channels\), "
        r"received input \(None, 10\)",
    ):
        RandomFlip().build((10,))


# -- in a model ---------------------------------------------------------------------------------


def test_model_trains_with_augmentation_and_predicts_deterministically(rng):
    cnnx.utils.set_random_seed(0)
    n = 256
    x = rng.uniform(0, 60, size=(n, 12, 12, 1)).astype(np.float32)
    y = rng.integers(0, 2, n)
    x[y == 1, 3:9, 3:9] += 180.0  # a bright centre square: survives flips, small turns and zooms
    model = Sequential(
        [
            Input((12, 12, 1)),
            RandomFlip(),
            RandomRotation(0.1),
            RandomZoom(0.1),
            RandomContrast(0.2),
            Rescaling(1 / 255),
            Conv2D(8, 3, activation="relu"),
            MaxPooling2D(),
            Flatten(name="augmented_flatten"),
            Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer=cnnx.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y.astype(np.float32), batch_size=32, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] and history.history["accuracy"][-1] > 0.9
    p1, p2 = model.predict(x), model.predict(x)
    assert np.array_equal(p1, p2)
    _, acc = model.evaluate(x, y.astype(np.float32), verbose=0)
    assert acc > 0.9
