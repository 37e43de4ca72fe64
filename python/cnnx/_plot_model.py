"""``cnnx.utils.plot_model``: Keras' picture of a model's graph, drawn with matplotlib instead of
Graphviz (nothing to install beyond ``pip install cnnx[plot]``).

Three steps, each testable on its own: ``model_graph`` lists the boxes (one per layer, with
Keras' label rows) and the edges between them; ``layout`` places them in layers, top to bottom,
as Graphviz's ``dot`` does (each box one rank below the deepest box it reads; an edge that
skips ranks, such as a residual connection, is routed through its own column of bend points
so it does not cross the boxes it passes; boxes of a rank ordered by the mean position of their
inputs to keep edges short); ``plot_model`` draws the result."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["plot_model", "model_graph", "layout"]

_CHAR_W = 0.602  # DejaVu Sans Mono's advance width, in em
_FONT_PT = 9.0
_LINE_IN = 0.19  # inches per text line
_PAD_IN = 0.12  # inches of padding inside a box (each side)
_RANK_GAP_IN = 0.45  # inches between the bottom of a rank and the top of the next
_BOX_GAP_IN = 0.35  # inches between two boxes of a rank
_DUMMY_W_IN = 0.15  # width reserved for an edge passing through a rank


@dataclass
class Box:
    """One box of the picture: a layer (or a nested model drawn whole)."""

    id: int
    name: str
    class_name: str
    lines: list[str]  # the label, one row per line (first: "name (Class)" or "Class")
    cluster: str | None = None  # the nested model it was drawn inside, when expanded
    trainable: bool | None = None  # show_trainable: None when the layer has no weights


@dataclass
class Graph:
    boxes: list[Box] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)  # (from box id, to box id), no repeats


@dataclass
class Placed:
    """``layout``'s result, in inches, y growing downwards for rankdir="TB"."""

    centers: dict[int, tuple[float, float]]  # box id -> centre
    sizes: dict[int, tuple[float, float]]  # box id -> (width, height)
    edges: list[tuple[int, int, list[tuple[float, float]]]]  # (from, to, polyline incl. bend points)
    ranks: dict[int, int]  # box id -> rank (0: a box that reads no other)
    width: float
    height: float


