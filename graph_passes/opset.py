"""Opset conversion and default-domain spelling."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import ModelProto

from ._graph import DEFAULT_DOMAINS, copy_model, default_opset, iter_graphs, set_opset
from .errors import GraphPassError

DEFAULT_TARGET_OPSET = 17
SENTIS_OPSET_RANGE = (15, 17)


def normalize_default_domain(model: ModelProto) -> ModelProto:
    """Spell the default ONNX domain "" everywhere (opset_import and nodes).

    Sentis only recognises the default opset when its domain string is empty; "ai.onnx" would be
    read as opset 15 (sentis.md §1).
    """
    m = copy_model(model)
    version = default_opset(m)
    if version is not None:
        set_opset(m, version)
    for g in iter_graphs(m.graph):
        for n in g.node:
            if n.domain == "ai.onnx":
                n.domain = ""
    for f in m.functions:
        for n in f.node:
            if n.domain == "ai.onnx":
                n.domain = ""
    return m


_PARK_DOMAIN = "sentis_tts.parked"


def _park_opset18_ops(m: ModelProto) -> tuple[ModelProto, dict]:
    """Rewrite opset-18 Split/Pad into their opset-13 form under a placeholder domain.

    onnx.version_converter has no down-adapter for Split-18 or Pad-18; their opset-13 forms are
    written here and hidden from the converter, then given back the default domain.
    """
    from ._const import static_shapes

    parked = {}
    shapes = None
    for n in m.graph.node:
        if n.domain not in DEFAULT_DOMAINS:
            continue
        if n.op_type == "Split":
            num = next((a for a in n.attribute if a.name == "num_outputs"), None)
            if num is not None:
                has_split = len(n.input) > 1 and n.input[1]
                if not has_split:
                    if shapes is None:
                        shapes = static_shapes(m)
                    axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
                    dims = shapes.get(n.input[0])
                    dim = None
                    if dims is not None and -len(dims) <= axis < len(dims):
                        dim = dims[axis]
                    k = num.i
                    if dim is None or dim % k != 0:
                        if dim is None:
                            raise GraphPassError(
                                f"Split node '{n.name}' (Split): num_outputs={k} on a dim of unknown size "
                                "cannot be expressed before opset 18 (fix the input shapes first)"
                            )
                        chunk = -(-dim // k)
                        sizes = [chunk] * (dim // chunk) + ([dim % chunk] if dim % chunk else [])
                        if len(sizes) != k:
                            raise GraphPassError(
                                f"Split node '{n.name}' (Split): cannot split {dim} into {k} outputs before opset 18"
                            )
                        name = f"{n.name or 'split'}_sizes_opset13"
                        m.graph.initializer.append(onnx.numpy_helper.from_array(np.array(sizes, dtype=np.int64), name))
                        while len(n.input) < 2:
                            n.input.append("")
                        n.input[1] = name
                keep = [a for a in n.attribute if a.name != "num_outputs"]
                del n.attribute[:]
                n.attribute.extend(keep)
            n.domain = _PARK_DOMAIN
            parked[n.name] = "Split"
        elif n.op_type == "Pad":
            if len(n.input) > 3 and n.input[3]:
                raise GraphPassError(
                    f"Pad node '{n.name}' (Pad): the 'axes' input (opset 18) cannot be converted below opset 18"
                )
            mode = next((a.s for a in n.attribute if a.name == "mode"), b"constant")
            if mode == b"wrap":
                raise GraphPassError(f"Pad node '{n.name}' (Pad): mode 'wrap' needs opset 19")
            del n.input[3:]
            n.domain = _PARK_DOMAIN
            parked[n.name] = "Pad"
    if parked:
        m.opset_import.append(onnx.helper.make_opsetid(_PARK_DOMAIN, 1))
    return m, parked


def convert_opset(model: ModelProto, target_opset: int = DEFAULT_TARGET_OPSET) -> ModelProto:
    """Convert the default-domain opset to `target_opset` (default 17) with onnx.version_converter.

    Also writes the default domain as "". The IR version is kept unless the target opset needs a
    newer one. Raises GraphPassError when the converter has no adapter for an op.
    """
    m = normalize_default_domain(model)
    current = default_opset(m)
    if current is None:
        if any(n.domain in DEFAULT_DOMAINS for n in m.graph.node):
            raise GraphPassError("model has ONNX-domain nodes but no opset import for the default domain")
        set_opset(m, target_opset)
        return m
    if current == target_opset:
        return m
    ir = m.ir_version
    restore = {}
    if current >= 18 and 13 <= target_opset <= 17:
        m, restore = _park_opset18_ops(m)
    try:
        out = onnx.version_converter.convert_version(m, int(target_opset))
    except Exception as exc:  # noqa: BLE001 - the converter raises RuntimeError/ValidationError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GraphPassError(f"cannot convert opset {current} -> {target_opset}: {first}") from None
    out = normalize_default_domain(out)
    if restore:
        for n in out.graph.node:
            if n.domain == _PARK_DOMAIN:
                n.domain = ""
        keep = [imp for imp in out.opset_import if imp.domain != _PARK_DOMAIN]
        del out.opset_import[:]
        out.opset_import.extend(keep)
    try:
        needed = onnx.helper.find_min_ir_version_for(list(out.opset_import), ignore_unknown=True)
    except Exception:  # noqa: BLE001
        needed = ir
    out.ir_version = max(ir, needed)
    return out
