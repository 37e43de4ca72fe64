"""cnnx.utils.plot_model: the graph it draws (boxes, labels, edges, as Keras' model_to_dot makes
them), the layered layout (ranks, no box overlaps, edges clear of the boxes they pass), and the
file it writes."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

import cnnx  # noqa: E402
from cnnx import layers  # noqa: E402
from cnnx._plot_model import layout, model_graph  # noqa: E402


def resnet_block():
    inputs = cnnx.Input((16, 16, 3), name="img")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inputs)
    y = layers.Conv2D(8, 3, padding="same", name="conv_a")(x)
    y = layers.BatchNormalization(name="bn")(y)
    y = layers.ReLU(name="relu")(y)
    y = layers.Conv2D(8, 3, padding="same", name="conv_b")(y)
    z = layers.Add(name="add")([x, y])
    z = layers.GlobalAveragePooling2D(name="gap")(z)
    outputs = layers.Dense(10, activation="softmax", name="head")(z)
    return cnnx.Model(inputs, outputs, name="resnet")


def named_edges(graph):
    name = {b.id: b.name for b in graph.boxes}
    return {(name[a], name[b]) for a, b in graph.edges}


def inside(point, center, size, margin=1e-6):
    return abs(point[0] - center[0]) < size[0] / 2 - margin and abs(point[1] - center[1]) < size[1] / 2 - margin


def check_layout(graph, placed):
    """Boxes do not overlap, every edge goes to a later rank, and no edge crosses a box other
    than its two ends (sampled along each segment)."""
    ids = [b.id for b in graph.boxes]
    for i in ids:
        for j in ids:
            if i < j:
                (xi, yi), (wi, hi) = placed.centers[i], placed.sizes[i]
                (xj, yj), (wj, hj) = placed.centers[j], placed.sizes[j]
                assert abs(xi - xj) >= (wi + wj) / 2 or abs(yi - yj) >= (hi + hj) / 2, (i, j)
    for a, b, points in placed.edges:
        assert placed.ranks[b] > placed.ranks[a]
        assert points[0] == placed.centers[a] and points[-1] == placed.centers[b]
        assert len(points) == placed.ranks[b] - placed.ranks[a] + 1  # one bend point per rank crossed
        for p, q in zip(points, points[1:]):
            for t in np.linspace(0, 1, 41):
                pt = (p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]))
                for other in ids:
                    if other not in (a, b):
                        assert not inside(pt, placed.centers[other], placed.sizes[other]), (a, b, other)
    for c, (w, h) in zip(placed.centers.values(), placed.sizes.values()):
        assert 0 <= c[0] - w / 2 and c[0] + w / 2 <= placed.width + 1e-9
        assert 0 <= c[1] - h / 2 and c[1] + h / 2 <= placed.height + 1e-9


def test_residual_block_graph_and_layout():
    model = resnet_block()
    graph = model_graph(model, show_shapes=True, show_layer_names=True)
    assert [b.name for b in graph.boxes] == ["img", "stem", "conv_a", "bn", "relu", "conv_b", "add", "gap", "head"]
    assert named_edges(graph) == {
        ("img", "stem"),
        ("stem", "conv_a"),
        ("conv_a", "bn"),
        ("bn", "relu"),
        ("relu", "conv_b"),
        ("stem", "add"),  # the skip connection
        ("conv_b", "add"),
        ("add", "gap"),
        ("gap", "head"),
    }
    assert len(graph.edges) == 9
    by_name = {b.name: b for b in graph.boxes}
    assert by_name["img"].lines == ["img (InputLayer)", "Output shape: (None, 16, 16, 3)"]
    assert by_name["add"].lines == [
        "add (Add)",
        "Input shape: [(None, 16, 16, 8), (None, 16, 16, 8)]",
        "Output shape: (None, 16, 16, 8)",
    ]
    assert by_name["gap"].lines[-1] == "Output shape: (None, 8)"

    placed = layout(graph)
    ranks = {b.name: placed.ranks[b.id] for b in graph.boxes}
    assert ranks == {"img": 0, "stem": 1, "conv_a": 2, "bn": 3, "relu": 4, "conv_b": 5, "add": 6, "gap": 7, "head": 8}
    check_layout(graph, placed)
    # top to bottom: each rank lower on the page than the one before
    ys = [placed.centers[by_name[n].id][1] for n in ("img", "stem", "conv_a", "add", "head")]
    assert ys == sorted(ys)
    skip = next(points for a, b, points in placed.edges if (a, b) == (by_name["stem"].id, by_name["add"].id))
    assert len(skip) == 6  # routed beside the four boxes it passes


def test_two_branches_and_shared_layer():
    inputs = cnnx.Input((8,), name="x")
    shared = layers.Dense(8, name="shared")
    a = layers.Dense(8, name="left")(inputs)
    b = layers.Dense(8, name="right")(inputs)
    a2 = shared(a)
    b2 = shared(b)  # one layer, two calls: one box, as Keras draws it
    merged = layers.Concatenate(name="cat")([a2, b2])
    model = cnnx.Model(inputs, layers.Dense(2, name="out")(merged))
    graph = model_graph(model)
    assert [b.lines[0] for b in graph.boxes][:1] == ["InputLayer"]  # Keras 3: no names by default
    assert named_edges(graph) == {
        ("x", "left"),
        ("x", "right"),
        ("left", "shared"),
        ("right", "shared"),
        ("shared", "cat"),
        ("cat", "out"),
    }
    placed = layout(graph)
    check_layout(graph, placed)
    ids = {b.name: b.id for b in graph.boxes}
    assert placed.ranks[ids["left"]] == placed.ranks[ids["right"]] == 1
    assert placed.centers[ids["left"]][1] == placed.centers[ids["right"]][1]  # side by side


def test_sequential_and_expand_nested():
    block = cnnx.Sequential([layers.Conv2D(4, 3, name="c1"), layers.ReLU(name="r1")], name="block")
    model = cnnx.Sequential([cnnx.Input((8, 8, 1)), block, layers.Flatten(name="flat"), layers.Dense(3, name="d")])
    model.build()
    whole = model_graph(model, show_layer_names=True)
    assert [b.lines[0] for b in whole.boxes] == ["block (Sequential)", "flat (Flatten)", "d (Dense)"]  # no input box
    assert named_edges(whole) == {("block", "flat"), ("flat", "d")}
    expanded = model_graph(model, expand_nested=True, show_shapes=True)
    assert [(b.name, b.cluster) for b in expanded.boxes] == [
        ("c1", "block"),
        ("r1", "block"),
        ("flat", None),
        ("d", None),
    ]
    assert named_edges(expanded) == {("c1", "r1"), ("r1", "flat"), ("flat", "d")}
    assert expanded.boxes[0].lines[1:] == ["Input shape: (None, 8, 8, 1)", "Output shape: (None, 6, 6, 4)"]
    check_layout(expanded, layout(expanded))


def test_nested_functional_expanded_points_at_its_input():
    inner_in = cnnx.Input((4,), name="inner_in")
    inner = cnnx.Model(inner_in, layers.Dense(4, name="inner_dense")(inner_in), name="inner")
    x = cnnx.Input((4,), name="outer_in")
    model = cnnx.Model(x, layers.Dense(1, name="top")(inner(x)))
    assert named_edges(model_graph(model)) == {("outer_in", "inner"), ("inner", "top")}
    expanded = model_graph(model, expand_nested=True)
    assert named_edges(expanded) == {("outer_in", "inner_in"), ("inner_in", "inner_dense"), ("inner_dense", "top")}


def test_label_options():
    model = resnet_block()
    model.get_layer("conv_a").trainable = False
    graph = model_graph(
        model, show_dtype=True, show_layer_activations=True, show_trainable=True, show_layer_names=False
    )
    by_name = {b.name: b for b in graph.boxes}
    assert by_name["stem"].lines == ["Conv2D", "Activation: relu", "Output dtype: float32", "Trainable"]
    assert by_name["conv_a"].lines[-1] == "Non-trainable" and by_name["conv_a"].trainable is False
    assert by_name["relu"].trainable is None  # no weights: no trainable row, as Keras
    assert by_name["relu"].lines == ["ReLU", "Output dtype: float32"]


def test_rankdir_lr():
    graph = model_graph(resnet_block(), show_shapes=True)
    placed = layout(graph, rankdir="LR")
    check_layout(graph, placed)
    xs = [placed.centers[b.id][0] for b in graph.boxes if b.name in ("img", "stem", "conv_a", "add", "head")]
    assert xs == sorted(xs)
    with pytest.raises(ValueError, match="rankdir"):
        layout(graph, rankdir="XY")


def test_writes_png_of_plausible_size(tmp_path):
    model = resnet_block()
    path = tmp_path / "plots" / "model.png"  # folders are created
    result = cnnx.utils.plot_model(model, to_file=path, show_shapes=True, show_layer_names=True, dpi=100)
    placed = layout(model_graph(model, show_shapes=True, show_layer_names=True))
    with Image.open(path) as img:
        assert img.format == "PNG"
        w, h = img.size
        pixels = np.asarray(img.convert("L"))
    assert abs(w - placed.width * 100) <= 2 and abs(h - placed.height * 100) <= 2
    assert h > w > 200  # tall: nine ranks top to bottom
    assert pixels.min() < 50 and pixels.max() > 200  # dark boxes and text on white
    assert result is None or type(result).__name__ == "Image"


def test_formats_and_return_value(tmp_path, monkeypatch):
    model = cnnx.Sequential([cnnx.Input((4,)), layers.Dense(2)])
    cnnx.utils.plot_model(model, to_file=tmp_path / "m.svg")
    assert (tmp_path / "m.svg").read_text().lstrip().startswith("<?xml")
    assert cnnx.utils.plot_model(model, to_file=str(tmp_path / "m.pdf")) is None
    assert (tmp_path / "m.pdf").read_bytes().startswith(b"%PDF")
    # with IPython, Keras returns IPython.display.Image(filename=to_file) (shown inline in notebooks)
    display = types.SimpleNamespace(Image=lambda filename: ("image", filename))
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(display=display))
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    out = tmp_path / "m.png"
    assert cnnx.utils.plot_model(model, to_file=out) == ("image", str(out))
    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.delitem(sys.modules, "IPython.display")
    assert cnnx.utils.plot_model(model, to_file=out) is None


def test_errors(tmp_path):
    unbuilt = cnnx.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="This model has not yet been built"):
        cnnx.utils.plot_model(unbuilt, to_file=tmp_path / "x.png")
    model = cnnx.Sequential([cnnx.Input((4,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="Argument `layer_range` is no longer supported"):
        cnnx.utils.plot_model(model, to_file=tmp_path / "x.png", layer_range=["a", "b"])
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        cnnx.utils.plot_model(model, to_file=tmp_path / "x.png", colour=True)
    with pytest.raises(TypeError, match="expected a cnnx model"):
        cnnx.utils.plot_model(layers.Dense(2), to_file=tmp_path / "x.png")
