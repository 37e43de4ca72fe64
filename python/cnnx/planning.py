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
    params: int  # a layer used at several nodes counts its weights at its first node only
    forward_flops: int  # per sample
    activation_bytes: int  # this node's output for one batch (0 when fused into the next node)
    workspace_bytes: int  # scratch the core plans for this node at this batch size
    algorithm: str = ""  # a Conv2D's forward route ("im2col_gemm", "implicit_gemm", "direct_1x1")
    core_plan: dict = field(default_factory=dict)  # the core's whole plan (Conv2D: every route)
    weight_grads: bool = False  # backward computes this node's weight gradients
    input_grads: bool = False  # backward passes a gradient on to this node's inputs


@dataclass
class Plan:
    batch_size: int
    input_shape: tuple
    layers: list[LayerPlan] = field(default_factory=list)
    seconds_per_step: float | None = None
    threads: int = 1
    # The core's memory plan for this batch (floats): every activation backward needs, and the
    # gradient buffers. None for a Plan put together by hand.
    activation_floats: int | None = None
    gradient_floats: int | None = None

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def forward_flops(self) -> int:
        """Per sample."""
        return sum(layer.forward_flops for layer in self.layers)

    @property
    def training_flops(self) -> int:
        """Per sample: forward + weight gradients + input gradients, for the nodes whose backward
        computes them (the first layer needs no input gradient, a frozen one no weight gradient)."""
        return sum(layer.forward_flops * (1 + layer.weight_grads + layer.input_grads) for layer in self.layers)

    @property
    def memory_bytes(self) -> int:
        """Activations, gradients and workspaces for one batch as the core plans them, the
        gathered input batch, and weights with their gradients and two optimizer slots."""
        work = sum(layer.workspace_bytes for layer in self.layers)
        batch_input = self.batch_size * 4 * math.prod(self.input_shape)
        if self.activation_floats is not None and self.gradient_floats is not None:
            return 4 * (self.activation_floats + self.gradient_floats) + batch_input + work + 4 * 4 * self.params
        # by hand: every activation, and two gradient buffers the size of the largest
        acts = sum(layer.activation_bytes for layer in self.layers)
        largest = max([layer.activation_bytes for layer in self.layers] + [batch_input])
        return acts + work + 2 * largest + 4 * 4 * self.params

    def epoch_seconds(self, n_images: int) -> float:
        """Estimated training time of one epoch over n_images (measured step time x steps)."""
        if self.seconds_per_step is None:
            raise ValueError("plan: the time per step was not measured (call plan(..., measure=True))")
        return self.seconds_per_step * math.ceil(n_images / self.batch_size)

    def __str__(self) -> str:
        rows = [("Layer (type)", "Output Shape", "Param #", "MFLOP/img", "Act. MB", "Work MB", "Algorithm")]
        for layer in self.layers:
            rows.append(
                (
                    f"{layer.name} ({layer.kind})",
                    str(layer.output_shape),
                    f"{layer.params:,}",
                    f"{layer.forward_flops / 1e6:.2f}",
                    f"{layer.activation_bytes / 2**20:.1f}",
                    f"{layer.workspace_bytes / 2**20:.1f}",
                    layer.algorithm,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(7)]
        lines = [f"Plan for input {(None, *self.input_shape)}, batch {self.batch_size}, {self.threads} thread(s)"]
        for j, r in enumerate(rows):
            cells = (c.ljust(widths[i]) if i in (0, 1, 6) else c.rjust(widths[i]) for i, c in enumerate(r))
            lines.append("  ".join(cells).rstrip())
            if j == 0:
                lines.append("-" * (sum(widths) + 12))
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


def _layer_flops(layer: Any, kind: str, in_shape: tuple, out_shape: tuple) -> int:
    """Forward FLOPs per sample for one node (2 per multiply-add; 1 per element for the
    element-wise layers; one comparison or add per pooling tap)."""
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


def _graph_copy(core: Any, layers: list, input_shape: tuple) -> tuple[Any, dict]:
    """The same graph of fresh layers (from their configs, trainable flags kept) on
    `input_shape`, in a plain core Model: returns it and {id(new core layer): new layer}."""
    from . import _core

    by_core = {id(layer._core): layer for layer in layers}
    copy = _core.Model()
    copy.add_input(list(input_shape))
    fresh: dict[int, Any] = {}
    for node in range(1, core.node_count):
        original = by_core.get(id(core.node_layer(node)))
        if original is None:
            raise ValueError(f"plan: the model's layer '{core.node_layer(node).name}' is not in its layers list")
        if id(original) not in fresh:
            layer = type(original).from_config(original.get_config())
            layer._core.trainable = original._core.trainable
            fresh[id(original)] = layer
        copy.add_node(fresh[id(original)]._core, core.node_inputs(node))
    copy.set_output(core.node_count - 1)  # nodes are topologically ordered and all lead to the output
    copy.build()
    return copy, {id(layer._core): layer for layer in fresh.values()}


def _check_model(model: Any) -> Any:
    from . import _core

    core = getattr(model, "_core", None)
    if not isinstance(core, _core.Model):
        raise TypeError(f"plan: expected a cnnx model (Sequential or Model), received {type(model).__name__}")
    return core


def plan(model: Any, batch_size: int = 32, input_shape: Any = None, measure: bool = True, steps: int = 5) -> Plan:
    """Per-layer output shapes, parameters, FLOPs and memory, totals, and (measure=True) the
    time of a real training step at this batch size on this CPU.

    Everything but the FLOPs comes from the core's own plans: which nodes run fused
    (node_plans), the activation and gradient buffers of a training step (memory_plan), and each
    node's workspace and convolution route (layer_plans) -- computed for the batch size, nothing
    allocated. `input_shape` (h, w, c) plans the same architecture for another image size on a
    copy, without touching `model`; otherwise the model's own input shape is used."""
    from . import get_num_threads
    from .models import Sequential

    core = _check_model(model)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"plan: expected batch_size to be a positive integer, received {batch_size!r}")
    shape = None if input_shape is None else tuple(int(d) for d in input_shape if d is not None)
    layers = list(model._flat_layers()) if hasattr(model, "_flat_layers") else list(model.layers)
    if not core.built:
        # an unbuilt Sequential knows its layers (and perhaps its input shape) but has no graph yet
        if not isinstance(model, Sequential):
            raise ValueError("plan: build the model first")
        config = model.get_config()
        if shape is not None:
            config = {**config, "input_shape": (None, *shape)}
        if not config.get("input_shape"):
            raise ValueError("plan: the model's input shape is unknown; pass input_shape=(h, w, c)")
        work = Sequential.from_config(config)
        work.build()
        core, layers, shape = work._core, work._flat_layers(), None
    if shape is not None and shape != tuple(core.input_shape):
        core, by_core = _graph_copy(core, layers, shape)
    else:
        by_core = {id(layer._core): layer for layer in layers}

    nodes = core.node_plans()
    memory = core.memory_plan(int(batch_size))
    layer_plans = core.layer_plans(int(batch_size))
    result = Plan(
        batch_size=int(batch_size),
        input_shape=tuple(core.input_shape),
        threads=get_num_threads(),
        activation_floats=memory["training_activation_floats"],
        gradient_floats=memory["training_gradient_floats"],
    )
    seen: set[int] = set()
    for i in range(1, len(nodes)):
        node, lp = nodes[i], layer_plans[i]
        layer_core = core.node_layer(i)
        first_use = id(layer_core) not in seen
        seen.add(id(layer_core))
        out = tuple(node["output_shape"])
        in_shape = tuple(nodes[node["inputs"][0]]["output_shape"])
        # A node fused with the node that consumes it (a ReLU/linear Conv2D with its
        # MaxPooling2D) keeps its output only in per-thread L2 panels (its workspace), never as a
        # whole-batch buffer.
        into_consumer = node["fused_with"] != "" and any(
            other["layer"] == node["fused_with"] and i in other["inputs"] for other in nodes
        )
        result.layers.append(
            LayerPlan(
                name=node["layer"],
                kind=node["class_name"],
                output_shape=(None, *out),
                params=int(layer_core.count_params()) if first_use else 0,
                forward_flops=_layer_flops(by_core.get(id(layer_core)), node["class_name"], in_shape, out),
                activation_bytes=0 if into_consumer else batch_size * math.prod(out) * 4,
                workspace_bytes=4 * lp["workspace_floats"],
                algorithm=lp["plan"].get("algorithm", ""),
                core_plan=dict(lp["plan"]),
                weight_grads=bool(node["computes_weight_grads"]),
                input_grads=any(u > 0 and nodes[u]["runs_backward"] for u in node["inputs"]),
            )
        )
    if measure:
        result.seconds_per_step = _time_steps(model, core, by_core, int(batch_size), steps)
    return result


