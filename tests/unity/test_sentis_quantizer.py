"""The emulation of Sentis's ModelQuantizer (tests/unity/sentis_quantizer.py) follows the real algorithm
(QuantizeConstantsPass.cs / BurstJobsQuantizeTensor.cs of com.unity.ai.inference 2.2-2.4)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .sentis_quantizer import quantize_fp16, quantize_model, quantize_uint8, quantized_initializers, snr_db


def test_float16_flushes_subnormals_and_clamps():
    w = np.array([1e-40, -1e-39, 1e6, -1e6, 0.1, 3.14159, 6e-5], np.float32)
    q = quantize_fp16(w)
    assert q[0] == 0 and q[1] == 0  # float32 subnormals -> 0
    assert q[2] == 65504 and q[3] == -65504  # clamped to half's range, not inf
    assert np.array_equal(q[4:], w[4:].astype(np.float16).astype(np.float32))  # round to nearest even


def test_uint8_per_tensor_scale_and_zero_point():
    w = np.array([-1.0, 0.0, 0.5, 2.0, 1.9], np.float32)
    scale = np.float32(3.0 / 255)
    zero = round(1.0 / scale)  # 85
    q = quantize_uint8(w)
    assert q[1] == 0.0  # zero is exact (the zero point is an integer)
    assert np.allclose(q, (np.clip(np.round(w / scale) + zero, 0, 255) - zero) * scale)
    assert np.max(np.abs(q - w)) <= scale / 2 + 1e-7
    # all-positive tensor: the range still includes 0 (max(0, max) - min(0, min)), zero point 0
    s1 = np.float32(1.0 / 255)  # float32 arithmetic like the Burst job: 0.5 / s1 = 127.49999 -> 127
    p = quantize_uint8(np.array([0.5, 1.0], np.float32))
    assert np.array_equal(p, np.array([127, 255], np.float32) * s1)


def _model():
    W = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(np.ones(3, np.float32), "b")
    c = numpy_helper.from_array(np.full(3, 2.0, np.float32), "c")
    T = numpy_helper.from_array(np.random.default_rng(1).standard_normal((10, 4)).astype(np.float32), "T")
    ids = numpy_helper.from_array(np.array([1, 2], np.int64), "ids")
    nodes = [helper.make_node("Gather", ["T", "ids"], ["e"]), helper.make_node("MatMul", ["e", "W"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["a"]), helper.make_node("Mul", ["a", "c"], ["y"])]
    g = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [W, b, c, T, ids])
    return helper.make_model(g)


def test_which_constants_are_quantized():
    m = _model()
    assert quantized_initializers(m) == {"W", "b", "T"}  # MatMul weight, its Dense bias, the Gather table; not Mul's constant
    q, n = quantize_model(m, "uint8")
    assert n == 12 + 3 + 40
    after = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    before = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    assert np.array_equal(after["c"], before["c"]) and np.array_equal(after["ids"], before["ids"])
    assert not np.array_equal(after["W"], before["W"])
    assert 25 < snr_db(before["W"], after["W"]) < 60