def _fmt_shape(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return "[" + ", ".join(_fmt_shape(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _class_name(op: Any) -> str:
    from .models import Model, Sequential

    if isinstance(op, Model):
        return "Sequential" if isinstance(op, Sequential) else "Functional"
    return type(op).__name__


def _has_weights(op: Any) -> bool:
    from .models import Model

    try:
        if isinstance(op, Model):
            return any(layer._core.weight_names() for layer in op._flat_layers())
        return op.built and bool(op._core.weight_names())
    except (AttributeError, TypeError, ValueError):
        return False


def _label(op: Any, in_shape: Any, out_shape: Any, opts: dict) -> tuple[list[str], bool | None]:
    from .layers import InputLayer

    cls = _class_name(op)
    lines = [f"{op.name} ({cls})" if opts["show_layer_names"] else cls]
    activation = getattr(op, "activation", None)
    if opts["show_layer_activations"] and isinstance(activation, str) and activation:
        lines.append(f"Activation: {activation}")
    if opts["show_shapes"]:
        if not isinstance(op, InputLayer):
            lines.append(f"Input shape: {_fmt_shape(in_shape)}")
        lines.append(f"Output shape: {_fmt_shape(out_shape)}")
    if opts["show_dtype"]:
        lines.append("Output dtype: float32")
    trainable = None
    if opts["show_trainable"] and _has_weights(op):
        trainable = bool(op.trainable)
        lines.append("Trainable" if trainable else "Non-trainable")
    return lines, trainable


def _op_shapes(op: Any) -> tuple[Any, Any]:
    """(input shape, output shape) of a layer or model as a whole, batch dim None; None if unknown."""
    try:
        return op.input_shape, op.output_shape
    except (AttributeError, ValueError):
        return None, None


def model_graph(
    model: Any,
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = False,
    expand_nested: bool = False,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
) -> Graph:
    """The boxes and edges ``plot_model`` draws, as Keras' ``model_to_dot`` makes them: a box per
    layer (a layer used twice is one box with two sets of edges), a nested model drawn as one
    box unless ``expand_nested``; a Sequential's input is not drawn, a functional model's is
    (its InputLayer)."""
    from .models import Model, Sequential

    opts = {
        "show_shapes": show_shapes,
        "show_dtype": show_dtype,
        "show_layer_names": show_layer_names,
        "show_layer_activations": show_layer_activations,
        "show_trainable": show_trainable,
    }
    graph = Graph()
    by_op: dict[int, int] = {}  # id(op) -> box id
    edges: set[tuple[int, int]] = set()

    def box(op: Any, in_shape: Any, out_shape: Any, cluster: str | None) -> int:
        if id(op) not in by_op:
            lines, trainable = _label(op, in_shape, out_shape, opts)
            by_op[id(op)] = len(graph.boxes)
            graph.boxes.append(Box(len(graph.boxes), op.name, _class_name(op), lines, cluster, trainable))
        return by_op[id(op)]

    def edge(a: int, b: int) -> None:
        if (a, b) not in edges:
            edges.add((a, b))
            graph.edges.append((a, b))

    def item(op: Any, in_shape: Any, out_shape: Any, cluster: str | None) -> tuple[int, int]:
        """Adds a layer, or an expanded nested model; (box the inputs go to, box the output leaves)."""
        if expand_nested and isinstance(op, Model):
            return add_model(op, op.name)
        b = box(op, in_shape, out_shape, cluster)
        return b, b

    def add_model(m: Any, cluster: str | None) -> tuple[int, int]:
        if isinstance(m, Sequential):
            first = last = None
            for op in m.layers:
                shapes = _op_shapes(op)
                entry, exit_ = item(op, *shapes, cluster)
                if last is not None:
                    edge(last, entry)
                first = entry if first is None else first
                last = exit_
            if first is None:
                raise ValueError(f"plot_model: Sequential '{m.name}' has no layers")
            return first, last
        produced: dict[int, int] = {}  # id(tensor) -> box that outputs it
        entry = None
        for node in m._nodes:
            op = node.operation
            out = node.output_tensors[0]
            if node.is_input:
                b = box(op, None, out.shape, cluster)
                produced[id(out)] = b
                entry = b if entry is None else entry
                continue
            ins = [t.shape for t in node.input_tensors]
            in_shape = ins if node.list_call else ins[0]
            first, last = item(op, in_shape, out.shape, cluster)
            for t in node.input_tensors:
                edge(produced[id(t)], first)
            produced[id(out)] = last
        return entry, produced[id(m._outputs[0])]

    add_model(model, None)
    return graph


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _text_size(lines: list[str]) -> tuple[float, float]:
    width = max(len(s) for s in lines) * _CHAR_W * _FONT_PT / 72 + 2 * _PAD_IN + 0.1
    return width, len(lines) * _LINE_IN + 2 * _PAD_IN - 0.06


def layout(graph: Graph, rankdir: str = "TB") -> Placed:
    """Places the boxes (see the module docstring); all coordinates in inches."""
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"plot_model: expected rankdir 'TB', 'LR', 'BT' or 'RL', received rankdir={rankdir!r}")
    n = len(graph.boxes)
    preds: list[list[int]] = [[] for _ in range(n)]
    for a, b in graph.edges:
        preds[b].append(a)
    # Ranks: longest path from a box that reads nothing. Boxes come in an order where every
    # box follows those it reads (model_graph adds them so), but do not rely on it.
    rank = [0] * n
    for _ in range(n):
        changed = False
        for a, b in graph.edges:
            if rank[b] < rank[a] + 1:
                rank[b], changed = rank[a] + 1, True
        if not changed:
            break
    else:
        raise ValueError("plot_model: the model's graph has a cycle")

    # Split edges that skip ranks into unit segments through dummy vertices (ids >= n).
    size: dict[int, tuple[float, float]] = {b.id: _text_size(b.lines) for b in graph.boxes}
    if rankdir in ("LR", "RL"):  # lay out with width and height swapped, then turn
        size = {k: (h, w) for k, (w, h) in size.items()}
    vrank = dict(enumerate(rank))
    vpreds: dict[int, list[int]] = {v: [] for v in range(n)}
    chains: list[tuple[int, int, list[int]]] = []
    next_id = n
    for a, b in graph.edges:
        chain = [a]
        for r in range(rank[a] + 1, rank[b]):
            vrank[next_id] = r
            vpreds[next_id] = [chain[-1]]
            chain.append(next_id)
            next_id += 1
        vpreds[b].append(chain[-1])
        chains.append((a, b, chain[1:]))
    for v in range(n, next_id):
        size[v] = (_DUMMY_W_IN, 0.0)

    levels: list[list[int]] = [[] for _ in range(max(vrank.values(), default=0) + 1)]
    for v in sorted(vrank):
        levels[vrank[v]].append(v)
    succs: dict[int, list[int]] = {v: [] for v in vrank}
    for v, ps in vpreds.items():
        for p in ps:
            succs[p].append(v)

    # Order each rank by the mean position of the vertices it connects to (two sweeps down, one up).
    pos = {v: float(i) for level in levels for i, v in enumerate(level)}
    for sweep in ("down", "up", "down"):
        order = levels[1:] if sweep == "down" else levels[-2::-1]
        links = vpreds if sweep == "down" else succs
        for level in order:
            level.sort(key=lambda v, links=links: _mean([pos[u] for u in links[v]], pos[v]))
            for i, v in enumerate(level):
                pos[v] = float(i)

    # x: each vertex under the mean of what it reads, pushed right to keep the gaps; then each
    # rank is shifted so that, on average, vertices sit where they want to be.
    x: dict[int, float] = {}
    for r, level in enumerate(levels):
        want = []
        for v in level:
            near = [x[u] for u in vpreds[v] if u in x]
            want.append(sum(near) / len(near) if near else None)
        cursor = None
        placed = []
        for v, w in zip(level, want):
            half = size[v][0] / 2
            target = w if w is not None else (cursor + half if cursor is not None else half)
            if cursor is not None:
                target = max(target, cursor + half)
            placed.append(target)
            cursor = target + half + (_BOX_GAP_IN if v < n else _BOX_GAP_IN / 2)
        deltas = [w - p for w, p in zip(want, placed) if w is not None]
        if deltas and r:
            shift = sum(deltas) / len(deltas)
            placed = [p + shift for p in placed]
        for v, p in zip(level, placed):
            x[v] = p
    left = min(x[v] - size[v][0] / 2 for v in x)
    x = {v: p - left + 0.2 for v, p in x.items()}
    width = max(x[v] + size[v][0] / 2 for v in x) + 0.2

    y: dict[int, float] = {}
    top = 0.35  # room for a nested model's frame and name above the first rank
    for level in levels:
        h = max(size[v][1] for v in level)
        for v in level:
            y[v] = top + h / 2
        top += h + _RANK_GAP_IN
    height = top - _RANK_GAP_IN + 0.2

    def point(v: int) -> tuple[float, float]:
        px, py = x[v], y[v]
        if rankdir == "BT":
            py = height - py
        if rankdir in ("LR", "RL"):
            px, py = py, px
            if rankdir == "RL":
                px = height - px
        return px, py

    edges = []
    for a, b, dummies in chains:
        edges.append((a, b, [point(a), *(point(d) for d in dummies), point(b)]))
    centers = {v: point(v) for v in range(n)}
    sizes = {v: size[v] if rankdir in ("TB", "BT") else (size[v][1], size[v][0]) for v in range(n)}
    total = (width, height) if rankdir in ("TB", "BT") else (height, width)
    return Placed(centers, sizes, edges, dict(enumerate(rank)), *total)


def _clip_to_box(p: tuple, q: tuple, center: tuple, box: tuple) -> tuple[float, float]:
    """Where the segment from p (inside the box) towards q leaves the box."""
    (px, py), (qx, qy) = p, q
    dx, dy = qx - px, qy - py
    hw, hh = box[0] / 2, box[1] / 2
    t = 1.0
    if dx:
        t = min(t, hw / abs(dx))
    if dy:
        t = min(t, hh / abs(dy))
    return px + dx * t, py + dy * t


def _draw(graph: Graph, placed: Placed, to_file: str, dpi: int, fmt: str) -> None:
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

    from .visualize import _figure

    fig = _figure(placed.width, placed.height)
    fig.set_size_inches(placed.width, placed.height)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, placed.width)
    ax.set_ylim(placed.height, 0)  # y grows downwards, as the layout's
    ax.axis("off")

    clusters: dict[str, list[int]] = {}
    for b in graph.boxes:
        if b.cluster is not None:
            clusters.setdefault(b.cluster, []).append(b.id)
    for name, members in clusters.items():
        x0 = min(placed.centers[m][0] - placed.sizes[m][0] / 2 for m in members) - 0.08
        x1 = max(placed.centers[m][0] + placed.sizes[m][0] / 2 for m in members) + 0.08
        y0 = min(placed.centers[m][1] - placed.sizes[m][1] / 2 for m in members) - 0.2
        y1 = max(placed.centers[m][1] + placed.sizes[m][1] / 2 for m in members) + 0.08
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, linestyle="--", linewidth=0.8, ec="0.5"))
        ax.text(x0 + 0.05, y0 + 0.04, name, fontsize=_FONT_PT - 1, va="top", ha="left", color="0.35")

    for a, b, points in placed.edges:
        pts = list(points)
        pts[0] = _clip_to_box(pts[0], pts[1], placed.centers[a], placed.sizes[a])
        pts[-1] = _clip_to_box(pts[-1], pts[-2], placed.centers[b], placed.sizes[b])
        for i in range(len(pts) - 1):
            last = i == len(pts) - 2
            ax.add_patch(
                FancyArrowPatch(
                    pts[i],
                    pts[i + 1],
                    arrowstyle="-|>" if last else "-",
                    mutation_scale=9,
                    linewidth=0.9,
                    color="0.2",
                    shrinkA=0,
                    shrinkB=1 if last else 0,
                )
            )

    mono = {"family": "DejaVu Sans Mono", "size": _FONT_PT}
    for b in graph.boxes:
        cx, cy = placed.centers[b.id]
        w, h = placed.sizes[b.id]
        ax.add_patch(
            FancyBboxPatch(
                (cx - w / 2, cy - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.04", fc="white", ec="0.15", lw=0.9
            )
        )
        head = _LINE_IN + _PAD_IN - 0.03
        ax.add_patch(
            FancyBboxPatch(
                (cx - w / 2, cy - h / 2), w, head, boxstyle="round,pad=0,rounding_size=0.04", fc="0.15", ec="0.15"
            )
        )
        top = cy - h / 2 + _PAD_IN - 0.03
        for i, line in enumerate(b.lines):
            color = "white" if i == 0 else "black"
            if i == len(b.lines) - 1 and b.trainable is not None:
                color = "forestgreen" if b.trainable else "firebrick"
            ax.text(cx, top + (i + 0.5) * _LINE_IN, line, ha="center", va="center", color=color, fontdict=mono)
    directory = os.path.dirname(to_file)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fig.savefig(to_file, format=fmt, dpi=dpi)


def plot_model(
    model: Any,
    to_file: Any = "model.png",
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = False,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    splines: str = "ortho",
    **kwargs: Any,
) -> Any:
    """Draws the model's graph to ``to_file``, as ``keras.utils.plot_model``, without Graphviz.

    Each layer is a box: "name (Class)" with ``show_layer_names`` (else the class), then, as
    asked, its activation, input and output shapes, dtype, and trainable state; arrows follow
    the data from the input down (``rankdir="TB"``; ``"LR"`` goes left to right). Nested models
    are one box, or with ``expand_nested`` their layers inside a dashed frame. The format comes
    from the file's extension (png, pdf, svg, jpg; png when there is none). ``splines`` is
    accepted for Keras' signature; edges are drawn straight, bending at each rank they cross.

    Returns an ``IPython.display.Image`` of the file when IPython is installed (shown inline in
    a notebook) and the file is not a PDF, else None, as Keras does. Needs matplotlib
    (``pip install cnnx[plot]``).
    """
    from .models import Model

    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("Argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
    if not isinstance(model, Model):
        raise TypeError(f"plot_model: expected a cnnx model, received {type(model).__name__}")
    if not model.built and model._input_shape is not None:
        model.build()  # a Sequential that starts with an Input: Keras builds it when it is made
    if not model.built:
        raise ValueError(
            "This model has not yet been built. Build the model first by calling `build()` or by calling "
            "the model on a batch of data."
        )
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or dpi <= 0:
        raise ValueError(f"plot_model: expected dpi to be a positive number, received dpi={dpi!r}")
    graph = model_graph(
        model,
        show_shapes=show_shapes,
        show_dtype=show_dtype,
        show_layer_names=show_layer_names,
        expand_nested=expand_nested,
        show_layer_activations=show_layer_activations,
        show_trainable=show_trainable,
    )
    placed = layout(graph, rankdir)
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1][1:].lower() or "png"
    _draw(graph, placed, to_file, dpi, "jpeg" if extension == "jpg" else extension)
    if extension != "pdf":
        try:
            from IPython import display
        except ImportError:
            return None
        return display.Image(filename=to_file)
    return None
