"""Keras files without Keras: cnnx -> .keras / .h5 / .weights.h5 -> cnnx for every layer class,
the save/load dispatch, and the refusals (corrupt zip, missing config.json, a layer class cnnx
does not have, truncated HDF5). Keras itself reading and writing these files is in
test_keras_files.py."""

from __future__ import annotations

import io
import json
import sys
import zipfile

import numpy as np
import pytest

import cnnx
from cnnx import layers
from cnnx.keras_format._layers import layer_classes

h5py = pytest.importorskip("h5py")

IMAGE = (6, 6, 3)

# One small model per layer class: (input shape, a function of the input KerasTensor).
_SINGLE = {
    "Conv2D": lambda: layers.Conv2D(4, 3, padding="same", activation="relu"),
    "DepthwiseConv2D": lambda: layers.DepthwiseConv2D(3, depth_multiplier=2),
    "SeparableConv2D": lambda: layers.SeparableConv2D(4, 3, depth_multiplier=2),
    "MaxPooling2D": lambda: layers.MaxPooling2D(),
    "AveragePooling2D": lambda: layers.AveragePooling2D(2, padding="same"),
    "GlobalAveragePooling2D": lambda: layers.GlobalAveragePooling2D(),
    "GlobalMaxPooling2D": lambda: layers.GlobalMaxPooling2D(keepdims=True),
    "Flatten": lambda: layers.Flatten(),
    "Dense": lambda: layers.Dense(5, activation="tanh", kernel_regularizer=cnnx.regularizers.L2(0.01)),
    "Dropout": lambda: layers.Dropout(0.5),
    "BatchNormalization": lambda: layers.BatchNormalization(momentum=0.9),
    "Activation": lambda: layers.Activation("sigmoid"),
    "ReLU": lambda: layers.ReLU(max_value=0.6, negative_slope=0.1, threshold=0.2),
    "LeakyReLU": lambda: layers.LeakyReLU(negative_slope=0.2),
    "ELU": lambda: layers.ELU(alpha=0.5),
    "Softmax": lambda: layers.Softmax(),
    "Rescaling": lambda: layers.Rescaling(0.5, offset=-0.25),
    "Reshape": lambda: layers.Reshape((12, 9)),
    "Resizing": lambda: layers.Resizing(4, 5),
    "RandomFlip": lambda: layers.RandomFlip("horizontal"),
    "RandomRotation": lambda: layers.RandomRotation(0.1),
    "RandomTranslation": lambda: layers.RandomTranslation(0.1, 0.2),
    "RandomZoom": lambda: layers.RandomZoom(0.1),
    "RandomContrast": lambda: layers.RandomContrast(0.2),
}
_MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")


def model_with(class_name: str) -> cnnx.Model:
    """A functional model using `class_name` once, with random weights (BatchNormalization's
    moving variance positive) so that a wrongly mapped weight shows in the predictions."""
    inputs = cnnx.Input(IMAGE)
    if class_name in _MERGES:
        branch = layers.Conv2D(3, 1, name=f"branch_{class_name.lower()}")(inputs)
        out = getattr(layers, class_name)()([inputs, branch])
    elif class_name == "InputLayer":
        out = layers.Conv2D(2, 1)(inputs)
    else:
        out = _SINGLE[class_name]()(inputs)
    model = cnnx.Model(inputs, out)
    rng = np.random.default_rng(sum(class_name.encode()))
    model.set_weights([np.abs(w) + 0.5 if "variance" in n else rng.normal(size=w.shape) for w, n in _named(model)])
    return model


def _named(model: cnnx.Model) -> list:
    return [(w, n) for layer in model._flat_layers() for w, n in zip(layer.get_weights(), layer._core.weight_names())]


def every_layer_class() -> list[str]:
    return layer_classes()


def test_every_layer_class_has_a_model():
    # so that a layer class added to cnnx cannot skip the round trips below
    assert set(every_layer_class()) == set(_SINGLE) | set(_MERGES) | {"InputLayer"}


