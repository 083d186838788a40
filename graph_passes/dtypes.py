"""dtype hygiene for Sentis: int64 range and Cast-to-bool.

Sentis runs integers as int32 and saturates int64 constants/attributes at import (INT64_MAX →
2147483647); its Cast to bool truncates instead of testing "non-zero" (sentis.md §3, §2.3 Cast).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, TensorProto, numpy_helper

from ._graph import PROTOBUF_LIMIT, all_names, consumers, copy_model, node_label, unique_namer
from .errors import GraphPassError

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
# Ops through which an int64 value passes unchanged (element values preserved).
_PASS_THROUGH = {"Identity": None, "Concat": None, "Unsqueeze": 0, "Squeeze": 0, "Reshape": 0, "Flatten": 0}
# (op, input index) where values beyond int32 saturate harmlessly: ONNX clamps Slice starts/ends
# to the dim anyway, so ±2^31-1 means the same as ±2^63-1 for any dim < 2^31.
_SATURATING_INPUTS = {("Slice", 1), ("Slice", 2)}
_SATURATING_ATTRS = {("Slice", "starts"), ("Slice", "ends"), ("Shape", "start"), ("Shape", "end")}


@dataclass
class Int64Issue:
    kind: str  # "initializer" | "constant" | "attribute"
    name: str  # tensor name, or attribute name for kind == "attribute"
    node: NodeProto | None  # the Constant/attribute owner node (None for initializers)
    value: int  # first out-of-range value
    harmless: bool
    user: NodeProto | None  # first consumer that makes it harmful (None when harmless)

    def describe(self) -> str:
        if self.kind == "initializer":
            what = f"int64 initializer '{self.name}'"
        elif self.kind == "constant":
            what = f"int64 constant '{self.name}' of node {node_label(self.node)}"
        else:
            what = f"attribute '{self.name}' of node {node_label(self.node)}"
        text = f"{what} holds {self.value}, outside int32 (Sentis saturates int64 to int32)"
        if self.harmless:
            return text + "; only used as Slice starts/ends, where saturation is exact"
        if self.user is not None:
            return text + f"; used by node {node_label(self.user)}"
        return text + "; it is a graph output"
    

def _out_of_range(arr: np.ndarray) -> int | None:
    if arr.size == 0:
        return None
    bad = (arr < INT32_MIN) | (arr > INT32_MAX)
    if not bad.any():
        return None
    return int(arr[bad].reshape(-1)[0])


def _harmful_user(graph, name: str, cons, outputs: set[str], depth: int = 0) -> tuple[bool, NodeProto | None]:
    """(harmless, first harmful consumer)."""
    if name in outputs:
        return False, None
    if depth > 16:
        return False, None
    for node, idx in cons.get(name, []):
        if (node.op_type, idx) in _SATURATING_INPUTS:
            continue
        if node.op_type in _PASS_THROUGH and (_PASS_THROUGH[node.op_type] is None or _PASS_THROUGH[node.op_type] == idx):
            ok, user = _harmful_user(graph, node.output[0], cons, outputs, depth + 1)
            if not ok:
                return False, user or node
            continue
        return False, node
    return True, None


def _int_tensor_attrs(node: NodeProto):
    """(attr, array) for tensor-valued attributes that hold int64 data."""
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.INT64:
            yield a, numpy_helper.to_array(a.t)
        elif node.op_type == "Constant" and a.name == "value_int":
            yield a, np.array(a.i, dtype=np.int64)
        elif node.op_type == "Constant" and a.name == "value_ints":
            yield a, np.array(list(a.ints), dtype=np.int64)


def find_int64_issues(model: ModelProto) -> list[Int64Issue]:
    """Every int64 value outside int32 in the main graph's initializers, Constants and int attrs."""
    g = model.graph
    cons = consumers(g)
    outputs = {o.name for o in g.output}
    issues: list[Int64Issue] = []
    for init in g.initializer:
        if init.data_type != TensorProto.INT64 or init.data_location == TensorProto.EXTERNAL:
            continue
        v = _out_of_range(numpy_helper.to_array(init))
        if v is None:
            continue
        ok, user = _harmful_user(g, init.name, cons, outputs)
        issues.append(Int64Issue("initializer", init.name, None, v, ok, user))
    for node in g.node:
        for a, arr in _int_tensor_attrs(node):
            v = _out_of_range(arr)
            if v is None:
                continue
            if node.op_type == "Constant":
                ok, user = _harmful_user(g, node.output[0], cons, outputs)
                issues.append(Int64Issue("constant", node.output[0], node, v, ok, user))
            else:  # e.g. ConstantOfShape value: the value fills the output
                ok, user = _harmful_user(g, node.output[0], cons, outputs)
                issues.append(Int64Issue("attribute", a.name, node, v, ok, user))
        for a in node.attribute:
            if a.type == onnx.AttributeProto.INT:
                vals = [a.i]
            elif a.type == onnx.AttributeProto.INTS:
                vals = list(a.ints)
            else:
                continue
            if node.op_type == "Constant":
                continue  # handled above
            bad = [x for x in vals if x < INT32_MIN or x > INT32_MAX]
            if bad:
                ok = (node.op_type, a.name) in _SATURATING_ATTRS
                issues.append(Int64Issue("attribute", a.name, node, bad[0], ok, None if ok else node))
    return issues


def _clip(arr: np.ndarray) -> np.ndarray:
    return np.clip(arr, INT32_MIN, INT32_MAX).astype(np.int64)


