"""cnnx.visualize: every plot writes a real PNG; the numbers behind the plots are checked against
the core run by hand (feature maps, channel contributions) and against numpy (confusion matrix)."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import np_conv2d

pytest.importorskip("matplotlib")

import cnnx  # noqa: E402
import cnnx.visualize as viz  # noqa: E402
from cnnx import Sequential  # noqa: E402
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EPS32 = float(np.finfo(np.float32).eps)


def check_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1024
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100


def digits_like(n, seed=0):
    """MNIST-like data: 28x28x1 in [0, 1]; class k is a bright bar at row band k (+ noise)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.random((n, 28, 28, 1), dtype=np.float32) * 0.3
    for i, k in enumerate(y):
        x[i, 4 + 5 * k : 8 + 5 * k, 4:24, 0] += 0.7
    return x, y


def small_model(padding="same", strides=1, dilation=1):
    return Sequential(
        [
            Input((28, 28, 1)),
            Conv2D(6, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Conv2D(10, 3, padding=padding, strides=strides, dilation_rate=dilation, activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(4, activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def trained():
    cnnx.utils.set_random_seed(3)
    x, y = digits_like(160)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=2, validation_split=0.25, verbose=0)
    return model, history, x, y


def manual_forward(model, x, upto):
    for layer in model.layers[: upto + 1]:
        x = layer(x, training=False)
    return x


# -- PNG files -------------------------------------------------------------------------------------
def test_every_function_writes_a_png(trained, tmp_path):
    model, history, x, y = trained
    from matplotlib.figure import Figure

    figs = {
        "history": viz.plot_history(history, path=tmp_path / "history.png"),
        "maps": viz.feature_maps(
            model, x[0], "conv2d" if model.layers[0].name == "conv2d" else 0, path=tmp_path / "maps.png"
        )[0],
        "dense": viz.feature_maps(model, x[0], -1, path=tmp_path / "dense.png")[0],
        "filters1": viz.filters(model, 0, path=tmp_path / "filters1.png"),
        "filters2": viz.filters(model, 2, path=tmp_path / "filters2.png"),
        "contrib": viz.channel_contributions(model, x[0], 2, 1, path=tmp_path / "contrib.png").figure,
        "confusion": viz.confusion_matrix(model, x, y, path=tmp_path / "confusion.png", normalize=True)[0],
        "wrong": viz.misclassified(model, x, y, path=tmp_path / "wrong.png")[0],
    }
    for name, fig in figs.items():
        assert isinstance(fig, Figure), name
        check_png(tmp_path / f"{name}.png")


def test_rgb_filters_and_nested_output_directory(tmp_path):
    cnnx.utils.set_random_seed(0)
    model = Sequential([Input((12, 12, 3)), Conv2D(5, 3, activation="relu"), Flatten(), Dense(2, activation="softmax")])
    viz.filters(model, "conv2d" if model.layers[0].name == "conv2d" else 0, path=tmp_path / "a" / "b" / "rgb.png")
    check_png(tmp_path / "a" / "b" / "rgb.png")


def test_plot_history_accepts_dict_and_fitted_model(trained, tmp_path):
    model, history, _, _ = trained
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    fig = viz.plot_history(history.history, path=tmp_path / "d.png")
    assert len(fig.axes) == 2  # loss, accuracy; train and validation share a panel
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    viz.plot_history(model)
    with pytest.raises(ValueError, match="empty"):
        viz.plot_history({})


def test_matplotlib_stays_optional():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import cnnx, cnnx.visualize as viz\n"
        "assert 'matplotlib' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "try:\n"
        "    viz.plot_history({'loss': [1.0]})\n"
        "except ImportError as e:\n"
        "    assert 'pip install cnnx[plot]' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- feature maps ----------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 5])
def test_feature_maps_equal_running_the_layers_by_hand(index):
    cnnx.utils.set_random_seed(1)
    model = small_model()
    x, _ = digits_like(2)
    fig, maps = viz.feature_maps(model, x[1], index)
    expected = manual_forward(model, x[1:2], index)[0]
    np.testing.assert_array_equal(maps, expected)
    if maps.ndim == 3:
        assert len([ax for ax in fig.axes if ax.images]) == maps.shape[-1]


def test_feature_maps_after_fit_match_predict(trained):
    # After fit the core fuses Conv2D with its MaxPooling2D; feature maps must still come out.
    model, _, x, _ = trained
    _, last = viz.feature_maps(model, x[5], len(model.layers) - 1)
    np.testing.assert_allclose(last, model.predict(x[5:6], verbose=0)[0], rtol=1e-5, atol=1e-6)
    _, conv = viz.feature_maps(model, x[5], 0, max_maps=3)
    pooled = model.layers[1](conv[None])[0]
    _, pooled_maps = viz.feature_maps(model, x[5], 1)
    np.testing.assert_allclose(pooled, pooled_maps, rtol=1e-6)
    assert conv.shape == (28, 28, 6) and conv.min() >= 0


def test_feature_maps_accepts_layer_object_and_2d_image(trained):
    model, _, x, _ = trained
    _, a = viz.feature_maps(model, x[0], model.layers[2])
    _, b = viz.feature_maps(model, x[0][..., 0], model.layers[2].name)
    np.testing.assert_array_equal(a, b)


def test_layer_lookup_errors(trained):
    model, _, x, _ = trained
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        viz.feature_maps(model, x[0], "nope")
    with pytest.raises(IndexError):
        viz.feature_maps(model, x[0], 17)
    with pytest.raises(ValueError, match=r"expected one image of shape \(28, 28, 1\)"):
        viz.feature_maps(model, x[:3], 0)
    with pytest.raises(TypeError, match="expected a Conv2D layer"):
        viz.filters(model, 1)
    with pytest.raises(IndexError, match="has 10 filters"):
        viz.channel_contributions(model, x[0], 2, 10)


# -- channel contributions -------------------------------------------------------------------------
def linear_copy(conv, input_shape):
    config = conv.get_config()
    config.update(name=None, activation=None)
    copy = Conv2D.from_config(config)
    copy.build(input_shape)
    copy.set_weights(conv.get_weights())
    return copy


@pytest.mark.parametrize("padding,strides,dilation", [("same", 1, 1), ("valid", 2, 1), ("same", 1, 2)])
@pytest.mark.parametrize("fit", [False, True])
def test_channel_contributions_sum_to_the_pre_activation(padding, strides, dilation, fit):
    cnnx.utils.set_random_seed(2)
    model = small_model(padding, strides, dilation)
    x, y = digits_like(64, seed=4)
    if fit:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    conv = model.layers[2]
    inputs = manual_forward(small_model_copy(model), x[7:8], 1) if fit else manual_forward(model, x[7:8], 1)
    reference = linear_copy(conv, inputs.shape[1:])(inputs)[0]

    for f in (0, 9):
        r = viz.channel_contributions(model, x[7], conv.name, f)
        assert r.partials.shape == (6, *reference.shape[:2])
        assert r.bias == pytest.approx(float(conv.get_weights()[1][f]), abs=0)
        # the partial convolutions plus the bias are the layer without its activation
        scale = np.abs(r.partials).sum(axis=0).max() + abs(r.bias)
        summed = r.partials.sum(axis=0, dtype=np.float64) + r.bias
        np.testing.assert_allclose(summed, reference[..., f], rtol=0, atol=8 * EPS32 * scale)
        np.testing.assert_allclose(r.pre_activation, reference[..., f], rtol=0, atol=8 * EPS32 * scale)
        # ReLU of that is the layer's actual output
        np.testing.assert_allclose(np.maximum(summed, 0), r.output, rtol=0, atol=8 * EPS32 * scale)
        # each partial map is input channel c alone convolved with kernel[:, :, c, f] (numpy, float64)
        kernel = conv.get_weights()[0]
        c = 3
        expected = np_conv2d(
            inputs[..., c : c + 1],
            kernel[:, :, c : c + 1, f : f + 1],
            None,
            (strides, strides),
            padding,
            (dilation, dilation),
        )[0, ..., 0]
        np.testing.assert_allclose(r.partials[c], expected, rtol=1e-5, atol=1e-6)


def small_model_copy(model):
    """An unfitted model with the same weights (its layers run one by one without fusion)."""
    config = model.get_config()
    copy = Sequential.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def test_channel_contributions_without_bias_and_on_the_first_layer():
    cnnx.utils.set_random_seed(5)
    model = Sequential(
        [Input((10, 10, 3)), Conv2D(4, 3, use_bias=False, activation="relu"), Flatten(), Dense(2, activation="softmax")]
    )
    x = np.random.default_rng(0).random((1, 10, 10, 3), dtype=np.float32)
    r = viz.channel_contributions(model, x[0], 0, 2, max_channels=2)
    assert r.bias == 0.0 and r.partials.shape == (3, 8, 8)
    expected = np_conv2d(x, model.layers[0].get_weights()[0])[0, ..., 2]
    np.testing.assert_allclose(r.partials.sum(axis=0), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r.output, np.maximum(expected, 0), rtol=1e-5, atol=1e-5)


def test_looking_does_not_disturb_seeded_initialisation(trained):
    model, _, x, _ = trained

    def fresh_kernel():
        cnnx.utils.set_random_seed(11)
        first = Conv2D(3, 3)
        first.build((5, 5, 1))
        second = Conv2D(3, 3)
        second.build((5, 5, 1))
        return second.get_weights()[0]

    before = fresh_kernel()
    cnnx.utils.set_random_seed(11)
    Conv2D(3, 3).build((5, 5, 1))
    viz.channel_contributions(model, x[0], 2, 0)
    viz.feature_maps(model, x[0], 3)
    second = Conv2D(3, 3)
    second.build((5, 5, 1))
    np.testing.assert_array_equal(second.get_weights()[0], before)


# -- predictions -----------------------------------------------------------------------------------
def test_confusion_matrix_counts_equal_numpy(trained):
    model, _, x, y = trained
    pred = model.predict(x, verbose=0).argmax(axis=1)
    expected = np.zeros((4, 4), dtype=np.int64)
    np.add.at(expected, (y, pred), 1)
    _, m = viz.confusion_matrix(model, x, y, class_names=["a", "b", "c", "d"])
    np.testing.assert_array_equal(m, expected)
    assert m.dtype.kind == "i" and m.sum() == len(x)
    _, m1 = viz.confusion_matrix(model, x, cnnx.utils.to_categorical(y, 4), normalize=True)
    np.testing.assert_array_equal(m1, expected)
    # a dataset of (x, y) batches
    batches = [(x[i : i + 50], y[i : i + 50]) for i in range(0, len(x), 50)]
    np.testing.assert_array_equal(viz.confusion_matrix(model, batches)[1], expected)
    with pytest.raises(ValueError, match="class_names"):
        viz.confusion_matrix(model, x, y, class_names=["a"])


def test_misclassified_shows_only_wrong_ones(trained, tmp_path):
    model, _, x, y = trained
    y_noisy = y.copy()
    y_noisy[::3] = (y_noisy[::3] + 1) % 4  # make sure there are mistakes
    probs = model.predict(x, verbose=0)
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_noisy)
    assert len(wrong) > 10
    fig, shown = viz.misclassified(model, x, y_noisy, class_names=list("wxyz"), max_images=10)
    assert len(shown) == 10 and set(shown) <= set(wrong)
    conf = probs[shown, pred[shown]]
    assert np.all(np.diff(conf) <= 0)  # most confident mistakes first
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == [f"{'wxyz'[y_noisy[i]]} -> {'wxyz'[pred[i]]} ({probs[i, pred[i]]:.0%})" for i in shown]
    _, every = viz.misclassified(model, x, y_noisy, max_images=1000)
    np.testing.assert_array_equal(np.sort(every), wrong)
    # labels equal to the predictions: nothing to show, still a PNG
    fig, none = viz.misclassified(model, x, pred, path=tmp_path / "none.png")
    assert len(none) == 0
    assert (tmp_path / "none.png").read_bytes()[:8] == PNG_SIGNATURE


def test_feature_maps_and_contributions_of_a_functional_model(tmp_path):
    """A graph's layer output (or input) comes from the model cut at that tensor."""
    from cnnx import layers as L

    cnnx.utils.set_random_seed(6)
    inputs = cnnx.Input((10, 10, 2))
    first = L.Conv2D(3, 3, padding="same", activation="relu", name="first")
    second = L.Conv2D(2, 3, padding="same", name="second")
    merged = L.Concatenate(name="merged")([second(first(inputs)), inputs])
    model = cnnx.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(merged)))
    x = np.random.default_rng(1).random((10, 10, 2), dtype=np.float32)
    _, maps = viz.feature_maps(model, x, "merged", path=tmp_path / "maps.png")
    hidden = first(x[None])
    np.testing.assert_allclose(maps, np.concatenate([second(hidden), x[None]], axis=-1)[0], rtol=1e-5, atol=1e-6)
    _, same = viz.feature_maps(model, x, 0)  # the InputLayer: the image itself
    np.testing.assert_array_equal(same, x)
    r = viz.channel_contributions(model, x, "second", 1)
    np.testing.assert_allclose(r.pre_activation, second(hidden)[0, ..., 1], rtol=1e-5, atol=1e-5)
    assert first._model_ref() is model  # the cut model did not take the layers away
