"""plan(): FLOPs and parameters against hand-computed values for the article's network, and a
time estimate that matches a measured epoch."""

import time

import numpy as np
import pytest
from conftest import UNDER_ASAN, article_model

import cnnx
from cnnx import Sequential
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from cnnx.planning import plan


def test_counts_match_hand_computation():
    p = plan(article_model(), batch_size=64, measure=False)
    convs = [layer for layer in p.layers if layer.kind == "Conv2D"]
    assert [layer.forward_flops for layer in convs] == [
        28 * 28 * 32 * 9 * 1 * 2,
        14 * 14 * 64 * 9 * 32 * 2,
        7 * 7 * 128 * 9 * 64 * 2,
    ]
    dense = [layer for layer in p.layers if layer.kind == "Dense"]
    assert [layer.forward_flops for layer in dense] == [1152 * 100 * 2, 100 * 10 * 2]
    assert p.params == 208_982 == sum(layer.params for layer in p.layers)
    assert [layer.output_shape for layer in convs] == [(None, 28, 28, 32), (None, 14, 14, 64), (None, 7, 7, 128)]
    assert p.layers[0].activation_bytes == 0  # fused with its pooling: never a whole-batch buffer
    assert p.layers[1].activation_bytes == 64 * 14 * 14 * 32 * 4
    assert [layer.forward_flops for layer in p.layers if layer.kind == "Flatten"] == [0]
    # training: first conv forward + dW only, every other weighted layer three passes
    assert p.training_flops == (
        2 * convs[0].forward_flops
        + 3 * (convs[1].forward_flops + convs[2].forward_flops)
        + 3 * sum(layer.forward_flops for layer in dense)
        + 2 * sum(layer.forward_flops for layer in p.layers if layer.kind == "MaxPooling2D")
    )
    text = str(p)
    assert "conv2d" in text and "MFLOP" in text and "Total params: 208,982" in text


def test_other_image_size_without_touching_the_model():
    model = Sequential([Input((28, 28, 3)), Conv2D(8, 3), MaxPooling2D(2), Flatten(), Dense(2, activation="softmax")])
    before = [w.copy() for w in model.get_weights()]
    p = plan(model, batch_size=4, input_shape=(250, 250, 3), measure=True, steps=2)
    assert p.layers[0].output_shape == (None, 248, 248, 8)
    assert p.layers[0].forward_flops == 248 * 248 * 8 * 27 * 2
    assert p.layers[-1].params == 124 * 124 * 8 * 2 + 2
    assert p.seconds_per_step > 0 and p.memory_bytes > 4 * 124 * 124 * 8 * 4
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(UNDER_ASAN, reason="AddressSanitizer slows some kernels far more than others")
def test_epoch_estimate_within_2x_of_a_measured_epoch():
    (x, y), _ = cnnx.datasets.mnist.load_data()
    x = x[:5000, ..., None].astype("float32") / 255
    y = cnnx.utils.to_categorical(y[:5000], 10)
    model = article_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

    def estimate_and_measure():
        estimate = plan(model, batch_size=64, steps=10).epoch_seconds(5000)
        start = time.perf_counter()
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        return estimate, time.perf_counter() - start

    # A busy shared machine can slow either side for a moment: a second pair of measurements
    # decides, and the bound itself stays 2x.
    estimate, measured = estimate_and_measure()
    if not 0.5 * measured <= estimate <= 2.0 * measured:
        estimate, measured = estimate_and_measure()
    assert 0.5 * measured <= estimate <= 2.0 * measured, (estimate, measured)


def test_errors():
    with pytest.raises(ValueError, match="input shape is unknown"):
        plan(Sequential([Dense(2)]), measure=False)
    with pytest.raises(ValueError, match="batch_size"):
        plan(article_model(), batch_size=0)
    with pytest.raises(TypeError, match="expected a cnnx model"):
        plan("model")


def test_model_plan_and_utils_plan():
    model = article_model()
    a = model.plan(batch_size=16, measure=False)
    b = cnnx.utils.plan(model, batch_size=16, measure=False)
    assert [layer.forward_flops for layer in a.layers] == [layer.forward_flops for layer in b.layers]


