"""The core's graph model (_core.Model) directly: shared layers, frozen layers, the planner's
fusions and buffers, and a chain graph against Sequential. Gradients are checked against
central differences of float64 numpy models (SGD with learning rate 0 keeps the weights)."""

import numpy as np
import pytest
from conftest import np_activation, np_conv2d, np_dense, np_max_pool, numeric_grad, sample_indices

import cnnx
from cnnx import _core
from cnnx.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D


def graph(input_shape, spec, output=None):
    """spec: list of (layer, [input node ids]); node 0 is the input; returns the built core model."""
    g = _core.Model()
    g.add_input(list(input_shape))
    ids = [0]
    for layer, inputs in spec:
        ids.append(g.add_node(layer._core, inputs))
    g.set_output(ids[-1] if output is None else output)
    g.build()
    return g


def compile_sgd0(g, loss="categorical_crossentropy"):
    g.compile(cnnx.losses.get(loss)._core, cnnx.optimizers.SGD(learning_rate=0.0)._core)


def perturb(rng, layers):
    for layer in layers:
        layer.set_weights([w + rng.normal(scale=0.3, size=w.shape).astype(np.float32) for w in layer.get_weights()])


def test_layer_used_twice_shares_weights_and_sums_gradients(rng):
    cnnx.utils.set_random_seed(1)
    first, shared, head = Dense(5, activation="tanh"), Dense(5, activation="tanh"), Dense(3, activation="softmax")
    g = graph((4,), [(first, [0]), (shared, [1]), (shared, [2]), (head, [3])])
    assert len(g.layers) == 3 and g.node_count == 5
    compile_sgd0(g)
    perturb(rng, [first, shared, head])
    x = rng.normal(size=(6, 4)).astype(np.float32)
    labels = rng.integers(0, 3, size=6)
    y = np.eye(3, dtype=np.float32)[labels]
    g.train_step(x, y, np.arange(6))
    w = [a.astype(np.float64) for layer in (first, shared, head) for a in layer.get_weights()]

    def loss():
        h = np.tanh(np_dense(x.astype(np.float64), w[0], w[1]))
        h = np.tanh(np_dense(h, w[2], w[3]))
        h = np.tanh(np_dense(h, w[2], w[3]))
        p = np_activation("softmax", np_dense(h, w[4], w[5]))
        return float(-(y * np.log(p)).sum(axis=1).mean())

    grads = [gr for layer in (first, shared, head) for gr in layer._core.get_gradients()]
    for arr, got in zip(w, grads):
        idx = sample_indices(rng, arr.size, count=15)
        np.testing.assert_allclose(got.reshape(-1)[idx], numeric_grad(loss, arr, idx), rtol=2e-3, atol=1e-5)


def test_frozen_layer_gets_no_update_but_passes_the_gradient(rng):
    cnnx.utils.set_random_seed(2)
    a, frozen, head = Dense(6, activation="tanh"), Dense(6, activation="tanh"), Dense(2, activation="softmax")
    frozen._core.trainable = False
    g = graph((3,), [(a, [0]), (frozen, [1]), (head, [2])])
    plans = g.node_plans()
    assert [p["computes_weight_grads"] for p in plans[1:]] == [True, False, True]
    assert all(p["runs_backward"] for p in plans[1:])
    g.compile(cnnx.losses.get("categorical_crossentropy")._core, cnnx.optimizers.Adam(learning_rate=0.01)._core)
    before = [w.copy() for w in frozen.get_weights()]
    before_a = [w.copy() for w in a.get_weights()]
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, size=8)]
    for _ in range(3):
        g.train_step(x, y, np.arange(8))
    for w0, w1 in zip(before, frozen.get_weights()):
        assert np.array_equal(w0, w1)
    assert not np.array_equal(before_a[0], a.get_weights()[0])  # the gradient reached the layer before
    assert len(g.get_optimizer_slots()) == 4  # a and head: kernel + bias each; none for the frozen layer


