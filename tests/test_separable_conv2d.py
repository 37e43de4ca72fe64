"""SeparableConv2D: forward against numpy, backward against finite differences, thread-count
independence, training, saving, argument errors and Keras' config keys."""

import itertools

import numpy as np
import pytest
from conftest import (
    check_layer_gradients,
    file_checksum,
    np_activation,
    np_dense,
    np_depthwise_conv2d,
    np_max_pool,
    numeric_grad,
    sample_indices,
)

import cnnx
from cnnx import Sequential, regularizers
from cnnx.layers import Dense, Flatten, Input, MaxPooling2D, SeparableConv2D


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def np_separable(x, depthwise, pointwise, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1)):
    mid = np_depthwise_conv2d(x, depthwise, None, strides, padding, dilation)
    return np_dense(mid, pointwise[0, 0], bias)


def make(rng, n, h, w, c, filters, k, stride=1, padding="valid", dm=1, dilation=1, activation=None, use_bias=True):
    layer = SeparableConv2D(
        filters,
        k,
        strides=stride,
        padding=padding,
        depth_multiplier=dm,
        dilation_rate=dilation,
        activation=activation,
        use_bias=use_bias,
    )
    layer.build((h, w, c))
    kh, kw = pair(k)
    weights = [rng.normal(size=(kh, kw, c, dm)), rng.normal(size=(1, 1, c * dm, filters))]
    layer.set_weights(weights + ([rng.normal(size=filters)] if use_bias else []))
    x = rng.normal(size=(n, h, w, c)).astype(np.float32)
    return layer, x


# (n, h, w, c, filters, k, stride, padding, dm, dilation): batch 1, prime sizes, 1 / 3 / 17 channels.
CASES = [
    (n, h, w, c, f, k, s, p, dm, 1)
    for (n, h, w), (c, f), k, s, p, dm in itertools.product(
        ((1, 7, 11), (3, 13, 5)), ((1, 4), (3, 5), (17, 2)), (1, 3), (1, 2), ("valid", "same"), (1, 3)
    )
] + [
    (2, 11, 7, c, 3, k, 1, p, dm, d)
    for c, k, p, dm, d in itertools.product((1, 3, 17), (2, 3), ("valid", "same"), (1, 3), (2, (1, 3)))
]


@pytest.mark.parametrize("n,h,w,c,filters,k,stride,padding,dm,dilation", CASES)
def test_forward_matches_numpy(rng, n, h, w, c, filters, k, stride, padding, dm, dilation):
    layer, x = make(rng, n, h, w, c, filters, k, stride, padding, dm, dilation)
    depthwise, pointwise, bias = layer.get_weights()
    assert depthwise.shape == (k, k, c, dm) and pointwise.shape == (1, 1, c * dm, filters) and bias.shape == (filters,)
    got = layer(x)
    want = np_separable(x, depthwise, pointwise, bias, pair(stride), padding, pair(dilation))
    assert got.shape == want.shape == (n, *layer.output_shape[1:])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softmax"])
def test_fused_activation(rng, activation):
    layer, x = make(rng, 2, 6, 5, 3, 4, 3, padding="same", dm=2, activation=activation)
    want = np_activation(activation, np_separable(x, *layer.get_weights(), (1, 1), "same"))
    np.testing.assert_allclose(layer(x), want, rtol=1e-4, atol=1e-5)


def test_no_bias(rng):
    layer, x = make(rng, 2, 7, 6, 3, 4, (3, 2), stride=(1, 2), padding="same", use_bias=False)
    depthwise, pointwise = layer.get_weights()
    np.testing.assert_allclose(layer(x), np_separable(x, depthwise, pointwise, None, (1, 2), "same"), atol=1e-4)
    assert layer.count_params() == 3 * 2 * 3 + 3 * 4


def check_gradients(rng, layer, x, activation="linear", stride=1, padding="valid", dilation=1):
    check_layer_gradients(
        rng,
        layer,
        x,
        lambda x64, dk, pk, bias=None: np_activation(
            activation, np_separable(x64, dk, pk, bias, pair(stride), padding, pair(dilation))
        ),
    )


