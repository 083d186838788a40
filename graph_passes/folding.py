"""Constant folding (onnx-graphsurgeon, optionally onnxsim)."""

from __future__ import annotations

import contextlib
import io
import logging

import numpy as np
import onnx
from onnx import ModelProto, numpy_helper

from ._const import NONDETERMINISTIC_OPS, shape_of_node
from ._graph import DEFAULT_DOMAINS, PROTOBUF_LIMIT, copy_model, node_label, node_reads, producers
from .errors import GraphPassError
from .shapes import infer_shapes

FOLD_SIZE_THRESHOLD = 16 << 20  # bytes: do not bake Tile/Expand of constants into huge tensors


def _restore_model_fields(src: ModelProto, dst: ModelProto) -> ModelProto:
    """gs/onnxsim rebuild the ModelProto; keep what they drop."""
    dst.ir_version = src.ir_version or dst.ir_version
    dst.producer_name = src.producer_name
    dst.producer_version = src.producer_version
    dst.domain = src.domain
    dst.model_version = src.model_version
    dst.doc_string = src.doc_string
    del dst.metadata_props[:]
    dst.metadata_props.extend(src.metadata_props)
    # keep the opset imports exactly (gs adds custom domains only when used)
    known = {i.domain for i in dst.opset_import}
    for imp in src.opset_import:
        if imp.domain not in known:
            dst.opset_import.append(imp)
    return dst


@contextlib.contextmanager
def _quiet_gs():
    import onnx_graphsurgeon as gs
    import onnxruntime as ort
    from onnx_graphsurgeon.logger import G_LOGGER

    from .ort_eval import ORT_LOG_ERROR

    old = G_LOGGER.severity
    G_LOGGER.severity = G_LOGGER.ERROR
    ort.set_default_logger_severity(ORT_LOG_ERROR)  # gs's sessions would print optimizer warnings
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield gs
    finally:
        G_LOGGER.severity = old
        ort.set_default_logger_severity(2)  # onnxruntime's default (warning)


def fold_constants(
    model: ModelProto,
    *,
    size_threshold: int | None = FOLD_SIZE_THRESHOLD,
    max_rounds: int = 4,
    verify: bool = True,
) -> ModelProto:
    """Fold every subgraph that depends only on constants and static shapes into initializers.

    `Shape`/`Size` of a tensor whose shape inference made static are folded by our own rule
    (honouring `Shape`'s start/end, which onnx-graphsurgeon ignores); everything computed from
    constants is then folded by onnx-graphsurgeon (`fold_constants(fold_shapes=False,
    flatten_subgraphs=True)` + `cleanup`), evaluated with onnxruntime. Random ops are never folded
    (Sentis does not fold them either). Folded tensors larger than `size_threshold` bytes (by
    shape inference, before anything is evaluated) are left to be computed at runtime. Graph
    inputs are kept even when unused.

    With `verify`, every folded value is proven: it is recomputed from the unfolded graph on
    onnxruntime (seeded random inputs at the static input shapes) and must be equal; a folded
    value that differs raises GraphPassError naming it.
    """
    from .cleanup import constant_value_attrs

    # gs reads value_float as a float64 numpy scalar; give it the exact float32 tensor form first
    m = constant_value_attrs(model)
    if m.ByteSize() >= PROTOBUF_LIMIT:
        raise GraphPassError("fold_constants: model is over 2 GB; fold it before adding the weights")
    start = m
    prev = None
    try:
        for _ in range(max_rounds):
            # re-infer every round: folding a Reshape's shape input makes its output shape known,
            # which lets the next round fold Shape nodes downstream
            try:
                m = infer_shapes(m)
            except GraphPassError:
                pass
            m = _fold_shape_arithmetic(m)
            m = _fold_once(m, size_threshold)
            sig = graph_signature(m)
            if sig == prev:
                break
            prev = sig
    except RecursionError:
        raise GraphPassError("fold_constants: graph too deep to fold (recursion limit); run with fewer passes") from None
    if verify:
        prove_folded(start, m)
    return _restore_model_fields(model, m)


def graph_signature(m: ModelProto) -> tuple:
    """Cheap change detector for fixed-point loops: node ops, initializer names and value shapes."""
    g = m.graph
    return (
        tuple(n.op_type for n in g.node),
        tuple(sorted(i.name for i in g.initializer)),
        tuple((o.name, str(o.type)) for o in g.output),
    )


def _static_dims(vi) -> list[int] | None:
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
        return None
    if not all(d.HasField("dim_value") for d in t.shape.dim):
        return None
    return [int(d.dim_value) for d in t.shape.dim]


