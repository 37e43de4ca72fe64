"""The graph being built: cnnx tensors in one or both layouts, nodes, initializers.

Only 4-D tensors (batches of images) have two layouts: cnnx's NHWC and ONNX's NCHW (what Conv
and the poolings need). A tensor remembers the ONNX value of each layout made so far, so a
Transpose is added only where a consumer needs the other layout, and only once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_OPSET = 18
OLDEST_OPSET = 17  # before 18, ReduceMean / ReduceMax take their axes as an attribute
_NHWC, _NCHW = "nhwc", "nchw"
_NHWC_AXIS_IN_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}  # where each NHWC axis sits in NCHW


class _Tensor:
    """One cnnx tensor of the graph: its per-sample shape (cnnx's channels-last order) and
    the ONNX value holding it in each layout made so far. Only 4-D tensors (images) have an
    NCHW form; any other rank is in cnnx's order."""

    def __init__(self, shape: Any, name: str, layout: str = _NHWC):
        self.shape = tuple(int(d) for d in shape)
        self.names = {layout: name}

    @property
    def image(self) -> bool:
        return len(self.shape) == 3


class _Builder:
    """Collects nodes and initializers with unique names."""

    def __init__(self, onnx: Any, opset: int = DEFAULT_OPSET):
        self.onnx = onnx
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()
        self._consts: dict[Any, str] = {}
        # id(convolution layer) -> the BatchNormalization folded into its kernel and bias
        self.folds: dict[int, Any] = {}

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def const(self, base: str, array: Any, key: Any = None) -> str:
        """An initializer; `key` identifies a weight so that a layer used twice shares it."""
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(base)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        if key is not None:
            self._consts[key] = name
        return name

    def f32(self, base: str, array: Any) -> str:
        return self.const(base, np.asarray(array, dtype=np.float32))

    def i64(self, base: str, array: Any) -> str:
        return self.const(base, np.asarray(array, dtype=np.int64))

    def op(self, op_type: str, inputs: list[str], base: str, **attrs: Any) -> str:
        out = self.fresh(base)
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def get(self, t: _Tensor, layout: str) -> str:
        """`t` in `layout`, transposing once (then cached) if it was only made in the other."""
        if not t.image:
            return t.names[_NHWC]
        if layout not in t.names:
            src = next(iter(t.names.values()))
            perm = [0, 3, 1, 2] if layout == _NCHW else [0, 2, 3, 1]
            t.names[layout] = self.op("Transpose", [src], f"{src}/to_{layout}", perm=perm)
        return t.names[layout]

    def any_layout(self, t: _Tensor) -> tuple[str, str]:
        """A layout `t` already exists in (for ops that do not care), and its value."""
        layout = next(iter(t.names))
        return layout, t.names[layout]
