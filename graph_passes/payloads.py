"""Tensor payloads every Sentis version reads the same way: no DOUBLE, everything else in raw_data.

- Sentis converts DOUBLE to float32 at import, clamping every value to [-2^31, 2^31-1]
  (`BurstJobsCastTensor.cs` l.21): a -1e30 attention mask becomes -2.1e9. `double_to_float` makes
  the conversion explicit in the graph (float32 keeps -1e30; values beyond the float32 range become
  +-FLT_MAX and are counted in the model's metadata).
- 2.1-2.3 read `int32_data` as integers whatever the dtype (a FLOAT16 payload there gives wrong
  values), 2.4 reads it only for INT32 and throws otherwise; 2.1-2.3 never read `double_data`
  (`ONNXConstantsLoader.LoadConstant`). `tensor_payloads` moves such payloads into `raw_data`.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, numpy_helper

from ._graph import copy_model, iter_graphs

_FLT_MAX = float(np.finfo(np.float32).max)
_DTYPE_ATTRS = {"Cast": "to", "EyeLike": "dtype", "RandomNormal": "dtype", "RandomUniform": "dtype",
                "RandomNormalLike": "dtype", "RandomUniformLike": "dtype", "Multinomial": "dtype", "Bernoulli": "dtype"}
_TYPED_OK = {TensorProto.FLOAT: "float_data", TensorProto.INT32: "int32_data", TensorProto.INT64: "int64_data"}
META_KEY = "graph_passes.double_to_float"


def _to_float(t: TensorProto) -> tuple[TensorProto, int]:
    arr = numpy_helper.to_array(t).astype(np.float64)
    finite = np.isfinite(arr)
    over = int(np.count_nonzero(finite & (np.abs(arr) > _FLT_MAX)))
    arr = np.where(finite, np.clip(arr, -_FLT_MAX, _FLT_MAX), arr)
    new = numpy_helper.from_array(arr.astype(np.float32), t.name)
    return new, over


def _tensor_attrs(node):
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            yield a


def double_to_float(model: ModelProto) -> ModelProto:
    """DOUBLE initializers, Constant/ConstantOfShape values, dtype attributes (Cast to, Random*,
    EyeLike), graph inputs/outputs and value_info become FLOAT. This is the conversion Sentis does
    at import, minus its +-2^31 clamp; finite values beyond the float32 range are clamped to
    +-FLT_MAX (counted in metadata_props[graph_passes.double_to_float])."""
    m = copy_model(model)
    n_tensors = n_over = 0
    for g in iter_graphs(m.graph):
        for k, init in enumerate(g.initializer):
            if init.data_type == TensorProto.DOUBLE:
                new, over = _to_float(init)
                g.initializer[k].CopyFrom(new)
                n_tensors += 1
                n_over += over
        for n in g.node:
            for a in _tensor_attrs(n):
                if a.t.data_type == TensorProto.DOUBLE:
                    new, over = _to_float(a.t)
                    a.t.CopyFrom(new)
                    n_tensors += 1
                    n_over += over
            name = _DTYPE_ATTRS.get(n.op_type)
            for a in n.attribute:
                if a.name == name and a.type == onnx.AttributeProto.INT and a.i == TensorProto.DOUBLE:
                    a.i = TensorProto.FLOAT
                    n_tensors += 1
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type == TensorProto.DOUBLE:
                vi.type.tensor_type.elem_type = TensorProto.FLOAT
                n_tensors += 1
    if n_tensors:
        keep = [p for p in m.metadata_props if p.key != META_KEY]
        del m.metadata_props[:]
        m.metadata_props.extend(keep)
        m.metadata_props.add(key=META_KEY, value=f"{n_tensors} DOUBLE tensors/types made FLOAT; {n_over} values beyond float32 clamped to +-FLT_MAX")
    return m


def _needs_raw(t: TensorProto) -> bool:
    if t.data_location == TensorProto.EXTERNAL or t.raw_data:
        return False
    if t.data_type in _TYPED_OK:
        return False
    return bool(len(t.int32_data) or len(t.double_data) or len(t.uint64_data) or len(t.float_data) or len(t.int64_data))


def tensor_payloads(model: ModelProto) -> ModelProto:
    """Initializers and tensor attributes whose values sit in a typed field other than FLOAT
    float_data / INT32 int32_data / INT64 int64_data (e.g. FLOAT16 or BOOL in int32_data, DOUBLE in
    double_data) are rewritten with the same values in raw_data, which every Sentis version reads."""
    m = copy_model(model)
    for g in iter_graphs(m.graph):
        for k, init in enumerate(g.initializer):
            if _needs_raw(init):
                g.initializer[k].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init), init.name))
        for n in g.node:
            for a in _tensor_attrs(n):
                if _needs_raw(a.t):
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t), a.t.name))
    return m