def fold_static_shapes(model: ModelProto) -> ModelProto:
    """Replace `Shape`/`Size` nodes of the main graph whose input has a static shape (recorded
    by shape inference, or an initializer) by initializers; where the shape is only partly
    static, fold the `Gather`/`Slice` of a `Shape` that picks static dims only (x.shape[2] of a
    [1, T, 64] tensor). Run `infer_shapes` first."""
    m = copy_model(model)
    g = m.graph
    known: dict[str, list[int | None]] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and t.HasField("shape"):
            known[vi.name] = [int(d.dim_value) if d.HasField("dim_value") else None for d in t.shape.dim]
    for init in g.initializer:
        known[init.name] = list(init.dims)
    consts = {i.name: i for i in g.initializer}
    shape_dims: dict[str, list[int | None]] = {}  # Shape output -> its (partly known) value
    for n in g.node:
        if n.op_type == "Shape" and n.domain in DEFAULT_DOMAINS and n.input and n.input[0] in known and n.output[0]:
            dims = known[n.input[0]]
            shape_dims[n.output[0]] = list(shape_of_node(n, [-1 if d is None else d for d in dims]))
            shape_dims[n.output[0]] = [None if v == -1 else int(v) for v in shape_dims[n.output[0]]]
    keep = []
    new_inits = []
    for n in g.node:
        value = None
        if n.domain in DEFAULT_DOMAINS and n.output and n.output[0]:
            if n.op_type in ("Shape", "Size") and n.input and n.input[0] in known and None not in known[n.input[0]]:
                value = shape_of_node(n, known[n.input[0]])
            elif n.op_type in ("Gather", "Slice") and n.input and n.input[0] in shape_dims:
                value = _pick_static(n, shape_dims[n.input[0]], consts)
        if value is not None:
            new_inits.append(numpy_helper.from_array(value, n.output[0]))
            continue
        keep.append(n)
    return _replace_folded(m, keep, new_inits)


def _pick_static(n, dims: list[int | None], consts) -> np.ndarray | None:
    """Gather(axis 0) / Slice(axis 0) of a shape vector with constant indices, if every picked
    dim is static."""
    def const(k):
        if k >= len(n.input) or not n.input[k]:
            return None
        t = consts.get(n.input[k])
        return None if t is None else numpy_helper.to_array(t)

    idx = np.arange(len(dims))
    try:
        if n.op_type == "Gather":
            axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
            ind = const(1)
            if ind is None or axis not in (0, -1):
                return None
            picked = idx[ind.astype(np.int64)]
        else:
            starts, ends, axes, steps = const(1), const(2), const(3), const(4)
            if starts is None or ends is None or (len(n.input) > 3 and n.input[3] and axes is None) or (
                    len(n.input) > 4 and n.input[4] and steps is None):
                return None
            if axes is not None and [int(a) for a in axes.reshape(-1)] not in ([0], [-1]):
                return None
            step = int(steps.reshape(-1)[0]) if steps is not None else 1
            picked = idx[slice(int(starts.reshape(-1)[0]), int(ends.reshape(-1)[0]), step)]
    except (IndexError, ValueError, TypeError):
        return None
    values = [dims[int(i)] for i in np.asarray(picked).reshape(-1)]
    if any(v is None for v in values):
        return None
    return np.array(values, dtype=np.int64).reshape(np.asarray(picked).shape)


SMALL_FOLD_ELEMENTS = 4096
# ops whose result is bounded by their inputs (or checked first): what shape arithmetic uses
_SHAPE_ARITHMETIC = {
    "Constant", "Identity", "Cast", "Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Sign", "Floor", "Ceil", "Pow",
    "Min", "Max", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "Where",
    "Gather", "GatherElements", "Concat", "Unsqueeze", "Squeeze", "Reshape", "Slice", "Flatten", "Transpose",
    "ReduceSum", "ReduceProd", "ReduceMax", "ReduceMin", "ArgMax", "ArgMin", "CumSum", "Range", "ConstantOfShape",
    "Expand", "Tile",
}


