"""Seeing what the network learned: training curves, feature maps, filters, how a convolution
combines its input maps, the confusion matrix and the misclassified images.

    import cnnx.visualize as viz            # a submodule: import it explicitly
    viz.plot_history(history, path="history.png")
    fig, maps = viz.feature_maps(model, x_test[0], "conv2d", path="maps.png")

Needs matplotlib (``pip install cnnx[plot]``); cnnx itself imports without it. Figures are drawn
with ``matplotlib.figure.Figure`` on an Agg canvas, never through ``pyplot``: nothing global is
touched, no window opens, and the functions work headless (servers, CI, threads).

Every function returns the Figure and, when ``path`` is given, also writes it there as a PNG.
Those that compute something return it next to the figure, as numpy arrays:

=========================  =========================================================
function                   returns
=========================  =========================================================
plot_history               fig
feature_maps               (fig, maps)            maps: (h, w, channels) or (units,)
filters                    fig
channel_contributions      ChannelContributions(figure, partials, bias,
                           pre_activation, output)  a named tuple
confusion_matrix           (fig, matrix)          integer counts, rows = true class
misclassified              (fig, indices)         indices of the images shown
=========================  =========================================================

Activations are computed by the core, layer by layer (``Layer.__call__`` with
``training=False``); no layer's math is repeated here in numpy.
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

import numpy as np

from .layers import Conv2D, Layer

__all__ = [
    "plot_history",
    "feature_maps",
    "filters",
    "channel_contributions",
    "ChannelContributions",
    "confusion_matrix",
    "misclassified",
]

_TILE = 1.3  # inches per image tile


# -- matplotlib, kept optional ------------------------------------------------------------------
def _figure(width: float, height: float, constrained: bool = False) -> Any:
    """A Figure on its own Agg canvas (no pyplot, no global backend switch)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(f"cnnx.visualize needs matplotlib ({e}); install it with: pip install cnnx[plot]") from None
    fig = Figure(figsize=(max(width, 2.0), max(height, 1.5)), layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Any, dpi: int = 100) -> None:
    if path is not None:
        path = os.fspath(path)
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        fig.savefig(path, format="png", dpi=dpi)


def _grid(n: int, cols: int | None = None) -> tuple[int, int]:
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / cols)), cols


def _bare(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _tile_grid(fig: Any, rows: int, cols: int, top: float = 0.9) -> list:
    """rows x cols image axes filling the figure below a title band; returned row-major."""
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=top, wspace=0.08, hspace=0.35)
    for ax in axes.flat:
        _bare(ax)
        ax.set_frame_on(False)
    return list(axes.flat)