@pytest.mark.parametrize("n,h,w,c,filters,k,stride,padding,dm,dilation", CASES[::4])
def test_backward_finite_differences(rng, n, h, w, c, filters, k, stride, padding, dm, dilation):
    layer, x = make(rng, n, h, w, c, filters, k, stride, padding, dm, dilation)
    check_gradients(rng, layer, x, stride=stride, padding=padding, dilation=dilation)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("dm", [1, 3])
def test_backward_through_the_activation(rng, activation, dm):
    layer, x = make(rng, 2, 7, 6, 3, 5, 3, padding="same", dm=dm, dilation=2, activation=activation)
    check_gradients(rng, layer, x, activation=activation, padding="same", dilation=2)


def test_backward_without_bias(rng):
    layer, x = make(rng, 2, 5, 6, 4, 3, 3, stride=2, padding="same", dm=2, use_bias=False)
    check_gradients(rng, layer, x, stride=2, padding="same")


def test_backward_needs_nothing_from_forward(rng):
    # Backward recomputes the depthwise output from x: another forward in between (here on a
    # different batch size) must not change the gradients.
    layer, x = make(rng, 3, 6, 6, 3, 4, 3, padding="same", dm=2)
    y = layer(x, training=True)
    dy = rng.normal(size=y.shape).astype(np.float32)
    dx = layer._core.backward(x, y, dy)
    grads = layer._core.get_gradients()
    layer(rng.normal(size=(5, 6, 6, 3)).astype(np.float32), training=True)
    np.testing.assert_array_equal(layer._core.backward(x, y, dy), dx)
    for a, b in zip(layer._core.get_gradients(), grads):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dm", [1, 3])