def test_frozen_layer_before_everything_trainable_gets_no_backward():
    cnnx.utils.set_random_seed(3)
    frozen, head = Dense(4), Dense(2, activation="softmax")
    frozen._core.trainable = False
    g = graph((3,), [(frozen, [0]), (head, [1])])
    assert [p["runs_backward"] for p in g.node_plans()[1:]] == [False, True]


def test_frozen_batch_normalization_keeps_its_statistics(rng):
    cnnx.utils.set_random_seed(4)
    bn, head = BatchNormalization(), Dense(2, activation="softmax")
    bn.build((3,))
    bn._core.trainable = False
    g = graph((3,), [(bn, [0]), (Flatten(), [1]), (head, [2])])
    compile_sgd0(g)
    g.compile(cnnx.losses.get("categorical_crossentropy")._core, cnnx.optimizers.SGD(learning_rate=0.1)._core)
    before = [w.copy() for w in bn.get_weights()]
    x = rng.normal(loc=3.0, size=(16, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, size=16)]
    g.train_step(x, y, np.arange(16))
    for w0, w1 in zip(before, bn.get_weights()):
        assert np.array_equal(w0, w1)
    # Inference mode: the output is the moving-statistics normalisation of x (mean 0, var 1 at init).
    out = g.call(x, True)
    assert out.shape == (16, 2)


def test_recompile_applies_a_changed_trainable_flag(rng):
    cnnx.utils.set_random_seed(5)
    a, head = Dense(4, activation="tanh"), Dense(2, activation="softmax")
    g = graph((3,), [(a, [0]), (head, [1])])
    g.compile(cnnx.losses.get("categorical_crossentropy")._core, cnnx.optimizers.SGD(learning_rate=0.1)._core)
    a._core.trainable = False
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, size=8)]
    before = a.get_weights()[0].copy()
    g.train_step(x, y, np.arange(8))
    assert not np.array_equal(before, a.get_weights()[0])  # not recompiled: still trains (Keras)
    g.compile(cnnx.losses.get("categorical_crossentropy")._core, cnnx.optimizers.SGD(learning_rate=0.1)._core)
    before = a.get_weights()[0].copy()
    g.train_step(x, y, np.arange(8))
    assert np.array_equal(before, a.get_weights()[0])


def test_conv_pool_fusion_is_a_rule_and_needs_a_single_consumer():
    cnnx.utils.set_random_seed(6)
    conv, pool = Conv2D(4, 3, activation="relu"), MaxPooling2D(2)
    g = graph((8, 8, 2), [(conv, [0]), (pool, [1]), (Flatten(), [2]), (Dense(2, activation="softmax"), [3])])
    plans = g.node_plans()
    assert plans[1]["fused_with"] == pool.name and plans[2]["fused_with"] == conv.name
    assert plans[3]["fused_with"] == ""
    # A sigmoid conv cannot fuse (its derivative is not readable off the pooled output).
    g2 = graph(
        (8, 8, 2),
        [(Conv2D(4, 3, activation="sigmoid"), [0]), (MaxPooling2D(2), [1]), (Flatten(), [2]), (Dense(2), [3])],
    )
    assert g2.node_plans()[1]["fused_with"] == ""


def test_memory_plan_matches_what_the_core_allocates(rng):
    cnnx.utils.set_random_seed(7)
    layers = [
        Conv2D(8, 3, activation="relu"),
        MaxPooling2D(2),
        Conv2D(16, 3, activation="relu", padding="same"),
        Flatten(),
        Dense(10, activation="softmax"),
    ]
    g = graph((12, 12, 1), [(layer, [i]) for i, layer in enumerate(layers)])
    compile_sgd0(g)
    x = rng.normal(size=(20, 12, 12, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=20)]
    g.train_step(x, y, np.arange(20))
    plan = g.memory_plan(20)
    assert g.allocated_training_floats() == plan["training_activation_floats"] + plan["training_gradient_floats"]
    # Stored: the pooled output (5x5x8), the second conv (5x5x16), flatten (400), dense (10); the
    # first conv's output is never stored (fused with the pool).
    assert plan["training_activation_floats"] == 20 * (5 * 5 * 8 + 5 * 5 * 16 + 400 + 10)
    g.predict(x, 7)
    plan7 = g.memory_plan(7)
    assert g.allocated_inference_floats() == plan7["inference_activation_floats"]
    assert plan7["inference_activation_floats"] < plan7["inference_activation_floats_unshared"]


