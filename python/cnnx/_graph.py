"""Symbolic tensors and the call graph of Keras' functional API.

``Input(shape)`` returns a ``KerasTensor``: a shape (None, ...) and the record of how it was
made. Calling a layer (or a model) on KerasTensors builds it for their shapes and returns a new
KerasTensor; the call itself is kept as a ``Node`` in the layer's ``_inbound_nodes`` (one per
call: a layer called twice has two nodes and shares its weights between them). ``map_graph``
walks back from a model's outputs to its inputs and orders what it finds, as Keras'
``keras.src.ops.function.map_graph`` does. Nothing here computes: the C++ core runs the graph.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, NamedTuple

__all__ = [
    "KerasTensor",
    "Node",
    "KerasHistory",
    "is_symbolic",
    "symbolic_inputs",
    "map_graph",
    "functional_config",
    "functional_from_config",
]


class KerasHistory(NamedTuple):
    operation: Any  # the Layer, InputLayer or Model whose call made the tensor
    node_index: int  # which call of it (its _inbound_nodes[node_index])
    tensor_index: int  # which of that call's outputs (always 0: one output per call)


class KerasTensor:
    """A symbolic tensor: the shape and dtype of a batch that does not exist yet, with the layer
    call that will compute it. Calling layers on KerasTensors describes a model's graph."""

    def __init__(self, shape: tuple, name: str | None = None):
        from .layers import _auto_name

        self.shape = tuple(shape)
        self.dtype = "float32"
        self.sparse = False
        self.name = name or _auto_name("KerasTensor")
        self._keras_history: KerasHistory | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, sparse={self.sparse}, name={self.name}>"

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        # Keras refuses too: the tensor has no values, only a shape.
        raise TypeError(
            f"KerasTensor '{self.name}' is symbolic (shape {self.shape}, no values): it describes a model's "
            "input or an intermediate result. Build a model with cnnx.Model(inputs, outputs) and call "
            "model.predict(x) on arrays"
        )

    def __bool__(self) -> bool:
        raise TypeError(f"KerasTensor '{self.name}' is symbolic; it has no truth value")

    __hash__ = object.__hash__  # identity: tensors are graph vertices, not values


class Node:
    """One call of an operation (layer, InputLayer or model) in a graph: its input tensors and
    the tensor it made. ``list_call``: the operation was called with a list (merge layers), so
    it receives a list of shapes and is serialized with a list argument."""

    def __init__(self, operation: Any, inputs: list, outputs: list, list_call: bool = False):
        self.operation = operation
        self.input_tensors = list(inputs)
        self.output_tensors = list(outputs)
        self.list_call = bool(list_call)
        self.index = len(operation._inbound_nodes)
        operation._inbound_nodes.append(self)
        for i, t in enumerate(self.output_tensors):
            t._keras_history = KerasHistory(operation, self.index, i)

    @property
    def is_input(self) -> bool:
        return not self.input_tensors

    @property
    def parent_nodes(self) -> list[Node]:
        return [t._keras_history.operation._inbound_nodes[t._keras_history.node_index] for t in self.input_tensors]

    def __repr__(self) -> str:
        return f"<Node {self.operation.name}[{self.index}]>"


def is_symbolic(x: Any) -> bool:
    """Whether a call gets KerasTensors (describe the graph) rather than arrays (compute)."""
    if isinstance(x, KerasTensor):
        return True
    return isinstance(x, (list, tuple)) and any(isinstance(t, KerasTensor) for t in x)


def symbolic_inputs(x: Any, who: str) -> tuple[list[KerasTensor], bool]:
    """The KerasTensors of a symbolic call and whether they came as a list."""
    if isinstance(x, KerasTensor):
        return [x], False
    tensors = list(x)
    bad = [t for t in tensors if not isinstance(t, KerasTensor)]
    if bad or not tensors:
        raise TypeError(
            f"{who}: expected a KerasTensor or a list of KerasTensors (from cnnx.Input or a layer call), "
            f"received a list containing {type(bad[0]).__name__ if bad else 'nothing'}"
        )
    return tensors, True


def _node_of(t: KerasTensor) -> Node:
    op, node_index, _ = t._keras_history
    return op._inbound_nodes[node_index]


