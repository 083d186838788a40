"""The 10-step Euler solve as ONNX built from ONE traced velocity graph.

Tracing `Flow.solve` makes the TorchScript exporter walk the estimator ten times (minutes at full
size); instead the velocity graph v(x, t, ...) is traced once and copied here, one copy per step,
with t a constant and x chained through x_{k+1} = x_k + dt_k * v_k. Nodes that do not depend on x
or t (attention bias, the condition channels, anything computed from mu/cond/spks/masks only)
are emitted once and shared by all steps; initializers are shared (not copied).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _const(name: str, value: float) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], name=name,
                            value=numpy_helper.from_array(np.array([value], np.float32), name))


def unroll_euler(step: onnx.ModelProto, *, x: str, t: str, velocity: str, ts: list[float], dts: list[float],
                 x0: str, out: str) -> onnx.ModelProto:
    """`step`: a graph with inputs x, t (1,) and the other conditions, output `velocity` (same
    shape as x). Returns the graph with input `x0` (instead of x and t) and output `out` = the
    result of len(ts) Euler steps x += dt_k * v(x, t_k)."""
    g = step.graph
    if len(ts) != len(dts) or not ts:
        raise ValueError("unroll_euler: ts and dts must be non-empty and of equal length")
    if any(n.attribute and any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in n.attribute)
           for n in g.node):
        raise ValueError("unroll_euler: the step graph must have no subgraphs")
    variant = {x, t}
    shared, per_step = [], []
    for node in g.node:  # the exporter writes nodes in topological order
        if any(i in variant for i in node.input):
            per_step.append(node)
            variant.update(node.output)
        else:
            shared.append(node)
    if velocity not in variant:
        raise ValueError(f"unroll_euler: {velocity!r} does not depend on {x!r}/{t!r}")

    nodes = list(shared)
    cur = x0
    for k, (tk, dtk) in enumerate(zip(ts, dts)):
        p = f"euler{k}/"
        names = {x: cur, t: p + "t"}
        nodes.append(_const(p + "t", tk))
        for node in per_step:
            c = onnx.NodeProto()
            c.CopyFrom(node)
            c.name = p + (node.name or node.output[0])
            for i, name in enumerate(c.input):
                c.input[i] = names.get(name, name)
            for i, name in enumerate(c.output):
                names[name] = c.output[i] = p + name
            nodes.append(c)
        nxt = out if k == len(ts) - 1 else p + "x_next"
        nodes += [_const(p + "dt", dtk),
                  helper.make_node("Mul", [names[velocity], p + "dt"], [p + "dt_v"], name=p + "dt_v"),
                  helper.make_node("Add", [cur, p + "dt_v"], [nxt], name=p + "x_next")]
        cur = nxt

    x_info = next(i for i in g.input if i.name == x)
    inputs = [i for i in g.input if i.name not in (x, t)]
    x0_info = onnx.ValueInfoProto()
    x0_info.CopyFrom(x_info)
    x0_info.name = x0
    out_info = onnx.ValueInfoProto()
    out_info.CopyFrom(x_info)
    out_info.name = out
    graph = helper.make_graph(nodes, g.name or "euler", [x0_info] + inputs, [out_info], initializer=list(g.initializer))
    model = helper.make_model(graph, opset_imports=list(step.opset_import), producer_name=step.producer_name)
    model.ir_version = step.ir_version
    return model
