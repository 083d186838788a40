"""Resolve the value of a tensor when it only depends on constants (and static shapes).

Used by the control-flow passes to decide an `If` condition or a `Loop` trip count, and to name
the data-dependent source when it cannot be decided.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import GraphProto, ModelProto, NodeProto, numpy_helper

from ._graph import PROTOBUF_LIMIT, copy_model, has_subgraph, node_label, producers

NONDETERMINISTIC_OPS = {
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Bernoulli",
    "Multinomial",
}
MAX_EVAL_ELEMENTS = 1 << 20  # do not materialize huge tensors just to decide a condition
MAX_CONE_NODES = 2000
# inputs (by index) whose VALUES decide an op's output shape: non-constant ones block shape inference
_SHAPE_FROM_VALUES = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Pad": (1, 3), "Slice": (1, 2, 3, 4), "Range": (0, 1, 2),
    "ConstantOfShape": (0,), "Resize": (1, 2, 3), "Upsample": (1,), "TopK": (1,), "OneHot": (1,),
    "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "ReduceSum": (1,), "ReduceMean": (1,), "ReduceMax": (1,),
    "ReduceMin": (1,), "ReduceProd": (1,), "NonZero": (0,), "Compress": (1,), "CenterCropPad": (1,),
}


def _static(dims) -> bool:
    return dims is not None and all(d is not None for d in dims)


def static_shapes(model: ModelProto) -> dict[str, list[int | None]]:
    """name -> dims (None for unknown) from ONNX shape inference; {} if inference fails."""
    shapes: dict[str, list[int | None]] = {}
    work = model
    if model.ByteSize() < PROTOBUF_LIMIT:
        try:
            from .shapes import data_prop_safe

            work = onnx.shape_inference.infer_shapes(copy_model(model), strict_mode=False, data_prop=data_prop_safe(model))
        except Exception:  # noqa: BLE001 - inference is best effort here
            work = model
    g = work.graph
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
            continue
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


class ConstResolver:
    """Evaluate tensors of one graph scope that depend only on constants.

    `outer` maps names from enclosing scopes (or substituted values, e.g. a Loop iteration
    number) to numpy values. Values of Shape/Size nodes are taken from `shapes` when static.
    """

    def __init__(
        self,
        model: ModelProto,
        graph: GraphProto | None = None,
        *,
        outer: dict[str, np.ndarray] | None = None,
        shapes: dict[str, list[int | None]] | None = None,
        parent: "ConstResolver | None" = None,
        input_label: str = "graph input",
    ):
        self.input_label = input_label
        self.model = model
        self.parent = parent
        self.graph = graph if graph is not None else model.graph
        self.outer = dict(outer or {})
        self.shapes = shapes or {}
        self.inits = {i.name: i for i in self.graph.initializer}
        self.inputs = {i.name for i in self.graph.input}
        self.producers = producers(self.graph)
        self._cache: dict[str, np.ndarray | None] = {}
        self._budget = MAX_CONE_NODES

    # -- public -----------------------------------------------------------------------------
    def value(self, name: str) -> np.ndarray | None:
        if not name:
            return None
        if name in self._cache:
            return self._cache[name]
        self._cache[name] = None  # guards against cycles
        val = self._compute(name)
        self._cache[name] = val
        return val

    def describe(self, name: str) -> str:
        """Where a (non-constant) value comes from, for error messages."""
        if not name:
            return "absent"
        if name in self.inputs and name not in self.inits:
            return f"{self.input_label} '{name}'"
        node = self.producers.get(name)
        if node is None:
            if self.parent is not None:
                return self.parent.describe(name)
            return f"outer-scope value '{name}'"
        text = f"node {node_label(node)}"
        leaves = self._dynamic_leaves(name)
        if leaves:
            more = f" (+{len(leaves) - 3} more)" if len(leaves) > 3 else ""
            text += " which depends on " + ", ".join(sorted(leaves)[:3]) + more
        return text

    def blocker(self, name: str) -> str:
        """Why `name` is not a constant: follows the first non-constant input down to the node
        that blocks, e.g. "the output shape of node 'p' (Pad) depends on its input 'pads', which
        is computed from the values of graph input 'x'"."""
        parts: list[str] = []
        mode, cur = "value", name
        for _ in range(10000):
            if mode == "value":
                if cur in self.inputs and cur not in self.inits:
                    parts.append(f"the values of {self.input_label} '{cur}'")
                    break
                node = self.producers.get(cur)
                if node is None:
                    parts.append(self.parent.describe(cur) if self.parent is not None else f"outer-scope value '{cur}'")
                    break
                if node.op_type in NONDETERMINISTIC_OPS:
                    parts.append(f"random node {node_label(node)}")
                    break
                if has_subgraph(node):
                    parts.append(f"node {node_label(node)}, which has a subgraph (fold it first)")
                    break
                if node.op_type in ("Shape", "Size") and node.input:
                    parts.append(f"node {node_label(node)} reads the shape of '{node.input[0]}'")
                    mode, cur = "shape", node.input[0]
                    continue
                nxt = next((i for i in node.input if i and self._safe_value(i) is None), None)
                if nxt is None:
                    parts.append(f"node {node_label(node)}, which could not be evaluated")
                    break
                parts.append(node_label(node))
                cur = nxt
                continue
            # mode == "shape": why is the shape of `cur` not static?
            dims = self.shapes.get(cur)
            if cur in self.inputs and cur not in self.inits:
                parts.append(f"{self.input_label} '{cur}' has dynamic dims {dims} (pin them with --input-shape or --dim)")
                break
            node = self.producers.get(cur)
            if node is None:
                parts.append(f"outer-scope value '{cur}' has no static shape")
                break
            unknown = next((i for i in node.input if i and not _static(self.shapes.get(i)) and i not in self.inits), None)
            if unknown is not None and node.op_type not in _SHAPE_FROM_VALUES:
                cur = unknown
                continue
            arg = next((node.input[k] for k in _SHAPE_FROM_VALUES.get(node.op_type, ()) if k < len(node.input)
                        and node.input[k] and self._safe_value(node.input[k]) is None), None)
            if arg is not None:
                parts.append(f"the output shape of node {node_label(node)} depends on its input '{arg}'")
                mode, cur = "value", arg
                continue
            if unknown is not None:
                cur = unknown
                continue
            parts.append(f"shape inference gives no static shape for the output of node {node_label(node)}")
            break
        if len(parts) > 8:
            parts = parts[:3] + [f"... ({len(parts) - 6} more)"] + parts[-3:]
        return " <- ".join(parts)

    def _safe_value(self, name: str):
        try:
            return self.value(name)
        except RecursionError:
            return None

    # -- internals --------------------------------------------------------------------------
    def _dynamic_leaves(self, name: str) -> set[str]:
        leaves: set[str] = set()
        seen: set[str] = set()
        stack = [name]
        while stack and len(seen) < 10000:
            cur = stack.pop()
            if cur in seen or not cur:
                continue
            seen.add(cur)
            if cur in self.inits or cur in self.outer:
                continue
            if cur in self.inputs:
                leaves.add(f"{self.input_label} '{cur}'")
                continue
            node = self.producers.get(cur)
            if node is None:
                if self.parent is not None and self.parent.value(cur) is None:
                    leaves.add(self.parent.describe(cur).split(" which depends on ")[0])
                elif self.parent is None:
                    leaves.add(f"outer-scope value '{cur}'")
                continue
            if node.op_type in NONDETERMINISTIC_OPS:
                leaves.add(f"random node {node_label(node)}")
                continue
            if node.op_type in ("Shape", "Size") and node.input:
                # the shape is what is unknown; name the tensor it comes from
                stack.append(node.input[0])
                continue
            stack.extend(i for i in node.input if i)
        return leaves

    def _compute(self, name: str) -> np.ndarray | None:
        if name in self.outer:
            return np.asarray(self.outer[name])
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.producers.get(name)
        if node is None:
            if name in self.inputs or self.parent is None:
                return None
            return self.parent.value(name)
        self._budget -= 1
        if self._budget < 0:
            return None
        if node.op_type in NONDETERMINISTIC_OPS or has_subgraph(node):
            return None
        if node.op_type == "Constant":
            return _constant_value(node)
        if node.op_type in ("Shape", "Size"):
            return self._shape_value(node)
        vals = []
        for i in node.input:
            if not i:
                vals.append(None)
                continue
            v = self.value(i)
            if v is None:
                return None
            vals.append(v)
        if any(v is not None and v.size > MAX_EVAL_ELEMENTS for v in vals):
            return None
        try:
            outs = _eval_node(self.model, node, vals)
        except Exception:  # noqa: BLE001 - anything the evaluator cannot do is "not constant"
            return None
        for o, v in zip(node.output, outs):
            if o and o != name:
                self._cache[o] = v
        return outs[list(node.output).index(name)]

    def _shape_value(self, node: NodeProto) -> np.ndarray | None:
        src = node.input[0]
        val = self._cache.get(src) if src in self._cache else None
        if val is not None:
            dims = list(val.shape)
        else:
            dims = self.shapes.get(src)
            if dims is None or any(d is None for d in dims):
                v = self.value(src) if src in self.inits or src in self.outer else None
                if v is None:
                    return None
                dims = list(v.shape)
        return shape_of_node(node, dims)


