"""ONNX export: the file passes onnx.checker and onnxruntime computes what cnnx's predict does
(within 1e-5) for every layer type, at batch sizes 1 and 7, with random non-trivial weights."""

import os

import numpy as np
import pytest
from conftest import article_model, skip_interop_if_disabled

skip_interop_if_disabled()
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import cnnx  # noqa: E402
from cnnx import layers as L  # noqa: E402
from cnnx.onnx_export import DEFAULT_OPSET, OLDEST_OPSET  # noqa: E402


def randomize(model, seed=0):
    """Random weights for every layer; moving variances positive, all of moderate size so the
    outputs stay of order 1 and 1e-5 is a tight bound."""
    rng = np.random.default_rng(seed)
    for layer in model._flat_layers():
        names = layer._core.weight_names()
        if not names:
            continue
        new = []
        for name, w in zip(names, layer.get_weights()):
            if "variance" in name:
                new.append(rng.uniform(0.3, 2.0, w.shape))
            elif "kernel" in name:
                fan_in = max(1, w.size // w.shape[-1])
                new.append(rng.standard_normal(w.shape) / np.sqrt(fan_in))
            else:
                new.append(rng.standard_normal(w.shape) * 0.5)
        layer.set_weights(new)
    return model


def export_and_compare(model, tmp_path, batches=(1, 7), seed=1, name="m.onnx"):
    path = tmp_path / name
    model.export(str(path), format="onnx", verbose=False)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == DEFAULT_OPSET
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert isinstance(inp.shape[0], str), "the batch axis is dynamic"
    assert list(inp.shape[1:]) == list(model.input_shape[1:])
    rng = np.random.default_rng(seed)
    for n in batches:
        x = rng.standard_normal((n, *model.input_shape[1:])).astype(np.float32)
        got = session.run(None, {inp.name: x})[0]
        want = model.predict(x, verbose=0)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    return proto


def seq(shape, *layers):
    return randomize(cnnx.Sequential([cnnx.Input(shape), *layers]))


ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu"]

# One small model per layer type and variant: name -> builder.
CASES = {
    "conv2d_valid": lambda: seq((9, 8, 3), L.Conv2D(4, 3)),
    "conv2d_same_stride2": lambda: seq((9, 8, 3), L.Conv2D(5, (3, 2), strides=2, padding="same")),
    "conv2d_same_dilated": lambda: seq((10, 9, 2), L.Conv2D(3, 3, padding="same", dilation_rate=(2, 3))),
    "conv2d_valid_strided_no_bias": lambda: seq((11, 10, 3), L.Conv2D(4, 4, strides=(3, 2), use_bias=False)),
    **{f"conv2d_{a}": (lambda a=a: seq((6, 6, 2), L.Conv2D(4, 3, padding="same", activation=a))) for a in ACTIVATIONS},
    "depthwise_conv2d": lambda: seq((9, 9, 3), L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", strides=2)),
    "depthwise_conv2d_dilated": lambda: seq(
        (10, 10, 2), L.DepthwiseConv2D(3, dilation_rate=2, use_bias=False, activation="relu")
    ),
    "separable_conv2d": lambda: seq((9, 8, 3), L.SeparableConv2D(5, 3, depth_multiplier=2, padding="same")),
    "separable_conv2d_valid_tanh": lambda: seq(
        (9, 8, 3), L.SeparableConv2D(4, (3, 2), strides=2, activation="tanh", use_bias=False)
    ),
    "max_pooling2d": lambda: seq((8, 9, 3), L.MaxPooling2D(2)),
    "max_pooling2d_same": lambda: seq((9, 7, 2), L.MaxPooling2D(3, strides=2, padding="same")),
    "average_pooling2d": lambda: seq((8, 9, 3), L.AveragePooling2D((2, 3))),
    "average_pooling2d_same": lambda: seq((9, 7, 2), L.AveragePooling2D(3, strides=2, padding="same")),
    "global_average_pooling2d": lambda: seq((5, 6, 4), L.Conv2D(3, 2), L.GlobalAveragePooling2D()),
    "global_max_pooling2d": lambda: seq((5, 6, 4), L.GlobalMaxPooling2D()),
    "global_average_pooling2d_keepdims": lambda: seq(
        (5, 6, 4), L.Conv2D(3, 2), L.GlobalAveragePooling2D(keepdims=True), L.Conv2D(2, 1)
    ),
    "global_max_pooling2d_keepdims": lambda: seq((5, 6, 4), L.GlobalMaxPooling2D(keepdims=True)),
    "flatten": lambda: seq((4, 5, 3), L.Conv2D(2, 2), L.Flatten()),
    "reshape": lambda: seq((4, 6, 2), L.Conv2D(4, 1), L.Reshape((8, -1)), L.Dense(3)),
    "reshape_to_image": lambda: seq((48,), L.Reshape((4, 4, 3)), L.Conv2D(2, 3)),
    **{f"dense_{a}": (lambda a=a: seq((12,), L.Dense(5, activation=a))) for a in ACTIVATIONS},
    "dense_on_images": lambda: seq((4, 4, 3), L.Dense(5, use_bias=False), L.Conv2D(2, 3)),
    "batch_normalization_after_conv": lambda: seq((6, 6, 3), L.Conv2D(4, 3), L.BatchNormalization()),
    "batch_normalization_on_input": lambda: seq((6, 6, 3), L.BatchNormalization(epsilon=0.01)),
    "batch_normalization_no_center_scale": lambda: seq(
        (6, 6, 3), L.Conv2D(4, 3), L.BatchNormalization(center=False, scale=False)
    ),
    "batch_normalization_dense": lambda: seq((10,), L.Dense(6), L.BatchNormalization(scale=False)),
    "batch_normalization_after_relu_conv": lambda: seq(
        (6, 6, 3), L.Conv2D(4, 3, activation="relu"), L.BatchNormalization()
    ),
    "batch_normalization_after_depthwise": lambda: seq(
        (6, 6, 3), L.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False), L.BatchNormalization()
    ),
    "batch_normalization_after_separable": lambda: seq(
        (6, 6, 3), L.SeparableConv2D(4, 3), L.BatchNormalization(center=False), L.Conv2D(2, 1)
    ),
    **{f"activation_{a}": (lambda a=a: seq((5, 5, 2), L.Conv2D(3, 2), L.Activation(a))) for a in ACTIVATIONS},
    "relu": lambda: seq((5, 5, 2), L.Conv2D(3, 2), L.ReLU()),
    "relu_max_value": lambda: seq((5, 5, 2), L.Conv2D(3, 2), L.ReLU(max_value=0.5)),
    "relu_general": lambda: seq((5, 5, 2), L.ReLU(max_value=1.2, negative_slope=0.1, threshold=0.3)),
    "leaky_relu": lambda: seq((5, 5, 2), L.Conv2D(3, 2), L.LeakyReLU(negative_slope=0.15)),
    "elu": lambda: seq((5, 5, 2), L.Conv2D(3, 2), L.ELU(alpha=0.7)),
    "softmax_image": lambda: seq((5, 5, 2), L.Conv2D(3, 2), L.Softmax()),
    "softmax_flat": lambda: seq((7,), L.Softmax()),
    "rescaling": lambda: seq((5, 5, 2), L.Rescaling(1 / 255.0, offset=-0.5), L.Conv2D(2, 3)),
    "resizing_bilinear_up": lambda: seq((5, 7, 2), L.Conv2D(3, 1), L.Resizing(9, 11)),
    "resizing_bilinear_down": lambda: seq((13, 11, 2), L.Resizing(6, 4)),
    "resizing_nearest": lambda: seq((7, 6, 2), L.Resizing(5, 11, interpolation="nearest")),
    "resizing_nearest_ties": lambda: seq((6, 6, 2), L.Resizing(5, 3, interpolation="nearest")),
    "resizing_crop_to_aspect_ratio": lambda: seq(
        (12, 7, 2), L.Conv2D(2, 1), L.Resizing(5, 5, crop_to_aspect_ratio=True)
    ),
    "dropout": lambda: seq((6, 6, 2), L.Conv2D(3, 2), L.Dropout(0.5), L.Conv2D(2, 2)),
    "random_flip": lambda: seq((6, 6, 2), L.RandomFlip(), L.Conv2D(2, 2)),
    "random_rotation": lambda: seq((6, 6, 2), L.RandomRotation(0.2), L.Conv2D(2, 2)),
    "random_translation": lambda: seq((6, 6, 2), L.RandomTranslation(0.2, 0.1), L.Conv2D(2, 2)),
    "random_zoom": lambda: seq((6, 6, 2), L.RandomZoom(0.2), L.Conv2D(2, 2)),
    "random_contrast": lambda: seq((6, 6, 2), L.Conv2D(2, 2), L.RandomContrast(0.3)),
    "dropout_only": lambda: seq((6,), L.Dropout(0.3)),
}


def two_branches(merge, shape=(6, 6, 3)):
    """A merge of two conv branches (NCHW inside the graph) and, for a third input, the raw
    input sized to match (NHWC): the merge has to bring them into one layout."""
    inputs = cnnx.Input(shape)
    a = L.Conv2D(3, 3, padding="same", activation="relu")(inputs)
    b = L.Conv2D(3, 1)(inputs)
    return inputs, a, b


def merge_case(make, third=False, **kwargs):
    def build():
        inputs, a, b = two_branches(make)
        xs = [a, b, inputs] if third else [a, b]
        out = make(**kwargs)(xs)
        out = L.Dense(2)(L.Flatten()(out))
        return randomize(cnnx.Model(inputs, out))

    return build


for _name, _cls in {
    "add": L.Add,
    "subtract": L.Subtract,
    "multiply": L.Multiply,
    "average": L.Average,
    "maximum": L.Maximum,
    "minimum": L.Minimum,
}.items():
    CASES[f"merge_{_name}"] = merge_case(_cls)
    if _name != "subtract":
        CASES[f"merge_{_name}_three_layouts"] = merge_case(_cls, third=True)
CASES["concatenate_channels"] = merge_case(L.Concatenate)
CASES["concatenate_height_three"] = merge_case(L.Concatenate, third=True, axis=1)
CASES["concatenate_width"] = merge_case(L.Concatenate, axis=2)


def _concatenate_flat():
    inputs = cnnx.Input((6,))
    out = L.Concatenate()([L.Dense(3)(inputs), inputs, L.Dense(2, activation="tanh")(inputs)])
    return randomize(cnnx.Model(inputs, out))


def _nested():
    block = cnnx.Sequential([L.Conv2D(4, 3, padding="same"), L.BatchNormalization(), L.ReLU()], name="block")
    augment = cnnx.Sequential([L.RandomFlip(), L.RandomZoom(0.1)], name="augment")
    inner = cnnx.Sequential([cnnx.Input((8, 8, 3)), augment, block, L.MaxPooling2D()], name="inner")
    inputs = cnnx.Input((8, 8, 3))
    out = L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(inner(inputs)))
    return randomize(cnnx.Model(inputs, out))