def check_int64(model: ModelProto) -> ModelProto:
    """Saturate harmless int64 sentinels to int32 limits; raise on real overflow.

    Harmless = only used (possibly through Identity/Concat/Unsqueeze/Squeeze/Reshape/Flatten) as
    Slice starts/ends, or a Slice/Shape start/end attribute; there ONNX clamps to the dim, so the
    clamped value gives identical results and Sentis' saturation changes nothing. Any other int64
    value outside [-2^31, 2^31-1] raises GraphPassError naming the tensor and its consumer.
    """
    m = copy_model(model)
    issues = find_int64_issues(m)
    for iss in issues:
        if not iss.harmless:
            raise GraphPassError(iss.describe())
    if not issues:
        return m
    g = m.graph
    names = {i.name for i in issues if i.kind == "initializer"}
    for k, init in enumerate(g.initializer):
        if init.name in names:
            g.initializer[k].CopyFrom(numpy_helper.from_array(_clip(numpy_helper.to_array(init)), init.name))
    for node in g.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.INT64:
                arr = numpy_helper.to_array(a.t)
                if _out_of_range(arr) is not None:
                    a.t.CopyFrom(numpy_helper.from_array(_clip(arr), a.t.name))
            elif a.type == onnx.AttributeProto.INT and (a.i < INT32_MIN or a.i > INT32_MAX):
                a.i = int(np.clip(a.i, INT32_MIN, INT32_MAX))
            elif a.type == onnx.AttributeProto.INTS and any(x < INT32_MIN or x > INT32_MAX for x in a.ints):
                vals = [int(np.clip(x, INT32_MIN, INT32_MAX)) for x in a.ints]
                del a.ints[:]
                a.ints.extend(vals)
    return m


# --------------------------------------------------------------------------------------------
# Cast to bool
# --------------------------------------------------------------------------------------------
def elem_types(model: ModelProto, *, infer: bool = True) -> dict[str, int]:
    """name -> ONNX elem type for every value whose type is known (after shape inference)."""
    work = model
    if infer and model.ByteSize() < PROTOBUF_LIMIT:
        try:
            work = onnx.shape_inference.infer_shapes(copy_model(model), strict_mode=False)
        except Exception:  # noqa: BLE001
            work = model
    g = work.graph
    types: dict[str, int] = {}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in g.initializer:
        types[init.name] = init.data_type
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    types[n.output[0]] = a.t.data_type
    return types


def _is_cast_to_bool(n: NodeProto) -> bool:
    return n.op_type == "Cast" and any(a.name == "to" and a.i == TensorProto.BOOL for a in n.attribute)


def _cast_to_bool_source(n: NodeProto, types: dict[str, int]) -> tuple[bool, int | None]:
    """(is a Cast to bool from a non-bool input, input elem type or None if unknown)."""
    if n.op_type != "Cast":
        return False, None
    to = next((a.i for a in n.attribute if a.name == "to"), None)
    if to != TensorProto.BOOL:
        return False, None
    src = types.get(n.input[0])
    if src == TensorProto.BOOL:
        return False, None
    return True, src


def cast_to_bool_nodes(model: ModelProto, types: dict[str, int] | None = None) -> list[tuple[NodeProto, int | None]]:
    """Cast(to=BOOL) nodes whose input is not already bool: (node, input elem type or None)."""
    if not any(_is_cast_to_bool(n) for n in model.graph.node):
        return []
    if types is None:
        types = elem_types(model)
    found = []
    for n in model.graph.node:
        hit, src = _cast_to_bool_source(n, types)
        if hit:
            found.append((n, src))
    return found


def fix_cast_to_bool(model: ModelProto) -> ModelProto:
    """Rewrite Cast(x, to=BOOL) as Not(Equal(x, 0)), which is exact in ONNX and in Sentis.

    Sentis casts to bool by C-style truncation to int (0.5 → false, 2 → 2), ONNX by "non-zero →
    true" (NaN → true; Equal(NaN, 0) is false, so Not gives true too). The zero has the input's
    dtype; if the dtype is unknown it is made with CastLike. Casts from bool are left alone.
    """
    m = copy_model(model)
    if not any(_is_cast_to_bool(n) for n in m.graph.node):
        return m
    types = elem_types(m)
    if not any(_cast_to_bool_source(n, types)[0] for n in m.graph.node):
        return m
    g = m.graph
    make = unique_namer(all_names(g))
    new_nodes = []
    for n in g.node:
        hit, src = _cast_to_bool_source(n, types)
        if not hit:
            c = NodeProto()
            c.CopyFrom(n)
            new_nodes.append(c)
            continue
        x, y = n.input[0], n.output[0]
        base = (n.name or "cast_bool") + "/"
        nodes = []
        if src is not None:
            zero = make(base + "zero")
            g.initializer.append(
                numpy_helper.from_array(np.zeros((), dtype=onnx.helper.tensor_dtype_to_np_dtype(src)), zero)
            )
        else:
            zf = make(base + "zero_f")
            g.initializer.append(numpy_helper.from_array(np.zeros((), dtype=np.float32), zf))
            zero = make(base + "zero")
            nodes.append(onnx.helper.make_node("CastLike", [zf, x], [zero], name=make(base + "CastLike")))
        eq = make(base + "is_zero")
        nodes.append(onnx.helper.make_node("Equal", [x, zero], [eq], name=make(base + "Equal")))
        nodes.append(onnx.helper.make_node("Not", [eq], [y], name=n.name or make(base + "Not")))
        new_nodes.extend(nodes)
    del g.node[:]
    g.node.extend(new_nodes)
    return m