def fold_small_constants(model: ModelProto, max_elements: int = SMALL_FOLD_ELEMENTS) -> ModelProto:
    """Evaluate, with the ONNX reference evaluator, main-graph nodes whose inputs are all small
    constants and whose result is integer or bool (shape arithmetic: Gather, Concat, Mul, Cast ...
    of folded Shapes), replacing them by initializers. Cheap and local; onnx-graphsurgeon folds
    the rest (floats included, on onnxruntime)."""
    from ._const import _constant_value, _eval_node
    from ._graph import has_subgraph
    from .validate import _sized_by_constants

    m = copy_model(model)
    g = m.graph
    vals: dict[str, np.ndarray] = {}
    for init in g.initializer:
        if int(np.prod(list(init.dims), dtype=np.int64)) <= max_elements:
            vals[init.name] = numpy_helper.to_array(init)
    keep, new_inits = [], []
    for n in g.node:
        ok = (n.domain in DEFAULT_DOMAINS and n.op_type in _SHAPE_ARITHMETIC and not has_subgraph(n)
              and all(not i or i in vals for i in n.input) and len(n.output) == 1)
        if ok and n.op_type in ("Range", "ConstantOfShape", "Expand", "Tile"):
            count = _sized_by_constants(n, vals)  # never allocate an absurd tensor to find out
            ok = count is not None and count <= max_elements
        out = None
        if ok and n.op_type == "Constant":
            out = _constant_value(n)
        elif ok and n.input:
            try:
                out = _eval_node(m, n, [vals[i] if i else None for i in n.input])[0]
            except Exception:  # noqa: BLE001 - left for onnx-graphsurgeon / runtime
                out = None
        # integers/bools only (shape arithmetic): float ops are left to onnxruntime (via gs),
        # whose kernels (e.g. Exp) can differ from numpy's in the last bit
        if out is not None and np.asarray(out).size <= max_elements and np.asarray(out).dtype.kind in "iub" and n.output[0]:
            out = np.asarray(out)
            vals[n.output[0]] = out
            new_inits.append(numpy_helper.from_array(out, n.output[0]))
            continue
        keep.append(n)
    return _replace_folded(m, keep, new_inits)


def _fold_shape_arithmetic(m: ModelProto, max_rounds: int = 64) -> ModelProto:
    """infer_shapes -> fold_static_shapes -> fold_small_constants until nothing changes."""
    for _ in range(max_rounds):
        before = len(m.graph.node)
        m = fold_small_constants(fold_static_shapes(m))
        if len(m.graph.node) == before:
            break
        try:
            m = infer_shapes(m)
        except GraphPassError:
            break
    return m


def _too_big(m: ModelProto, size_threshold: int | None) -> set[str]:
    """Node outputs that shape inference says exceed `size_threshold` bytes (never evaluated)."""
    if size_threshold is None:
        return set()
    big = set()
    for vi in m.graph.value_info:
        d = _static_dims(vi)
        if d is None:
            continue
        try:
            item = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)).itemsize
        except Exception:  # noqa: BLE001
            item = 8
        if int(np.prod(d, dtype=np.float64)) * item > size_threshold:
            big.add(vi.name)
    return big


def _fold_once(m: ModelProto, size_threshold: int | None) -> ModelProto:
    big = _too_big(m, size_threshold)

    def exclude(n) -> bool:
        return n.op in NONDETERMINISTIC_OPS or any(o.name in big for o in n.outputs)

    with _quiet_gs() as gs:
        last_exc = None
        # one onnxruntime session for the whole graph is fast; partition only if that fails
        for partitioning in (None, "basic"):
            try:
                graph = gs.import_onnx(m)
                graph.toposort()
                graph.fold_constants(
                    fold_shapes=False,  # gs folds Shape ignoring start/end: fold_static_shapes does it
                    partitioning=partitioning,
                    error_ok=partitioning is not None,
                    flatten_subgraphs=True,
                    size_threshold=size_threshold,
                    should_exclude_node=exclude,
                )
                graph.cleanup(remove_unused_graph_inputs=False)
                graph.toposort()
                return gs.export_onnx(graph, do_type_check=False)
            except RecursionError:
                raise
            except Exception as exc:  # noqa: BLE001
                last_exc = exc
        text = str(last_exc).strip().splitlines()[0] if str(last_exc).strip() else ""
        raise GraphPassError(f"fold_constants failed: {type(last_exc).__name__}: {text}")


FOLD_RTOL = 1e-5


def prove_folded(before: ModelProto, after: ModelProto, *, trials: int = 2) -> int:
    """Check every initializer of `after` that a node of `before` computed: recompute it from
    `before` on onnxruntime (no graph optimizations) over seeded random inputs and require it
    equal (integers exactly, floats within FOLD_RTOL of the value's scale). Returns how many
    values were proven; raises GraphPassError for the first that differs or cannot be proven."""
    from .ort_eval import max_abs, one_line, run_trials

    made = producers(before.graph)
    folded = {i.name: i for i in after.graph.initializer if i.name in made}
    if not folded:
        return 0
    cone = _cone_model(before, list(folded), _inferred_types(before))
    needs_input = len(cone.graph.input) > 0
    try:
        res = run_trials(cone, trials if needs_input else 1, output_names=list(folded))
    except GraphPassError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise GraphPassError(f"cannot prove the folded constants: onnxruntime cannot load the unfolded graph ({one_line(exc)})") from None
    if not res.outputs:
        raise GraphPassError(
            "cannot prove the folded constants: onnxruntime rejects the unfolded graph on every random input "
            f"({res.rejected[0] if res.rejected else 'no input'})"
        )
    for name, init in folded.items():
        value = numpy_helper.to_array(init)
        for outs in res.outputs:
            ref = outs[name]
            err = max_abs(value, ref)
            scale = float(np.max(np.abs(ref), initial=0.0)) if ref.dtype.kind in "fc" and ref.size else 0.0
            bound = FOLD_RTOL * max(1.0, scale) if value.dtype.kind in "fc" else 0.0
            if not err <= bound:
                node = made[name]
                got = f"shape {list(value.shape)}" if value.shape != ref.shape else f"max-abs {err:.3g}"
                raise GraphPassError(
                    f"folded value '{name}' of node {node_label(node)} differs from what the unfolded graph computes "
                    f"({got}; expected {_preview(ref)}, folded {_preview(value)}); refusing an unproven fold"
                )
    return len(folded)


