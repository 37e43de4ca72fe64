"""One converter per cnnx layer class: (builder, layer, input tensors) -> (ONNX value, layout)
of its output, or an input tensor itself (layers that are the identity at inference). Each
reproduces the core's inference arithmetic (same op order where it matters: BatchNormalization,
Average, Resizing)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ._graph import _NCHW, _NHWC, _NHWC_AXIS_IN_NCHW, _Builder, _Tensor


def _weights(layer: Any) -> dict[str, np.ndarray]:
    return dict(zip(layer._core.weight_names(), layer.get_weights()))


def _activate(b: _Builder, layer: Any, activation: str, x: str, layout: str, image: bool) -> str:
    """Keras' activation by name on value `x`; softmax over the channels axis."""
    base = f"{layer.name}/{activation}"
    if activation == "linear":
        return x
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
    if activation in simple:
        return b.op(simple[activation], [x], base)
    if activation == "softmax":
        return b.op("Softmax", [x], base, axis=1 if (image and layout == _NCHW) else -1)
    if activation == "leaky_relu":  # the string form's slope, as keras.activations.leaky_relu
        return b.op("LeakyRelu", [x], base, alpha=0.2)
    if activation == "elu":
        return b.op("Elu", [x], base, alpha=1.0)
    raise ValueError(f"export: {layer._where}: activation {activation!r} has no ONNX export")


