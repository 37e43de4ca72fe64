"""Sequential end to end: the article's network, fit/evaluate/predict, History, determinism."""

import numpy as np
import pytest
from conftest import article_model

import cnnx
from cnnx import Sequential
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from cnnx.optimizers import SGD


@pytest.fixture(scope="module")
def mnist_small():
    (x_train, y_train), (x_test, y_test) = cnnx.datasets.mnist.load_data()
    x_train = x_train[:3000, ..., None].astype("float32") / 255
    x_test = x_test[:1000, ..., None].astype("float32") / 255
    return x_train, y_train[:3000], x_test, y_test[:1000]


def test_summary_matches_keras(capsys):
    model = article_model()
    model.summary()
    out = capsys.readouterr().out
    assert "conv2d" in out and "(None, 28, 28, 32)" in out and "(None, 3, 3, 128)" in out
    assert "│           320 │" in out
    # Keras: 320 + 18,496 + 73,856 + 115,300 + 1,010
    assert "Total params: 208,982 (816.34 KB)" in out
    assert model.count_params() == 208_982
    assert [layer.count_params() for layer in model.layers] == [320, 0, 18496, 0, 73856, 0, 0, 115300, 1010]


def test_input_shape_argument_and_add():
    a = article_model(input_layer=False)
    assert a.output_shape == (None, 10)
    b = Sequential()
    b.add(Conv2D(8, 3, input_shape=(10, 10, 3)))
    b.add(Flatten())
    b.add(Dense(2))
    assert b.output_shape == (None, 2)
    assert b.count_params() == 3 * 3 * 3 * 8 + 8 + 8 * 8 * 8 * 2 + 2