def _preview(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.size <= 8:
        return str(a.tolist())
    return f"{a.dtype} array of shape {list(a.shape)}"


def _inferred_types(model: ModelProto) -> dict[str, onnx.TypeProto]:
    """name -> tensor type with a fully static shape, from ONNX shape inference (best effort)."""
    try:
        work = infer_shapes(model)
    except GraphPassError:
        work = model
    out = {}
    for vi in list(work.graph.input) + list(work.graph.value_info) + list(work.graph.output):
        if _static_dims(vi) is not None:
            out[vi.name] = vi.type
    return out


def _cone_model(model: ModelProto, names: list[str], static: dict[str, onnx.TypeProto] | None = None) -> ModelProto:
    """The nodes of `model` that `names` depend on, with `names` as outputs. A tensor of a
    static shape that is only read by `Shape`/`Size` is not computed: it becomes an input of that
    shape (the proof of a folded shape needs the shape, not the weights and compute before it)."""
    static = static or {}
    g = model.graph
    made = producers(g)
    need = set(names)
    stack = list(names)
    keep_nodes = set()
    shape_only: set[str] = set()
    by_value: set[str] = set(names)
    while stack:
        cur = stack.pop()
        n = made.get(cur)
        if n is None or id(n) in keep_nodes:
            continue
        keep_nodes.add(id(n))
        reads = node_reads(n)
        if n.op_type in ("Shape", "Size") and n.input and n.input[0] in static and n.input[0] not in by_value:
            shape_only.add(n.input[0])
            reads = reads - {n.input[0]}
        for r in reads:
            by_value.add(r)
            if r not in need or r in shape_only:
                need.add(r)
                shape_only.discard(r)
                stack.append(r)
    produced = {o for n in g.node if id(n) in keep_nodes for o in n.output}
    need |= shape_only & ({i.name for i in g.initializer} | {i.name for i in g.input})
    shape_only -= produced | need
    out = ModelProto()
    out.CopyFrom(model)
    og = out.graph
    nodes = [n for n in g.node if id(n) in keep_nodes]
    del og.node[:]
    og.node.extend(nodes)
    inits = [i for i in g.initializer if i.name in need]
    del og.initializer[:]
    og.initializer.extend(inits)
    inputs = [i for i in g.input if i.name in need or i.name in shape_only]
    del og.input[:]
    og.input.extend(inputs)
    for name in sorted(shape_only):
        vi = og.input.add()
        vi.name = name
        vi.type.CopyFrom(static[name])
    del og.output[:]
    og.output.extend(onnx.ValueInfoProto(name=n) for n in names)
    del og.value_info[:]
    return out


def simplify(model: ModelProto) -> ModelProto:
    """onnxsim's simplifier (constant folding + its own graph rewrites), checked with random inputs.

    More aggressive than `fold_constants` (it also fuses some patterns); inputs must be static.
    """
    import onnxsim

    logging.getLogger("onnxsim").setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            out, ok = onnxsim.simplify(copy_model(model), check_n=1)
    except Exception as exc:  # noqa: BLE001
        raise GraphPassError(f"simplify (onnxsim) failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not ok:
        raise GraphPassError("simplify (onnxsim): simplified model does not match the original on random inputs")
    return _restore_model_fields(model, out)


def _replace_folded(m: ModelProto, keep: list, new_inits: list) -> ModelProto:
    """`m` with only the `keep` nodes, the folded values as initializers, and no stale value_info
    for them."""
    if not new_inits:
        return m
    g = m.graph
    del g.node[:]
    g.node.extend(keep)
    folded = {t.name for t in new_inits}
    vis = [v for v in g.value_info if v.name not in folded]
    del g.value_info[:]
    g.value_info.extend(vis)
    g.initializer.extend(new_inits)
    return m
