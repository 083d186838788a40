"""Precision pass: store large float32 weights as float16 (graph I/O and math stay float32).

Each converted initializer `W` becomes a float16 initializer `W__fp16` followed by
`Cast(to=FLOAT)` whose output keeps the name `W` and feeds the original consumers. Sentis upcasts
float16 constants at import (sentis.md §3; it can re-quantize with ModelQuantizer); onnxruntime
folds the Cast once at session start. The file is about half the size on disk.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ._graph import all_names, unique_namer

FP16_MAX = float(np.finfo(np.float16).max)  # 65504


def weights_to_fp16(model: onnx.ModelProto, *, min_elements: int = 1024, keep: frozenset[str] = frozenset()) -> onnx.ModelProto:
    """Convert float32 initializers with >= min_elements values (except names in `keep`).

    Also kept in float32: initializers that are graph inputs (overridable), external-data
    tensors, and tensors holding a non-finite value or a finite value beyond the float16 range
    (±65504, which would become inf). Subgraph initializers are not touched.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    graph_inputs = {i.name for i in g.input}
    make = unique_namer(all_names(g))
    new_inits = []
    casts = []
    for init in g.initializer:
        if (init.data_type != TensorProto.FLOAT or init.name in keep or init.name in graph_inputs
                or init.data_location == TensorProto.EXTERNAL or int(np.prod(init.dims)) < min_elements):
            new_inits.append(init)
            continue
        arr = numpy_helper.to_array(init)
        if not np.isfinite(arr).all() or (arr.size and float(np.abs(arr).max()) > FP16_MAX):
            new_inits.append(init)
            continue
        half_name = make(f"{init.name}__fp16")
        new_inits.append(numpy_helper.from_array(arr.astype(np.float16), half_name))
        casts.append(helper.make_node("Cast", [half_name], [init.name], to=TensorProto.FLOAT, name=make(f"{init.name}__cast")))
    if not casts:
        return m
    del g.initializer[:]
    g.initializer.extend(new_inits)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    return m


def float_initializer_bytes(model: onnx.ModelProto) -> dict[str, int]:
    """Bytes of initializers by data type name (for reports)."""
    out: dict[str, int] = {}
    for init in model.graph.initializer:
        name = TensorProto.DataType.Name(init.data_type).lower()
        out[name] = out.get(name, 0) + int(np.prod(init.dims)) * np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
    return out
