"""Remove control flow Sentis cannot import: fold `If`, unroll `Loop`.

Sentis never reads subgraphs (sentis.md §2.2: If/Loop/Scan are unsupported in every version), so
every `If` must have a condition known at export time and every `Loop` a known trip count.
Conditions and trip counts are resolved by evaluating their producing cone when it depends only
on constants and static shapes (run `fix_input_shapes` first for shape-derived conditions).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import GraphProto, ModelProto, NodeProto, TensorProto, numpy_helper

from ._const import ConstResolver, static_shapes
from ._graph import (
    all_names,
    copy_model,
    default_opset,
    graph_defined_names,
    node_label,
    rename_reads,
    unique_namer,
)
from .errors import GraphPassError

MAX_UNROLL = 4096


# --------------------------------------------------------------------------------------------
# renaming / inlining
# --------------------------------------------------------------------------------------------
def _rename_subgraph(graph: GraphProto, inherited: dict[str, str], make: Callable[[str], str], prefix: str) -> None:
    """Rename, in place, the names a nested graph defines and the outer names it reads."""
    local = dict(inherited)
    for name in graph_defined_names(graph):
        local[name] = make(prefix + name)
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        vi.name = local.get(vi.name, vi.name)
    for init in graph.initializer:
        init.name = local[init.name]
    for sp in graph.sparse_initializer:
        sp.values.name = local[sp.values.name]
    for n in graph.node:
        _rename_node(n, local, make, prefix)


def _rename_node(n: NodeProto, mapping: dict[str, str], make: Callable[[str], str], prefix: str) -> None:
    for k, i in enumerate(n.input):
        if i:
            n.input[k] = mapping.get(i, i)
    for k, o in enumerate(n.output):
        if o:
            n.output[k] = mapping.get(o, o)
    if n.name:
        n.name = make(prefix + n.name)
    for attr in n.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            _rename_subgraph(attr.g, mapping, make, prefix)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            for g in attr.graphs:
                _rename_subgraph(g, mapping, make, prefix)


def _instantiate(
    body: GraphProto,
    input_map: dict[str, str],
    make: Callable[[str], str],
    prefix: str,
    shared: dict[str, str] | None = None,
) -> tuple[list[NodeProto], dict[str, str], list[onnx.ValueInfoProto]]:
    """Copy the nodes of `body` with fresh names.

    input_map: body input name -> parent value name. shared: names already given to the body's
    initializers (so a Loop's initializers are added once, not per iteration). Returns the nodes,
    the full name mapping, and renamed value_infos.
    """
    mapping = dict(input_map)
    if shared:
        mapping.update(shared)
    for init in body.initializer:
        mapping.setdefault(init.name, make(prefix + init.name))
    for n in body.node:
        for o in n.output:
            if o:
                mapping[o] = make(prefix + o)
    nodes = []
    for n in body.node:
        c = NodeProto()
        c.CopyFrom(n)
        _rename_node(c, mapping, make, prefix)
        nodes.append(c)
    infos = []
    for vi in body.value_info:
        if vi.name in mapping:
            c = onnx.ValueInfoProto()
            c.CopyFrom(vi)
            c.name = mapping[vi.name]
            infos.append(c)
    return nodes, mapping, infos


def _renamed_initializers(body: GraphProto, mapping: dict[str, str]) -> list[TensorProto]:
    out = []
    for init in body.initializer:
        c = TensorProto()
        c.CopyFrom(init)
        c.name = mapping[init.name]
        out.append(c)
    return out


def _attr_graph(node: NodeProto, name: str) -> GraphProto:
    for a in node.attribute:
        if a.name == name:
            return a.g
    raise GraphPassError(f"{node.op_type} node {node_label(node)} has no '{name}' attribute")


def _bind_outputs(
    src_names: list[str], dst_names: list[str], nodes: list[NodeProto], make: Callable[[str], str], prefix: str
) -> list[NodeProto]:
    """Make `dst_names[k]` carry the value `src_names[k]`.

    Where the source is produced by one of `nodes` (and bound once) the producing output is
    renamed in place; otherwise an Identity is appended.
    """
    produced = {o: n for n in nodes for o in n.output if o}
    used = {}
    for s in src_names:
        used[s] = used.get(s, 0) + 1
    extra = []
    renames: dict[str, str] = {}
    for s, d in zip(src_names, dst_names):
        if not d:
            continue
        if s in produced and used[s] == 1 and s not in renames:
            renames[s] = d
        else:
            extra.append(onnx.helper.make_node("Identity", [renames.get(s, s)], [d], name=make(prefix + "bind_" + d)))
    if renames:
        rename_reads(nodes, renames)  # incl. subgraphs that read a renamed value
        for n in nodes:
            for k, o in enumerate(n.output):
                if o in renames:
                    n.output[k] = renames[o]
        rename_reads(extra, renames)
    return nodes + extra


def _replace_nodes(graph: GraphProto, replacements: dict[int, list[NodeProto]]) -> None:
    new_nodes = []
    for idx, n in enumerate(graph.node):
        if idx in replacements:
            new_nodes.extend(replacements[idx])
        else:
            c = NodeProto()
            c.CopyFrom(n)
            new_nodes.append(c)
    del graph.node[:]
    graph.node.extend(new_nodes)


# --------------------------------------------------------------------------------------------
# If
# --------------------------------------------------------------------------------------------
def _as_bool(value: np.ndarray, node: NodeProto, what: str) -> bool:
    if value.size != 1:
        raise GraphPassError(f"{node.op_type} node {node_label(node)}: {what} has {value.size} elements, expected 1")
    return bool(value.reshape(()).item())


def _fold_ifs_once(model: ModelProto, shapes: dict | None = None) -> tuple[bool, list[str]]:
    """Fold every top-level If whose condition resolves; return (changed, errors for the rest)."""
    g = model.graph
    if not any(n.op_type == "If" for n in g.node):
        return False, []
    if shapes is None:
        shapes = static_shapes(model)
    resolver = ConstResolver(model, shapes=shapes)
    make = unique_namer(all_names(g))
    replacements: dict[int, list[NodeProto]] = {}
    errors: list[str] = []
    new_inits: list[TensorProto] = []
    new_infos: list[onnx.ValueInfoProto] = []
    for idx, node in enumerate(g.node):
        if node.op_type != "If":
            continue
        cond = node.input[0] if node.input else ""
        try:
            val = resolver.value(cond)
        except RecursionError:
            val = None
        if val is None:
            errors.append(
                f"If node {node_label(node)}: condition '{cond}' is not a constant: {resolver.blocker(cond)}; "
                f"Sentis cannot import If — make the condition constant (e.g. pin input shapes) or export one "
                f"graph per branch"
            )
            continue
        taken = _as_bool(val, node, f"condition '{cond}'")
        branch = _attr_graph(node, "then_branch" if taken else "else_branch")
        if len(branch.output) != len(node.output):
            raise GraphPassError(
                f"If node {node_label(node)}: branch has {len(branch.output)} outputs, node has {len(node.output)}"
            )
        prefix = (node.name or "If") + "/" + ("then" if taken else "else") + "/"
        nodes, mapping, infos = _instantiate(branch, {}, make, prefix)
        src = [mapping.get(o.name, o.name) for o in branch.output]
        replacements[idx] = _bind_outputs(src, list(node.output), nodes, make, prefix)
        new_inits.extend(_renamed_initializers(branch, mapping))
        new_infos.extend(i for i in infos if i.name not in set(node.output))
        if branch.sparse_initializer:
            raise GraphPassError(f"If node {node_label(node)}: sparse initializers in a branch are not supported")
    if replacements:
        _replace_nodes(g, replacements)
        g.initializer.extend(new_inits)
        g.value_info.extend(new_infos)
    return bool(replacements), errors


def fold_if(model: ModelProto, *, strict: bool = True) -> ModelProto:
    """Inline the taken branch of every `If` whose condition is known; nested Ifs included.

    The condition may be an initializer, a Constant, or any expression of constants and static
    shapes (evaluated with the ONNX reference evaluator). Ifs inside Loop bodies are left for
    `unroll_loop`. Raises GraphPassError for the first If whose condition is data-dependent,
    naming the node and the node that blocks (e.g. a Pad whose pads are computed from input
    values); with `strict=False` the Ifs that cannot fold stay and no error is raised.
    """
    m = copy_model(model)
    errors: list[str] = []
    for _ in range(1000):
        changed, errors = _fold_ifs_once(m)
        if not changed:
            break
    if errors and strict:
        raise GraphPassError(errors[0])
    return m


# --------------------------------------------------------------------------------------------
# Loop
# --------------------------------------------------------------------------------------------
def _make_unsqueeze0(x: str, out: str, opset: int, make, prefix: str, axes_name: str | None) -> NodeProto:
    if opset >= 13:
        return onnx.helper.make_node("Unsqueeze", [x, axes_name], [out], name=make(prefix + "unsqueeze"))
    return onnx.helper.make_node("Unsqueeze", [x], [out], axes=[0], name=make(prefix + "unsqueeze"))


def _unroll_one(model: ModelProto, idx: int, resolver: ConstResolver, shapes: dict, make, max_unroll: int):
    """Return (nodes, initializers, value_infos) replacing graph.node[idx] (a Loop)."""
    node = model.graph.node[idx]
    body = _attr_graph(node, "body")
    label = f"Loop node {node_label(node)}"
    trip_name = node.input[0] if len(node.input) > 0 else ""
    cond_name = node.input[1] if len(node.input) > 1 else ""
    init_states = list(node.input[2:])
    n_state = len(init_states)
    n_body_in = len(body.input)
    if n_body_in != 2 + n_state:
        raise GraphPassError(f"{label}: body has {n_body_in} inputs, expected {2 + n_state}")
    n_scan = len(body.output) - 1 - n_state
    if n_scan < 0:
        raise GraphPassError(f"{label}: body has too few outputs ({len(body.output)})")

    if trip_name:
        trip_val = resolver.value(trip_name)
        if trip_val is None:
            raise GraphPassError(
                f"{label}: trip count '{trip_name}' is not a constant: {resolver.blocker(trip_name)}; "
                f"Sentis cannot import Loop — make it constant or run the loop in C#"
            )
        trip = int(np.asarray(trip_val).reshape(()).item())
    else:
        trip = None
    if cond_name:
        cval = resolver.value(cond_name)
        if cval is None:
            raise GraphPassError(
                f"{label}: initial condition '{cond_name}' is not a constant: {resolver.blocker(cond_name)}"
            )
        cond = _as_bool(np.asarray(cval), node, f"condition '{cond_name}'")
    else:
        cond = True
    if trip is not None and trip > max_unroll:
        raise GraphPassError(f"{label}: trip count {trip} exceeds the unroll limit {max_unroll}")

    opset = default_opset(model) or 17
    prefix = (node.name or "Loop") + "/"
    new_inits: list[TensorProto] = []
    new_infos: list[onnx.ValueInfoProto] = []
    # body initializers: added once, shared by all iterations
    shared = {init.name: make(prefix + init.name) for init in body.initializer}
    shared_mapping = dict(shared)
    new_inits.extend(_renamed_initializers(body, shared_mapping))
    if body.sparse_initializer:
        raise GraphPassError(f"{label}: sparse initializers in the body are not supported")

    iter_in, cond_in = body.input[0].name, body.input[1].name
    state_in = [i.name for i in body.input[2:]]
    cond_out = body.output[0].name
    state_out = [o.name for o in body.output[1 : 1 + n_state]]
    scan_out = [o.name for o in body.output[1 + n_state :]]

    cur_states = list(init_states)
    cur_state_vals = [resolver.value(s) if s else None for s in init_states]
    cur_cond_name = cond_name
    scans: list[list[str]] = [[] for _ in range(n_scan)]
    nodes: list[NodeProto] = []
    it = 0
    while cond and (trip is None or it < trip):
        if it >= max_unroll:
            raise GraphPassError(
                f"{label}: loop did not stop within the unroll limit ({max_unroll} iterations)"
            )
        ip = f"{prefix}iter{it}/"
        iter_const = make(ip + "iteration")
        new_inits.append(numpy_helper.from_array(np.array(it, dtype=np.int64), iter_const))
        if not cur_cond_name:
            cur_cond_name = make(prefix + "cond_true")
            new_inits.append(numpy_helper.from_array(np.array(True), cur_cond_name))
        input_map = {iter_in: iter_const, cond_in: cur_cond_name}
        input_map.update(dict(zip(state_in, cur_states)))
        body_nodes, mapping, infos = _instantiate(body, input_map, make, ip, shared)
        nodes.extend(body_nodes)
        new_infos.extend(infos)
        # decide the next condition and carry constant state values
        outer_vals = {iter_in: np.array(it, dtype=np.int64), cond_in: np.array(cond)}
        for sname, sval in zip(state_in, cur_state_vals):
            if sval is not None:
                outer_vals[sname] = sval
        body_res = ConstResolver(
            model, body, outer=outer_vals, shapes=shapes, parent=resolver, input_label="loop-body input"
        )
        cval = body_res.value(cond_out)
        if cval is None:
            raise GraphPassError(
                f"{label}: the body's condition output '{cond_out}' is data-dependent (it comes from "
                f"{body_res.describe(cond_out)}); cannot unroll a data-dependent while-loop"
            )
        cond = _as_bool(np.asarray(cval), node, f"body condition '{cond_out}'")
        cur_cond_name = mapping.get(cond_out, cond_out)
        cur_state_vals = [body_res.value(s) for s in state_out]
        cur_states = [mapping.get(s, s) for s in state_out]
        for k, s in enumerate(scan_out):
            scans[k].append(mapping.get(s, s))
        it += 1

    final = []
    # loop-carried outputs (Identity; remove_identity later shortens these chains)
    for s, d in zip(cur_states, node.output[:n_state]):
        if d:
            final.append(onnx.helper.make_node("Identity", [s], [d], name=make(prefix + "final_" + d)))
    # scan outputs
    if n_scan:
        if it == 0:
            raise GraphPassError(f"{label}: loop runs zero times but has scan outputs (their shape is unknown)")
        axes_name = None
        if opset >= 13:
            axes_name = make(prefix + "axes0")
            new_inits.append(numpy_helper.from_array(np.array([0], dtype=np.int64), axes_name))
        for k in range(n_scan):
            out = node.output[n_state + k] if n_state + k < len(node.output) else ""
            if not out:
                continue
            parts = []
            for j, s in enumerate(scans[k]):
                u = make(f"{prefix}scan{k}_{j}")
                final.append(_make_unsqueeze0(s, u, opset, make, prefix, axes_name))
                parts.append(u)
            final.append(onnx.helper.make_node("Concat", parts, [out], axis=0, name=make(prefix + f"scan{k}_concat")))
    return nodes + final, new_inits, new_infos


def _unroll_loops_once(model: ModelProto, max_unroll: int) -> bool:
    g = model.graph
    if not any(n.op_type == "Loop" for n in g.node):
        return False
    shapes = static_shapes(model)
    resolver = ConstResolver(model, shapes=shapes)
    make = unique_namer(all_names(g))
    replacements: dict[int, list[NodeProto]] = {}
    inits: list[TensorProto] = []
    infos: list[onnx.ValueInfoProto] = []
    for idx, node in enumerate(g.node):
        if node.op_type != "Loop":
            continue
        nodes, new_inits, new_infos = _unroll_one(model, idx, resolver, shapes, make, max_unroll)
        replacements[idx] = nodes
        inits.extend(new_inits)
        infos.extend(new_infos)
        break  # one Loop per round: later Loops may depend on this one's now-constant outputs
    if replacements:
        _replace_nodes(g, replacements)
        g.initializer.extend(inits)
        g.value_info.extend(infos)
    return bool(replacements)


def unroll_loop(model: ModelProto, *, max_unroll: int = MAX_UNROLL) -> ModelProto:
    """Unroll every `Loop` whose trip count (and condition) is known.

    Supports loop-carried values and scan outputs (stacked with Unsqueeze+Concat). A body
    condition output must be decidable per iteration (constant, or an expression of constants
    and the iteration number). Ifs exposed by unrolling (e.g. on the iteration number) are folded
    as well. Raises GraphPassError naming the Loop/If/Scan node left and the source of its trip
    count or condition.
    """
    m = copy_model(model)
    for _ in range(100000):
        changed = _unroll_loops_once(m, max_unroll)
        if_changed, _ = _fold_ifs_once(m)
        if not (changed or if_changed):
            break
    for node in m.graph.node:
        if node.op_type == "Scan":
            raise GraphPassError(f"Scan node {node_label(node)}: Scan is not unrolled by this tool; Sentis cannot import it")
    _, errors = _fold_ifs_once(m)
    if errors:
        raise GraphPassError(errors[0])
    return m
