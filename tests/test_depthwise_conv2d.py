"""DepthwiseConv2D: forward against numpy, backward against finite differences, thread-count
independence, training, saving, argument errors and Keras' config keys."""

import itertools

import numpy as np
import pytest
from conftest import (
    check_layer_gradients,
    np_activation,
    np_dense,
    np_depthwise_conv2d,
    np_max_pool,
    numeric_grad,
    sample_indices,
)

import cnnx
from cnnx import Sequential, regularizers
from cnnx.layers import Dense, DepthwiseConv2D, Flatten, Input, MaxPooling2D


def make(rng, n, h, w, c, k, stride=1, padding="valid", dm=1, dilation=1, activation=None, use_bias=True):
    layer = DepthwiseConv2D(
        k,
        strides=stride,
        padding=padding,
        depth_multiplier=dm,
        dilation_rate=dilation,
        activation=activation,
        use_bias=use_bias,
    )
    layer.build((h, w, c))
    kh, kw = (k, k) if isinstance(k, int) else k
    weights = [rng.normal(size=(kh, kw, c, dm))] + ([rng.normal(size=c * dm)] if use_bias else [])
    layer.set_weights(weights)
    x = rng.normal(size=(n, h, w, c)).astype(np.float32)
    return layer, x


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# (n, h, w, c, k, stride, padding, dm, dilation): batch 1, prime sizes, 1 / 3 / 17 channels.
CASES = [
    (n, h, w, c, k, s, p, dm, 1)
    for (n, h, w), c, k, s, p, dm in itertools.product(
        ((1, 7, 11), (3, 13, 5)), (1, 3, 17), (1, 3, 5), (1, 2), ("valid", "same"), (1, 3)
    )
    if not (p == "valid" and k == 5 and w == 5 and s == 2)  # keep the grid small
] + [
    (2, 11, 7, c, k, 1, p, dm, d)
    for c, k, p, dm, d in itertools.product((1, 3, 17), (2, 3), ("valid", "same"), (1, 3), (2, (3, 1)))
]


@pytest.mark.parametrize("n,h,w,c,k,stride,padding,dm,dilation", CASES)
def test_forward_matches_numpy(rng, n, h, w, c, k, stride, padding, dm, dilation):
    layer, x = make(rng, n, h, w, c, k, stride, padding, dm, dilation)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (k, k, c, dm) and bias.shape == (c * dm,)
    got = layer(x)
    want = np_depthwise_conv2d(x, kernel, bias, pair(stride), padding, pair(dilation))
    assert got.shape == want.shape == (n, *layer.output_shape[1:])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_output_channel_order_is_keras():
    # channel c*dm + m = input channel c through filter m: one-hot kernels make it visible.
    layer = DepthwiseConv2D(1, depth_multiplier=2, use_bias=False)
    layer.build((1, 1, 3))
    kernel = np.zeros((1, 1, 3, 2), np.float32)
    kernel[0, 0, :, 0] = 1.0
    kernel[0, 0, :, 1] = 10.0
    layer.set_weights([kernel])
    y = layer(np.array([[[[1.0, 2.0, 3.0]]]], np.float32))
    np.testing.assert_array_equal(y.reshape(-1), [1, 10, 2, 20, 3, 30])


def test_rectangular_kernel_strides_and_no_bias(rng):
    layer, x = make(rng, 2, 9, 8, 4, (2, 3), stride=(2, 1), padding="same", dm=2, use_bias=False)
    (kernel,) = layer.get_weights()
    np.testing.assert_allclose(layer(x), np_depthwise_conv2d(x, kernel, None, (2, 1), "same"), rtol=1e-5, atol=1e-5)
    assert layer.count_params() == 2 * 3 * 4 * 2


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softmax"])
def test_fused_activation(rng, activation):
    layer, x = make(rng, 2, 6, 5, 3, 3, padding="same", dm=3, activation=activation)
    want = np_activation(activation, np_depthwise_conv2d(x, *layer.get_weights(), (1, 1), "same"))
    np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-6)


def check_gradients(rng, layer, x, activation="linear", stride=1, padding="valid", dilation=1):
    check_layer_gradients(
        rng,
        layer,
        x,
        lambda x64, kernel, bias=None: np_activation(
            activation, np_depthwise_conv2d(x64, kernel, bias, pair(stride), padding, pair(dilation))
        ),
    )


@pytest.mark.parametrize("n,h,w,c,k,stride,padding,dm,dilation", CASES[::4])
def test_backward_finite_differences(rng, n, h, w, c, k, stride, padding, dm, dilation):
    layer, x = make(rng, n, h, w, c, k, stride, padding, dm, dilation)
    check_gradients(rng, layer, x, stride=stride, padding=padding, dilation=dilation)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("dm", [1, 3])
def test_backward_through_the_activation(rng, activation, dm):
    layer, x = make(rng, 2, 7, 6, 3, 3, padding="same", dm=dm, dilation=2, activation=activation)
    check_gradients(rng, layer, x, activation=activation, padding="same", dilation=2)