def _shared_layer():
    inputs = cnnx.Input((6, 6, 4))
    conv = L.Conv2D(4, 3, padding="same")
    out = L.Add()([conv(inputs), conv(conv(inputs))])
    return randomize(cnnx.Model(inputs, L.Flatten()(out)))


def _conv_read_twice():
    """A convolution whose output feeds a BatchNormalization and another layer: no fold."""
    inputs = cnnx.Input((6, 6, 3))
    x = L.Conv2D(4, 3)(inputs)
    out = L.Concatenate()([L.BatchNormalization()(x), x])
    return randomize(cnnx.Model(inputs, out))


CASES["batch_normalization_conv_read_twice"] = _conv_read_twice
CASES["concatenate_flat"] = _concatenate_flat
CASES["nested_models"] = _nested
CASES["shared_layer"] = _shared_layer


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_matches_onnxruntime(case, tmp_path):
    export_and_compare(CASES[case](), tmp_path)


def test_every_cnnx_layer_class_has_a_case():
    covered = set()
    for build in CASES.values():
        covered |= {type(layer).__name__ for layer in build()._flat_layers()}
    exported = {name for name in L.__all__ if isinstance(getattr(L, name), type)} - {"Layer", "InputLayer"}
    assert exported <= covered, f"no ONNX test for {sorted(exported - covered)}"


