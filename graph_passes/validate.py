"""Structural validation of an ONNX model before anything trusts it, and resource bounds.

`validate_model` runs, cheapest first, and stops at the first problem (one line naming it):

1. structure: opset imports, every name read is defined (dangling inputs, graph outputs nobody
   makes), no name defined twice, no cycle, nodes in topological order (per graph, subgraphs
   with their enclosing scopes);
2. tensors: initializer / Constant dtypes are real ONNX types, payload sizes match the declared
   dims (truncated or padded tensors), no negative dims;
3. resource bounds (`Limits`): no declared or inferred tensor, dim or constant-sized
   Range/ConstantOfShape/Expand/Tile beyond the limits — checked before onnxruntime or folding
   would allocate it;
4. `onnx.checker.check_model(full_check=True)` (strict type and shape inference: e.g. int32
   ScatterND indices);
5. an onnxruntime session with its default graph optimizations (errors-only logging).

`check`, `convert` (its input and its output) and `verify` call it; a broken file is never
"OK for Sentis".
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import GraphProto, ModelProto, TensorProto

from ._graph import DEFAULT_DOMAINS, PROTOBUF_LIMIT, model_bytes, subgraphs, without_weights
from .errors import GraphPassError

DEFAULT_MAX_TENSOR_MB = 4096  # one tensor (weights, activations, folded constants)
DEFAULT_MAX_DIM = 2**31 - 1  # Sentis shapes are int32


class InvalidModelError(GraphPassError):
    """The model is not valid ONNX, or exceeds a resource bound; the message says which part."""


@dataclass(frozen=True)
class Limits:
    max_tensor_bytes: int = DEFAULT_MAX_TENSOR_MB << 20
    max_dim: int = DEFAULT_MAX_DIM

    @classmethod
    def from_mb(cls, max_tensor_mb: float | None = None, max_dim: int | None = None) -> "Limits":
        return cls(
            max_tensor_bytes=int((DEFAULT_MAX_TENSOR_MB if max_tensor_mb is None else max_tensor_mb) * (1 << 20)),
            max_dim=DEFAULT_MAX_DIM if max_dim is None else int(max_dim),
        )


LIMIT_FIX = "raise --max-tensor-mb / --max-dim if it is meant to be this large"


# --------------------------------------------------------------------------------------------
# 1. structure
# --------------------------------------------------------------------------------------------
def _node_name(n: onnx.NodeProto) -> str:
    return f"'{n.name}' ({n.op_type})" if n.name else f"<unnamed {n.op_type}>"


def structure_problem(model: ModelProto) -> str | None:
    if not model.opset_import:
        return "the model has no opset_import (set the default-domain opset)"
    if not model.HasField("graph"):
        return "the model has no graph"
    return _graph_problem(model.graph, outer=frozenset(), where="main graph")


def _graph_problem(g: GraphProto, outer: frozenset, where: str) -> str | None:
    defined: dict[str, str] = {}
    for vi in g.input:
        if vi.name in defined:
            return f"{where}: graph input '{vi.name}' is declared twice"
        defined[vi.name] = "graph input"
    for init in g.initializer:
        defined.setdefault(init.name, "initializer")
    for sp in g.sparse_initializer:
        defined.setdefault(sp.values.name, "initializer")
    made: dict[str, int] = {}
    for k, n in enumerate(g.node):
        for o in n.output:
            if not o:
                continue
            if o in made or defined.get(o) == "graph input":
                return f"{where}: value '{o}' is produced twice (node {_node_name(n)}); ONNX values are assigned once"
            made[o] = k
    # reads: defined somewhere in scope, and produced before they are read (topological order)
    available = set(defined) | set(outer)
    for k, n in enumerate(g.node):
        for i in n.input:
            if not i or i in available:
                continue
            if i in made:
                return _order_problem(g, where, n, i, made)
            return f"{where}: node {_node_name(n)} reads '{i}', which no node, input or initializer defines (dangling input)"
        for _, sub in subgraphs(n):
            p = _graph_problem(sub, frozenset(available | set(made)), f"subgraph of {_node_name(n)}")
            if p:
                return p
        available.update(o for o in n.output if o)
    for o in g.output:
        if o.name not in available:
            return f"{where}: graph output '{o.name}' is not produced by any node, input or initializer"
    return None


def _order_problem(g: GraphProto, where: str, reader: onnx.NodeProto, name: str, made: dict[str, int]) -> str:
    """A value is read before it is produced: a cycle, or just nodes out of order."""
    n_nodes = len(g.node)
    deps: list[set[int]] = [set() for _ in range(n_nodes)]
    for k, n in enumerate(g.node):
        for i in n.input:
            if i in made and made[i] != k:
                deps[k].add(made[i])
            elif i in made and made[i] == k:
                return f"{where}: node {_node_name(n)} reads its own output '{i}' (cycle)"
    indeg = [len(d) for d in deps]
    users: list[list[int]] = [[] for _ in range(n_nodes)]
    for k, d in enumerate(deps):
        for j in d:
            users[j].append(k)
    ready = [k for k in range(n_nodes) if indeg[k] == 0]
    seen = 0
    while ready:
        k = ready.pop()
        seen += 1
        for u in users[k]:
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    if seen < n_nodes:
        stuck = next(k for k in range(n_nodes) if indeg[k] > 0)
        return f"{where}: the graph has a cycle through node {_node_name(g.node[stuck])}"
    return (f"{where}: node {_node_name(reader)} reads '{name}' before it is produced; nodes must be in "
            "topological order (re-save the model sorted, e.g. with onnx-graphsurgeon toposort)")


# --------------------------------------------------------------------------------------------
# 2. tensors
# --------------------------------------------------------------------------------------------
_FIELD_BY_TYPE = {
    TensorProto.FLOAT: "float_data", TensorProto.COMPLEX64: "float_data",
    TensorProto.DOUBLE: "double_data", TensorProto.COMPLEX128: "double_data",
    TensorProto.INT64: "int64_data", TensorProto.UINT32: "uint64_data", TensorProto.UINT64: "uint64_data",
    TensorProto.STRING: "string_data",
}
_COMPLEX = {TensorProto.COMPLEX64, TensorProto.COMPLEX128}
_VALID_TYPES = {v for k, v in TensorProto.DataType.items() if k != "UNDEFINED"}


def _itemsize(data_type: int) -> int | None:
    try:
        return int(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)).itemsize)
    except Exception:  # noqa: BLE001 - string and exotic types
        return None


def tensor_problem(t: TensorProto, what: str, limits: Limits) -> str | None:
    if t.data_type not in _VALID_TYPES:
        return f"{what} has data type {t.data_type}, which is not an ONNX tensor type"
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        return f"{what} has a negative dim {dims}"
    big = next((d for d in dims if d > limits.max_dim), None)
    if big is not None:
        return f"{what} has dim {big} > {limits.max_dim} ({LIMIT_FIX})"
    count = int(np.prod(dims, dtype=np.float64)) if dims else 1
    item = _itemsize(t.data_type)
    if item is not None and count * item > limits.max_tensor_bytes:
        return f"{what} holds {count * item / (1 << 20):.0f} MiB > {limits.max_tensor_bytes >> 20} MiB ({LIMIT_FIX})"
    if t.data_location == TensorProto.EXTERNAL:
        return None
    if t.HasField("raw_data"):
        if item is None:
            return f"{what} stores type {TensorProto.DataType.Name(t.data_type)} as raw bytes"
        bits = {TensorProto.INT4: 4, TensorProto.UINT4: 4}.get(t.data_type) if hasattr(TensorProto, "INT4") else None
        want = (count * bits + 7) // 8 if bits else count * item
        if len(t.raw_data) != want:
            return f"{what} has {len(t.raw_data)} payload bytes, but its dims {dims} need {want} (truncated or corrupt tensor)"
        return None
    fld = _FIELD_BY_TYPE.get(t.data_type, "int32_data")
    have = len(getattr(t, fld))
    want = count * (2 if t.data_type in _COMPLEX else 1)
    if have != want:
        return f"{what} has {have} values, but its dims {dims} need {want} (truncated or corrupt tensor)"
    return None


def tensors_problem(model: ModelProto, limits: Limits) -> str | None:
    from ._graph import iter_graphs

    for g in iter_graphs(model.graph):
        for init in g.initializer:
            p = tensor_problem(init, f"initializer '{init.name}'", limits)
            if p:
                return p
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    p = tensor_problem(a.t, f"attribute '{a.name}' of node {_node_name(n)}", limits)
                    if p:
                        return p
    return None


# --------------------------------------------------------------------------------------------
# 3. resource bounds
# --------------------------------------------------------------------------------------------
def _const_values(g: GraphProto) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    vals = {}
    for init in g.initializer:
        if int(np.prod(list(init.dims), dtype=np.float64)) <= 64:
            try:
                vals[init.name] = numpy_helper.to_array(init)
            except Exception:  # noqa: BLE001
                pass
    for n in g.node:
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value" and int(np.prod(list(a.t.dims), dtype=np.float64)) <= 64:
                    try:
                        vals[n.output[0]] = numpy_helper.to_array(a.t)
                    except Exception:  # noqa: BLE001
                        pass
                elif a.name in ("value_int", "value_float"):
                    vals[n.output[0]] = np.array(a.i if a.name == "value_int" else a.f)
                elif a.name in ("value_ints", "value_floats"):
                    vals[n.output[0]] = np.array(list(a.ints) if a.name == "value_ints" else list(a.floats))
    return vals


def _sized_by_constants(n: onnx.NodeProto, vals: dict[str, np.ndarray]) -> float | None:
    """Element count of an op whose output size its constant inputs fix (before evaluating it)."""
    ins = [vals.get(i) if i else None for i in n.input]
    try:
        if n.op_type == "Range" and len(ins) == 3 and all(v is not None for v in ins):
            start, limit, delta = (float(np.asarray(v).reshape(-1)[0]) for v in ins)
            return max(0.0, np.ceil((limit - start) / delta)) if delta != 0 else None
        if n.op_type == "ConstantOfShape" and ins and ins[0] is not None:
            return float(np.prod(np.asarray(ins[0], dtype=np.float64)))
        if n.op_type in ("Expand", "Tile") and len(ins) > 1 and ins[1] is not None:
            return float(np.prod(np.abs(np.asarray(ins[1], dtype=np.float64))))
    except (TypeError, ValueError, OverflowError):
        return None
    return None


def resource_problem(model: ModelProto, limits: Limits, *, inferred: ModelProto | None = None) -> str | None:
    """Declared and inferred shapes, and constant-sized allocating ops, within `limits`."""
    g = model.graph
    vals = _const_values(g)
    max_elems = limits.max_tensor_bytes  # 1 byte per element at least
    for n in g.node:
        count = _sized_by_constants(n, vals)
        if count is not None and (count > max_elems or (n.op_type == "Range" and count > limits.max_dim)):
            return (f"node {_node_name(n)} would make a tensor of {count:.3g} elements "
                    f"(over {limits.max_tensor_bytes >> 20} MiB or dim {limits.max_dim}) ({LIMIT_FIX})")
    src = inferred if inferred is not None else model
    for vi in list(src.graph.input) + list(src.graph.output) + list(src.graph.value_info):
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
            continue
        dims = [d.dim_value for d in t.shape.dim if d.HasField("dim_value")]
        if any(d > limits.max_dim for d in dims):
            return f"tensor '{vi.name}' has dim {max(dims)} > {limits.max_dim} ({LIMIT_FIX})"
        if len(dims) == len(t.shape.dim):
            item = _itemsize(t.elem_type) or 1
            size = float(np.prod(dims, dtype=np.float64)) * item
            if size > limits.max_tensor_bytes:
                return f"tensor '{vi.name}' {dims} needs {size / (1 << 20):.0f} MiB > {limits.max_tensor_bytes >> 20} MiB ({LIMIT_FIX})"
    return None


# --------------------------------------------------------------------------------------------
# 4./5. onnx.checker and onnxruntime
# --------------------------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # onnx.checker: "[ShapeInferenceError] (op_type:ScatterND, node name: s): indices typestr: Tind ..."
    return " ".join(lines[:2])[:400] if lines else type(exc).__name__


def _shape_fields_filled(model: ModelProto, inferred: ModelProto | None) -> ModelProto:
    """onnx.checker requires a `shape` on main-graph input/output types, but a missing one (rank
    unknown) is legal for every runtime: take it from shape inference, or skip it, for the check."""
    lacking = [vi for vi in list(model.graph.input) + list(model.graph.output)
               if vi.type.HasField("tensor_type") and not vi.type.tensor_type.HasField("shape")]
    if not lacking:
        return model
    m = ModelProto()
    m.CopyFrom(model)
    known = {vi.name: vi for vi in (list(inferred.graph.output) if inferred is not None else [])
             if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")}
    for vi in list(m.graph.input) + list(m.graph.output):
        if vi.type.HasField("tensor_type") and not vi.type.tensor_type.HasField("shape"):
            if vi.name in known:
                vi.type.tensor_type.shape.CopyFrom(known[vi.name].type.tensor_type.shape)
    return m


def checker_problem(model: ModelProto, path: str | None = None, inferred: ModelProto | None = None) -> str | None:
    try:
        if model_bytes(model) < PROTOBUF_LIMIT:
            onnx.checker.check_model(_shape_fields_filled(model, inferred), full_check=True)
        elif path is not None:
            onnx.checker.check_model(path, full_check=True)
    except Exception as exc:  # noqa: BLE001
        if "Field 'shape' of 'type' is required but missing" in str(exc):
            return None  # an output of unknown rank (see _shape_fields_filled)
        return f"onnx.checker rejects it: {_first_line(exc)}"
    return None


def ort_problem(model: ModelProto, path: str | None = None) -> str | None:
    """onnxruntime's load of `model`, from `path` when given (the file `model` was read from:
    no serialised copy of it in memory)."""
    from .ort_eval import session

    try:
        if path is not None:
            import onnxruntime as ort

            from .ort_eval import ORT_LOG_ERROR

            opts = ort.SessionOptions()
            opts.log_severity_level = ORT_LOG_ERROR
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        else:
            session(model, optimize=True)
    except Exception as exc:  # noqa: BLE001
        return f"onnxruntime cannot load it: {_first_line(exc)}"
    return None


def find_problem(model: ModelProto, *, limits: Limits = Limits(), path: str | None = None, ort: bool = True) -> str | None:
    """The first problem of `model`, or None (see the module docstring for the order). `path`:
    the file `model` was loaded from (onnxruntime then loads the file itself).

    Memory: shape inference, the shape-arithmetic folding and onnx.checker run on a copy whose
    weights (initializers >= 1 MB) are shape-only graph inputs (`without_weights`); their
    payloads are checked against their dims in step 2. On the full-size LLM step (1.45 GB) this
    took `sentis-tts check` from 10 GB to ~3 GB: each of those steps serialised and re-parsed
    the whole model (bench/results.md)."""
    custom = {imp.domain for imp in model.opset_import if imp.domain not in DEFAULT_DOMAINS}
    p = structure_problem(model) or tensors_problem(model, limits)
    if p:
        return p
    p = resource_problem(model, limits)  # constant-sized allocations, before inference would materialize them
    if p:
        return p
    small = model_bytes(model) < PROTOBUF_LIMIT
    light = without_weights(model) if small else None
    inferred = None
    if light is not None:
        from .shapes import data_prop_safe

        try:
            inferred = onnx.shape_inference.infer_shapes(light, check_type=False, strict_mode=False,
                                                         data_prop=data_prop_safe(light))
        except Exception:  # noqa: BLE001 - the checker below reports inference errors
            inferred = None
    p = resource_problem(model, limits, inferred=inferred)
    if p:
        return p
    if inferred is not None:
        # sizes computed from constants (Range(0, a*a)): fold the integer shape arithmetic (guarded,
        # small) and infer again, so nothing below — checker, onnxruntime — ever allocates them
        from .folding import _fold_shape_arithmetic

        try:
            pre = _fold_shape_arithmetic(inferred, max_rounds=8)
        except Exception:  # noqa: BLE001 - best effort; the checker reports real errors
            pre = None
        if pre is not None:
            p = resource_problem(pre, limits, inferred=pre)
            if p:
                return p
    p = checker_problem(light if light is not None else model, path, inferred)
    if p:
        return p
    if ort and not (custom - {"com.microsoft", "ai.onnx.ml"}):
        return ort_problem(model, path)
    return None


def validate_model(model: ModelProto, *, limits: Limits = Limits(), path: str | None = None, what: str | None = None,
                   ort: bool = True) -> None:
    """Raise InvalidModelError (one line: which file, what is broken) on the first problem."""
    p = find_problem(model, limits=limits, path=path, ort=ort)
    if p:
        label = what or (os.fspath(path) if path else "model")
        kind = "over a size limit" if LIMIT_FIX in p else "invalid ONNX"
        raise InvalidModelError(f"{label}: {kind}: {p}")