def test_chain_graph_trains_bit_identically_to_sequential(rng):
    def make():
        return [
            Conv2D(4, 3, activation="relu"),
            MaxPooling2D(2),
            Conv2D(6, 3, activation="relu"),
            Flatten(),
            Dense(5, activation="softmax"),
        ]

    cnnx.utils.set_random_seed(8)
    seq_layers = make()
    seq = cnnx.Sequential([cnnx.layers.Input((10, 10, 2)), *seq_layers])
    seq.compile(optimizer=cnnx.optimizers.Adam(learning_rate=0.01), loss="categorical_crossentropy")
    seq.build()
    cnnx.utils.set_random_seed(8)
    g_layers = make()
    for layer, src in zip(g_layers, seq_layers):
        layer.build(src.input_shape)
        layer.set_weights(src.get_weights())
    g = graph((10, 10, 2), [(layer, [i]) for i, layer in enumerate(g_layers)])
    g.compile(cnnx.losses.get("categorical_crossentropy")._core, cnnx.optimizers.Adam(learning_rate=0.01)._core)
    x = rng.normal(size=(32, 10, 10, 2)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, size=32)]
    for step in range(4):
        idx = np.arange(step * 8, step * 8 + 8)
        seq._core.train_step(x, y, idx)
        g.train_step(x, y, idx)
    for a, b in zip(seq_layers, g_layers):
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            assert np.array_equal(wa, wb)
    assert np.array_equal(seq.predict(x, verbose=0), g.predict(x, 32))


def test_forward_matches_numpy_through_the_graph(rng):
    cnnx.utils.set_random_seed(9)
    conv, pool, dense = Conv2D(3, 3, activation="relu"), MaxPooling2D(2), Dense(4)
    g = graph((9, 9, 2), [(conv, [0]), (pool, [1]), (Flatten(), [2]), (dense, [3])])
    x = rng.normal(size=(5, 9, 9, 2)).astype(np.float32)
    k, b = conv.get_weights()
    h = np_max_pool(np_activation("relu", np_conv2d(x.astype(np.float64), k, b)), (2, 2))
    want = np_dense(h.reshape(5, -1), *dense.get_weights())
    np.testing.assert_allclose(g.predict(x, 2), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g.call(x, False), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda g, d: g.add_node(d._core, [3]), "expected an earlier node"),
        (lambda g, d: g.add_node(d._core, []), "expected 1 input"),
        (lambda g, d: g.set_output(0), "expected the output to be a layer node"),
    ],
)
def test_graph_construction_errors(build, message):
    g = _core.Model()
    g.add_input([3])
    with pytest.raises((ValueError, IndexError), match=message):
        build(g, Dense(2))


def test_dead_branch_and_double_use_on_other_shapes_are_refused():
    g = _core.Model()
    g.add_input([3])
    d1, d2 = Dense(2), Dense(2)
    g.add_node(d1._core, [0])
    out = g.add_node(d2._core, [0])
    g.set_output(out)
    with pytest.raises(ValueError, match="does not lead to the model's output"):
        g.build()
    g = _core.Model()
    g.add_input([3])
    d = Dense(3)
    n1 = g.add_node(d._core, [0])
    n2 = g.add_node(Dense(4)._core, [n1])
    g.set_output(g.add_node(d._core, [n2]))
    with pytest.raises(ValueError, match="used twice needs the same input shapes"):
        g.build()


def test_python_threads_predict_together_with_identical_results(rng):
    import threading

    cnnx.utils.set_random_seed(10)
    layers = [Conv2D(6, 3, activation="relu"), MaxPooling2D(2), Flatten(), Dense(4, activation="softmax")]
    g = graph((11, 11, 3), [(layer, [i]) for i, layer in enumerate(layers)])
    x = rng.normal(size=(37, 11, 11, 3)).astype(np.float32)
    want = g.predict(x, 5)
    results, errors = {}, []

    def work(t):
        try:
            for r in range(5):
                results[(t, r)] = g.predict(x, 1 + (t + r) % 9)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for got in results.values():
        assert np.array_equal(got, want)