def inputs(n: int = 4) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, *IMAGE)).astype(np.float32)


@pytest.mark.parametrize("class_name", every_layer_class())
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_round_trip_through_keras_files(tmp_path, class_name, suffix):
    model = model_with(class_name)
    path = tmp_path / f"m{suffix}"
    model.save(path)
    again = cnnx.models.load_model(path)
    assert [type(x).__name__ for x in again._flat_layers()] == [type(x).__name__ for x in model._flat_layers()]
    x = inputs()
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras_file_layout(tmp_path):
    model = model_with("BatchNormalization")
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        meta = json.loads(z.read("metadata.json"))
        config = json.loads(z.read("config.json"))
        blob = z.read("model.weights.h5")
    assert meta["keras_version"].startswith("3.")
    assert config["class_name"] == "Functional" and config["registered_name"] == "Functional"
    bn = config["config"]["layers"][1]
    assert bn["module"] == "keras.layers" and bn["class_name"] == "BatchNormalization"
    assert bn["config"]["dtype"] == {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": "float32"},
        "registered_name": None,
    }
    assert bn["config"]["gamma_initializer"]["class_name"] == "Ones"
    assert bn["build_config"] == {"input_shape": [None, *IMAGE]}
    with h5py.File(io.BytesIO(blob), "r") as h5:
        names = sorted(h5["layers/batch_normalization/vars"].keys())
        assert names == ["0", "1", "2", "3"]
        gamma, beta, mean, var = model.layers[1].get_weights()
        np.testing.assert_array_equal(h5["layers/batch_normalization/vars/3"][()], var)
        np.testing.assert_array_equal(h5["layers/batch_normalization/vars/0"][()], gamma)


def test_weights_h5_round_trip_and_layout(tmp_path):
    model = model_with("SeparableConv2D")
    model.save_weights(tmp_path / "w.weights.h5")
    with h5py.File(tmp_path / "w.weights.h5", "r") as h5:
        assert h5["layers/separable_conv2d/vars/1"].shape == (1, 1, 6, 4)  # the pointwise kernel
    other = model_with("SeparableConv2D")
    other.load_weights(tmp_path / "w.weights.h5")
    x = inputs()
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    other.load_weights(tmp_path / "w.weights.h5")  # and from a legacy or .keras file's weights:
    model.save(tmp_path / "m.h5")
    model.save(tmp_path / "m.keras")
    for name in ("m.h5", "m.keras"):
        third = model_with("SeparableConv2D")
        third.load_weights(tmp_path / name)
        np.testing.assert_array_equal(third.predict(x, verbose=0), model.predict(x, verbose=0))


def _compiled_sequential() -> cnnx.Sequential:
    model = cnnx.Sequential(
        [
            cnnx.Input((5, 5, 2)),
            layers.Conv2D(3, 3, activation="relu"),
            layers.BatchNormalization(),
            cnnx.Sequential([layers.Flatten(), layers.Dense(4)], name="head"),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 5, 5, 2)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)]
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return model


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "rmsprop_momentum", "adagrad", "adamw"])
def test_optimizer_state_round_trip(tmp_path, optimizer):
    model = _compiled_sequential()
    opt = {
        "adam": cnnx.optimizers.Adam(1e-3),
        "sgd_momentum": cnnx.optimizers.SGD(0.01, momentum=0.9),
        "rmsprop_momentum": cnnx.optimizers.RMSprop(1e-3, momentum=0.5),
        "adagrad": cnnx.optimizers.Adagrad(0.01),
        "adamw": cnnx.optimizers.AdamW(1e-3),
    }[optimizer]
    model.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 5, 5, 2)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)]
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.keras")
    again = cnnx.models.load_model(tmp_path / "m.keras")
    assert type(again.optimizer) is type(model.optimizer)
    assert again.optimizer.iterations == model.optimizer.iterations == 2
    _, slots_a, _ = model._core.snapshot()
    _, slots_b, _ = again._core.snapshot()
    assert len(slots_a) == len(slots_b) > 0
    for pa, pb in zip(slots_a, slots_b):
        for a, b in zip(pa, pb):
            np.testing.assert_array_equal(a, b)
    # and training on continues identically
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    again.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_nested_sequential_round_trip(tmp_path):
    model = _compiled_sequential()
    x = np.random.default_rng(3).normal(size=(4, 5, 5, 2)).astype(np.float32)
    for name in ("m.keras", "m.h5"):
        model.save(tmp_path / name)
        again = cnnx.models.load_model(tmp_path / name)
        assert again.compiled and again.loss.get_config() == model.loss.get_config()
        np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


