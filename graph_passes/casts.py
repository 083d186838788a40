"""Same-dtype Casts: removed, so that every Sentis version fuses what 2.1 fuses.

Sentis removes a Cast whose input already has the target type (ContractToSimplerLayerPass), but
Inference Engine 2.4 matches its fusion patterns (RMSNorm, LayerNorm, Gelu, Swish) before that
(ModelOptimizer.cs: ContractSubExpressionPass first), so such a Cast inside a pattern blocks the
fusion; the Qwen2 RMSNorm export leaves `x.to(float32)` Casts there (sentis_importer.md §2.4).
"""

from __future__ import annotations

import onnx
from onnx import ModelProto

from ._graph import DEFAULT_DOMAINS, copy_model
from .cleanup import remove_identity
from .dtypes import elem_types


def remove_same_dtype_casts(model: ModelProto) -> ModelProto:
    """Bypass `Cast(x, to=T)` where x is already of ONNX type T, and `CastLike(x, y)` where x and
    y have the same type: exact in ONNX (the output equals the input). Each becomes an Identity,
    which `remove_identity` then bypasses (an Identity it cannot remove stays)."""
    types = elem_types(model)
    m = copy_model(model)
    changed = False
    for n in m.graph.node:
        if n.domain not in DEFAULT_DOMAINS or not n.input:
            continue
        src = types.get(n.input[0])
        if src is None:
            continue
        if n.op_type == "Cast":
            to = next((a.i for a in n.attribute if a.name == "to"), None)
            same = to == src
        elif n.op_type == "CastLike" and len(n.input) > 1:
            same = types.get(n.input[1]) == src
        else:
            continue
        if same:
            inputs = [n.input[0]]
            del n.input[:]
            n.input.extend(inputs)
            del n.attribute[:]
            n.op_type = "Identity"
            changed = True
    return remove_identity(m) if changed else m


__all__ = ["remove_same_dtype_casts"]