def test_residual_add_gradients_match_finite_differences(rng):
    """x -> conv_a (tanh) -> conv_b, add(conv_b, conv_a) -> flatten -> dense softmax: conv_a's
    output feeds two nodes, so its gradient is a sum (one direct, one through scratch)."""
    from cnnx.layers import Add

    cnnx.utils.set_random_seed(11)
    conv_a = Conv2D(3, 3, padding="same", activation="tanh")
    conv_b = Conv2D(3, 3, padding="same", activation="tanh")
    head = Dense(2, activation="softmax")
    g = graph((5, 5, 2), [(conv_a, [0]), (conv_b, [1]), (Add(), [2, 1]), (Flatten(), [3]), (head, [4])])
    compile_sgd0(g)
    perturb(rng, [conv_a, conv_b, head])
    x = rng.normal(size=(3, 5, 5, 2)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[[0, 1, 1]]
    g.train_step(x, y, np.arange(3))
    w = [a.astype(np.float64) for layer in (conv_a, conv_b, head) for a in layer.get_weights()]

    def loss():
        a = np.tanh(np_conv2d(x.astype(np.float64), w[0], w[1], (1, 1), "same"))
        b = np.tanh(np_conv2d(a, w[2], w[3], (1, 1), "same"))
        p = np_activation("softmax", np_dense((a + b).reshape(3, -1), w[4], w[5]))
        return float(-(y * np.log(p)).sum(axis=1).mean())

    grads = [gr for layer in (conv_a, conv_b, head) for gr in layer._core.get_gradients()]
    for arr, got in zip(w, grads):
        idx = sample_indices(rng, arr.size, count=15)
        np.testing.assert_allclose(got.reshape(-1)[idx], numeric_grad(loss, arr, idx), rtol=2e-3, atol=1e-5)


def test_concatenate_and_input_used_twice_gradients(rng):
    """concat(dense_a(x), x) -> dense head, and add(x, x)-style fan-out of the input itself."""
    from cnnx.layers import Concatenate

    cnnx.utils.set_random_seed(12)
    a, head = Dense(3, activation="tanh"), Dense(2, activation="softmax")
    g = graph((4,), [(a, [0]), (Concatenate(), [1, 0, 1]), (head, [2])])
    compile_sgd0(g)
    perturb(rng, [a, head])
    x = rng.normal(size=(5, 4)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, size=5)]
    g.train_step(x, y, np.arange(5))
    w = [v.astype(np.float64) for layer in (a, head) for v in layer.get_weights()]
    x64 = x.astype(np.float64)

    def loss():
        h = np.tanh(np_dense(x64, w[0], w[1]))
        p = np_activation("softmax", np_dense(np.concatenate([h, x64, h], axis=1), w[2], w[3]))
        return float(-(y * np.log(p)).sum(axis=1).mean())

    grads = [gr for layer in (a, head) for gr in layer._core.get_gradients()]
    for arr, got in zip(w, grads):
        idx = sample_indices(rng, arr.size, count=15)
        np.testing.assert_allclose(got.reshape(-1)[idx], numeric_grad(loss, arr, idx), rtol=2e-3, atol=1e-5)
    np.testing.assert_allclose(
        g.predict(x, 2),
        np_activation(
            "softmax",
            np_dense(
                np.concatenate([np.tanh(np_dense(x64, w[0], w[1])), x64, np.tanh(np_dense(x64, w[0], w[1]))], axis=1),
                w[2],
                w[3],
            ),
        ),
        rtol=1e-4,
        atol=1e-6,
    )