def test_lazy_build_from_data(rng):
    model = Sequential([Conv2D(4, 3), Flatten(), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = rng.normal(size=(5, 6, 6, 2)).astype(np.float32)
    model.fit(x, np.array([0, 1, 2, 1, 0]), epochs=1, verbose=0)
    assert model.input_shape == (None, 6, 6, 2)
    assert model.predict(x).shape == (5, 3)


def test_weights_in_keras_shapes():
    model = article_model()
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [
        (3, 3, 1, 32),
        (32,),
        (3, 3, 32, 64),
        (64,),
        (3, 3, 64, 128),
        (128,),
        (1152, 100),
        (100,),
        (100, 10),
        (10,),
    ]
    weights = model.get_weights()
    weights[0][:] = 0.5
    model.set_weights(weights)
    assert (model.layers[0].get_weights()[0] == 0.5).all()


def test_fit_trains_on_real_mnist(mnist_small, capsys):
    x_train, y_train, x_test, y_test = mnist_small
    cnnx.utils.set_random_seed(3)
    model = article_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x_train, cnnx.utils.to_categorical(y_train, 10), batch_size=32, epochs=3, validation_split=0.1, verbose=2
    )
    out = capsys.readouterr().out
    assert "Epoch 3/3" in out and "val_accuracy" in out
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 3
    assert history.history["loss"][2] < history.history["loss"][0]
    loss, acc = model.evaluate(x_test, cnnx.utils.to_categorical(y_test, 10), verbose=0)
    assert acc > 0.93, acc
    probs = model.predict(x_test[:5])
    assert probs.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # predict, predict_on_batch and evaluate agree with each other.
    np.testing.assert_allclose(model.predict_on_batch(x_test[:5]), probs, rtol=1e-5, atol=1e-6)
    manual_acc = (model.predict(x_test, batch_size=100).argmax(1) == y_test).mean()
    assert manual_acc == pytest.approx(acc)


def test_sparse_labels_uint8_input_and_sgd_object(mnist_small):
    x_train, y_train, _, _ = mnist_small
    raw = (x_train[:512] * 255).astype(np.uint8)  # uint8 accepted and converted, as in Keras
    model = Sequential(
        [
            Input((28, 28, 1)),
            Conv2D(8, 3, activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=SGD(learning_rate=0.01, momentum=0.9), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    history = model.fit(
        raw / 255.0, y_train[:512], batch_size=64, epochs=2, verbose=0, validation_data=(raw[:64] / 255.0, y_train[:64])
    )
    assert history.history["accuracy"][-1] > 0.5
    assert model.predict(raw[:3]).shape == (3, 10)


def test_train_on_batch_and_test_on_batch(rng):
    model = Sequential([Input((4, 4, 1)), Flatten(), Dense(3, activation="softmax")])
    model.compile(optimizer=cnnx.optimizers.Adam(0.05), loss="categorical_crossentropy", metrics=["accuracy"])
    x = rng.normal(size=(6, 4, 4, 1)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    first = model.train_on_batch(x, y)
    for _ in range(50):
        last = model.train_on_batch(x, y)
    assert isinstance(first, list) and len(first) == 2
    assert last[0] < first[0]
    assert model.test_on_batch(x, y, return_dict=True)["accuracy"] == 1.0
    assert model.optimizer.iterations == 51


def train_once(seed, x, y, threads=None):
    if threads:
        cnnx.set_num_threads(threads)
    cnnx.utils.set_random_seed(seed)
    model = article_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    return model.get_weights()


def test_same_seed_same_weights(mnist_small):
    x, y = mnist_small[0][:640], mnist_small[1][:640]
    a = train_once(11, x, y)
    b = train_once(11, x, y)
    c = train_once(12, x, y)
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a, c))


def test_thread_count_does_not_change_results(mnist_small):
    x, y = mnist_small[0][:320], mnist_small[1][:320]
    before = cnnx.get_num_threads()
    try:
        a = train_once(5, x, y, threads=1)
        b = train_once(5, x, y, threads=2)
    finally:
        cnnx.set_num_threads(before)
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)


def test_set_num_threads_roundtrip():
    before = cnnx.get_num_threads()
    cnnx.set_num_threads(1)
    assert cnnx.get_num_threads() == 1
    cnnx.set_num_threads(before)
    with pytest.raises(ValueError):
        cnnx.set_num_threads(0)
    with pytest.raises(TypeError):
        cnnx.set_num_threads("2")


def test_version():
    """One version, written in CMakeLists.txt: the wheel's metadata and the core agree."""
    import importlib.metadata
    import re
    from pathlib import Path

    assert isinstance(cnnx.__version__, str) and cnnx.__version__.count(".") == 2
    assert cnnx.__version__ == cnnx._core.__version__ == importlib.metadata.version("cnnx")
    cmake = Path(__file__).resolve().parents[1] / "CMakeLists.txt"
    if cmake.exists():  # running from a checkout
        assert re.search(r"project\(cnnx VERSION ([0-9.]+)", cmake.read_text()).group(1) == cnnx.__version__


def test_a_fused_conv_still_runs_alone(rng):
    """Inside the model a Conv2D runs fused with the MaxPooling2D after it; called on its own
    (inspection, feature maps) it still gives its plain output and gradient."""
    from conftest import np_activation, np_conv2d

    model = Sequential(
        [
            Input((8, 8, 2)),
            Conv2D(3, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = rng.normal(size=(4, 8, 8, 2)).astype(np.float32)
    model.fit(x, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    conv = model.layers[0]
    want = np_activation("relu", np_conv2d(x, *conv.get_weights(), (1, 1), "same"))
    np.testing.assert_allclose(conv(x), want, rtol=1e-4, atol=1e-5)
    y = conv(x, training=True)
    dy = rng.normal(size=y.shape).astype(np.float32)
    dx = conv._core.backward(x, y, dy)
    alone = Conv2D(3, 3, padding="same", activation="relu")
    alone.build((8, 8, 2))
    alone.set_weights(conv.get_weights())
    np.testing.assert_array_equal(dx, alone._core.backward(x, alone(x, training=True), dy))
    np.testing.assert_allclose(model.predict(x).sum(axis=1), 1.0, rtol=1e-5)