def map_graph(inputs: list[KerasTensor], outputs: list[KerasTensor]) -> tuple[list[Node], list[Any]]:
    """The nodes between `inputs` and `outputs` in an order where every node comes after the
    nodes it reads (deepest first, as Keras runs them), and the operations in Keras' order
    (by decreasing depth, ties in the order a walk back from the outputs first meets them).

    ValueError "Graph disconnected" when an output needs a tensor the inputs do not give, as
    Keras words it; the walk is iterative, so a chain of thousands of layers cannot exhaust
    Python's recursion limit."""
    input_ids = {id(t) for t in inputs}
    finished: set[int] = set()
    in_progress: set[int] = set()
    ordered: list[Node] = []  # inputs -> outputs
    op_index: dict[int, int] = {}
    for output in outputs:
        # Depth-first, post-order, with an explicit stack of (node, expanded?).
        stack = [(_node_of(output), output, False)]
        while stack:
            node, tensor, expanded = stack.pop()
            key = id(node)
            if expanded:
                in_progress.discard(key)
                if key not in finished:
                    finished.add(key)
                    ordered.append(node)
                continue
            if key in finished:
                continue
            if key in in_progress:
                raise ValueError(f"Tensor {tensor} from operation '{node.operation.name}' is part of a cycle.")
            op_index.setdefault(id(node.operation), len(op_index))
            in_progress.add(key)
            stack.append((node, tensor, True))
            if not node.is_input and id(tensor) not in input_ids:
                for t in reversed(node.input_tensors):
                    stack.append((_node_of(t), t, False))

    # Depth: the number of nodes between a node and an output (Keras' definition).
    depth: dict[int, int] = {}
    op_depth: dict[int, int] = {}
    by_id = {id(n): n for n in ordered}
    for node in reversed(ordered):
        d = depth.setdefault(id(node), 0)
        d = max(d, op_depth.get(id(node.operation), 0))
        op_depth[id(node.operation)] = d
        depth[id(node)] = d
        if node.is_input:
            continue
        for t in node.input_tensors:
            parent = _node_of(t)
            depth[id(parent)] = max(d + 1, depth.get(id(parent), 0))
    for t in inputs:
        op = t._keras_history.operation
        if id(op) not in op_depth:  # an input no output uses
            op_depth[id(op)] = 0
            op_index[id(op)] = -1
            node = _node_of(t)
            depth[id(node)] = 0
            by_id[id(node)] = node

    nodes_by_depth: defaultdict[int, list[Node]] = defaultdict(list)
    for key, d in depth.items():
        nodes_by_depth[d].append(by_id[key])
    ops: dict[int, Any] = {}
    for node in by_id.values():
        ops[id(node.operation)] = node.operation
    operations = sorted(ops.values(), key=lambda op: (-op_depth[id(op)], op_index[id(op)]))

    # Every tensor a node reads must be computable from the inputs.
    computable = set(input_ids)
    seen_ops: list[str] = []
    schedule: list[Node] = []
    for d in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[d]:
            for t in node.input_tensors:
                if id(t) not in computable:
                    raise ValueError(
                        f"Graph disconnected: cannot find parent for tensor {t} at operation "
                        f"'{node.operation!r}'. The following previous operations were accessed "
                        f"without issue: {seen_ops}"
                    )
            if node.is_input and not any(id(t) in input_ids for t in node.output_tensors):
                raise ValueError(
                    f"Graph disconnected: cannot find parent for tensor {node.output_tensors[0]} at operation "
                    f"'{node.operation!r}': it is an Input the model's inputs do not include. The following "
                    f"previous operations were accessed without issue: {seen_ops}"
                )
            seen_ops.append(node.operation.name)
            schedule.append(node)
            for t in node.output_tensors:
                computable.add(id(t))

    counts = Counter(op.name for op in operations)
    for name, n in counts.items():
        if n != 1:
            raise ValueError(f'The name "{name}" is used {n} times in the model. All operation names should be unique.')
    return schedule, operations


# -- configuration (Keras 3's functional config format) --------------------------------------------
def _module_of(op: Any) -> tuple[str, str, str | None]:
    """(module, class_name, registered_name) as Keras writes them for a layer or a model."""
    from .models import Model, Sequential

    if isinstance(op, Sequential):
        return "keras", "Sequential", None
    if isinstance(op, Model):
        return "keras.src.models.functional", "Functional", "Functional"
    return "keras.layers", type(op).__name__, None


def functional_config(model: Any) -> dict:
    """A functional model's get_config(): every operation with the calls of it that belong
    to this model (node indices renumbered among those, as Keras does), and references
    [layer name, node index, tensor index] to the input and output tensors."""
    from .models import Model, Sequential

    own = model._node_ids
    renumbered: dict[int, int] = {}
    for op in model._operations:
        kept = 0
        for node in op._inbound_nodes:
            if id(node) in own:
                renumbered[id(node)] = kept
                kept += 1

    def history(t: KerasTensor) -> list:
        op, _, tensor_index = t._keras_history
        return [op.name, renumbered[id(_node_of(t))], tensor_index]

    def tensor(t: KerasTensor) -> dict:
        return {
            "class_name": "__keras_tensor__",
            "config": {"shape": list(t.shape), "dtype": t.dtype, "keras_history": history(t)},
        }

    layers = []
    for op in model._operations:
        inbound = []
        for node in op._inbound_nodes:
            if id(node) in own and not node.is_input:
                args = [tensor(t) for t in node.input_tensors]
                inbound.append({"args": [args if node.list_call else args[0]], "kwargs": {}})
        module, class_name, registered = _module_of(op)
        layers.append(
            {
                "module": module,
                "class_name": class_name,
                "config": op.get_config(),
                "registered_name": registered,
                "name": op.name,
                "inbound_nodes": inbound,
            }
        )

    def reference(t: KerasTensor) -> list:
        ref = history(t)
        op = t._keras_history.operation
        if isinstance(op, Model) and not isinstance(op, Sequential):
            ref[1] += 1  # Keras counts a functional model's own graph as its node 0
        return ref

    def references(struct: Any) -> list:
        return [reference(t) for t in struct] if isinstance(struct, (list, tuple)) else reference(struct)

    return {
        "name": model.name,
        "trainable": model.trainable,
        "layers": layers,
        "input_layers": references(model._inputs_struct),
        "output_layers": references(model._outputs_struct),
    }