def _time_steps(original: Any, core: Any, by_core: dict, batch_size: int, steps: int) -> float:
    """Times real training steps on random data, on a copy so `original` keeps its weights."""
    from . import losses, optimizers

    probe, _ = _graph_copy(core, list(by_core.values()), tuple(core.input_shape))
    if getattr(original, "compiled", False) and getattr(original, "loss", None) is not None:
        loss = original.loss  # may be written in Python: timed as it is
        opt_type = type(original.optimizer).__name__
        opt = optimizers.from_config({"class_name": opt_type, "config": original.optimizer.get_config()})
    else:
        loss, opt = losses.CategoricalCrossentropy(), optimizers.Adam()
    probe.compile(losses._core_loss(loss), opt._core)
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, *probe.input_shape), dtype=np.float32)
    out = tuple(probe.output_shape)
    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        y = rng.integers(0, out[-1], (batch_size, *out[:-1])).astype(np.float32)
    else:
        y = np.zeros((batch_size, *out), np.float32)
        y[..., 0] = 1.0
    index = np.arange(batch_size, dtype=np.int64)
    for _ in range(2):  # warm-up: workspaces sized, pages touched
        probe.train_step(x, y, index)
    times = []
    for _ in range(max(1, steps)):
        start = time.perf_counter()
        probe.train_step(x, y, index)
        times.append(time.perf_counter() - start)
    return float(np.median(times))
