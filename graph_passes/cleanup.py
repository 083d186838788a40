"""Graph cleanup: dead nodes, unused initializers, Identity chains, Constant attribute forms."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, TensorProto, numpy_helper

from ._graph import copy_model, iter_graphs, node_label, node_reads, rename_reads
from .errors import GraphPassError


def remove_dead_nodes(model: ModelProto) -> ModelProto:
    """Drop nodes that no graph output depends on, then unused initializers and value_info.

    Graph inputs are kept (they are the model's interface). Values read implicitly by subgraphs
    count as used. Nodes inside subgraphs are not touched.
    """
    m = copy_model(model)
    g = m.graph
    needed = {o.name for o in g.output}
    keep_idx = []
    for k in range(len(g.node) - 1, -1, -1):
        n = g.node[k]
        if any(o and o in needed for o in n.output):
            keep_idx.append(k)
            needed |= node_reads(n)
    keep_idx.reverse()
    if len(keep_idx) != len(g.node):
        kept = []
        for k in keep_idx:
            c = NodeProto()
            c.CopyFrom(g.node[k])
            kept.append(c)
        del g.node[:]
        g.node.extend(kept)
    inits = [i for i in g.initializer if i.name in needed]
    if len(inits) != len(g.initializer):
        inits = [_copy_tensor(i) for i in inits]
        del g.initializer[:]
        g.initializer.extend(inits)
    sparse = [s for s in g.sparse_initializer if s.values.name in needed]
    if len(sparse) != len(g.sparse_initializer):
        sparse = [_copy_sparse(s) for s in sparse]
        del g.sparse_initializer[:]
        g.sparse_initializer.extend(sparse)
    produced = {o for n in g.node for o in n.output}
    vis = [v for v in g.value_info if v.name in produced or v.name in needed]
    if len(vis) != len(g.value_info):
        vis = [_copy_vi(v) for v in vis]
        del g.value_info[:]
        g.value_info.extend(vis)
    return m


def _copy_tensor(t: TensorProto) -> TensorProto:
    c = TensorProto()
    c.CopyFrom(t)
    return c


def _copy_sparse(t):
    c = onnx.SparseTensorProto()
    c.CopyFrom(t)
    return c


def _copy_vi(v):
    c = onnx.ValueInfoProto()
    c.CopyFrom(v)
    return c


def remove_identity(model: ModelProto) -> ModelProto:
    """Bypass Identity (and inference-mode Dropout) nodes in the main graph.

    An Identity whose output is a graph output is removed by renaming its producer's output
    when possible (input made by a node, not itself a graph output/input/initializer);
    otherwise it stays.
    """
    m = copy_model(model)
    g = m.graph
    outputs = {o.name for o in g.output}
    fixed = {i.name for i in g.input} | {i.name for i in g.initializer}

    # 1) identities feeding other nodes: reads of dst become reads of src (chains resolved)
    subst: dict[str, str] = {}
    drop: set[int] = set()
    for k, n in enumerate(g.node):
        if _is_identity(n) and n.output[0] not in outputs:
            subst[n.output[0]] = n.input[0]
            drop.add(k)

    def resolve(name: str) -> str:
        seen = set()
        while name in subst and name not in seen:
            seen.add(name)
            name = subst[name]
        return name

    renames = {k: resolve(k) for k in subst}
    # 2) identities producing graph outputs: rename the producer's output to the graph output
    producer_idx = {o: k for k, n in enumerate(g.node) for o in n.output if o}
    out_renames: dict[str, str] = {}
    for k, n in enumerate(g.node):
        if not _is_identity(n) or n.output[0] not in outputs:
            continue
        src = renames.get(n.input[0], n.input[0])
        if src in outputs or src in fixed or src in out_renames or src not in producer_idx:
            continue
        if producer_idx[src] in drop:
            continue
        out_renames[src] = n.output[0]
        drop.add(k)
    kept = []
    for k, n in enumerate(g.node):
        if k in drop:
            continue
        c = NodeProto()
        c.CopyFrom(n)
        for j, o in enumerate(c.output):
            if o in out_renames:
                c.output[j] = out_renames[o]
        kept.append(c)
    del g.node[:]
    g.node.extend(kept)
    rename_reads(g.node, {k: out_renames.get(v, v) for k, v in renames.items()})
    rename_reads(g.node, out_renames)
    names = {o for n in g.node for o in n.output}
    seen: set[str] = set()
    vis = []
    for v in g.value_info:
        name = out_renames.get(v.name, v.name)
        if name in names and name not in seen and name not in outputs:
            c = _copy_vi(v)
            c.name = name
            vis.append(c)
            seen.add(name)
    del g.value_info[:]
    g.value_info.extend(vis)
    return m


def _is_identity(n: NodeProto) -> bool:
    if n.op_type == "Identity" and n.domain in ("", "ai.onnx") and len(n.input) == 1 and n.input[0]:
        return True
    if n.op_type == "Dropout" and n.domain in ("", "ai.onnx") and n.input and n.input[0]:
        # inference Dropout = identity unless training_mode is given; mask output must be unused
        if len(n.input) >= 3 and n.input[2]:
            return False
        return len([o for o in n.output if o]) == 1 and n.output[0] != ""
    return False


def _densify(sp: onnx.SparseTensorProto) -> np.ndarray:
    values = numpy_helper.to_array(sp.values)
    idx = numpy_helper.to_array(sp.indices) if sp.HasField("indices") else np.zeros((0,), np.int64)
    dims = list(sp.dims)
    dense = np.zeros(int(np.prod(dims)) if dims else 1, dtype=values.dtype)
    if idx.ndim == 2:
        idx = np.ravel_multi_index(tuple(idx.T), dims)
    dense[idx.reshape(-1)] = values.reshape(-1)
    return dense.reshape(dims)


def constant_value_attrs(model: ModelProto) -> ModelProto:
    """Rewrite Constant value_float(s)/value_int(s)/sparse_value as the tensor `value` attribute.

    Sentis before 2.3 only reads `value` (sentis.md §2.1); `value_int(s)` become int64, as in
    ONNX. `value_string(s)` raise GraphPassError (no Sentis version reads strings).
    """
    m = copy_model(model)
    for g in iter_graphs(m.graph):
        for n in g.node:
            if n.op_type != "Constant" or n.domain not in ("", "ai.onnx"):
                continue
            attrs = {a.name: a for a in n.attribute}
            if "value" in attrs:
                continue
            if "value_float" in attrs:
                arr = np.array(attrs["value_float"].f, dtype=np.float32)
            elif "value_floats" in attrs:
                arr = np.array(list(attrs["value_floats"].floats), dtype=np.float32)
            elif "value_int" in attrs:
                arr = np.array(attrs["value_int"].i, dtype=np.int64)
            elif "value_ints" in attrs:
                arr = np.array(list(attrs["value_ints"].ints), dtype=np.int64)
            elif "sparse_value" in attrs:
                arr = _densify(attrs["sparse_value"].sparse_tensor)
            else:
                which = next(iter(attrs), "none")
                raise GraphPassError(f"Constant node {node_label(n)}: attribute '{which}' cannot be expressed for Sentis")
            del n.attribute[:]
            n.attribute.append(onnx.helper.make_attribute("value", numpy_helper.from_array(arr)))
    return m


def remove_empty_concat_inputs(model: ModelProto) -> ModelProto:
    """Drop the inputs of main-graph `Concat` nodes that are statically empty (a zero-size dim,
    from shape inference or an initializer), e.g. the zero-length `Expand` a pinned ZipVoice fm
    decoder leaves: onnxruntime's optimizer rejects such a Concat ("Dimension could not be
    inferred: incompatible shapes") and it contributes nothing. A Concat whose inputs are all empty
    is left alone. Nodes that only fed the dropped inputs are removed."""
    from .shapes import infer_shapes

    m = copy_model(model)
    try:
        inferred = infer_shapes(m)
    except GraphPassError:
        inferred = m
    dims: dict[str, list[int | None]] = {}
    for v in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        t = v.type.tensor_type
        if v.type.HasField("tensor_type") and t.HasField("shape"):
            dims[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    for init in m.graph.initializer:
        dims[init.name] = list(init.dims)
    changed = False
    for n in m.graph.node:
        if n.op_type != "Concat" or n.domain not in ("", "ai.onnx"):
            continue
        empty = [i for i in n.input if 0 in (dims.get(i) or [])]
        if not empty or len(empty) == len(n.input):
            continue
        keep = [i for i in n.input if i not in empty]
        del n.input[:]
        n.input.extend(keep)
        changed = True
    return remove_dead_nodes(m) if changed else m