def _show_image(ax: Any, image: np.ndarray) -> None:
    """One input image: grey for one channel, colour for three; pixels 0..255 or 0..1."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.max(initial=0.0) > 1.0:
        img = img / 255.0
    img = np.clip(img, 0.0, 1.0)
    if img.ndim == 2:
        ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    elif img.shape[-1] == 3:
        ax.imshow(img, interpolation="nearest")
    else:  # neither grey nor RGB: show the channel mean
        ax.imshow(img.mean(axis=-1), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")


# -- model helpers --------------------------------------------------------------------------------
def _layer_index(model: Any, layer: Any) -> int:
    """The position in model.layers of a layer given by name, index or the Layer object."""
    layers = model.layers
    names = [each.name for each in layers]
    if isinstance(layer, Layer):
        for i, each in enumerate(layers):
            if each is layer:
                return i
        raise ValueError(f"cnnx.visualize: layer '{layer.name}' is not in this model; its layers are {names}")
    if isinstance(layer, str):
        if layer in names:
            return names.index(layer)
        raise ValueError(f"cnnx.visualize: no layer named {layer!r}; the model's layers are {names}")
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if -len(layers) <= layer < len(layers):
            return int(layer) % len(layers)
        raise IndexError(f"cnnx.visualize: layer index {layer} out of range for a model of {len(layers)} layers")
    raise TypeError(f"cnnx.visualize: expected layer to be a name, an index or a Layer, received {layer!r}")


def _one_image(model: Any, image: Any) -> np.ndarray:
    """(1, h, w, c) float32 from one image (h, w, c), (h, w) for one channel, or a batch of one."""
    x = np.asarray(image)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"cnnx.visualize: expected a numeric image array, received dtype {x.dtype}")
    x = x.astype(np.float32)
    try:
        expected = tuple(model.input_shape[1:])
    except ValueError:
        expected = None
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 2 and (expected is None or (len(expected) == 3 and expected[-1] == 1)):
        x = x[..., None]
    if expected is not None and x.shape != expected:
        raise ValueError(
            f"cnnx.visualize: expected one image of shape {expected} (as the model's input, without the "
            f"batch axis), received shape {np.shape(image)}"
        )
    if not all(layer.built for layer in model.layers):
        model.build(x.shape)
    return x[None]


def _run_to(model: Any, x: np.ndarray, index: int) -> list[np.ndarray]:
    """Outputs of layers 0..index for batch x, each computed by the core (a Sequential)."""
    outs = []
    for layer in model.layers[: index + 1]:
        x = layer(x, training=False)
        outs.append(x)
    return outs


def _layer_value(model: Any, x: np.ndarray, index: int, which: str) -> np.ndarray:
    """The output (or the input) of model.layers[index] for batch x. In a functional model,
    computed by a model cut at that tensor (sharing the layers); in a Sequential, by running
    the layers before it one by one."""
    from .models import Functional, Model

    if not isinstance(model, Functional):
        if which == "input":
            return _run_to(model, x, index - 1)[-1] if index > 0 else x
        return _run_to(model, x, index)[-1]
    layer = model.layers[index]
    node = [n for n in layer._inbound_nodes if id(n) in model._node_ids][-1]
    tensors = node.output_tensors if which == "output" or node.is_input else node.input_tensors
    if len(tensors) != 1:
        raise ValueError(f"cnnx.visualize: layer '{layer.name}' has {len(tensors)} inputs; expected one")
    if tensors[0] is model.inputs[0]:
        return x
    try:
        return Model(model.inputs[0], tensors[0]).predict(x, batch_size=len(x), verbose=0)
    finally:
        model._claim_layers()  # the layers' weights stay under the model's lock


def _conv_layer(model: Any, layer: Any, who: str) -> tuple[int, Conv2D]:
    index = _layer_index(model, layer)
    conv = model.layers[index]
    if not isinstance(conv, Conv2D):
        raise TypeError(f"{who}: expected a Conv2D layer, received {type(conv).__name__} '{conv.name}'")
    if not conv.built:
        raise ValueError(f"{who}: Conv2D '{conv.name}' is not built yet; build the model (or fit it) first")
    return index, conv


# -- training curves ------------------------------------------------------------------------------
def plot_history(history: Any, path: Any = None) -> Any:
    """Loss and each metric per epoch, training and validation, one panel per quantity.

    ``history`` is what ``fit`` returns (a History), its ``.history`` dict, or a model that has
    been fitted. Returns the Figure.
    """
    epochs = None
    if hasattr(history, "history") and isinstance(history.history, dict):
        epochs = getattr(history, "epoch", None)
        logs = history.history
    elif hasattr(history, "history") and hasattr(history.history, "history"):  # a fitted model
        epochs = getattr(history.history, "epoch", None)
        logs = history.history.history
    elif isinstance(history, dict):
        logs = history
    else:
        raise TypeError(f"plot_history: expected a History, its .history dict or a fitted model, received {history!r}")
    if not logs:
        raise ValueError("plot_history: the history is empty (no epoch has finished)")
    keys = []
    for k in logs:
        base = k[4:] if k.startswith("val_") else k
        if base not in keys:
            keys.append(base)
    keys.sort(key=lambda k: (k != "loss", k in ("learning_rate", "lr")))  # loss first, learning rate last
    fig = _figure(4.2 * len(keys), 3.2, constrained=True)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        for name, style, label in ((key, "o-", "train"), ("val_" + key, "s--", "validation")):
            values = logs.get(name)
            if values:
                xs = (
                    list(epochs)[: len(values)]
                    if epochs is not None and len(epochs) >= len(values)
                    else range(len(values))
                )
                ax.plot([e + 1 for e in xs], values, style, label=label, markersize=4)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if key not in ("learning_rate", "lr"):
            ax.legend()
    fig.suptitle("training history")
    _save(fig, path)
    return fig


# -- activations ----------------------------------------------------------------------------------
def feature_maps(
    model: Any, image: Any, layer: Any, path: Any = None, max_maps: int | None = None, cmap: str = "viridis"
) -> tuple[Any, np.ndarray]:
    """Every map (channel) that ``layer`` outputs for one ``image`` (h, w, c), as a grid.

    ``layer`` is a name, an index into ``model.layers`` or the Layer. The model's layers up to it
    run one by one on the image (inference mode). Each tile has its own colour scale (its minimum
    and maximum are in the title); an all-zero map (a ReLU that never fired) is shown dark.

    Returns ``(fig, maps)``: maps is the layer's output for the image without the batch axis,
    (h, w, channels) for a convolution or pooling, (units,) for a flat layer (drawn as bars).
    ``max_maps`` shows only the first that many channels (maps still holds all of them).
    """
    index = _layer_index(model, layer)
    x = _one_image(model, image)
    maps = _layer_value(model, x, index, "output")[0]
    name = model.layers[index].name
    if maps.ndim == 1:
        fig = _figure(max(6.0, 0.12 * maps.size), 3.0, constrained=True)
        ax = fig.subplots()
        ax.bar(np.arange(maps.size), maps, color="tab:blue")
        ax.set_xlabel("unit")
        ax.set_title(f"outputs of '{name}' ({maps.size} units)")
        _save(fig, path)
        return fig, maps
    if maps.ndim != 3:
        raise ValueError(f"feature_maps: layer '{name}' outputs shape {maps.shape}; expected (h, w, c) or (units,)")
    n = maps.shape[-1] if max_maps is None else max(1, min(int(max_maps), maps.shape[-1]))
    rows, cols = _grid(n)
    fig = _figure(_TILE * cols, _TILE * rows + 0.6)
    axes = _tile_grid(fig, rows, cols, top=1 - 0.6 / (_TILE * rows + 0.6))
    for c, ax in enumerate(axes[:n]):
        m = maps[..., c]
        lo, hi = float(m.min()), float(m.max())
        ax.imshow(m, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        ax.set_title(f"{c}: {lo:.2g}..{hi:.2g}", fontsize=7)
    shown = "" if n == maps.shape[-1] else f", first {n} shown"
    fig.suptitle(f"feature maps of '{name}': {maps.shape[0]}x{maps.shape[1]}x{maps.shape[2]}{shown}")
    _save(fig, path)
    return fig, maps


def filters(model: Any, layer: Any, path: Any = None, max_filters: int | None = None, max_channels: int = 16) -> Any:
    """The kernels of a Conv2D as images, each tile normalised to its own minimum..maximum.

    With three input channels (an RGB image) each output filter is one colour tile. Otherwise there
    is one grey tile per (output filter, input channel): a grid of filters for one input channel,
    else one row per filter and one column per input channel (at most ``max_channels`` columns).
    ``max_filters`` limits how many output filters are drawn (default: all of them in a grid, the
    first 32 rows in the per-channel layout). Returns the Figure.
    """
    _, conv = _conv_layer(model, layer, "filters")
    kernel = conv.get_weights()[0]  # (kh, kw, cin, cout)
    _, _, cin, cout = kernel.shape
    if max_filters is None:
        max_filters = cout if cin in (1, 3) else 32
    n = max(1, min(int(max_filters), cout))

    def norm(k: np.ndarray) -> np.ndarray:
        lo, hi = float(k.min()), float(k.max())
        return (k - lo) / (hi - lo) if hi > lo else np.full_like(k, 0.5)

    if cin in (1, 3):
        rows, cols = _grid(n)
        fig = _figure(0.9 * cols, 0.9 * rows + 0.5)
        axes = _tile_grid(fig, rows, cols, top=1 - 0.5 / (0.9 * rows + 0.5))
        for f, ax in enumerate(axes[:n]):
            k = kernel[..., f]
            if cin == 3:
                ax.imshow(norm(k), interpolation="nearest")
            else:
                ax.imshow(norm(k[..., 0]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(str(f), fontsize=7)
        kind = "RGB" if cin == 3 else "1 input channel"
        fig.suptitle(f"filters of '{conv.name}' ({kind}, each tile min..max)")
    else:
        ch = min(cin, max(1, int(max_channels)))
        fig = _figure(0.55 * ch + 0.6, 0.55 * n + 0.6)
        axes = _tile_grid(fig, n, ch, top=1 - 0.6 / (0.55 * n + 0.6))
        fig.subplots_adjust(left=0.08, hspace=0.1)
        for f in range(n):
            for c in range(ch):
                ax = axes[f * ch + c]
                ax.imshow(norm(kernel[:, :, c, f]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                if f == 0:
                    ax.set_title(f"in {c}", fontsize=6)
                if c == 0:
                    ax.set_ylabel(f"out {f}", fontsize=6, rotation=0, ha="right", va="center")
        shown = "" if ch == cin else f", first {ch} of {cin} inputs"
        shown += "" if n == cout else f", first {n} of {cout} filters"
        fig.suptitle(f"filters of '{conv.name}': rows = output filters, columns = input channels{shown}", fontsize=9)
    _save(fig, path)
    return fig


class ChannelContributions(NamedTuple):
    """What :func:`channel_contributions` returns (unpacks like a tuple)."""

    figure: Any
    partials: np.ndarray  # (cin, oh, ow): input channel c convolved with kernel[:, :, c, filter]
    bias: float  # the filter's bias (0 without use_bias)
    pre_activation: np.ndarray  # (oh, ow): the layer's output map before its activation
    output: np.ndarray  # (oh, ow): the layer's actual output map


def _probe(conv: Conv2D, use_bias: bool, input_shape: tuple, kernel: np.ndarray, bias: np.ndarray | None) -> Conv2D:
    """A one-filter, linear copy of ``conv`` (same kernel size, strides, padding, dilation)."""
    config = conv.get_config()
    config.update(
        name=f"{conv.name}_probe",
        filters=1,
        activation=None,
        use_bias=use_bias,
        kernel_regularizer=None,
        bias_regularizer=None,
    )
    probe = Conv2D.from_config(config)
    probe._core.build(list(input_shape), 0)  # a fixed seed: the weights are set right after
    probe.set_weights([kernel] if bias is None else [kernel, bias])
    return probe


def channel_contributions(
    model: Any,
    image: Any,
    layer: Any,
    filter: int,
    path: Any = None,
    max_channels: int | None = None,
    cmap: str = "RdBu_r",
) -> ChannelContributions:
    """How one output map of a Conv2D is made from its input maps.

    A Conv2D's output channel ``filter`` is, before its activation, the sum over input channels c
    of (input map c convolved with kernel[:, :, c, filter]) plus the filter's bias. This computes
    each of those partial maps with the core: the layer's input, every channel but c set to zero,
    through a linear one-filter copy of the layer without bias. Then
    ``partials.sum(0) + bias == pre_activation`` up to float32 rounding, and the activation of
    ``pre_activation`` is ``output``.

    The figure shows the partial maps on one shared, zero-centred colour scale (red adds, blue
    subtracts; the title gives each map's mean), then their sum plus bias and the layer's output.
    ``max_channels`` draws only the channels with the largest mean absolute contribution,
    strongest first (``partials`` still holds all of them, in channel order).

    Returns ``ChannelContributions(figure, partials, bias, pre_activation, output)``.
    """
    index, conv = _conv_layer(model, layer, "channel_contributions")
    kernel_and_bias = conv.get_weights()
    kernel = kernel_and_bias[0]
    cout = kernel.shape[-1]
    if isinstance(filter, bool) or not isinstance(filter, (int, np.integer)) or not -cout <= filter < cout:
        raise IndexError(f"channel_contributions: Conv2D '{conv.name}' has {cout} filters, received filter={filter!r}")
    f = int(filter) % cout
    x = _one_image(model, image)
    inputs = _layer_value(model, x, index, "input")  # (1, h, w, cin)
    output = conv(inputs, training=False)[0, ..., f]
    _, h, w, cin = inputs.shape
    k = np.ascontiguousarray(kernel[..., f : f + 1])
    bias = float(kernel_and_bias[1][f]) if len(kernel_and_bias) > 1 else 0.0

    # One batch of cin images: image c holds input channel c and zeros elsewhere.
    masked = np.zeros((cin, h, w, cin), dtype=np.float32)
    idx = np.arange(cin)
    masked[idx, :, :, idx] = np.moveaxis(inputs[0], -1, 0)
    partials = _probe(conv, False, (h, w, cin), k, None)(masked, training=False)[..., 0]
    pre_activation = _probe(conv, True, (h, w, cin), k, np.array([bias], np.float32))(inputs, training=False)[0, ..., 0]

    strength = np.abs(partials).mean(axis=(1, 2))
    if max_channels is None or max_channels >= cin:
        order = np.arange(cin)
    else:
        order = np.argsort(-strength, kind="stable")[: max(1, int(max_channels))]
    n = len(order)
    cols = max(2, math.ceil(math.sqrt(n + 2)))
    rows = math.ceil(n / cols) + 1
    fig = _figure(_TILE * cols, _TILE * rows + 0.7)
    axes = _tile_grid(fig, rows, cols, top=1 - 0.7 / (_TILE * rows + 0.7))
    scale = float(np.abs(partials).max()) or 1.0
    image_ = None
    for ax, c in zip(axes, order):
        image_ = ax.imshow(partials[c], cmap=cmap, vmin=-scale, vmax=scale, interpolation="nearest")
        ax.set_title(f"in {c}: {partials[c].mean():+.2g}", fontsize=7)
    last = axes[(rows - 1) * cols : (rows - 1) * cols + cols]
    summed = partials.sum(axis=0, dtype=np.float64) + bias
    top = float(max(np.abs(summed).max(), np.abs(output).max())) or 1.0
    last[0].imshow(summed, cmap=cmap, vmin=-top, vmax=top, interpolation="nearest")
    last[0].set_title(f"sum + bias ({bias:+.2g})", fontsize=7)
    last[1].imshow(output, cmap=cmap, vmin=-top, vmax=top, interpolation="nearest")
    last[1].set_title(f"output ({conv.activation})", fontsize=7)
    for ax in last[:2]:
        ax.set_frame_on(True)
    if image_ is not None:
        fig.colorbar(image_, ax=axes[:n], shrink=0.6, pad=0.01, aspect=30)
    shown = "" if n == cin else f" ({n} strongest of {cin})"
    fig.suptitle(f"'{conv.name}' filter {f}: contributions of its {cin} input maps{shown}", fontsize=9)
    _save(fig, path)
    return ChannelContributions(fig, partials, bias, pre_activation, output)


# -- predictions ----------------------------------------------------------------------------------
def _arrays(x: Any, y: Any, who: str) -> tuple[np.ndarray, np.ndarray]:
    """x and y as arrays; with y=None, x is a dataset of (x, y[, sample_weight]) batches."""
    if y is None:
        xs, ys = [], []
        try:
            for batch in x:
                xs.append(np.asarray(batch[0]))
                ys.append(np.asarray(batch[1]))
        except (TypeError, IndexError):
            raise TypeError(
                f"{who}: with y=None, x must be a dataset of (x, y) batches; received {type(x).__name__}"
            ) from None
        if not xs:
            raise ValueError(f"{who}: the dataset is empty")
        return np.concatenate(xs), np.concatenate(ys)
    return np.asarray(x), np.asarray(y)


def _labels_and_predictions(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int, who: str):
    """(true labels, predicted labels, confidence of the prediction, number of classes)."""
    if len(x) != len(y):
        raise ValueError(f"{who}: x has {len(x)} samples but y has {len(y)}")
    probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    probs = probs.reshape(len(x), -1)
    if probs.shape[1] == 1:  # one sigmoid unit: class 1 when p > 0.5
        p = probs[:, 0]
        pred = (p > 0.5).astype(np.int64)
        conf = np.where(pred == 1, p, 1 - p)
        k = 2
    else:
        pred = probs.argmax(axis=1)
        conf = probs[np.arange(len(x)), pred]
        k = probs.shape[1]
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        true = y.argmax(axis=1)
    else:
        yf = y.reshape(len(x)).astype(np.float64)
        if not np.all(yf == np.round(yf)) or (yf.size and yf.min() < 0):
            raise ValueError(f"{who}: expected integer class labels or one-hot rows, received values like {y[:3]!r}")
        true = yf.astype(np.int64)
    if true.size and true.max() >= k:
        raise ValueError(f"{who}: label {int(true.max())} is out of range for a model with {k} classes")
    return true, pred, conf, k


def _names(class_names: Any, k: int, who: str) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(k)]
    names = [str(n) for n in class_names]
    if len(names) != k:
        raise ValueError(f"{who}: expected {k} class_names, received {len(names)}")
    return names


def confusion_matrix(
    model: Any,
    x: Any,
    y: Any = None,
    class_names: Any = None,
    path: Any = None,
    normalize: bool = False,
    batch_size: int = 256,
) -> tuple[Any, np.ndarray]:
    """The confusion matrix of ``model`` on (x, y): rows are the true classes, columns the
    predicted ones. ``y`` holds integer labels or one-hot rows; with ``y=None`` x may be a dataset
    of (x, y) batches. ``normalize=True`` colours and labels each row as fractions of that class.

    Returns ``(fig, matrix)``, matrix the (k, k) integer counts (whatever ``normalize`` is).
    """
    x, y = _arrays(x, y, "confusion_matrix")
    true, pred, _, k = _labels_and_predictions(model, x, y, batch_size, "confusion_matrix")
    names = _names(class_names, k, "confusion_matrix")
    matrix = np.bincount(true * k + pred, minlength=k * k).reshape(k, k)
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    size = min(max(4.0, 0.45 * k + 2.0), 16.0)
    fig = _figure(size + 1.0, size, constrained=True)
    ax = fig.subplots()
    im = ax.imshow(shown, cmap="Blues", vmin=0, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(
        names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right" if max(map(len, names)) > 3 else "center"
    )
    ax.set_yticklabels(names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:
        high = float(shown.max()) or 1.0
        for i in range(k):
            for j in range(k):
                text = f"{shown[i, j]:.2f}" if normalize else str(matrix[i, j])
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8 if k <= 12 else 6,
                    color="white" if shown[i, j] > 0.5 * high else "black",
                )
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"confusion matrix: {matrix.sum()} samples, accuracy {accuracy:.2%}")
    _save(fig, path)
    return fig, matrix


def misclassified(
    model: Any,
    x: Any,
    y: Any = None,
    class_names: Any = None,
    path: Any = None,
    max_images: int = 25,
    batch_size: int = 256,
) -> tuple[Any, np.ndarray]:
    """A grid of the images the model gets wrong, most confident mistakes first, each titled
    "true -> predicted (confidence)". ``y`` holds integer labels or one-hot rows; with ``y=None``
    x may be a dataset of (x, y) batches. Images are shown as given, pixels 0..1 or 0..255.

    Returns ``(fig, indices)``: indices into x of the images shown, in the order shown.
    """
    x, y = _arrays(x, y, "misclassified")
    true, pred, conf, k = _labels_and_predictions(model, x, y, batch_size, "misclassified")
    names = _names(class_names, k, "misclassified")
    wrong = np.flatnonzero(true != pred)
    order = wrong[np.argsort(-conf[wrong], kind="stable")][: max(0, int(max_images))]
    if len(order) == 0:
        fig = _figure(4.0, 2.0)
        fig.text(0.5, 0.5, f"no misclassified images among {len(x)}", ha="center", va="center")
        _save(fig, path)
        return fig, order
    rows, cols = _grid(len(order))
    fig = _figure(1.6 * cols, 1.75 * rows + 0.7)
    axes = _tile_grid(fig, rows, cols, top=1 - 0.7 / (1.75 * rows + 0.7))
    for ax, i in zip(axes, order):
        _show_image(ax, x[i])
        ax.set_title(f"{names[true[i]]} -> {names[pred[i]]} ({conf[i]:.0%})", fontsize=7, color="tab:red")
    fig.suptitle(f"misclassified: {len(wrong)} of {len(x)} (true -> predicted, confidence)", fontsize=9)
    _save(fig, path)
    return fig, order
