"""Planning before training: what a model costs per layer and how long an epoch will take on
this CPU -- "is 250x250x3 too big for my machine?" answered with numbers.

FLOPs count a multiply-add as two operations (the usual convention: the article network's first
convolution is 28*28*32*9*2). Training costs about three forward passes per layer (forward,
weight gradient, input gradient) and two for the first layer, which needs no input gradient.
The time estimate is measured, not modelled: a few real training steps of the same architecture
at the same batch size are timed on this machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Plan", "LayerPlan", "plan"]


@dataclass
class LayerPlan:
    name: str
    kind: str
    output_shape: tuple
    params: int
    forward_flops: int  # per sample
    activation_bytes: int  # this layer's output for one batch
    workspace_bytes: int  # scratch the layer keeps for one batch (estimate)


@dataclass
class Plan:
    batch_size: int
    input_shape: tuple
    layers: list[LayerPlan] = field(default_factory=list)
    seconds_per_step: float | None = None
    threads: int = 1

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def forward_flops(self) -> int:
        """Per sample."""
        return sum(layer.forward_flops for layer in self.layers)

    @property
    def training_flops(self) -> int:
        """Per sample: forward + weight gradients + input gradients (none for the first layer)."""
        total = 0
        for i, layer in enumerate(self.layers):
            weighted = layer.params > 0
            total += layer.forward_flops * (1 + (1 if weighted else 0) + (1 if i > 0 else 0))
        return total

    @property
    def memory_bytes(self) -> int:
        """Activations and workspaces for one batch, gradients flowing back (two buffers the size
        of the largest activation), and weights with their gradients and two optimizer slots."""
        acts = sum(layer.activation_bytes + layer.workspace_bytes for layer in self.layers)
        largest = max(
            [layer.activation_bytes for layer in self.layers] + [self.batch_size * 4 * math.prod(self.input_shape)]
        )
        return acts + 2 * largest + 4 * 4 * self.params

    def epoch_seconds(self, n_images: int) -> float:
        """Estimated training time of one epoch over n_images (measured step time x steps)."""
        if self.seconds_per_step is None:
            raise ValueError("plan: the time per step was not measured (call plan(..., measure=True))")
        return self.seconds_per_step * math.ceil(n_images / self.batch_size)

    def __str__(self) -> str:
        rows = [("Layer (type)", "Output Shape", "Param #", "MFLOP/img", "Act. MB", "Work MB")]
        for layer in self.layers:
            rows.append(
                (
                    f"{layer.name} ({layer.kind})",
                    str(layer.output_shape),
                    f"{layer.params:,}",
                    f"{layer.forward_flops / 1e6:.2f}",
                    f"{layer.activation_bytes / 2**20:.1f}",
                    f"{layer.workspace_bytes / 2**20:.1f}",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines = [f"Plan for input {(None, *self.input_shape)}, batch {self.batch_size}, {self.threads} thread(s)"]
        for j, r in enumerate(rows):
            lines.append("  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(r)))
            if j == 0:
                lines.append("-" * (sum(widths) + 10))
        lines.append(f"Total params: {self.params:,}")
        lines.append(
            f"Forward: {self.forward_flops / 1e6:,.1f} MFLOP per image; "
            f"training: {self.training_flops / 1e6:,.1f} MFLOP per image"
        )
        lines.append(f"Memory for one training batch: {self.memory_bytes / 2**20:,.1f} MB")
        if self.seconds_per_step is not None:
            rate = self.batch_size / self.seconds_per_step
            lines.append(
                f"Measured: {self.seconds_per_step * 1e3:.1f} ms per training step = {rate:,.0f} images/s "
                f"({self.training_flops * rate / 1e9:.1f} GFLOP/s)"
            )
            for n in (1_000, 10_000, 60_000):
                lines.append(f"  one epoch of {n:,} images: ~{self.epoch_seconds(n):,.1f} s")
        return "\n".join(lines)


def _layer_flops(layer: Any, in_shape: tuple, out_shape: tuple) -> int:
    """Forward FLOPs per sample for one layer (2 per multiply-add; 1 per element for the
    element-wise layers; one comparison or add per pooling tap)."""
    kind = type(layer).__name__
    out_elems = math.prod(out_shape)
    if kind == "Conv2D":
        kh, kw = layer.kernel_size
        return 2 * out_elems * kh * kw * in_shape[-1]
    if kind == "Dense":
        return 2 * out_elems * in_shape[-1]
    if kind == "DepthwiseConv2D":  # one kh x kw window per output channel
        kh, kw = layer.kernel_size
        return 2 * out_elems * kh * kw
    if kind == "SeparableConv2D":  # the depthwise step, then a 1x1 convolution
        kh, kw = layer.kernel_size
        mid = math.prod(out_shape[:-1]) * in_shape[-1] * layer.depth_multiplier
        return 2 * mid * kh * kw + 2 * out_elems * in_shape[-1] * layer.depth_multiplier
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return out_elems * layer.pool_size[0] * layer.pool_size[1]
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return math.prod(in_shape)
    if kind in ("Flatten", "Reshape", "InputLayer"):
        return 0
    return out_elems * (4 if kind == "BatchNormalization" else 1)


def _layer_workspace(layer: Any, in_shape: tuple, out_shape: tuple, batch: int, threads: int) -> int:
    """Bytes of scratch a layer keeps for one batch, following the core's layout: a Conv2D holds
    per-thread im2col and column-gradient panels of about 512 output pixels and per-chunk
    weight-gradient partials; max-pooling an int32 index per output; dropout a mask."""
    kind = type(layer).__name__
    if kind == "Conv2D":
        kh, kw = layer.kernel_size
        patch = kh * kw * in_shape[-1]
        pix = out_shape[0] * out_shape[1]
        chunk = 1
        while 2 * chunk * pix <= 512:
            chunk *= 2
        chunk = min(chunk, batch)
        chunks = math.ceil(batch / chunk)
        panels = 2 * threads * chunk * pix * patch * 4
        partials = (chunks * patch * layer.filters * 4) if chunks > 1 else 0
        return panels + partials
    if kind in ("DepthwiseConv2D", "SeparableConv2D"):
        # kernels/depthwise_conv.hpp: 16 kernel-gradient partials, a scratch row per thread when
        # depth_multiplier > 1; SeparableConv2D also keeps the depthwise output for the batch.
        kh, kw = layer.kernel_size
        mid = in_shape[-1] * layer.depth_multiplier
        rows = threads * in_shape[1] * mid * 4 if layer.depth_multiplier > 1 else 0
        total = 16 * kh * kw * mid * 4 + rows
        if kind == "SeparableConv2D":
            total += batch * out_shape[0] * out_shape[1] * mid * 4
        return total
    if kind == "MaxPooling2D":
        return batch * math.prod(out_shape) * 4
    if kind == "Dropout":
        return batch * math.prod(out_shape) * 4
    return 0


def plan(model: Any, batch_size: int = 32, input_shape: Any = None, measure: bool = True, steps: int = 5) -> Plan:
    """Per-layer output shapes, parameters, FLOPs and memory, totals, and (measure=True) the
    time of a real training step at this batch size on this CPU.

    `input_shape` (h, w, c) plans the same architecture for another image size without touching
    `model`; otherwise the model's own input shape is used. A graph model (functional, or holding
    models) gets one row per node of its core graph: a layer used twice has two rows, its
    parameters counted on the first."""
    from . import get_num_threads
    from .models import Model, Sequential

    if not isinstance(model, Model):
        raise TypeError(f"plan: expected a cnnx model (Sequential or Model), received {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"plan: expected batch_size to be a positive integer, received {batch_size!r}")
    config = model.get_config()
    if input_shape is not None:
        shape = tuple(int(d) for d in input_shape if d is not None)
        config = _with_input_shape(model, config, shape)
    if isinstance(model, Sequential) and not config.get("input_shape"):
        raise ValueError("plan: the model's input shape is unknown; pass input_shape=(h, w, c)")
    work = model if input_shape is None and model.built else type(model).from_config(config)
    if not work.built:
        work.build()
    threads = get_num_threads()
    result = Plan(batch_size=int(batch_size), input_shape=tuple(work.input_shape[1:]), threads=threads)
    plain = isinstance(work, Sequential) and not any(isinstance(item, Model) for item in work.layers)
    if plain and len(work._flat_layers()) == len(work.layers):
        _plan_chain(work, result)
    else:
        _plan_graph(work, result)
    if measure:
        result.seconds_per_step = _time_steps(work, model, batch_size, steps)
    return result


def _with_input_shape(model: Any, config: dict, shape: tuple) -> dict:
    """The model's config with another per-sample input shape."""
    import copy

    from .models import Sequential

    if isinstance(model, Sequential):
        return {**config, "input_shape": (None, *shape)}
    config = copy.deepcopy(config)
    ref = config["input_layers"]
    name = ref[0] if isinstance(ref[0], str) else ref[0][0]
    for entry in config["layers"]:
        if entry["name"] == name:
            entry["config"]["batch_shape"] = [None, *shape]
    return config