def _same_pads(in_size: int, k: int, s: int, d: int, same: bool) -> tuple[int, int]:
    """(before, after) padding as TensorFlow computes it for 'same' (see conv_geometry.hpp)."""
    if not same:
        return 0, 0
    out = -(-in_size // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - in_size, 0)
    return total // 2, total - total // 2


def _window_attrs(layer: Any, shape: tuple, kernel: tuple, dilation: tuple = (1, 1)) -> dict:
    same = layer.padding == "same"
    top, bottom = _same_pads(shape[0], kernel[0], layer.strides[0], dilation[0], same)
    left, right = _same_pads(shape[1], kernel[1], layer.strides[1], dilation[1], same)
    return {"kernel_shape": list(kernel), "strides": list(layer.strides), "pads": [top, left, bottom, right]}


def _conv_node(b: _Builder, layer: Any, x: str, shape: tuple, kernel: np.ndarray, bias: Any, group: int, key: str):
    """Conv on NCHW `x`; `kernel` already (out, in / group, kh, kw)."""
    attrs = _window_attrs(layer, shape, kernel.shape[2:], layer.dilation_rate)
    inputs = [x, b.const(f"{layer.name}/{key}", kernel, (id(layer), key))]
    if bias is not None:
        inputs.append(b.const(f"{layer.name}/bias", bias, (id(layer), "bias")))
    return b.op("Conv", inputs, f"{layer.name}/Conv", dilations=list(layer.dilation_rate), group=group, **attrs)


def _bn_terms(bn: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BatchNormalization at inference is (x - mean) * a + beta with a = gamma /
    sqrt(moving_variance + epsilon), a computed as the core does (float32 epsilon, the square
    root in double). Returns (mean, a, beta)."""
    w = _weights(bn)
    eps = np.float64(np.float32(bn.epsilon))
    invstd = (1.0 / np.sqrt(w["moving_variance"].astype(np.float64) + eps)).astype(np.float32)
    a = w["gamma"] * invstd if "gamma" in w else invstd
    beta = w.get("beta", np.zeros_like(a))
    return w["moving_mean"], a, beta


def _folded(b: _Builder, layer: Any, kernel: np.ndarray, bias: Any) -> tuple[np.ndarray, Any]:
    """`kernel` (out, ...) and `bias` with the BatchNormalization that follows `layer` folded in
    (when build_onnx_model found one): kernel * a, (bias - mean) * a + beta per output channel."""
    bn = b.folds.get(id(layer))
    if bn is None:
        return kernel, bias
    mean, a, beta = (t.astype(np.float64) for t in _bn_terms(bn))
    bias = np.zeros(kernel.shape[0]) if bias is None else bias.astype(np.float64)
    kernel = kernel.astype(np.float64) * a.reshape(-1, *[1] * (kernel.ndim - 1))
    return kernel.astype(np.float32), ((bias - mean) * a + beta).astype(np.float32)


def _conv2d(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    w = _weights(layer)
    kernel = w["kernel"].transpose(3, 2, 0, 1)  # (kh, kw, cin, f) -> (f, cin, kh, kw)
    kernel, bias = _folded(b, layer, kernel, w.get("bias"))
    y = _conv_node(b, layer, b.get(ins[0], _NCHW), ins[0].shape, kernel, bias, 1, "kernel")
    return _activate(b, layer, layer.activation, y, _NCHW, True), _NCHW


def _depthwise_kernel(k: np.ndarray) -> np.ndarray:
    """(kh, kw, cin, m) -> (cin * m, 1, kh, kw): output channel c * m + j reads input c."""
    kh, kw, cin, m = k.shape
    return k.reshape(kh, kw, cin * m).transpose(2, 0, 1)[:, None, :, :]


def _depthwise_conv2d(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    w = _weights(layer)
    cin = ins[0].shape[2]
    kernel, bias = _folded(b, layer, _depthwise_kernel(w["kernel"]), w.get("bias"))
    y = _conv_node(b, layer, b.get(ins[0], _NCHW), ins[0].shape, kernel, bias, cin, "kernel")
    return _activate(b, layer, layer.activation, y, _NCHW, True), _NCHW


def _separable_conv2d(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    w = _weights(layer)
    cin = ins[0].shape[2]
    depthwise = _depthwise_kernel(w["depthwise_kernel"])
    y = _conv_node(b, layer, b.get(ins[0], _NCHW), ins[0].shape, depthwise, None, cin, "depthwise_kernel")
    pointwise = w["pointwise_kernel"].transpose(3, 2, 0, 1)  # (1, 1, cin * m, f) -> (f, cin * m, 1, 1)
    pointwise, bias = _folded(b, layer, pointwise, w.get("bias"))
    inputs = [y, b.const(f"{layer.name}/pointwise_kernel", pointwise, (id(layer), "pointwise_kernel"))]
    if bias is not None:
        inputs.append(b.const(f"{layer.name}/bias", bias, (id(layer), "bias")))
    y = b.op("Conv", inputs, f"{layer.name}/pointwise")
    return _activate(b, layer, layer.activation, y, _NCHW, True), _NCHW


def _pooling(op_type: str, **extra: Any) -> Callable:
    def convert(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
        attrs = _window_attrs(layer, ins[0].shape, layer.pool_size)
        return b.op(op_type, [b.get(ins[0], _NCHW)], f"{layer.name}/{op_type}", **attrs, **extra), _NCHW

    return convert


def _global_pooling(op_type: str) -> Callable:
    def convert(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
        layout, x = b.any_layout(ins[0])
        axes = [2, 3] if layout == _NCHW else [1, 2]
        keep = int(layer.keepdims)
        if b.opset < 18:
            y = b.op(op_type, [x], f"{layer.name}/{op_type}", axes=axes, keepdims=keep)
        else:
            y = b.op(op_type, [x, b.i64(f"{layer.name}/axes", axes)], f"{layer.name}/{op_type}", keepdims=keep)
        return y, layout if layer.keepdims else _NHWC

    return convert


def _flatten(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    x = b.get(ins[0], _NHWC)  # cnnx flattens channels-last: the Dense weights expect that order
    if len(ins[0].shape) == 1:
        return x, _NHWC
    return b.op("Flatten", [x], f"{layer.name}/Flatten", axis=1), _NHWC


def _reshape(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    shape = b.i64(f"{layer.name}/shape", [-1, *layer._core.output_shape])
    return b.op("Reshape", [b.get(ins[0], _NHWC), shape], f"{layer.name}/Reshape"), _NHWC


def _dense(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    w = _weights(layer)
    kernel = b.const(f"{layer.name}/kernel", w["kernel"], (id(layer), "kernel"))
    y = b.op("MatMul", [b.get(ins[0], _NHWC), kernel], f"{layer.name}/MatMul")
    if "bias" in w:
        y = b.op("Add", [y, b.const(f"{layer.name}/bias", w["bias"], (id(layer), "bias"))], f"{layer.name}/BiasAdd")
    return _activate(b, layer, layer.activation, y, _NHWC, False), _NHWC


def _channel_shape(layout: str, image: bool, c: int) -> tuple:
    return (c, 1, 1) if (image and layout == _NCHW) else (c,)


def _batch_normalization(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    """Where not folded into a convolution: the core's arithmetic, (x - mean) * a + beta."""
    mean, a, beta = _bn_terms(layer)
    layout, x = b.any_layout(ins[0])
    shape = _channel_shape(layout, ins[0].image, ins[0].shape[-1])
    n = layer.name
    y = b.op("Sub", [x, b.f32(f"{n}/moving_mean", mean.reshape(shape))], f"{n}/sub_mean")
    y = b.op("Mul", [y, b.f32(f"{n}/scale", a.reshape(shape))], f"{n}/scale")
    if layer.center:
        y = b.op("Add", [y, b.f32(f"{n}/beta", beta.reshape(shape))], f"{n}/add_beta")
    return y, layout


def _activation_layer(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    layout, x = b.any_layout(ins[0])
    return _activate(b, layer, layer.activation, x, layout, ins[0].image), layout


def _softmax(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    layout, x = b.any_layout(ins[0])  # the core accepts the last axis only
    return _activate(b, layer, "softmax", x, layout, ins[0].image), layout


def _leaky_relu(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    layout, x = b.any_layout(ins[0])
    return b.op("LeakyRelu", [x], f"{layer.name}/LeakyRelu", alpha=float(layer.negative_slope)), layout


def _elu(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    layout, x = b.any_layout(ins[0])
    return b.op("Elu", [x], f"{layer.name}/Elu", alpha=float(layer.alpha)), layout


def _relu(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    """Keras' ReLU: x > threshold ? min(x, max_value) : negative_slope * (x - threshold)."""
    layout, x = b.any_layout(ins[0])
    n = layer.name
    if layer.negative_slope == 0.0 and layer.threshold == 0.0:
        y = b.op("Relu", [x], f"{n}/Relu")
        if layer.max_value is not None:
            y = b.op("Min", [y, b.f32(f"{n}/max_value", layer.max_value)], f"{n}/max_value")
        return y, layout
    above = x if layer.max_value is None else b.op("Min", [x, b.f32(f"{n}/max_value", layer.max_value)], f"{n}/min")
    threshold = b.f32(f"{n}/threshold", layer.threshold)
    below = b.op(
        "Mul", [b.f32(f"{n}/negative_slope", layer.negative_slope), b.op("Sub", [x, threshold], f"{n}/sub")], f"{n}/mul"
    )
    mask = b.op("Greater", [x, threshold], f"{n}/above")
    return b.op("Where", [mask, above, below], f"{n}/Where"), layout


def _rescaling(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    layout, x = b.any_layout(ins[0])
    y = b.op("Mul", [x, b.f32(f"{layer.name}/scale", layer.scale)], f"{layer.name}/scale")
    if layer.offset != 0.0:
        y = b.op("Add", [y, b.f32(f"{layer.name}/offset", layer.offset)], f"{layer.name}/offset")
    return y, layout


def _identity(b: _Builder, layer: Any, ins: list[_Tensor]) -> _Tensor:
    return ins[0]  # Dropout and the random augmentation layers at inference


def _resize_tables(offset: int, crop: int, out: int, nearest: bool) -> tuple:
    """Source rows (or columns) and blend weights of each output pixel, as the core's
    kernels::resize_axis computes them (half-pixel centres, in double)."""
    o = np.arange(out, dtype=np.float64)
    scale = float(crop) / float(out)
    if nearest:
        i = np.minimum(np.floor((o + 0.5) * scale).astype(np.int64), crop - 1)
        i = offset + np.maximum(i, 0)
        return i, i, np.zeros(out, np.float32)
    s = (o + 0.5) * scale - 0.5
    f = np.floor(s)
    i = f.astype(np.int64)
    lo = offset + np.clip(i, 0, crop - 1)
    hi = offset + np.clip(i + 1, 0, crop - 1)
    return lo, hi, (s - f).astype(np.float32)


def _resizing(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    """Resizing as gathers of the source rows and columns and the core's blend
    (a + (b - a) * t, along x then y): the same arithmetic, so the same values."""
    h, w, _ = ins[0].shape
    oh, ow = layer.height, layer.width
    crop_h, crop_w, top, left = h, w, 0, 0
    if layer.crop_to_aspect_ratio:  # the core's centred crop box (resizing.cpp)
        crop_h = min(max(int(float(w) * float(oh) / float(ow)), 1), h)
        crop_w = min(max(int(float(h) * float(ow) / float(oh)), 1), w)
        top, left = int(float(h - crop_h) / 2.0), int(float(w - crop_w) / 2.0)
    nearest = layer.interpolation == "nearest"
    rows = _resize_tables(top, crop_h, oh, nearest)
    cols = _resize_tables(left, crop_w, ow, nearest)
    layout, x = b.any_layout(ins[0])
    ax_h, ax_w = (2, 3) if layout == _NCHW else (1, 2)
    n = layer.name

    def gather(src: str, idx: np.ndarray, axis: int, what: str) -> str:
        return b.op("Gather", [src, b.i64(f"{n}/{what}", idx)], f"{n}/gather_{what}", axis=axis)

    if nearest:
        return gather(gather(x, rows[0], ax_h, "rows"), cols[0], ax_w, "cols"), layout

    def lerp(a: str, c: str, t: str, what: str) -> str:
        diff = b.op("Sub", [c, a], f"{n}/{what}_diff")
        return b.op("Add", [a, b.op("Mul", [diff, t], f"{n}/{what}_mul")], f"{n}/{what}")

    # weights broadcast along the width (then height) axis of the layout
    fx = b.f32(f"{n}/fx", cols[2].reshape((ow, 1) if layout == _NHWC else (ow,)))
    fy = b.f32(f"{n}/fy", rows[2].reshape((oh, 1, 1) if layout == _NHWC else (oh, 1)))
    r0, r1 = gather(x, rows[0], ax_h, "rows_lo"), gather(x, rows[1], ax_h, "rows_hi")
    top_row = lerp(gather(r0, cols[0], ax_w, "cols_lo"), gather(r0, cols[1], ax_w, "cols_hi"), fx, "top")
    bottom_row = lerp(gather(r1, cols[0], ax_w, "cols_lo"), gather(r1, cols[1], ax_w, "cols_hi"), fx, "bottom")
    return lerp(top_row, bottom_row, fy, "blend"), layout


def _merge_inputs(b: _Builder, ins: list[_Tensor]) -> tuple[str, list[str]]:
    """A layout every input already has if there is one, else the first input's."""
    common = [lay for lay in ins[0].names if all(lay in t.names for t in ins)] if ins[0].image else [_NHWC]
    layout = common[0] if common else next(iter(ins[0].names))
    return layout, [b.get(t, layout) for t in ins]


def _elementwise(op_type: str, divide: bool = False) -> Callable:
    def convert(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
        layout, xs = _merge_inputs(b, ins)
        y = xs[0]
        for k, x in enumerate(xs[1:], start=1):  # in input order, as the core sums
            y = b.op(op_type, [y, x], f"{layer.name}/{op_type}_{k}")
        if divide and len(xs) > 1:  # Average: the sum divided (not multiplied by 1/k)
            y = b.op("Div", [y, b.f32(f"{layer.name}/count", float(len(xs)))], f"{layer.name}/Div")
        if y is xs[0]:
            y = b.op("Identity", [y], f"{layer.name}/Identity")
        return y, layout

    return convert


def _concatenate(b: _Builder, layer: Any, ins: list[_Tensor]) -> tuple[str, str]:
    layout, xs = _merge_inputs(b, ins)
    rank = len(ins[0].shape) + 1
    axis = layer.axis + rank if layer.axis < 0 else layer.axis
    if ins[0].image and layout == _NCHW:
        axis = _NHWC_AXIS_IN_NCHW[axis]
    return b.op("Concat", xs, f"{layer.name}/Concat", axis=axis), layout


_CONVERTERS: dict[str, Callable] = {
    "Conv2D": _conv2d,
    "DepthwiseConv2D": _depthwise_conv2d,
    "SeparableConv2D": _separable_conv2d,
    "MaxPooling2D": _pooling("MaxPool"),
    "AveragePooling2D": _pooling("AveragePool", count_include_pad=0),
    "GlobalAveragePooling2D": _global_pooling("ReduceMean"),
    "GlobalMaxPooling2D": _global_pooling("ReduceMax"),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Dense": _dense,
    "BatchNormalization": _batch_normalization,
    "Activation": _activation_layer,
    "ReLU": _relu,
    "LeakyReLU": _leaky_relu,
    "ELU": _elu,
    "Softmax": _softmax,
    "Rescaling": _rescaling,
    "Resizing": _resizing,
    "Dropout": _identity,
    "RandomFlip": _identity,
    "RandomRotation": _identity,
    "RandomTranslation": _identity,
    "RandomZoom": _identity,
    "RandomContrast": _identity,
    "Add": _elementwise("Add"),
    "Subtract": _elementwise("Sub"),
    "Multiply": _elementwise("Mul"),
    "Average": _elementwise("Add", divide=True),
    "Maximum": _elementwise("Max"),
    "Minimum": _elementwise("Min"),
    "Concatenate": _concatenate,
}


def _converter(layer: Any) -> Callable:
    from .. import layers as layers_mod

    for cls in type(layer).__mro__:  # a subclass of a cnnx layer exports as that layer
        if cls.__module__.startswith("cnnx.") and cls.__name__ in _CONVERTERS:
            if getattr(layers_mod, cls.__name__, None) is cls:
                return _CONVERTERS[cls.__name__]
    raise ValueError(
        f"export: cannot export layer '{layer.name}' of class {type(layer).__name__} to ONNX; "
        f"expected one of the cnnx layers {', '.join(sorted(_CONVERTERS))}"
    )