def test_article_mnist_network(tmp_path):
    model = randomize(article_model())
    proto = export_and_compare(model, tmp_path)
    ops = [node.op_type for node in proto.graph.node]
    # one Transpose to NCHW after the input and one back before Flatten
    assert ops.count("Transpose") == 2
    assert ops.index("Transpose", 1) == ops.index("Flatten") - 1
    assert proto.graph.input[0].name == model.input.name  # Keras: the input layer's name
    assert proto.graph.output[0].name == "output_0"
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim[1:]] == [10]


def test_article_network_without_input_layer(tmp_path):
    model = article_model(input_layer=False)
    model.build((None, 28, 28, 1))
    export_and_compare(randomize(model), tmp_path, batches=(3,))


def resnet_block_model():
    inputs = cnnx.Input((12, 12, 3))
    x = L.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    for filters, stride in ((8, 1), (16, 2)):
        shortcut = x
        y = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        y = L.BatchNormalization()(y)
        y = L.ReLU()(y)
        y = L.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        y = L.BatchNormalization()(y)
        if stride != 1 or filters != shortcut.shape[-1]:
            shortcut = L.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
            shortcut = L.BatchNormalization()(shortcut)
        x = L.ReLU()(L.Add()([y, shortcut]))
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dropout(0.3)(x)
    return randomize(cnnx.Model(inputs, L.Dense(5, activation="softmax")(x)))


def test_small_resnet(tmp_path):
    proto = export_and_compare(resnet_block_model(), tmp_path)
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("Transpose") == 1  # global pooling reads NCHW directly: no way back needed
    # every BatchNormalization follows a convolution: folded into its kernel and bias
    assert ops.count("Conv") == 6 and not {"Sub", "Mul"} & set(ops)
    assert "Dropout" not in ops


