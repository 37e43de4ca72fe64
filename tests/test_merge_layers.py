"""Merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate): forward
against numpy, backward against finite differences of a float64 reference (through the core's
forward_inputs / backward_inputs), inputs that need no gradient, Keras' shape rules and
messages, configs, the functional forms, and results independent of the thread count."""

import numpy as np
import pytest
from conftest import numeric_grad, sample_indices

import cnnx
from cnnx import saving
from cnnx.layers import (
    Add,
    Average,
    Concatenate,
    Layer,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    maximum,
    minimum,
    multiply,
    subtract,
)

REFERENCES = {
    Add: lambda xs: sum(xs[1:], xs[0]),
    Subtract: lambda xs: xs[0] - xs[1],
    Multiply: lambda xs: np.prod(np.stack(xs), axis=0),
    Average: lambda xs: sum(xs[1:], xs[0]) / len(xs),
    Maximum: lambda xs: np.maximum.reduce(xs),
    Minimum: lambda xs: np.minimum.reduce(xs),
}
FUNCTIONS = {
    Add: add,
    Subtract: subtract,
    Multiply: multiply,
    Average: average,
    Maximum: maximum,
    Minimum: minimum,
    Concatenate: concatenate,
}
SHAPES = [(1, 5, 7, 17), (3, 4, 4, 8), (2, 5), (3, 3, 17)]
CASES = [(cls, k) for cls in REFERENCES for k in (2, 3) if not (cls is Subtract and k == 3)]


def separated_inputs(rng, k, shape):
    """k arrays whose values differ by at least 0.1 at every position (no max/min ties within
    finite-difference reach), in a random order per element."""
    ranks = np.argsort(rng.random((k, *shape)), axis=0)
    base = rng.normal(size=shape)
    return [(base + 0.2 * ranks[i] + rng.uniform(-0.05, 0.05, size=shape)).astype(np.float32) for i in range(k)]


def check_gradients(rng, layer, xs, reference, need=None, rtol=2e-3, atol=2e-3):
    """dL/dx_i from the core against central differences of reference(float64 xs), L = sum(y * r)."""
    y = layer(xs)
    r = rng.normal(size=y.shape)
    dxs = layer._core.backward_inputs(xs, y, r.astype(np.float32), need)
    x64 = [x.astype(np.float64) for x in xs]

    def loss():
        return float((reference(x64) * r).sum())

    for i, (arr, got) in enumerate(zip(x64, dxs)):
        if need is not None and not need[i]:
            assert got is None
            continue
        idx = sample_indices(rng, arr.size)
        np.testing.assert_allclose(got.reshape(-1)[idx], numeric_grad(loss, arr, idx), rtol=rtol, atol=atol)
    return dxs


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cls,k", CASES)
def test_elementwise_forward_and_backward(rng, cls, k, shape):
    xs = separated_inputs(rng, k, shape)
    layer = cls()
    y = layer(xs)
    assert y.shape == shape and y.dtype == np.float32
    np.testing.assert_allclose(y, REFERENCES[cls]([x.astype(np.float64) for x in xs]), rtol=1e-6, atol=1e-6)
    if cls in (Maximum, Minimum):  # a selection: exact
        np.testing.assert_array_equal(y, REFERENCES[cls](xs))
    check_gradients(rng, layer, xs, REFERENCES[cls])
    assert layer.count_params() == 0 and layer.get_weights() == []
    assert layer.output_shape == (None, *shape[1:])
    assert layer.input_shape == [(None, *shape[1:])] * k


@pytest.mark.parametrize("cls", [Add, Multiply, Average, Maximum, Minimum])
def test_single_input_is_the_identity(rng, cls):
    x = rng.normal(size=(2, 3, 5)).astype(np.float32)
    layer = cls()
    np.testing.assert_array_equal(layer([x]), x)
    dy = rng.normal(size=x.shape).astype(np.float32)
    np.testing.assert_array_equal(layer._core.backward_inputs([x], x, dy)[0], dy)