def _plan_chain(work: Any, result: Plan) -> None:
    batch_size, threads = result.batch_size, result.threads
    shape = result.input_shape
    layers = work.layers
    for i, layer in enumerate(layers):
        out = tuple(layer.output_shape[1:])
        # A ReLU/linear Conv2D followed by MaxPooling2D runs fused in the core: its output lives
        # only in per-thread L2 panels (counted as workspace), never as a whole-batch buffer.
        fused = (
            type(layer).__name__ == "Conv2D"
            and i + 1 < len(layers)
            and type(layers[i + 1]).__name__ == "MaxPooling2D"
            and layer.activation in ("relu", "linear")
        )
        result.layers.append(
            LayerPlan(
                name=layer.name,
                kind=type(layer).__name__,
                output_shape=(None, *out),
                params=layer.count_params(),
                forward_flops=_layer_flops(layer, shape, out),
                activation_bytes=0 if fused else batch_size * math.prod(out) * 4,
                workspace_bytes=_layer_workspace(layer, shape, out, batch_size, threads),
            )
        )
        shape = out


def _plan_graph(work: Any, result: Plan) -> None:
    """One row per node of the core graph, in its order, with the core's own fusion decisions."""
    batch_size, threads = result.batch_size, result.threads
    nodes = work._core.node_plans()
    by_name = {layer.name: layer for layer in work._flat_layers()}
    counted: set[int] = set()
    for node in nodes:
        if node["class_name"] == "InputLayer":
            continue
        layer = by_name[node["layer"]]
        shape = tuple(nodes[node["inputs"][0]]["output_shape"])
        out = tuple(node["output_shape"])
        partner = by_name.get(node["fused_with"])
        fused = type(layer).__name__ == "Conv2D" and type(partner).__name__ == "MaxPooling2D"
        result.layers.append(
            LayerPlan(
                name=layer.name,
                kind=type(layer).__name__,
                output_shape=(None, *out),
                params=0 if id(layer) in counted else layer.count_params(),
                forward_flops=_layer_flops(layer, shape, out),
                activation_bytes=0 if fused else batch_size * math.prod(out) * 4,
                workspace_bytes=_layer_workspace(layer, shape, out, batch_size, threads),
            )
        )
        counted.add(id(layer))


def _time_steps(work: Any, original: Any, batch_size: int, steps: int) -> float:
    """Times real training steps on random data, on a copy so `original` keeps its weights."""
    from . import losses, optimizers

    probe = type(work).from_config(work.get_config())
    if original.compiled:
        probe._compile_from_config(original._compile_config())
    else:
        probe.compile(optimizer=optimizers.Adam(), loss=losses.CategoricalCrossentropy())
    probe.build()
    loss = probe.loss
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, *probe.input_shape[1:]), dtype=np.float32)
    out = probe.output_shape[1:]
    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        y = rng.integers(0, out[-1], (batch_size, *out[:-1])).astype(np.float32)
    else:
        y = np.zeros((batch_size, *out), np.float32)
        y[..., 0] = 1.0
    index = np.arange(batch_size, dtype=np.int64)
    for _ in range(2):  # warm-up: workspaces sized, pages touched
        probe._core.train_step(x, y, index)
    times = []
    for _ in range(max(1, steps)):
        start = time.perf_counter()
        probe._core.train_step(x, y, index)
        times.append(time.perf_counter() - start)
    return float(np.median(times))
