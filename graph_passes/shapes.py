"""Static input profiles and shape inference."""

from __future__ import annotations

import os
import tempfile
from typing import Mapping, Sequence

import onnx
from onnx import ModelProto

from ._graph import DEFAULT_DOMAINS, PROTOBUF_LIMIT, copy_model, iter_graphs
from .errors import GraphPassError


def _dims(vi: onnx.ValueInfoProto):
    t = vi.type.tensor_type
    return t.shape.dim if vi.type.HasField("tensor_type") and t.HasField("shape") else None


def fix_input_shapes(
    model: ModelProto,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    dims: Mapping[str, int] | None = None,
) -> ModelProto:
    """Pin graph inputs to a static profile, e.g. {"mel": [1, 80, 256]}, and/or named dims, e.g.
    {"T": 40}.

    `input_shapes` pins each named input independently: every dim of it becomes static. `dims`
    pins a symbolic dim name (`dim_param`) on every graph input that uses it. A dim_param that
    gets one value from `input_shapes` is substituted on the other inputs too, so inputs that
    share it stay consistent; one that gets different values on different inputs (ZipVoice names
    both token axes 'T') is split: each pinned input keeps its own value. Outputs and value_info
    that use a pinned name lose it: shape inference decides them (a name shared with an output is
    the exporter's claim, not a proof — ZipVoice's output 'T' is not the token length).
    Raises GraphPassError for an unknown input name, a rank mismatch, a conflict with an existing
    static dim, or a `dims` name that no input/output uses.
    """
    m = copy_model(model)
    if not input_shapes and not dims:
        return m
    g = m.graph
    inits = {i.name for i in g.initializer}
    inputs = {i.name: i for i in g.input if i.name not in inits}
    dims = {str(k): int(v) for k, v in (dims or {}).items()}
    for p, v in dims.items():
        if v < 0:
            raise GraphPassError(f"dim '{p}': value {v} is negative")
    used_params = {d.dim_param for vi in list(g.input) + list(g.output) for d in (_dims(vi) or []) if d.HasField("dim_param")}
    unknown = sorted(set(dims) - used_params)
    if unknown:
        raise GraphPassError(
            f"dim '{unknown[0]}' is not a symbolic dim of any graph input or output "
            f"(they have: {', '.join(sorted(used_params)) or 'none'})"
        )
    values: dict[str, set[int]] = {}
    for name, shape in (input_shapes or {}).items():
        if name not in inputs:
            raise GraphPassError(
                f"input shape given for '{name}', which is not a graph input (inputs: {', '.join(inputs) or 'none'})"
            )
        shape = [int(d) for d in shape]
        if any(d < 0 for d in shape):
            raise GraphPassError(f"input '{name}': shape {shape} has a negative dim")
        vi = inputs[name]
        if not vi.type.HasField("tensor_type"):
            raise GraphPassError(f"input '{name}' is not a tensor")
        in_dims = _dims(vi)
        if in_dims is not None and len(in_dims) != len(shape):
            raise GraphPassError(f"input '{name}' has rank {len(in_dims)}, but the shape given is {shape} (rank {len(shape)})")
        for k, (d, v) in enumerate(zip(in_dims or [], shape)):
            if d.HasField("dim_value") and d.dim_value != v:
                raise GraphPassError(f"input '{name}' dim {k} is static {d.dim_value}, but the shape given has {v}")
            if d.HasField("dim_param"):
                values.setdefault(d.dim_param, set()).add(v)
                if d.dim_param in dims and dims[d.dim_param] != v:
                    values[d.dim_param].add(dims[d.dim_param])
        t = vi.type.tensor_type
        t.ClearField("shape")
        for v in shape:
            t.shape.dim.add().dim_value = v
    everywhere = dict(dims)
    split = set()
    for p, vals in values.items():
        if len(vals) == 1:
            everywhere.setdefault(p, next(iter(vals)))
        else:
            split.add(p)
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        vdims = _dims(vi)
        if vdims is None:
            continue
        for d in vdims:
            if not d.HasField("dim_param") or (d.dim_param not in everywhere and d.dim_param not in split):
                continue
            if vi.name in inputs:  # inputs nobody pinned: the value of the name, if it has one
                if d.dim_param in everywhere:
                    d.dim_value = everywhere[d.dim_param]  # clears dim_param (oneof)
            else:
                # outputs / intermediates: a shared name is the exporter's claim, not a proof
                # (ZipVoice's output 'T' is not the token length); shape inference decides
                d.Clear()
    return m


def split_dim_names(model: ModelProto, input_shapes: Mapping[str, Sequence[int]] | None) -> dict[str, dict[str, int]]:
    """dim_param -> {input: value} for the names `fix_input_shapes` splits (several values)."""
    out: dict[str, dict[str, int]] = {}
    inputs = {i.name: i for i in model.graph.input}
    for name, shape in (input_shapes or {}).items():
        vi = inputs.get(name)
        for d, v in zip((_dims(vi) or []) if vi is not None else [], shape):
            if d.HasField("dim_param"):
                out.setdefault(d.dim_param, {})[name] = int(v)
    return {p: per for p, per in out.items() if len(set(per.values())) > 1}


def _strip_value_info(m: ModelProto) -> None:
    """Drop stale intermediate value_info; keep it only for outputs of non-ONNX-domain nodes."""
    for g in iter_graphs(m.graph):
        keep_names = {o for n in g.node if n.domain not in DEFAULT_DOMAINS for o in n.output}
        keep = [vi for vi in g.value_info if vi.name in keep_names]
        del g.value_info[:]
        g.value_info.extend(keep)


DATA_PROP_MAX_ELEMENTS = 1 << 20


def data_prop_safe(model: ModelProto) -> bool:
    """ONNX data propagation materializes the values of constant-input Range/ConstantOfShape/
    Expand/Tile (Range(0, 2^62) is a std::bad_alloc after eating all memory): False when one of
    them would exceed DATA_PROP_MAX_ELEMENTS; infer without data propagation then."""
    from .validate import _const_values, _sized_by_constants

    for g in iter_graphs(model.graph):
        ops = [n for n in g.node if n.op_type in ("Range", "ConstantOfShape", "Expand", "Tile")]
        if not ops:
            continue
        vals = _const_values(g)
        for n in ops:
            count = _sized_by_constants(n, vals)
            if count is not None and count > DATA_PROP_MAX_ELEMENTS:
                return False
    return True


def infer_shapes(model: ModelProto) -> ModelProto:
    """Run ONNX shape inference (with data propagation) and record the results in value_info.

    Stale intermediate value_info is dropped first (e.g. symbolic dims torch wrote before the
    inputs were pinned). Graph outputs get the inferred static shapes. Inference errors are
    reported as GraphPassError. Models over 2 GB are inferred through a temporary file.
    """
    m = copy_model(model)
    _strip_value_info(m)
    prop = data_prop_safe(m)
    try:
        if m.ByteSize() < PROTOBUF_LIMIT:
            return onnx.shape_inference.infer_shapes(m, check_type=False, strict_mode=False, data_prop=prop)
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "in.onnx")
            dst = os.path.join(tmp, "out.onnx")
            onnx.save_model(m, src, save_as_external_data=True, all_tensors_to_one_file=True, location="in.data")
            onnx.shape_inference.infer_shapes_path(src, dst, check_type=False, strict_mode=False, data_prop=prop)
            return onnx.load(dst, load_external_data=True)
    except Exception as exc:  # noqa: BLE001
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GraphPassError(f"shape inference failed: {msg}") from None