def test_exact_backward_of_the_linear_ops(rng):
    xs = [rng.normal(size=(2, 3, 3, 5)).astype(np.float32) for _ in range(3)]
    dy = rng.normal(size=xs[0].shape).astype(np.float32)
    for cls, expected in ((Add, [dy, dy, dy]), (Average, [dy / np.float32(3)] * 3)):
        layer = cls()
        for got, want in zip(layer._core.backward_inputs(xs, layer(xs), dy), expected):
            np.testing.assert_array_equal(got, want)
    layer = Subtract()
    dx0, dx1 = layer._core.backward_inputs(xs[:2], layer(xs[:2]), dy)
    np.testing.assert_array_equal(dx0, dy)
    np.testing.assert_array_equal(dx1, -dy)


def test_multiply_gradient_at_zero(rng):
    """The other inputs' product, not y / x_i: a zero input still gets its gradient."""
    a = rng.normal(size=(2, 6)).astype(np.float32)
    b = rng.normal(size=(2, 6)).astype(np.float32)
    c = rng.normal(size=(2, 6)).astype(np.float32)
    a[:, :3] = 0.0
    layer = Multiply()
    dy = np.ones_like(a)
    dxa, dxb, dxc = layer._core.backward_inputs([a, b, c], layer([a, b, c]), dy)
    np.testing.assert_allclose(dxa, b * c, rtol=1e-6)
    np.testing.assert_allclose(dxb, a * c, rtol=1e-6)
    assert np.all(dxb[:, :3] == 0) and np.all(dxc[:, :3] == 0)


@pytest.mark.parametrize("cls", [Maximum, Minimum])
def test_ties_send_the_gradient_to_the_first_input(rng, cls):
    shape = (2, 4, 5)
    low_or_high = -5.0 if cls is Maximum else 5.0  # an input never chosen
    tied = rng.normal(size=shape).astype(np.float32)
    other = np.full(shape, low_or_high, np.float32)
    dy = rng.normal(size=shape).astype(np.float32)
    zero = np.zeros(shape, np.float32)
    layer = cls()
    xs = [other, tied, tied.copy(), other]
    y = layer(xs)
    np.testing.assert_array_equal(y, tied)
    np.testing.assert_array_equal(layer._core.backward_inputs(xs, y, dy), [zero, dy, zero, zero])
    # The first tied input needs no gradient: it still takes it; the later one gets none.
    got = layer._core.backward_inputs(xs, y, dy, [True, False, True, True])
    assert got[1] is None
    np.testing.assert_array_equal(got[0], zero)
    np.testing.assert_array_equal(got[2], zero)


@pytest.mark.parametrize("cls,k", CASES)
def test_inputs_that_need_no_gradient_are_skipped(rng, cls, k):
    xs = separated_inputs(rng, k, (2, 3, 3, 17))
    layer = cls()
    y = layer(xs)
    dy = rng.normal(size=y.shape).astype(np.float32)
    full = layer._core.backward_inputs(xs, y, dy)
    for skip in range(k):
        need = [i != skip for i in range(k)]
        got = layer._core.backward_inputs(xs, y, dy, need)
        for i in range(k):
            if i == skip:
                assert got[i] is None
            else:
                np.testing.assert_array_equal(got[i], full[i])
    assert layer._core.backward_inputs(xs, y, dy, [False] * k) == [None] * k


def np_concat_axis(axis, rank):
    return axis if axis >= 0 else axis + rank