# -- dispatch ------------------------------------------------------------------------------------
def test_save_suffixes(tmp_path):
    model = model_with("Dense")
    with pytest.raises(ValueError, match=r"Invalid filepath extension for saving.*Received: filepath=.*m\.bin"):
        model.save(tmp_path / "m.bin")
    with pytest.raises(ValueError, match=r"The filename must end in `\.weights\.h5`.*w\.h5"):
        model.save_weights(tmp_path / "w.h5")
    model.save(tmp_path / "m.cnnx")
    assert (tmp_path / "m.cnnx").read_bytes()[:4] != b"PK\x03\x04"
    model.save(tmp_path / "m.keras")
    assert (tmp_path / "m.keras").read_bytes()[:4] == b"PK\x03\x04"
    model.save(tmp_path / "m.hdf5")
    assert (tmp_path / "m.hdf5").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    # reading goes by content: a .keras file under another name is still read as one
    (tmp_path / "m.keras").rename(tmp_path / "renamed.cnnx")
    cnnx.models.load_model(tmp_path / "renamed.cnnx")


def test_atomic_write_keeps_no_temp_files(tmp_path):
    model = model_with("Dense")
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "w.weights.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras", "w.weights.h5"]


# -- refusals ---------------------------------------------------------------------------------------
def _keras_bytes(tmp_path) -> bytes:
    model_with("Dense").save(tmp_path / "good.keras")
    return (tmp_path / "good.keras").read_bytes()


def _rezip(blob: bytes, edit) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = edit(name, src.read(name))
            if data is not None:
                dst.writestr(name, data)
    return out.getvalue()


def test_corrupt_zip_is_refused(tmp_path):
    blob = _keras_bytes(tmp_path)
    bad = tmp_path / "bad.keras"
    bad.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"cannot load '.*bad\.keras': .*zip"):
        cnnx.models.load_model(bad)
    bad.write_bytes(blob[:4] + b"\x00" * 200)
    with pytest.raises(ValueError, match=r"cannot load '.*bad\.keras'"):
        cnnx.models.load_model(bad)


def test_missing_config_json_is_refused(tmp_path):
    bad = tmp_path / "noconfig.keras"
    bad.write_bytes(_rezip(_keras_bytes(tmp_path), lambda n, d: None if n == "config.json" else d))
    with pytest.raises(ValueError, match=r"noconfig\.keras.*no config\.json"):
        cnnx.models.load_model(bad)


def test_unknown_layer_class_is_named(tmp_path):
    def edit(name, data):
        if name != "config.json":
            return data
        config = json.loads(data)
        config["config"]["layers"][1]["class_name"] = "LSTM"
        return json.dumps(config)

    bad = tmp_path / "lstm.keras"
    bad.write_bytes(_rezip(_keras_bytes(tmp_path), edit))
    with pytest.raises(
        ValueError, match=r"lstm\.keras.*layer 'dense(_\d+)?' is a Keras LSTM layer, which cnnx does not have"
    ):
        cnnx.models.load_model(bad)


