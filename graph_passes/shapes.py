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


def fix_input_shapes(model: ModelProto, input_shapes: Mapping[str, Sequence[int]] | None = None) -> ModelProto:
    """Pin graph inputs to a static profile, e.g. {"mel": [1, 80, 256]}.

    Every dim of a named input becomes static. A `dim_param` that gets a value this way is
    substituted everywhere it appears in the main graph (other inputs, outputs, value_info), so
    inputs that share a symbolic dim stay consistent. Raises GraphPassError for an unknown input
    name, a rank mismatch, a conflict with an existing static dim, or two values for one dim_param.
    """
    m = copy_model(model)
    if not input_shapes:
        return m
    g = m.graph
    inits = {i.name for i in g.initializer}
    inputs = {i.name: i for i in g.input if i.name not in inits}
    bindings: dict[str, int] = {}
    for name, shape in input_shapes.items():
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
        dims = _dims(vi)
        if dims is not None and len(dims) != len(shape):
            raise GraphPassError(f"input '{name}' has rank {len(dims)}, but the shape given is {shape} (rank {len(shape)})")
        if dims is not None:
            for k, (d, v) in enumerate(zip(dims, shape)):
                if d.HasField("dim_value") and d.dim_value != v:
                    raise GraphPassError(f"input '{name}' dim {k} is static {d.dim_value}, but the shape given has {v}")
                if d.HasField("dim_param"):
                    p = d.dim_param
                    if p in bindings and bindings[p] != v:
                        raise GraphPassError(
                            f"symbolic dim '{p}' gets two values ({bindings[p]} and {v}); input '{name}' dim {k}"
                        )
                    bindings[p] = v
        t = vi.type.tensor_type
        t.ClearField("shape")
        for v in shape:
            t.shape.dim.add().dim_value = v
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        dims = _dims(vi)
        if dims is None:
            continue
        for d in dims:
            if d.HasField("dim_param") and d.dim_param in bindings:
                d.dim_value = bindings[d.dim_param]  # clears dim_param (oneof)
    return m


def _strip_value_info(m: ModelProto) -> None:
    """Drop stale intermediate value_info; keep it only for outputs of non-ONNX-domain nodes."""
    for g in iter_graphs(m.graph):
        keep_names = {o for n in g.node if n.domain not in DEFAULT_DOMAINS for o in n.output}
        keep = [vi for vi in g.value_info if vi.name in keep_names]
        del g.value_info[:]
        g.value_info.extend(keep)


def infer_shapes(model: ModelProto) -> ModelProto:
    """Run ONNX shape inference (with data propagation) and record the results in value_info.

    Stale intermediate value_info is dropped first (e.g. symbolic dims torch wrote before the
    inputs were pinned). Graph outputs get the inferred static shapes. Inference errors are
    reported as GraphPassError. Models over 2 GB are inferred through a temporary file.
    """
    m = copy_model(model)
    _strip_value_info(m)
    try:
        if m.ByteSize() < PROTOBUF_LIMIT:
            return onnx.shape_inference.infer_shapes(m, check_type=False, strict_mode=False, data_prop=True)
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "in.onnx")
            dst = os.path.join(tmp, "out.onnx")
            onnx.save_model(m, src, save_as_external_data=True, all_tensors_to_one_file=True, location="in.data")
            onnx.shape_inference.infer_shapes_path(src, dst, check_type=False, strict_mode=False, data_prop=True)
            return onnx.load(dst, load_external_data=True)
    except Exception as exc:  # noqa: BLE001
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GraphPassError(f"shape inference failed: {msg}") from None