@pytest.mark.parametrize(
    "shapes,axis",
    [
        ([(1, 5, 7, 17), (1, 5, 7, 3)], -1),
        ([(3, 4, 4, 8), (3, 4, 4, 1), (3, 4, 4, 17)], -1),
        ([(2, 4, 5, 3), (2, 4, 5, 3)], 3),
        ([(2, 3, 5, 3), (2, 1, 5, 3), (2, 4, 5, 3)], 1),
        ([(2, 3, 5, 3), (2, 3, 2, 3)], 2),
        ([(2, 3, 5, 3), (2, 3, 2, 3)], -2),
        ([(2, 3, 5, 3), (2, 6, 5, 3)], -3),
        ([(3, 5), (3, 7), (3, 1)], -1),
        ([(3, 5), (3, 7)], 1),
        ([(2, 4, 4, 8)], -1),
    ],
)
def test_concatenate(rng, shapes, axis):
    xs = [rng.normal(size=s).astype(np.float32) for s in shapes]
    layer = Concatenate(axis=axis)
    y = layer(xs)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=axis))
    assert layer.output_shape == (None, *y.shape[1:])
    check_gradients(rng, layer, xs, lambda x64: np.concatenate(x64, axis=axis))
    # Backward is a slicing of dy, exactly; an input that needs no gradient gets None.
    dy = rng.normal(size=y.shape).astype(np.float32)
    bounds = np.cumsum([s[np_concat_axis(axis, len(s))] for s in shapes])[:-1]
    parts = np.split(dy, bounds, axis=axis)
    need = [i % 2 == 0 for i in range(len(xs))]
    for got, want, needed in zip(layer._core.backward_inputs(xs, y, dy, need), parts, need):
        if needed:
            np.testing.assert_array_equal(got, want)
        else:
            assert got is None


def test_results_do_not_depend_on_the_thread_count(rng):
    """Tensors large enough for the threaded loops (> 2**17 floats)."""
    shapes = [(2, 64, 64, 17), (2, 64, 64, 16)]
    cases = [(cls(), 3) for cls in REFERENCES if cls is not Subtract] + [(Subtract(), 2)]
    cases.append((Concatenate(), 2))
    before = cnnx.get_num_threads()
    try:
        for layer, k in cases:
            if isinstance(layer, Concatenate):
                xs = [rng.normal(size=s).astype(np.float32) for s in shapes]
            else:
                xs = separated_inputs(rng, k, shapes[0])
            dy = rng.normal(size=layer(xs).shape).astype(np.float32)
            runs = []
            for threads in (1, 2):
                cnnx.set_num_threads(threads)
                y = layer(xs)
                runs.append([y, *layer._core.backward_inputs(xs, y, dy)])
            for a, b in zip(*runs):
                np.testing.assert_array_equal(a, b)
    finally:
        cnnx.set_num_threads(before)


# -- errors -----------------------------------------------------------------------------------
def test_incompatible_shapes():
    a = np.zeros((2, 4, 4, 8), np.float32)
    b = np.zeros((2, 4, 4, 16), np.float32)
    for cls in REFERENCES:
        with pytest.raises(
            ValueError,
            match=rf"{cls.__name__} '.*': Inputs have incompatible shapes. Received shapes \(4, 4, 8\) and \(4, 4, 16\)",
        ):
            cls()([a, b])
    # Shapes Keras would broadcast are refused with their own reason.
    with pytest.raises(ValueError, match=r"Add '.*': expected inputs of equal shapes \(cnnx does not broadcast"):
        Add()([a, np.zeros((2, 4, 1, 8), np.float32)])
    with pytest.raises(ValueError, match=r"received shapes \(4, 4, 8\) and \(8,\)"):
        Maximum().build([(None, 4, 4, 8), (None, 8)])


def test_wrong_number_of_inputs():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"Subtract '.*': expected 2 inputs, received 3"):
        Subtract()([x, x, x])
    with pytest.raises(ValueError, match=r"Subtract '.*': expected 2 inputs, received 1"):
        Subtract()([x])
    for cls in (Add, Concatenate):
        with pytest.raises(ValueError, match=rf"{cls.__name__} '.*': expected at least 1 input, received 0"):
            cls()([])
    layer = Add()
    layer([x, x])
    with pytest.raises(ValueError, match=r"Add '.*': forward_inputs expected a list of 2 input arrays, received 3"):
        layer([x, x, x])
    with pytest.raises(ValueError, match=r"expected input 1 of shape \(2, 3\), received \(2, 4\)"):
        layer([x, np.zeros((2, 4), np.float32)])