def test_backward_without_bias_and_with_kernel_larger_than_image(rng):
    layer, x = make(rng, 2, 2, 3, 5, 5, padding="same", dm=3, use_bias=False)
    check_gradients(rng, layer, x, padding="same")


@pytest.mark.parametrize("dm,stride", [(1, 1), (3, 1), (2, 2)])
def test_gradients_identical_on_any_thread_count(rng, dm, stride):
    # Large enough to run threaded (the kernels stay serial below ~32k multiply-adds).
    layer, x = make(rng, 37, 9, 11, 20, 3, stride=stride, padding="same", dm=dm, activation="relu")
    dy = rng.normal(size=(37, *layer.output_shape[1:])).astype(np.float32)
    before = cnnx.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            cnnx.set_num_threads(threads)
            y = layer(x, training=True)
            dx = layer._core.backward(x, y, dy)
            results.append([y, dx, *layer._core.get_gradients()])
    finally:
        cnnx.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_model_gradients_with_fused_relu_pool_and_softmax(rng):
    # In a model the ReLU's derivative is applied by the following max-pool (the layer gets
    # dL/dz), and softmax + cross-entropy hands the last layer p - y.
    cnnx.utils.set_random_seed(3)
    model = Sequential(
        [
            Input((8, 7, 3)),
            DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu"),
            MaxPooling2D(2),
            DepthwiseConv2D(2, activation="tanh"),
            Flatten(),
            Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=cnnx.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy")
    model.set_weights([w + rng.normal(scale=0.2, size=w.shape) for w in model.get_weights()])
    x = rng.normal(size=(4, 8, 7, 3)).astype(np.float32)
    labels = np.array([0, 2, 1, 2])
    model.train_on_batch(x, labels)
    grads = [g for layer in model.layers for g in layer._core.get_gradients()]
    w64 = [w.astype(np.float64) for w in model.get_weights()]
    x64 = x.astype(np.float64)
    onehot = np.eye(3)[labels]

    def loss():
        k1, b1, k2, b2, w, b = w64
        h = np_activation("relu", np_depthwise_conv2d(x64, k1, b1, (1, 1), "same"))
        h = np_max_pool(h, (2, 2))
        h = np_activation("tanh", np_depthwise_conv2d(h, k2, b2))
        p = np_activation("softmax", np_dense(h.reshape(len(h), -1), w, b))
        return float(-(onehot * np.log(p)).sum(axis=1).mean())

    for arr, got in zip(w64, grads):
        idx = sample_indices(rng, arr.size, count=20)
        np.testing.assert_allclose(got.reshape(-1)[idx], numeric_grad(loss, arr, idx), rtol=2e-3, atol=1e-5)


def small_model():
    return Sequential(
        [
            Input((10, 9, 3)),
            DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu"),
            MaxPooling2D(2),
            DepthwiseConv2D((3, 2), strides=2, activation="relu", depthwise_regularizer=regularizers.L2(1e-4)),
            Flatten(),
            Dense(3, activation="softmax"),
        ]
    )


def toy_data(rng, n=96):
    # Three classes told apart by which channel carries a bright blob.
    x = rng.normal(scale=0.3, size=(n, 10, 9, 3)).astype(np.float32)
    y = rng.integers(0, 3, n)
    for i, label in enumerate(y):
        x[i, 3:7, 3:6, label] += 2.0
    return x, y


def test_model_trains(rng):
    cnnx.utils.set_random_seed(5)
    x, y = toy_data(rng)
    model = small_model()
    model.compile(optimizer=cnnx.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.4 * losses[0]
    assert history.history["accuracy"][-1] > 0.8


def test_save_and_load_round_trip(tmp_path, rng):
    x, y = toy_data(rng, 32)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "dw.cnnx")
    loaded = cnnx.models.load_model(tmp_path / "dw.cnnx")
    assert loaded.get_config() == model.get_config()
    assert isinstance(loaded.layers[0], DepthwiseConv2D)
    assert loaded.layers[2].get_config()["depthwise_regularizer"] == {"class_name": "L2", "config": {"l2": 1e-4}}
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


def test_regularizers_reach_the_right_weights(rng):
    x = rng.normal(size=(4, 5, 5, 2)).astype(np.float32)
    y = rng.integers(0, 2, 4)

    def model(**regs):
        m = Sequential([Input((5, 5, 2)), DepthwiseConv2D(3, depth_multiplier=2, **regs), Flatten(), Dense(2)])
        m.compile(optimizer="sgd", loss=cnnx.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m

    plain = model()
    weights = [w + 0.5 for w in plain.get_weights()]
    plain.set_weights(weights)
    base = plain.evaluate(x, y, verbose=0)
    for arg, index in (("depthwise_regularizer", 0), ("bias_regularizer", 1)):
        regd = model(**{arg: regularizers.L1(0.1)})
        regd.set_weights(weights)
        expected = base + 0.1 * np.abs(weights[index]).sum()
        assert regd.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        ({"kernel_size": 3, "depth_multiplier": 0}, ValueError, "depth_multiplier=0"),
        ({"kernel_size": 3, "depth_multiplier": -2}, ValueError, "expected depth_multiplier to be a positive"),
        ({"kernel_size": 3, "depth_multiplier": 1.5}, TypeError, "depth_multiplier"),
        ({"kernel_size": 0}, ValueError, "kernel_size"),
        ({"kernel_size": (3, 3, 3)}, TypeError, "kernel_size"),
        ({"kernel_size": 3, "strides": 0}, ValueError, "strides"),
        ({"kernel_size": 3, "strides": 2, "dilation_rate": 2}, ValueError, "strides > 1 cannot be combined"),
        ({"kernel_size": 3, "padding": "full"}, ValueError, "padding 'valid' or 'same'"),
        ({"kernel_size": 3, "padding": 1}, TypeError, "padding"),
        ({"kernel_size": 3, "data_format": "channels_first"}, ValueError, "channels-last"),
        ({"kernel_size": 3, "activation": "swishy"}, ValueError, "unknown activation 'swishy'"),
        ({"kernel_size": 3, "depthwise_initializer": "nope"}, ValueError, "nope"),
        ({"kernel_size": 3, "depthwise_regularizer": "l3"}, ValueError, "regularizer identifier"),
        ({"kernel_size": 3, "kernel_regularizer": "l2"}, TypeError, "kernel_regularizer"),
    ],
)
def test_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        DepthwiseConv2D(**kwargs)


def test_bad_arguments_name_the_layer():
    with pytest.raises(ValueError, match="DepthwiseConv2D 'dw_bad': expected depth_multiplier"):
        DepthwiseConv2D(3, depth_multiplier=0, name="dw_bad")


def test_bad_input_shapes():
    with pytest.raises(ValueError, match=r"smaller than the kernel"):
        DepthwiseConv2D(5).build((4, 9, 3))
    with pytest.raises(ValueError, match=r"expected input of rank 4"):
        DepthwiseConv2D(3).build((9, 3))
    with pytest.raises(ValueError, match="DepthwiseConv2D"):  # the output's element count overflows
        DepthwiseConv2D(1, depth_multiplier=2**12).build((4, 4, 2**20))
    layer = DepthwiseConv2D(3)
    layer.build((5, 5, 2))
    with pytest.raises(ValueError, match=r"expected kernel of shape \(3, 3, 2, 1\)"):
        layer.set_weights([np.zeros((3, 3, 1, 2)), np.zeros(2)])


# keras.layers.DepthwiseConv2D(...).get_config() in Keras 3. cnnx writes all of them but dtype
# (always float32), activity_regularizer and the constraints, which it does not support (as
# for Conv2D).
KERAS_KEYS = {
    "name",
    "trainable",
    "dtype",
    "depth_multiplier",
    "kernel_size",
    "strides",
    "padding",
    "data_format",
    "dilation_rate",
    "activation",
    "use_bias",
    "depthwise_initializer",
    "bias_initializer",
    "depthwise_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "depthwise_constraint",
    "bias_constraint",
}


def test_config_keys_and_round_trip():
    layer = DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=3, activation="relu", use_bias=False)
    config = layer.get_config()
    assert set(config) == KERAS_KEYS - {"dtype", "activity_regularizer", "depthwise_constraint", "bias_constraint"}
    assert config["kernel_size"] == (3, 3) and config["strides"] == (2, 2) and config["depth_multiplier"] == 3
    clone = DepthwiseConv2D.from_config({**config, "name": "dw_clone"})
    assert {**clone.get_config(), "name": config["name"]} == config
    assert layer.name.startswith("depthwise_conv2d")


