"""``model.summary()`` in Keras 3's layout (box-drawn table, then the parameter totals)."""

from __future__ import annotations

from typing import Any


def _bytes(n_params: int) -> str:
    size = n_params * 4.0
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


def format_summary(model: Any) -> str:
    headers = ("Layer (type)", "Output Shape", "Param #")
    rows = []
    for layer in model.layers:
        shape = str(layer.output_shape) if layer.built else "?"
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        rows.append((f"{layer.name} ({type(layer).__name__})", shape, params))
    w = [max(31, *(len(r[0]) + 2 for r in rows)), max(22, *(len(r[1]) + 2 for r in rows)), 13]
    w = [max(w[i], len(headers[i]) + 2) for i in range(3)]

    def line(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * (x + 2) for x in w) + right

    def cells(values: tuple, sep: str) -> str:
        a, b, c = values
        return f"{sep} {a:<{w[0]}} {sep} {b:<{w[1]}} {sep} {c:>{w[2]}} {sep}"

    out = [f'Model: "{model.name}"']
    out.append(line("┏", "┳", "┓", "━"))
    out.append(cells(headers, "┃"))
    out.append(line("┡", "╇", "┩", "━"))
    for i, r in enumerate(rows):
        out.append(cells(r, "│"))
        if i + 1 < len(rows):
            out.append(line("├", "┼", "┤", "─"))
    out.append(line("└", "┴", "┘", "─"))
    total = trainable = 0
    for layer in model.layers:
        if not layer.built:
            continue
        total += layer.count_params()
        flags = layer._core.weight_trainable()
        if all(flags):
            trainable += layer.count_params()
        else:  # rare (BatchNormalization's moving statistics): look at the weights themselves
            trainable += sum(w.size for w, t in zip(layer.get_weights(), flags) if t)
    out.append(f" Total params: {total:,} ({_bytes(total)})")
    out.append(f" Trainable params: {trainable:,} ({_bytes(trainable)})")
    out.append(f" Non-trainable params: {total - trainable:,} ({_bytes(total - trainable)})")
    return "\n".join(out)