def test_not_a_list():
    x = np.zeros((2, 3), np.float32)
    for cls in (*REFERENCES, Concatenate):
        with pytest.raises(
            ValueError, match=rf"{cls.__name__} '.*': a merge layer should be called on a list of inputs"
        ):
            cls()(x)
        with pytest.raises(ValueError, match=r"a merge layer should be called on a list of inputs; expected a list of"):
            cls().build((None, 3))


def test_batch_sizes_and_ranks_checked():
    with pytest.raises(ValueError, match=r"Add '.*': Cannot merge tensors with different batch sizes"):
        Add()([np.zeros((2, 3), np.float32), np.zeros((3, 3), np.float32)])
    with pytest.raises(ValueError, match=r"expected inputs with a leading batch axis, received inputs\[1\] of shape"):
        Add()([np.zeros((2, 3), np.float32), np.zeros(3, np.float32)])
    with pytest.raises(TypeError, match=r"Add '.*': expected inputs\[0\] to be a numeric array"):
        Add()([np.array(["a"]), np.zeros((2, 3), np.float32)])


def test_core_single_input_forms_refused():
    x = np.zeros((2, 3), np.float32)
    for layer in (Add(), Concatenate()):
        layer([x, x])
        with pytest.raises(ValueError, match=rf"{type(layer).__name__} '.*': a merge layer should be called on a list"):
            layer._core.forward(x)
        with pytest.raises(ValueError, match=r"a merge layer should be called on a list"):
            layer._core.backward(x, layer([x, x]), layer([x, x]))


def test_backward_inputs_checks_its_arrays():
    x = np.zeros((2, 3), np.float32)
    layer = Add()
    y = layer([x, x])
    with pytest.raises(ValueError, match=r"backward_inputs expected y and dy of shape \(2, 3\), received"):
        layer._core.backward_inputs([x, x], y, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"backward_inputs expected need_dx with 2 entries, received 1"):
        layer._core.backward_inputs([x, x], y, y, [True])
    with pytest.raises(ValueError, match=r"backward_inputs expected input 1 of shape \(2, 3\), received \(1, 3\)"):
        layer._core.backward_inputs([x, x[:1]], y, y)
    with pytest.raises(ValueError, match=r"build the layer before calling forward_inputs"):
        Add()._core.forward_inputs([x, x])


@pytest.mark.parametrize(
    "axis,shapes,message",
    [
        (-1, [(4, 4, 8), (4, 5, 8)], r"A `Concatenate` layer requires inputs with matching shapes except for the "
         r"concatenation axis. Received: input_shape=\[\(None, 4, 4, 8\), \(None, 4, 5, 8\)\]"),
        (1, [(4, 4, 8), (4, 5, 8)], r"matching shapes except for the concatenation axis"),
        (-1, [(4, 4, 8), (4, 8)], r"matching shapes except for the concatenation axis"),
        (-4, [(4, 4, 8), (4, 4, 8)], r"concatenating along the batch axis is not supported; expected axis in "
         r"\[1, 3\] or \[-3, -1\] for inputs of shape \(None, 4, 4, 8\), received axis=-4"),
        (4, [(4, 4, 8), (4, 4, 8)], r"expected axis in \[1, 3\] or \[-3, -1\] for inputs of shape "
         r"\(None, 4, 4, 8\), received axis=4"),
        (-5, [(4, 4, 8)], r"received axis=-5"),
    ],
)  # fmt: skip
def test_concatenate_shape_errors(axis, shapes, message):
    with pytest.raises(ValueError, match=r"Concatenate '[^']*': .*" + message):
        Concatenate(axis=axis).build([(None, *s) for s in shapes])