def functional_from_config(cls: Any, config: dict, make_layer: Any) -> Any:
    """Rebuilds a functional model from functional_config(): makes every layer, then replays
    its calls in an order where each call comes after the calls it reads and after the same
    layer's previous call (a layer shared at several depths, A(B(A(x))), waits for its input).
    Calls that refer to each other in a cycle, or to calls that do not exist, are refused."""
    from .layers import InputLayer
    from .models import Model, Sequential

    who = f"{getattr(cls, '__name__', 'Model')}.from_config"
    created: dict[str, Any] = {}
    made: dict[str, list[Node]] = {}  # the calls replayed here (a shared layer may have others)
    calls: list[tuple[str, int, Any]] = []  # (layer name, call index, node data)
    for entry in config["layers"]:
        name = entry["name"]
        if name in created:
            raise ValueError(f"{who}: the layer name {name!r} is used twice")
        layer = make_layer(entry, who)
        if layer.name != name:
            raise ValueError(f"{who}: layer entry {name!r} holds a layer named {layer.name!r}")
        created[name] = layer
        made[name] = [layer._inbound_nodes[0]] if isinstance(layer, InputLayer) else []
        calls.extend((name, k, node) for k, node in enumerate(entry.get("inbound_nodes", [])))

    def refs_of(node_data: dict) -> tuple[Any, list]:
        (arg,) = node_data["args"]
        refs = [t["config"]["keras_history"] for t in (arg if isinstance(arg, list) else [arg])]
        for name, node_index, tensor_index in refs:
            if name not in created:
                raise ValueError(f"{who}: a call refers to layer {name!r}, which the config does not define")
            if tensor_index != 0 or node_index < 0:
                raise ValueError(f"{who}: invalid tensor reference {[name, node_index, tensor_index]!r}")
        return arg, refs

    # Kahn's algorithm over the calls; the input layers' calls exist from the start.
    index = {(name, k): i for i, (name, k, _) in enumerate(calls)}
    waiting = [0] * len(calls)
    readers: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, (name, k, node) in enumerate(calls):
        _, refs = refs_of(node)
        needs = {(r[0], r[1]) for r in refs} | ({(name, k - 1)} if k else set())
        for need in needs:
            if need not in index and not (need[1] < len(made[need[0]])):
                raise ValueError(f"{who}: call {k} of layer {name!r} reads {list(need)}, a call that does not exist")
            if need in index:
                waiting[i] += 1
                readers[need].append(i)
    ready = [i for i in range(len(calls)) if waiting[i] == 0]
    replayed = 0
    while ready:
        i = ready.pop()
        name, k, node = calls[i]
        arg, refs = refs_of(node)
        tensors = [made[r[0]][r[1]].output_tensors[0] for r in refs]
        created[name](tensors if isinstance(arg, list) else tensors[0])
        made[name].append(created[name]._inbound_nodes[-1])
        replayed += 1
        for reader in readers[(name, k)]:
            waiting[reader] -= 1
            if waiting[reader] == 0:
                ready.append(reader)
    if replayed != len(calls):
        stuck = sorted({calls[i][0] for i in range(len(calls)) if waiting[i]})
        raise ValueError(f"{who}: the calls of layers {stuck[:5]} form a cycle")

    def lookup(ref: list) -> KerasTensor:
        name, node_index, tensor_index = ref
        if name not in created:
            raise ValueError(f"{who}: the model's input or output refers to layer {name!r}, which it does not define")
        if isinstance(created[name], Model) and not isinstance(created[name], Sequential):
            node_index -= 1  # Keras counts a functional model's own graph as its node 0
        if not 0 <= node_index < len(made[name]) or tensor_index != 0:
            raise ValueError(f"{who}: the model's input or output {ref!r} refers to a call that does not exist")
        return made[name][node_index].output_tensors[0]

    def tensors(struct: list) -> Any:
        if struct and isinstance(struct[0], str):
            return lookup(struct)
        return [tensors(ref) for ref in struct]

    return cls(
        tensors(config["input_layers"]),
        tensors(config["output_layers"]),
        name=config.get("name"),
        trainable=config.get("trainable", True),
    )