def test_gradients_identical_on_any_thread_count(rng, dm):
    layer, x = make(rng, 37, 9, 11, 8, 16, 3, padding="same", dm=dm, activation="relu")
    dy = rng.normal(size=(37, 9, 11, 16)).astype(np.float32)
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
    cnnx.utils.set_random_seed(4)
    model = Sequential(
        [
            Input((8, 7, 2)),
            SeparableConv2D(4, 3, padding="same", depth_multiplier=2, activation="relu"),
            MaxPooling2D(2),
            SeparableConv2D(3, 2, activation="tanh"),
            Flatten(),
            Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=cnnx.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy")
    model.set_weights([w + rng.normal(scale=0.2, size=w.shape) for w in model.get_weights()])
    x = rng.normal(size=(4, 8, 7, 2)).astype(np.float32)
    labels = np.array([1, 0, 2, 1])
    model.train_on_batch(x, labels)
    grads = [g for layer in model.layers for g in layer._core.get_gradients()]
    w64 = [w.astype(np.float64) for w in model.get_weights()]
    x64 = x.astype(np.float64)
    onehot = np.eye(3)[labels]

    def loss():
        d1, p1, b1, d2, p2, b2, w, b = w64
        h = np_activation("relu", np_separable(x64, d1, p1, b1, (1, 1), "same"))
        h = np_max_pool(h, (2, 2))
        h = np_activation("tanh", np_separable(h, d2, p2, b2))
        p = np_activation("softmax", np_dense(h.reshape(len(h), -1), w, b))
        return float(-(onehot * np.log(p)).sum(axis=1).mean())

    for arr, got in zip(w64, grads):
        idx = sample_indices(rng, arr.size, count=20)
        np.testing.assert_allclose(got.reshape(-1)[idx], numeric_grad(loss, arr, idx), rtol=2e-3, atol=1e-5)


def small_model():
    return Sequential(
        [
            Input((10, 9, 3)),
            SeparableConv2D(8, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            SeparableConv2D(8, 3, depth_multiplier=2, activation="relu", pointwise_regularizer=regularizers.L2(1e-4)),
            Flatten(),
            Dense(3, activation="softmax"),
        ]
    )


def toy_data(rng, n=96):
    # Three classes told apart by where a bright blob sits.
    x = rng.normal(scale=0.3, size=(n, 10, 9, 3)).astype(np.float32)
    y = rng.integers(0, 3, n)
    for i, label in enumerate(y):
        x[i, 1 + 3 * label : 4 + 3 * label, 3:6, :] += 1.5
    return x, y


def test_model_trains(rng):
    cnnx.utils.set_random_seed(6)
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
    model.save(tmp_path / "sep.cnnx")
    loaded = cnnx.models.load_model(tmp_path / "sep.cnnx")
    assert loaded.get_config() == model.get_config()
    assert isinstance(loaded.layers[0], SeparableConv2D)
    assert loaded.layers[2].get_config()["pointwise_regularizer"] == {"class_name": "L2", "config": {"l2": 1e-4}}
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    # training resumes from the saved optimizer state exactly
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_saved_config_bounds_refuse_a_huge_depth_multiplier(tmp_path):
    import json

    model = Sequential([Input((5, 5, 2)), SeparableConv2D(2, 3), Flatten(), Dense(2)])
    model.save(tmp_path / "ok.cnnx")
    raw = (tmp_path / "ok.cnnx").read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header, data = json.loads(raw[8 : 8 + size]), raw[8 + size :]
    meta = header["__metadata__"]
    del meta["sha256"]
    config = json.loads(meta["model_config"])
    config["layers"][0]["config"]["depth_multiplier"] = 2**40
    meta["model_config"] = json.dumps(config)
    meta["sha256"] = file_checksum(header, data)  # a consistent file: the bound must refuse it
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    (tmp_path / "bad.cnnx").write_bytes(len(text).to_bytes(8, "little") + text + data)
    with pytest.raises(ValueError, match=r"expected depth_multiplier within \+-16777216"):
        cnnx.models.load_model(tmp_path / "bad.cnnx")


def test_regularizers_reach_the_right_weights(rng):
    x = rng.normal(size=(4, 5, 5, 2)).astype(np.float32)
    y = rng.integers(0, 2, 4)

    def model(**regs):
        m = Sequential([Input((5, 5, 2)), SeparableConv2D(3, 3, depth_multiplier=2, **regs), Flatten(), Dense(2)])
        m.compile(optimizer="sgd", loss=cnnx.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m

    plain = model()
    weights = [w + 0.5 for w in plain.get_weights()]
    plain.set_weights(weights)
    base = plain.evaluate(x, y, verbose=0)
    for arg, index in (("depthwise_regularizer", 0), ("pointwise_regularizer", 1), ("bias_regularizer", 2)):
        regd = model(**{arg: regularizers.L1(0.1)})
        regd.set_weights(weights)
        expected = base + 0.1 * np.abs(weights[index]).sum()
        assert regd.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        ({"filters": 0, "kernel_size": 3}, ValueError, "expected filters to be a positive integer, received filters=0"),
        ({"filters": 2.0, "kernel_size": 3}, TypeError, "filters"),
        ({"filters": 2, "kernel_size": 3, "depth_multiplier": 0}, ValueError, "depth_multiplier=0"),
        ({"filters": 2, "kernel_size": 3, "depth_multiplier": "2"}, TypeError, "depth_multiplier"),
        ({"filters": 2, "kernel_size": (0, 3)}, ValueError, "kernel_size"),
        ({"filters": 2, "kernel_size": 3, "strides": (1, 2), "dilation_rate": (2, 1)}, ValueError, "strides > 1"),
        ({"filters": 2, "kernel_size": 3, "padding": "causal"}, ValueError, "padding 'valid' or 'same'"),
        ({"filters": 2, "kernel_size": 3, "data_format": "channels_first"}, ValueError, "channels-last"),
        ({"filters": 2, "kernel_size": 3, "activation": "gelu2"}, ValueError, "unknown activation"),
        ({"filters": 2, "kernel_size": 3, "pointwise_initializer": "nope"}, ValueError, "nope"),
        ({"filters": 2, "kernel_size": 3, "pointwise_regularizer": 3}, ValueError, "regularizer identifier"),
        ({"filters": 2, "kernel_size": 3, "kernel_initializer": "zeros"}, TypeError, "kernel_initializer"),
    ],
)
def test_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        SeparableConv2D(**kwargs)


def test_bad_input_shapes():
    with pytest.raises(ValueError, match=r"SeparableConv2D '.*': input \(None, 2, 9, 3\) is smaller than the kernel"):
        SeparableConv2D(2, 3).build((2, 9, 3))
    with pytest.raises(ValueError, match=r"expected input of rank 4"):
        SeparableConv2D(2, 3).build((9,))
    with pytest.raises(ValueError, match="SeparableConv2D"):  # the depthwise output overflows a sample
        SeparableConv2D(2, 1, depth_multiplier=2**12).build((4, 4, 2**20))
    layer = SeparableConv2D(4, 3)
    layer.build((5, 5, 2))
    with pytest.raises(ValueError, match=r"expected pointwise_kernel of shape \(1, 1, 2, 4\)"):
        layer.set_weights([np.zeros((3, 3, 2, 1)), np.zeros((1, 1, 4, 2)), np.zeros(4)])


# keras.layers.SeparableConv2D(...).get_config() in Keras 3; cnnx leaves out dtype,
# activity_regularizer and the constraints (unsupported, as for Conv2D).
KERAS_KEYS = {
    "name",
    "trainable",
    "dtype",
    "depth_multiplier",
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "data_format",
    "dilation_rate",
    "activation",
    "use_bias",
    "depthwise_initializer",
    "pointwise_initializer",
    "bias_initializer",
    "depthwise_regularizer",
    "pointwise_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "depthwise_constraint",
    "pointwise_constraint",
    "bias_constraint",
}


def test_config_keys_and_round_trip():
    layer = SeparableConv2D(5, (3, 2), strides=(2, 1), padding="same", depth_multiplier=2, activation="tanh")
    config = layer.get_config()
    unsupported = {"dtype", "activity_regularizer", "depthwise_constraint", "pointwise_constraint", "bias_constraint"}
    assert set(config) == KERAS_KEYS - unsupported
    assert config["filters"] == 5 and config["kernel_size"] == (3, 2) and config["strides"] == (2, 1)
    clone = SeparableConv2D.from_config({**config, "name": "sep_clone"})
    assert {**clone.get_config(), "name": config["name"]} == config
    assert layer.name.startswith("separable_conv2d")


def test_keras_defaults():
    config = SeparableConv2D(4, 3).get_config()
    assert config["strides"] == (1, 1) and config["padding"] == "valid" and config["depth_multiplier"] == 1
    assert config["dilation_rate"] == (1, 1) and config["activation"] == "linear" and config["use_bias"]
    assert config["depthwise_initializer"] == config["pointwise_initializer"] == "glorot_uniform"
    assert config["bias_initializer"] == "zeros"


def test_plan_counts_both_steps():
    model = Sequential([Input((8, 8, 3)), SeparableConv2D(4, 3, depth_multiplier=2, padding="same")])
    plan = model.plan(batch_size=2, measure=False)
    # depthwise 8*8*6 outputs of 9 taps, then 8*8*4 outputs of 6 inputs; 2 FLOPs a multiply-add
    assert plan.layers[0].forward_flops == 2 * (8 * 8 * 6 * 9 + 8 * 8 * 4 * 6)
    assert plan.layers[0].params == 3 * 3 * 3 * 2 + 6 * 4 + 4


def test_matches_keras(rng):
    keras = pytest.importorskip("keras")
    x = rng.normal(size=(2, 9, 8, 3)).astype(np.float32)
    for kwargs in ({"padding": "same", "strides": 2, "depth_multiplier": 2}, {"dilation_rate": 2}):
        ref = keras.layers.SeparableConv2D(4, 3, activation="relu", bias_initializer="ones", **kwargs)
        want = np.asarray(ref(x))
        layer = SeparableConv2D(4, 3, activation="relu", **kwargs)
        layer.build(x.shape[1:])
        layer.set_weights([np.asarray(w) for w in ref.get_weights()])
        np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-5)