def test_unsupported_argument_is_named(tmp_path):
    def edit(name, data):
        if name != "config.json":
            return data
        config = json.loads(data)
        config["config"]["layers"][1]["config"]["kernel_constraint"] = {"class_name": "NonNeg", "config": {}}
        return json.dumps(config)

    bad = tmp_path / "constraint.keras"
    bad.write_bytes(_rezip(_keras_bytes(tmp_path), edit))
    with pytest.raises(ValueError, match=r"layer 'dense(_\d+)?' \(Dense\): cnnx does not support kernel_constraint"):
        cnnx.models.load_model(bad)


def test_truncated_h5_is_refused(tmp_path):
    model = model_with("Dense")
    model.save(tmp_path / "m.h5")
    model.save_weights(tmp_path / "w.weights.h5")
    for name, call in (("m.h5", cnnx.models.load_model), ("w.weights.h5", model.load_weights)):
        blob = (tmp_path / name).read_bytes()
        bad = tmp_path / f"cut-{name}"
        bad.write_bytes(blob[: len(blob) // 2])
        with pytest.raises(ValueError, match=rf"cannot load '.*cut-{name}': .*(HDF5|truncated)"):
            call(bad)


def test_weights_file_given_to_load_model(tmp_path):
    model = model_with("Dense")
    model.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match=r"weights only.*load_weights"):
        cnnx.models.load_model(tmp_path / "w.weights.h5")


def test_weights_of_another_model_are_refused(tmp_path):
    model_with("Dense").save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match=r"w\.weights\.h5.*layer 'conv2d"):
        model_with("Conv2D").load_weights(tmp_path / "w.weights.h5")


# -- Keras 2 (tf.keras) legacy files, written here as tf.keras 2.15 wrote them --------------------
def _keras2_layer(class_name, name, **config):
    return {"class_name": class_name, "config": {"name": name, "trainable": True, "dtype": "float32", **config}}


_GLOROT = {"class_name": "GlorotUniform", "config": {"seed": None}}
_ZEROS = {"class_name": "Zeros", "config": {}}