def test_concatenate_arguments():
    with pytest.raises(
        ValueError, match=r"Concatenate '.*': concatenating along the batch axis is not supported.*axis=0"
    ):
        Concatenate(axis=0)
    with pytest.raises(TypeError, match=r"Concatenate '.*': expected axis to be an int, received axis='1'"):
        Concatenate(axis="1")
    with pytest.raises(TypeError, match=r"Unrecognized keyword arguments passed to Add"):
        Add(units=3)


def test_built_shapes_are_kept():
    layer = Concatenate(axis=1)
    assert layer.compute_output_shape([(None, 4, 3), (None, 2, 3)]) == (None, 6, 3)
    assert layer.input_shape == [(None, 4, 3), (None, 2, 3)]
    with pytest.raises(ValueError, match=r"already built for input shape \(4, 3\), \(2, 3\), received"):
        layer.build([(None, 4, 3), (None, 5, 3)])


# -- configs, functional forms, delegation ----------------------------------------------------
def test_config_round_trip():
    for layer in (*(cls(name=f"m_{cls.__name__.lower()}") for cls in REFERENCES), Concatenate(axis=2)):
        config = layer.get_config()
        assert config["name"] == layer.name and config["trainable"] is True
        clone = type(layer).from_config({**config, "name": config["name"] + "_clone"})
        assert type(clone) is type(layer)
        assert {**clone.get_config(), "name": config["name"]} == config
    assert Concatenate().get_config()["axis"] == -1
    assert Concatenate.from_config(Concatenate(axis=-2).get_config()).axis == -2


def test_model_files_know_the_classes_not_the_functions():
    known = saving._layer_classes()
    assert {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"} <= known
    assert not {"add", "concatenate"} & known


@pytest.mark.parametrize("cls", list(FUNCTIONS))
def test_functions_equal_classes(rng, cls):
    k = 2
    xs = separated_inputs(rng, k, (2, 3, 3, 5))
    np.testing.assert_array_equal(FUNCTIONS[cls](xs), cls()(xs))
    np.testing.assert_array_equal(FUNCTIONS[cls](tuple(xs), name=f"fn_{cls.__name__}"), cls()(xs))
    if cls is Concatenate:
        np.testing.assert_array_equal(concatenate(xs, axis=1), np.concatenate(xs, axis=1))
        np.testing.assert_array_equal(concatenate(xs, 2), np.concatenate(xs, axis=2))
    # Array-likes convert as for any layer (Keras takes NumPy inputs and nested lists).
    np.testing.assert_array_equal(
        FUNCTIONS[cls]([x.astype(np.float64).tolist() for x in xs]), cls()([x.astype(np.float64) for x in xs])
    )


def test_symbolic_inputs_go_to_layer_call(monkeypatch):
    """Inputs that are not data (a Keras-like symbolic tensor) are Layer.__call__'s business."""

    class Symbolic:
        _keras_history = ("layer", 0, 0)

    calls = []
    monkeypatch.setattr(Layer, "__call__", lambda self, inputs, **kw: calls.append((self, inputs, kw)) or "node")
    layer = Add()
    inputs = [Symbolic(), np.zeros((1, 2), np.float32)]
    assert layer(inputs, training=True) == "node"
    assert calls == [(layer, inputs, {"training": True})]


def test_eager_results_have_numpy_like_keras():
    """Merge layers called on arrays return tensors with Keras' ``.numpy()``."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((2, 3), dtype=np.float32)
    for out, expected in [
        (cnnx.layers.Add()([a, b]), a + b),
        (cnnx.layers.Subtract()([a, b]), a - b),
        (cnnx.layers.maximum([a, b]), np.maximum(a, b)),
        (cnnx.layers.concatenate([a, b]), np.concatenate([a, b], axis=-1)),
    ]:
        assert type(out.numpy()) is np.ndarray
        np.testing.assert_array_equal(out.numpy(), expected)