def test_relu_pool_rule_inside_a_residual_block_and_not_on_fan_out():
    from cnnx.layers import Add

    cnnx.utils.set_random_seed(13)
    c1 = Conv2D(4, 3, padding="same", activation="relu")
    c2 = Conv2D(4, 3, padding="same", activation="relu")
    pool = MaxPooling2D(2)
    # c1 feeds c2 and the add: no rule may fire on c1; c2 -> add; add -> pool (linear: no fusion).
    g = graph((8, 8, 2), [(c1, [0]), (c2, [1]), (Add(), [2, 1]), (pool, [3]), (Flatten(), [4]), (Dense(2), [5])])
    plans = g.node_plans()
    assert [p["fused_with"] for p in plans] == ["", "", "", "", "", "", ""]
    # A conv + pool inside a branch fuses.
    c3, p3 = Conv2D(4, 3, padding="same", activation="relu"), MaxPooling2D(2)
    c4 = Conv2D(4, 1, activation="relu")
    g2 = graph((8, 8, 2), [(c3, [0]), (p3, [1]), (c4, [2]), (Add(), [3, 2]), (Flatten(), [4]), (Dense(2), [5])])
    assert g2.node_plans()[1]["fused_with"] == p3.name


def test_inference_memory_is_reused_in_a_residual_chain(rng):
    from cnnx.layers import Add

    cnnx.utils.set_random_seed(14)
    spec, prev = [], 0
    for _ in range(4):  # four residual blocks of 8 channels at 16x16
        c = Conv2D(8, 3, padding="same", activation="relu")
        spec.append((c, [prev if prev else 0]))
        conv_id = len(spec)
        spec.append((Add(), [conv_id, prev]) if prev else (Conv2D(8, 1), [conv_id]))
        prev = len(spec)
    spec += [(Flatten(), [prev]), (Dense(2), [prev + 1])]
    g = graph((16, 16, 8), spec)
    plan = g.memory_plan(4)
    # At most three 16x16x8 tensors are alive at once (block input, conv output, sum).
    assert plan["inference_activation_floats"] <= 4 * (3 * 16 * 16 * 8 + 2048 + 2)
    assert plan["inference_activation_floats_unshared"] >= 4 * 8 * 16 * 16 * 8
    x = rng.normal(size=(4, 16, 16, 8)).astype(np.float32)
    np.testing.assert_allclose(g.predict(x, 4), g.call(x, False), rtol=0, atol=0)


def test_training_keeps_only_what_backward_reads(rng):
    """conv (linear) -> BN -> ReLU -> conv: BN's output is read by nobody's backward (ReLU's
    derivative comes from its own output, BN's from its input), so its buffer is reused; the
    gradients stay those of the plain chain."""
    from cnnx.layers import ReLU

    cnnx.utils.set_random_seed(15)
    layers = [
        Conv2D(4, 3, padding="same"),
        BatchNormalization(),
        ReLU(),
        Conv2D(4, 3, padding="same"),
        Flatten(),
        Dense(2, activation="softmax"),
    ]
    g = graph((6, 6, 2), [(layer, [i]) for i, layer in enumerate(layers)])
    per_sample = [6 * 6 * 4] * 4 + [144, 2]
    plan = g.memory_plan(3)
    assert plan["training_activation_floats"] < 3 * sum(per_sample)
    compile_sgd0(g)
    perturb(rng, [layers[0], layers[3], layers[5]])
    x = rng.normal(size=(3, 6, 6, 2)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[[0, 1, 0]]
    g.train_step(x, y, np.arange(3))
    assert g.allocated_training_floats() == plan["training_activation_floats"] + plan["training_gradient_floats"]
    w = [v.astype(np.float64) for v in layers[0].get_weights() + layers[3].get_weights() + layers[5].get_weights()]
    gamma, beta = (v.astype(np.float64) for v in layers[1].get_weights()[:2])

    def loss():
        h = np_conv2d(x.astype(np.float64), w[0], w[1], (1, 1), "same")
        mean, var = h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2))
        h = np.maximum((h - mean) / np.sqrt(var + 1e-3) * gamma + beta, 0.0)
        h = np_conv2d(h, w[2], w[3], (1, 1), "same")
        p = np_activation("softmax", np_dense(h.reshape(3, -1), w[4], w[5]))
        return float(-(y * np.log(p)).sum(axis=1).mean())

    grads = [*layers[0]._core.get_gradients(), *layers[3]._core.get_gradients(), *layers[5]._core.get_gradients()]
    for arr, got in zip(w, grads):
        idx = sample_indices(rng, arr.size, count=12)
        np.testing.assert_allclose(got.reshape(-1)[idx], numeric_grad(loss, arr, idx), rtol=5e-3, atol=2e-5)