def _keras2_h5(path, config, weights: dict, training_config=None):
    """weights: layer name -> [(weight name, array)], in the file's layer order."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        if training_config is not None:
            f.attrs["training_config"] = json.dumps(training_config)
        root = f.create_group("model_weights")
        root.attrs["layer_names"] = np.array([n.encode() for n in weights])
        for lname, items in weights.items():
            g = root.create_group(lname)
            g.attrs["weight_names"] = np.array([f"{lname}/{w}:0".encode() for w, _ in items])
            for w, a in items:
                g.create_dataset(f"{lname}/{w}:0", data=a)


def test_keras2_sequential_h5(tmp_path):
    ref = cnnx.Sequential(
        [
            cnnx.Input(IMAGE),
            layers.Conv2D(4, 3),
            layers.BatchNormalization(),
            layers.LeakyReLU(0.3),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(5, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(5)
    ref.set_weights([np.abs(w) + 0.5 if i == 5 else rng.normal(size=w.shape) for i, w in enumerate(ref.get_weights())])
    conv, bn, dense = (ref.layers[i].get_weights() for i in (0, 1, 5))
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {
                        "batch_input_shape": [None, *IMAGE],
                        "dtype": "float32",
                        "sparse": False,
                        "ragged": False,
                        "name": "conv2d_input",
                    },
                },
                _keras2_layer(
                    "Conv2D",
                    "conv2d",
                    batch_input_shape=[None, *IMAGE],
                    filters=4,
                    kernel_size=[3, 3],
                    strides=[1, 1],
                    padding="valid",
                    data_format="channels_last",
                    dilation_rate=[1, 1],
                    groups=1,
                    activation="linear",
                    use_bias=True,
                    kernel_initializer=_GLOROT,
                    bias_initializer=_ZEROS,
                    kernel_regularizer=None,
                    bias_regularizer=None,
                    activity_regularizer=None,
                    kernel_constraint=None,
                    bias_constraint=None,
                ),  # fmt: skip
                _keras2_layer(
                    "BatchNormalization",
                    "batch_normalization",
                    axis=[3],
                    momentum=0.99,
                    epsilon=0.001,
                    center=True,
                    scale=True,
                    beta_initializer=_ZEROS,
                    gamma_initializer={"class_name": "Ones", "config": {}},
                    moving_mean_initializer=_ZEROS,
                    moving_variance_initializer={"class_name": "Ones", "config": {}},
                    beta_regularizer=None,
                    gamma_regularizer=None,
                    beta_constraint=None,
                    gamma_constraint=None,
                ),  # fmt: skip
                _keras2_layer("LeakyReLU", "leaky_re_lu", alpha=0.3),
                _keras2_layer(
                    "MaxPooling2D",
                    "max_pooling2d",
                    pool_size=[2, 2],
                    padding="valid",
                    strides=[2, 2],
                    data_format="channels_last",
                ),  # fmt: skip
                _keras2_layer("Flatten", "flatten", data_format="channels_last"),
                _keras2_layer(
                    "Dense",
                    "dense",
                    units=5,
                    activation="softmax",
                    use_bias=True,
                    kernel_initializer=_GLOROT,
                    bias_initializer=_ZEROS,
                    kernel_regularizer=None,
                    bias_regularizer=None,
                    activity_regularizer=None,
                    kernel_constraint=None,
                    bias_constraint=None,
                ),  # fmt: skip
            ],
        },
    }
    weights = {
        "conv2d": list(zip(["kernel", "bias"], conv)),
        "batch_normalization": list(zip(["gamma", "beta", "moving_mean", "moving_variance"], bn)),
        "leaky_re_lu": [],
        "max_pooling2d": [],
        "flatten": [],
        "dense": list(zip(["kernel", "bias"], dense)),
    }
    training = {
        "loss": "categorical_crossentropy",
        "metrics": [[{"class_name": "MeanMetricWrapper", "config": {"name": "accuracy", "dtype": "float32"}}]],
        "weighted_metrics": None,
        "loss_weights": None,
        "optimizer_config": {
            "class_name": "Adam",
            "config": {
                "name": "Adam",
                "learning_rate": 0.001,
                "decay": 0.0,
                "beta_1": 0.9,
                "beta_2": 0.999,
                "epsilon": 1e-07,
                "amsgrad": False,
                "is_legacy_optimizer": False,
            },
        },  # fmt: skip
    }
    _keras2_h5(tmp_path / "k2.h5", config, weights, training)
    model = cnnx.models.load_model(tmp_path / "k2.h5")
    assert model.compiled and model.layers[2].negative_slope == pytest.approx(0.3)
    x = inputs()
    np.testing.assert_array_equal(model.predict(x, verbose=0), ref.predict(x, verbose=0))
    fresh = cnnx.models.load_model(tmp_path / "k2.h5", compile=False)
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.load_weights(tmp_path / "k2.h5")  # a full-model file's weights, as Keras allows
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), ref.predict(x, verbose=0))


def test_keras2_functional_h5(tmp_path):
    inputs_ = cnnx.Input(IMAGE)
    conv = layers.Conv2D(3, 3, padding="same")
    out = layers.Dense(2)(layers.GlobalAveragePooling2D()(layers.Add()([inputs_, conv(inputs_)])))
    ref = cnnx.Model(inputs_, out)
    rng = np.random.default_rng(6)
    ref.set_weights([rng.normal(size=w.shape) for w in ref.get_weights()])

    def node(*names):
        return [[[n, 0, 0, {}] for n in names]]

    config = {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {
                        "batch_input_shape": [None, *IMAGE],
                        "dtype": "float32",
                        "sparse": False,
                        "ragged": False,
                        "name": "input_1",
                    },
                    "name": "input_1",
                    "inbound_nodes": [],
                },  # fmt: skip
                {
                    **_keras2_layer("Conv2D", "conv2d", filters=3, kernel_size=[3, 3], padding="same"),
                    "name": "conv2d",
                    "inbound_nodes": node("input_1"),
                },
                {**_keras2_layer("Add", "add"), "name": "add", "inbound_nodes": node("input_1", "conv2d")},
                {
                    **_keras2_layer("GlobalAveragePooling2D", "gap", data_format="channels_last", keepdims=False),
                    "name": "gap",
                    "inbound_nodes": node("add"),
                },
                {**_keras2_layer("Dense", "dense", units=2), "name": "dense", "inbound_nodes": node("gap")},
            ],
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["dense", 0, 0]],
        },
    }
    c, d = conv.get_weights(), ref.layers[-1].get_weights()
    _keras2_h5(
        tmp_path / "f2.h5",
        config,
        {"conv2d": list(zip(["kernel", "bias"], c)), "dense": list(zip(["kernel", "bias"], d))},
    )
    model = cnnx.models.load_model(tmp_path / "f2.h5")
    x = inputs()
    np.testing.assert_array_equal(model.predict(x, verbose=0), ref.predict(x, verbose=0))
    # a Keras 2 weights-only file (model.save_weights("w.h5") in tf.keras): load_weights by layer names
    with h5py.File(tmp_path / "f2.h5", "r") as src, h5py.File(tmp_path / "w2.h5", "w") as dst:
        src.copy(src["model_weights"], dst, name="tmp")
        for k in dst["tmp"]:
            dst.move(f"tmp/{k}", k)
        for k, v in src["model_weights"].attrs.items():
            dst.attrs[k] = v
        del dst["tmp"]
    fresh = cnnx.models.load_model(tmp_path / "f2.h5", compile=False)
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.load_weights(tmp_path / "w2.h5")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), ref.predict(x, verbose=0))


def test_keras_file_given_to_the_container_reader(tmp_path):
    model_with("Dense").save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match=r"m\.keras'.*Keras \.keras archive.*load_model") as info:
        cnnx.saving.read_file(tmp_path / "m.keras")
    assert "truncated" not in str(info.value)


def test_without_h5py_the_message_says_what_to_install(tmp_path, monkeypatch):
    model = model_with("Dense")
    model.save(tmp_path / "m.keras")
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(ImportError, match=r"m\.keras.*needs h5py: pip install 'cnnx\[h5\]'"):
        cnnx.models.load_model(tmp_path / "m.keras")
    with pytest.raises(ImportError, match=r"needs h5py"):
        model.save(tmp_path / "again.keras")
    model.save(tmp_path / "m.cnnx")  # cnnx's own format needs nothing


def test_float16_policy_is_refused(tmp_path):
    def edit(name, data):
        if name != "config.json":
            return data
        config = json.loads(data)
        config["config"]["layers"][1]["config"]["dtype"]["config"]["name"] = "mixed_float16"
        return json.dumps(config)

    bad = tmp_path / "half.keras"
    bad.write_bytes(_rezip(_keras_bytes(tmp_path), edit))
    with pytest.raises(
        ValueError, match=r"half\.keras.*layer 'dense(_\d+)?' \(Dense\) has dtype policy 'mixed_float16'"
    ):
        cnnx.models.load_model(bad)


def test_saving_into_a_missing_folder_names_the_file(tmp_path):
    """As Keras, no folder is made; the error names the file asked for, not a temp file."""
    model = cnnx.Sequential([cnnx.Input((4,)), cnnx.layers.Dense(2)])
    for name in ("m.keras", "m.weights.h5"):
        target = tmp_path / "missing" / name
        with pytest.raises(FileNotFoundError, match="no such directory") as info:
            model.save_weights(target) if name.endswith(".weights.h5") else model.save(target)
        assert info.value.filename == str(target) and ".tmp" not in str(info.value)