def test_keras_defaults():
    config = DepthwiseConv2D(3).get_config()
    assert config["strides"] == (1, 1) and config["padding"] == "valid" and config["depth_multiplier"] == 1
    assert config["dilation_rate"] == (1, 1) and config["activation"] == "linear" and config["use_bias"]
    assert config["depthwise_initializer"] == "glorot_uniform" and config["bias_initializer"] == "zeros"


def test_glorot_uniform_uses_keras_fans():
    # Keras' fans for (kh, kw, cin, dm): fan_in = kh*kw*cin, fan_out = kh*kw*dm.
    layer = DepthwiseConv2D(3, depth_multiplier=2)
    layer.build((16, 16, 40))
    kernel = layer.get_weights()[0]
    limit = np.sqrt(6.0 / (9 * 40 + 9 * 2))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.9 * limit


def test_matches_keras(rng):
    keras = pytest.importorskip("keras")
    x = rng.normal(size=(2, 9, 8, 3)).astype(np.float32)
    for kwargs in ({"padding": "same", "strides": 2, "depth_multiplier": 2}, {"dilation_rate": 2}):
        ref = keras.layers.DepthwiseConv2D(3, activation="relu", **kwargs)
        want = np.asarray(ref(x))
        layer = DepthwiseConv2D(3, activation="relu", **kwargs)
        layer.build(x.shape[1:])
        layer.set_weights([np.asarray(w) for w in ref.get_weights()])
        np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-5)