def test_trained_model_with_batch_statistics(tmp_path, rng):
    """After fit the moving statistics differ from the batch's: the export must use them."""
    model = cnnx.Sequential(
        [
            cnnx.Input((6, 6, 1)),
            L.Conv2D(4, 3),
            L.BatchNormalization(momentum=0.5),
            L.Dropout(0.5),
            L.Flatten(),
            L.Dense(3),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = rng.standard_normal((32, 6, 6, 1)).astype(np.float32) * 3 + 1
    model.fit(x, rng.integers(0, 3, 32), epochs=2, batch_size=8, verbose=0)
    export_and_compare(model, tmp_path)


def test_format_and_arguments(tmp_path, capsys):
    model = seq((4,), L.Dense(2))
    with pytest.raises(ValueError, match="format='onnx'.*tf_saved_model"):
        model.export(str(tmp_path / "m"))  # Keras' default format
    with pytest.raises(ValueError, match="format='onnx'"):
        model.export(str(tmp_path / "m"), format="openvino")
    with pytest.raises(TypeError, match="unrecognized keyword arguments"):
        model.export(str(tmp_path / "m.onnx"), format="onnx", bogus=1)
    with pytest.raises(ValueError, match="opset_version"):
        model.export(str(tmp_path / "m.onnx"), format="onnx", opset_version=11)
    assert not os.listdir(tmp_path)
    model.export(tmp_path / "m.onnx", format="onnx")  # a pathlib.Path; verbose by default, as Keras
    assert "Saved artifact at" in capsys.readouterr().out
    model.export(str(tmp_path / "q.onnx"), format="onnx", verbose=False, opset_version=DEFAULT_OPSET + 1)
    assert capsys.readouterr().out == ""
    assert onnx.load(str(tmp_path / "q.onnx")).opset_import[0].version == DEFAULT_OPSET + 1
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "q.onnx"]  # no temporary left behind


def test_input_signature(tmp_path):
    model = seq((3, 3, 2), L.Conv2D(2, 2))
    model.export(str(tmp_path / "a.onnx"), format="onnx", verbose=False, input_signature=[cnnx.Input((3, 3, 2))])
    dim = onnx.load(str(tmp_path / "a.onnx")).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param and not dim.dim_value
    spec = np.zeros((4, 3, 3, 2), np.float32)  # anything with a shape: a fixed batch size
    model.export(str(tmp_path / "b.onnx"), format="onnx", verbose=False, input_signature=[spec])
    assert onnx.load(str(tmp_path / "b.onnx")).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    with pytest.raises(ValueError, match="input_signature"):
        model.export(str(tmp_path / "c.onnx"), format="onnx", verbose=False, input_signature=[cnnx.Input((4, 4, 2))])


def test_unbuilt_model_is_refused(tmp_path):
    model = cnnx.Sequential([L.Dense(2)])
    with pytest.raises(ValueError, match="not built"):
        model.export(str(tmp_path / "m.onnx"), format="onnx")
    assert not os.listdir(tmp_path)


def test_unknown_layer_is_named_and_nothing_written(tmp_path, monkeypatch):
    from cnnx.onnx_export import _layers

    model = seq((6, 6, 2), L.Conv2D(2, 3, name="odd_one"), L.Flatten())
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    monkeypatch.delitem(_layers._CONVERTERS, "Conv2D")
    with pytest.raises(ValueError, match="layer 'odd_one' of class Conv2D"):
        model.export(str(target), format="onnx")
    assert target.read_bytes() == b"old"  # the old file is untouched
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    from cnnx import onnx_export

    model = seq((4,), L.Dense(2))
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(onnx_export.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        model.export(str(target), format="onnx", verbose=False)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_opset_17(tmp_path):
    """The oldest opset offered: global pooling then takes its axes as an attribute."""
    model = resnet_block_model()
    path = tmp_path / "m17.onnx"
    model.export(str(path), format="onnx", verbose=False, opset_version=OLDEST_OPSET)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).standard_normal((7, 12, 12, 3)).astype(np.float32)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_too_large_for_one_file(tmp_path, monkeypatch):
    import cnnx.onnx_export as onnx_export

    model = seq((4,), L.Dense(3))
    monkeypatch.setattr(onnx_export, "_MAX_WEIGHT_BYTES", 59)  # 15 parameters: 60 bytes
    with pytest.raises(ValueError, match="15 parameters.*at most 59 bytes"):
        model.export(str(tmp_path / "m.onnx"), format="onnx")
    assert not os.listdir(tmp_path)
