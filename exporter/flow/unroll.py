"""The 10-step Euler solve as ONNX built from ONE traced velocity graph.

Tracing `Flow.solve` makes the TorchScript exporter walk the estimator ten times (minutes at full
size); instead the velocity graph v(x, t, ...) is traced once and copied here, one copy per step,
with t a constant and x chained through x_{k+1} = x_k + dt_k * v_k. Nodes that do not depend on x
or t (attention bias, the condition channels, anything computed from mu/cond/spks/masks only)
are emitted once and shared by all steps; initializers are shared (not copied). Nodes that depend
on t and constants only (the time embedding and its MLPs) are evaluated once per step here and
emitted as that step's constants, as constant folding of the traced solver did.
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
    t_only, x_dependent = _split_t_only(g, per_step, t)
    # t itself stays a Constant per step; what is computed from it alone becomes constants
    t_outputs = sorted(({i for n in x_dependent for i in n.input if i in t_only} | ({velocity} & t_only)) - {t})

    nodes = list(shared)
    initializers = list(g.initializer)
    cur = x0
    for k, (tk, dtk) in enumerate(zip(ts, dts)):
        p = f"euler{k}/"
        names = {x: cur, t: p + "t"}
        if any(t in n.input for n in x_dependent):
            nodes.append(_const(p + "t", tk))
        for name, value in zip(t_outputs, _evaluate(step, _t_only_nodes(per_step, t_only), t, tk, t_outputs)):
            names[name] = p + name
            initializers.append(numpy_helper.from_array(value, p + name))
        for node in x_dependent:
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
    graph = helper.make_graph(nodes, g.name or "euler", [x0_info] + inputs, [out_info], initializer=initializers)
    model = helper.make_model(graph, opset_imports=list(step.opset_import), producer_name=step.producer_name)
    model.ir_version = step.ir_version
    return model


def _split_t_only(g: onnx.GraphProto, per_step: list[onnx.NodeProto], t: str) -> tuple[set[str], list[onnx.NodeProto]]:
    """Tensors computed from t and constants only (no graph input other than t), and the per-step
    nodes that are not of that kind."""
    constant = {i.name for i in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    t_only = {t}
    x_dependent = []
    for node in per_step:
        if all(not i or i in t_only or i in constant for i in node.input):
            t_only.update(node.output)
        else:
            x_dependent.append(node)
    return t_only, x_dependent


def _t_only_nodes(per_step: list[onnx.NodeProto], t_only: set[str]) -> list[onnx.NodeProto]:
    return [n for n in per_step if n.output and n.output[0] in t_only]


def _evaluate(step: onnx.ModelProto, t_nodes: list[onnx.NodeProto], t: str, tk: float, outputs: list[str]) -> list[np.ndarray]:
    """Values of `outputs` for t = tk (the t-only nodes with the constants they read, on the ONNX
    reference evaluator)."""
    if not outputs:
        return []
    from onnx.reference import ReferenceEvaluator

    g = step.graph
    needed = {i for n in t_nodes for i in n.input}
    consts = [n for n in g.node if n.op_type == "Constant" and n.output[0] in needed]
    inits = [i for i in g.initializer if i.name in needed]
    t_info = next(i for i in g.input if i.name == t)
    sub = helper.make_graph(consts + t_nodes, "t_only", [t_info],
                            [helper.make_empty_tensor_value_info(o) for o in outputs], initializer=inits)
    model = helper.make_model(sub, opset_imports=list(step.opset_import))
    values = ReferenceEvaluator(model).run(None, {t: np.array([tk], np.float32)})
    return [np.asarray(v) for v in values]


def traced_euler(module, example: dict, input_names: list[str], *, ts: list[float], dts: list[float], out: str,
                 opset: int, scratch, what: str, x: str = "x", t: str = "t", velocity: str = "velocity",
                 x0: str = "noise") -> onnx.ModelProto:
    """An Euler solve as ONNX from ONE trace of the velocity module (forward(*input_names) ->
    velocity; `x` and `t` among the inputs, the rest conditions): trace, the graph passes on the
    one step (folding is the costly pass and scales with the nodes it visits; the export driver
    runs them again on the unrolled graph, where little is left to do), then unroll_euler over
    the constant time grid. Shared by the CosyVoice2 flow and the ZipVoice solve."""
    import torch
    from graph_passes import run_pipeline

    from ..export import attach_weights, trace_detached

    inputs = tuple(torch.from_numpy(np.ascontiguousarray(example[k])) for k in input_names)
    step, weights = trace_detached(module, inputs, list(input_names), [velocity], opset, scratch=scratch, what=what)
    step, _ = run_pipeline(step, None, input_shapes={k: list(example[k].shape) for k in input_names}, target_opset=opset)
    step = attach_weights(step, weights)
    return unroll_euler(step, x=x, t=t, velocity=velocity, ts=ts, dts=dts, x0=x0, out=out)
