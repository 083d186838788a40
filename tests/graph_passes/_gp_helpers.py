"""Shared helpers for the graph_passes tests: hand-built graphs and onnxruntime comparison."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

IR_VERSION = 8  # onnxruntime in this environment reads IR <= 13; onnx 1.23 writes 14 by default


def vi(name, dtype=T.FLOAT, shape=None):
    return h.make_tensor_value_info(name, dtype, shape)


def init(name, array):
    return nh.from_array(np.asarray(array), name)


def model(nodes, inputs, outputs, inits=(), opset=17, **kw):
    g = h.make_graph(list(nodes), "g", list(inputs), list(outputs), list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)] + list(kw.pop("extra_opsets", [])), ir_version=IR_VERSION, **kw)
    return m


def run(m, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def assert_same(a, b, feeds, exact=True):
    """Both models give identical outputs (bitwise unless exact=False)."""
    ra, rb = run(a, feeds), run(b, feeds)
    assert len(ra) == len(rb)
    for x, y in zip(ra, rb):
        assert x.shape == y.shape and x.dtype == y.dtype
        if exact:
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def op_types(m):
    return [n.op_type for n in m.graph.node]


def rules(report):
    return {v.rule for v in report.violations}


def note_rules(report):
    return {v.rule for v in report.notes}