def _constant_value(node: NodeProto) -> np.ndarray | None:
    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name == "value_float":
            return np.array(a.f, dtype=np.float32)
        if a.name == "value_floats":
            return np.array(list(a.floats), dtype=np.float32)
        if a.name == "value_int":
            return np.array(a.i, dtype=np.int64)
        if a.name == "value_ints":
            return np.array(list(a.ints), dtype=np.int64)
    return None


def _eval_node(model: ModelProto, node: NodeProto, vals: list[np.ndarray | None]) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    inputs = []
    feeds = {}
    n = NodeProto()
    n.CopyFrom(node)
    del n.input[:]
    for k, v in enumerate(vals):
        if v is None:
            n.input.append("")
            continue
        nm = f"in{k}"
        n.input.append(nm)
        arr = np.asarray(v)
        inputs.append(
            onnx.helper.make_tensor_value_info(nm, onnx.helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape)
        )
        feeds[nm] = arr
    outs = [f"out{k}" for k in range(len(node.output))]
    del n.output[:]
    n.output.extend(outs)
    g = onnx.helper.make_graph([n], "eval", inputs, [onnx.helper.make_value_info(o, onnx.TypeProto()) for o in outs])
    m = onnx.helper.make_model(g, opset_imports=list(model.opset_import))
    res = ReferenceEvaluator(m).run(None, feeds)
    return [np.asarray(r) for r in res]


def shape_of_node(node, dims: list[int]) -> np.ndarray:
    """What `Shape` (with its opset-15 start/end) or `Size` returns for a tensor of `dims`."""
    if node.op_type == "Size":
        return np.array(int(np.prod(dims, dtype=np.int64)), dtype=np.int64)
    rank = len(dims)
    start, end = 0, rank
    for a in node.attribute:
        if a.name == "start":
            start = a.i
        elif a.name == "end":
            end = a.i
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return np.array(dims[start:end], dtype=np.int64)