def test_nested_sequential_used_twice_gradients_through_the_python_api(rng):
    """A Sequential block (two convolutions) called twice in a functional model: the inner
    layers are inlined into the outer graph at two places, with shared weights and summed
    gradients; the same gradients as a float64 numpy model."""
    cnnx.utils.set_random_seed(16)
    block = cnnx.Sequential(
        [Conv2D(2, 3, padding="same", activation="tanh"), Conv2D(2, 3, padding="same", activation="tanh")]
    )
    head = Dense(2, activation="softmax")
    inputs = cnnx.Input((5, 5, 2))
    outputs = head(Flatten()(block(block(inputs))))
    model = cnnx.Model(inputs, outputs)
    model.compile(optimizer=cnnx.optimizers.SGD(learning_rate=0.0), loss="categorical_crossentropy")
    perturb(rng, [*block.layers, head])
    x = rng.normal(size=(3, 5, 5, 2)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[[0, 1, 1]]
    model.train_on_batch(x, y)
    c1, c2 = block.layers
    w = [v.astype(np.float64) for layer in (c1, c2, head) for v in layer.get_weights()]

    def loss():
        h = x.astype(np.float64)
        for _ in range(2):
            h = np.tanh(np_conv2d(h, w[0], w[1], (1, 1), "same"))
            h = np.tanh(np_conv2d(h, w[2], w[3], (1, 1), "same"))
        p = np_activation("softmax", np_dense(h.reshape(3, -1), w[4], w[5]))
        return float(-(y * np.log(p)).sum(axis=1).mean())

    grads = [g for layer in (c1, c2, head) for g in layer._core.get_gradients()]
    for arr, got in zip(w, grads):
        idx = sample_indices(rng, arr.size, count=12)
        np.testing.assert_allclose(got.reshape(-1)[idx], numeric_grad(loss, arr, idx), rtol=3e-3, atol=2e-5)


def test_frozen_layer_in_the_middle_gradients_match_finite_differences(rng):
    """conv (trains) -> conv (frozen) -> dense (trains): the gradients of the trainable layers
    are exact through the frozen one, whose own gradients are not computed (left as they were)."""
    cnnx.utils.set_random_seed(17)
    first = Conv2D(3, 3, padding="same", activation="tanh")
    frozen = Conv2D(3, 3, padding="same", activation="tanh")
    head = Dense(2, activation="softmax")
    frozen.trainable = False
    g = graph((5, 5, 2), [(first, [0]), (frozen, [1]), (Flatten(), [2]), (head, [3])])
    frozen._core.trainable = False
    compile_sgd0(g)
    perturb(rng, [first, frozen, head])
    x = rng.normal(size=(3, 5, 5, 2)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[[1, 0, 1]]
    g.train_step(x, y, np.arange(3))
    assert all(not gr.any() for gr in frozen._core.get_gradients())  # never written
    w = [v.astype(np.float64) for layer in (first, frozen, head) for v in layer.get_weights()]

    def loss():
        h = np.tanh(np_conv2d(x.astype(np.float64), w[0], w[1], (1, 1), "same"))
        h = np.tanh(np_conv2d(h, w[2], w[3], (1, 1), "same"))
        p = np_activation("softmax", np_dense(h.reshape(3, -1), w[4], w[5]))
        return float(-(y * np.log(p)).sum(axis=1).mean())

    grads = [*first._core.get_gradients(), None, None, *head._core.get_gradients()]
    for arr, got in zip(w, grads):
        if got is None:
            continue
        idx = sample_indices(rng, arr.size, count=12)
        np.testing.assert_allclose(got.reshape(-1)[idx], numeric_grad(loss, arr, idx), rtol=3e-3, atol=2e-5)
