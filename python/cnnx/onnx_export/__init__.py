"""ONNX export: ``model.export("m.onnx", format="onnx")`` writes the model's inference graph.

The graph is what ``predict`` computes: Dropout and the random augmentation layers are the
identity, BatchNormalization normalises with its moving statistics. The input is channels-last
(NHWC) with a dynamic batch axis, as cnnx takes it. ONNX's Conv and pooling are NCHW, so each
tensor may exist in both layouts; a Transpose is added only when a consumer needs the layout
its producer did not make (typically one after the input and one before Flatten, which must
flatten in NHWC order to match the Dense weights). Needs the optional ``onnx`` package
(``pip install cnnx[onnx]``).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from typing import Any

import numpy as np

from ._graph import _NHWC, DEFAULT_OPSET, OLDEST_OPSET, _Builder, _Tensor
from ._layers import (
    _batch_normalization,
    _conv2d,
    _converter,
    _depthwise_conv2d,
    _separable_conv2d,
)

# A protobuf message holds at most 2 GiB; leave room for the graph itself.
_MAX_WEIGHT_BYTES = 2**31 - 2**26

__all__ = ["export_onnx", "build_onnx_model", "DEFAULT_OPSET", "OLDEST_OPSET"]


def _input_name(model: Any) -> str:
    inputs = getattr(model, "_inputs", None)
    if inputs:
        return str(inputs[0].name)
    layer = getattr(model, "_input_layer", None)
    return layer.name if layer is not None else "input_layer"


def _batch_dim(model: Any, input_signature: Any) -> Any:
    """'batch' (dynamic), or the fixed batch size an input_signature asks for."""
    if input_signature is None:
        return "batch"
    spec = input_signature
    if isinstance(spec, (list, tuple)) and len(spec) == 1 and hasattr(spec[0], "shape"):
        spec = spec[0]
    shape = getattr(spec, "shape", None)
    if shape is None and isinstance(spec, (list, tuple)):
        shape = spec
    want = (None, *model._input_shape)
    if shape is not None:
        shape = tuple(None if d is None else int(d) for d in shape)
        if len(shape) == len(want) and shape[1:] == want[1:] and (shape[0] is None or shape[0] > 0):
            return "batch" if shape[0] is None else shape[0]
    raise ValueError(
        f"export: expected input_signature=None or one input spec of shape {want} (the batch axis None or a "
        f"positive int), received input_signature={input_signature!r}"
    )


def _ir_version(onnx: Any, opset: int) -> int:
    """The oldest IR version that carries `opset`, so older runtimes load the file."""
    versions = [ir for _, ir, op, *_ in onnx.helper.VERSION_TABLE if op >= opset]
    return min(versions) if versions else onnx.IR_VERSION


def _plan_folds(b: _Builder, rec: Any, out_node: int) -> set[int]:
    """Finds each BatchNormalization that reads a convolution with a linear activation whose
    output nothing else reads, and whose layer runs once (a shared layer keeps its own
    weights); records the fold in `b.folds`. Returns the graph nodes of the folded layers."""
    readers = Counter(i for inputs in rec.inputs for i in inputs)
    runs = Counter(id(layer) for layer in rec.layers)
    convolutions = (_conv2d, _depthwise_conv2d, _separable_conv2d)
    folded = set()
    for k, (layer, inputs) in enumerate(zip(rec.layers, rec.inputs), start=1):
        j = inputs[0]
        if _converter(layer) is not _batch_normalization or j == 0:
            continue
        conv = rec.layers[j - 1]
        if (
            _converter(conv) in convolutions
            and conv.activation == "linear"
            and readers[j] == 1
            and j != out_node
            and runs[id(conv)] == 1
            and id(conv) not in b.folds
        ):
            b.folds[id(conv)] = layer
            folded.add(k)
    return folded


def build_onnx_model(model: Any, opset: int = DEFAULT_OPSET, batch: Any = "batch") -> Any:
    """The ``onnx.ModelProto`` of `model`'s inference graph (nothing written)."""
    import onnx

    from ..models import _Recorder

    if not model.built and model._input_shape is not None:
        model.build()  # a Sequential that starts with an Input is built on first use
    if not model.built:
        raise ValueError(
            f"export: {model._where} is not built yet; build it (an Input, build(input_shape), or fit) before exporting"
        )
    if model.count_params() * 4 > _MAX_WEIGHT_BYTES:
        raise ValueError(
            f"export: {model._where} has {model.count_params()} parameters ({model.count_params() * 4} bytes); "
            f"expected at most {_MAX_WEIGHT_BYTES} bytes of weights, the most one ONNX file (a protobuf "
            "message, 2 GiB) holds. ONNX's external weight files are not supported"
        )
    rec = _Recorder()
    out_node = model._emit(rec, 0)
    for layer in rec.layers:  # every layer checked before any work: one clear error
        _converter(layer)
    b = _Builder(onnx, opset)
    folded = _plan_folds(b, rec, out_node)
    input_name = b.fresh(_input_name(model))
    tensors = {0: _Tensor(model._input_shape, input_name)}
    for k, (layer, inputs) in enumerate(zip(rec.layers, rec.inputs), start=1):
        ins = [tensors[i] for i in inputs]
        if k in folded:  # its arithmetic is in the convolution before it
            tensors[k] = ins[0]
            continue
        result = _converter(layer)(b, layer, ins)
        if isinstance(result, _Tensor):
            tensors[k] = result
        else:
            name, layout = result
            shape = tuple(layer._core.output_shape)
            tensors[k] = _Tensor(shape, name, layout if len(shape) == 3 else _NHWC)
    out = tensors[out_node]
    y = b.get(out, _NHWC)
    output_name = "output_0" if "output_0" not in b._names else b.fresh("output_0")
    if y == input_name:
        b.nodes.append(onnx.helper.make_node("Identity", [y], [output_name], name=output_name))
    else:  # rename the value the last node made
        for node in b.nodes:
            node.input[:] = [output_name if v == y else v for v in node.input]
            node.output[:] = [output_name if v == y else v for v in node.output]
    f = onnx.TensorProto.FLOAT
    graph = onnx.helper.make_graph(
        b.nodes,
        model.name,
        [onnx.helper.make_tensor_value_info(input_name, f, [batch, *model._input_shape])],
        [onnx.helper.make_tensor_value_info(output_name, f, [batch, *out.shape])],
        initializer=b.initializers,
    )
    from .. import __version__

    proto = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", opset)],
        producer_name="cnnx",
        producer_version=__version__,
        ir_version=_ir_version(onnx, opset),
    )
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _write_atomic(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.remove(temp)
        except FileNotFoundError:
            pass
        raise


def export_onnx(
    model: Any,
    filepath: Any,
    verbose: Any = None,
    input_signature: Any = None,
    opset_version: Any = None,
    **kwargs: Any,
) -> None:
    """Writes `model`'s inference graph to `filepath` as ONNX (see the module docstring)."""
    if kwargs:
        raise TypeError(f"export: unrecognized keyword arguments for format='onnx': {sorted(kwargs)}")
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "export(format='onnx') needs the onnx package: pip install onnx (or pip install cnnx[onnx])"
        ) from None
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"export: expected filepath to be a str or os.PathLike, received {type(filepath).__name__}")
    newest = onnx.defs.onnx_opset_version()
    opset = DEFAULT_OPSET if opset_version is None else opset_version
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not OLDEST_OPSET <= opset <= newest:
        raise ValueError(
            f"export: expected opset_version=None or an int in [{OLDEST_OPSET}, {newest}], "
            f"received opset_version={opset_version!r}"
        )
    path = os.fspath(filepath)
    proto = build_onnx_model(model, int(opset), _batch_dim(model, input_signature))
    _write_atomic(path, proto.SerializeToString())
    if verbose is None or verbose:
        print(f"Saved artifact at '{path}'.")
