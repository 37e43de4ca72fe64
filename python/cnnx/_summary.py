"""``model.summary()`` in Keras 3's layout (box-drawn table, then the parameter totals): three
columns for a Sequential and for a functional model that is a plain chain, and a fourth,
"Connected to", for a functional model with branches or shared layers, as Keras does."""

from __future__ import annotations

from typing import Any


def _bytes(n_params: int) -> str:
    size = n_params * 4.0
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


def _sequential_like(model: Any) -> bool:
    """Keras' test: a functional model whose nodes form one chain (one node per depth, each
    reading one tensor) with no layer called twice prints like a Sequential."""
    from .models import Functional

    if not isinstance(model, Functional):
        return True
    nodes = model._nodes
    if len({id(n.operation) for n in nodes}) != len(nodes):
        return False
    for prev, node in zip(nodes, nodes[1:]):
        if len(node.input_tensors) != 1 or node.input_tensors[0] is not prev.output_tensors[0]:
            return False
    return True


def _output_shape(model: Any, layer: Any) -> str:
    from .models import Functional

    if isinstance(model, Functional):
        # Keras shows the output of the layer's last call in this model
        own = [n for n in layer._inbound_nodes if id(n) in model._node_ids]
        if own:
            return str(own[-1].output_tensors[0].shape)
    return str(layer.output_shape) if _built(layer) else "?"


def _built(layer: Any) -> bool:
    """Whether the row has shapes and weights: a nested model's layers may be built (by the
    outer model) while its own core is not."""
    from .models import Model

    if isinstance(layer, Model):
        return layer._input_shape is not None and layer._output_shape is not None
    return layer.built


def _connections(model: Any, layer: Any) -> str:
    out = []
    for node in layer._inbound_nodes:
        if id(node) not in model._node_ids:
            continue
        for t in node.input_tensors:
            op, node_index, tensor_index = t._keras_history
            out.append(f"{op.name}[{node_index}][{tensor_index}]")
    return ", ".join(out) or "-"


def _param_counts(model: Any) -> tuple[int, int]:
    """(trainable, non-trainable) parameters, each shared weight once: Keras counts a frozen
    layer's weights, and BatchNormalization's moving statistics, as non-trainable."""
    flags = model._effective_trainable()
    trainable = total = 0
    for layer in model._flat_layers():
        if not layer.built:
            continue
        n = layer.count_params()
        total += n
        if not flags.get(id(layer), False):
            continue
        weight_flags = layer._core.weight_trainable()
        if all(weight_flags):
            trainable += n
        else:  # rare (BatchNormalization's moving statistics): look at the weights themselves
            trainable += sum(w.size for w, t in zip(layer.get_weights(), weight_flags) if t)
    return trainable, total - trainable


def format_summary(model: Any) -> str:
    connected = not _sequential_like(model)
    headers = ("Layer (type)", "Output Shape", "Param #") + (("Connected to",) if connected else ())
    rows = []
    for layer in model.layers:
        shape = _output_shape(model, layer)
        params = f"{layer.count_params():,}" if _built(layer) else "0 (unbuilt)"
        row = (f"{layer.name} ({type(layer).__name__})", shape, params)
        rows.append(row + ((_connections(model, layer),) if connected else ()))
    minimum = (31, 22, 13, 24) if connected else (31, 22, 13)
    w = [max(minimum[i], len(headers[i]) + 2, *(len(r[i]) + 2 for r in rows)) for i in range(len(headers))]

    def line(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * (x + 2) for x in w) + right

    def cells(values: tuple, sep: str) -> str:
        text = [f"{v:>{w[i]}}" if i == 2 else f"{v:<{w[i]}}" for i, v in enumerate(values)]
        return sep + " " + f" {sep} ".join(text) + " " + sep

    out = [f'Model: "{model.name}"']
    out.append(line("┏", "┳", "┓", "━"))
    out.append(cells(headers, "┃"))
    out.append(line("┡", "╇", "┩", "━"))
    for i, r in enumerate(rows):
        out.append(cells(r, "│"))
        if i + 1 < len(rows):
            out.append(line("├", "┼", "┤", "─"))
    out.append(line("└", "┴", "┘", "─"))
    trainable, frozen = _param_counts(model)
    total = trainable + frozen
    out.append(f" Total params: {total:,} ({_bytes(total)})")
    out.append(f" Trainable params: {trainable:,} ({_bytes(trainable)})")
    out.append(f" Non-trainable params: {frozen:,} ({_bytes(frozen)})")
    return "\n".join(out)