def test_workspaces_and_memory_are_the_cores_allocations():
    model = article_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    r = np.random.default_rng(0)
    x = r.random((24, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[r.integers(0, 10, 24)]
    model.train_on_batch(x, y)
    p = plan(model, batch_size=24, measure=False)
    held = model._core.layer_plans(24)
    assert [layer.workspace_bytes for layer in p.layers] == [4 * h["allocated_workspace_floats"] for h in held[1:]]
    assert 4 * (p.activation_floats + p.gradient_floats) == 4 * model._core.allocated_training_floats()
    conv = p.layers[0]
    assert conv.workspace_bytes > 0 and p.layers[1].workspace_bytes == 24 * 14 * 14 * 32 * 4  # pool argmax
    assert p.memory_bytes > sum(layer.workspace_bytes for layer in p.layers) + 4 * 4 * p.params


def test_conv_algorithms_come_from_the_core():
    from cnnx import _core

    p = plan(article_model(), batch_size=64, measure=False)
    convs = [layer for layer in p.layers if layer.kind == "Conv2D"]
    fast = _core.get_isa() == "avx512"
    # conv1's kernel rows are 3 floats: im2col; conv2 and conv3 over several chunks: implicit on AVX-512
    assert [c.algorithm for c in convs] == ["im2col_gemm"] + ["implicit_gemm" if fast else "im2col_gemm"] * 2
    assert convs[1].core_plan["isa"] == _core.get_isa() and convs[1].core_plan["chunks"] == 32
    assert [layer.algorithm for layer in p.layers if layer.kind != "Conv2D"] == [""] * (len(p.layers) - 3)
    single = plan(article_model(), batch_size=1, measure=False)
    assert [layer.core_plan["single_chunk"] for layer in single.layers if layer.kind == "Conv2D"] == [True] * 3
    assert "implicit_gemm" in str(p) if fast else "im2col_gemm" in str(p)


def test_frozen_layer_has_no_weight_gradient_flops():
    model = article_model()
    model.build()
    model.layers[2].trainable = False  # conv2d_1
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    p = plan(model, batch_size=8, measure=False)
    conv = p.layers[2]
    assert not conv.weight_grads and conv.input_grads and conv.core_plan["weight_grad"] == "none"
    assert p.layers[0].weight_grads and not p.layers[0].input_grads


def test_any_model_with_a_core_graph():
    """A graph built on a plain core Model (a layer used at two nodes) plans like any model:
    shared weights counted once, each node its own workspace, and another input size on a copy."""
    from cnnx import _core

    first = Conv2D(8, 3, padding="same", activation="relu")
    shared = Conv2D(8, 3, padding="same", activation="relu")
    pool, flat, dense = MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")

    class Graph:
        def __init__(self):
            self._core = _core.Model()
            self.layers = [first, shared, pool, flat, dense]
            node = self._core.add_input([12, 12, 3])
            for layer in [first, shared, shared, pool, flat, dense]:
                node = self._core.add_node(layer._core, [node])
            self._core.set_output(node)
            self._core.build()

    graph = Graph()
    p = plan(graph, batch_size=4, measure=True, steps=1)
    assert [layer.name for layer in p.layers] == [
        first.name,
        shared.name,
        shared.name,
        pool.name,
        flat.name,
        dense.name,
    ]
    assert [layer.params for layer in p.layers] == [224, 584, 0, 0, 0, 6 * 6 * 8 * 3 + 3]
    assert p.params == graph._core.layers[0].count_params() + 584 + 6 * 6 * 8 * 3 + 3
    assert p.layers[1].activation_bytes > 0 and p.layers[2].activation_bytes == 0  # the second use is fused
    assert p.layers[1].forward_flops == p.layers[2].forward_flops == 12 * 12 * 8 * 9 * 8 * 2
    assert p.seconds_per_step > 0
    bigger = plan(graph, batch_size=4, input_shape=(20, 20, 3), measure=False)
    assert bigger.layers[-1].params == 10 * 10 * 8 * 3 + 3 and bigger.input_shape == (20, 20, 3)
    assert graph._core.input_shape == [12, 12, 3]
    with pytest.raises(ValueError, match="build the model first"):
        unbuilt = _core.Model()
        plan(type("M", (), {"_core": unbuilt, "layers": []})(), measure=False)


def test_plan_of_a_graph_model():
    from cnnx import layers as L

    inputs = cnnx.Input((16, 16, 3))
    shared = L.Conv2D(3, 3, padding="same", activation="relu", name="shared")
    x = L.Add()([shared(shared(inputs)), inputs])
    x = L.MaxPooling2D(2)(L.Conv2D(4, 3, padding="same", activation="relu", name="before_pool")(x))
    model = cnnx.Model(inputs, L.Dense(2, activation="softmax")(L.Flatten()(x)))
    p = model.plan(batch_size=8, measure=True, steps=1)
    assert [(row.name, row.kind) for row in p.layers][:3] == [
        ("shared", "Conv2D"),
        ("shared", "Conv2D"),
        (p.layers[2].name, "Add"),
    ]
    assert p.params == model.count_params()  # the shared layer counted once
    assert p.layers[0].forward_flops == p.layers[1].forward_flops == 2 * 16 * 16 * 3 * 9 * 3
    conv = next(row for row in p.layers if row.name == "before_pool")
    plans = {n["layer"]: n for n in model._core.node_plans()}
    assert (conv.activation_bytes == 0) == (plans["before_pool"]["fused_with"] != "")
    assert p.seconds_per_step > 0
    bigger = model.plan(batch_size=8, input_shape=(32, 32, 3), measure=False)
    assert bigger.layers[0].output_shape == (None, 32, 32, 3) and model.input_shape == (None, 16, 16, 3)
