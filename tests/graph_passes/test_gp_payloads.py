"""double_to_float, tensor_payloads and remove_same_dtype_casts: what convert fixes of the loader
findings, checked with onnxruntime and with the checker for 2.1 and 2.4."""
import numpy as np
import pytest
from _gp_helpers import assert_same, init, model, run, vi
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from graph_passes import double_to_float, remove_same_dtype_casts, run_pipeline, tensor_payloads
from graph_passes.payloads import META_KEY
from graph_passes.sentis import check_model


def _levels(report):
    return {(f.rule, f.level) for f in report.findings}


def _double_mask():
    # an attention-style additive mask stored as DOUBLE: Sentis clamps -1e30 to -2147483648 (BurstJobsCastTensor.cs l.21)
    nodes = [h.make_node("Cast", ["x"], ["xd"], to=T.DOUBLE, name="to_double"), h.make_node("Add", ["xd", "mask"], ["s"], name="add"),
             h.make_node("Mul", ["s", "big"], ["y"], name="mul")]
    inits = [init("mask", np.array([0.0, -1e30, 0.0, 1e300])), init("big", np.array(2.0))]
    return model(nodes, [vi("x", T.FLOAT, [4])], [vi("y", T.DOUBLE, [4])], inits)


def test_double_to_float_makes_the_conversion_explicit():
    m = _double_mask()
    assert ("double-clamp", "semantics") in _levels(check_model(m, "2.4"))
    out = double_to_float(m)
    assert not any(i.data_type == T.DOUBLE for i in out.graph.initializer)
    assert out.graph.output[0].type.tensor_type.elem_type == T.FLOAT
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    (y,) = run(out, {"x": x})
    (ref,) = run(m, {"x": x})
    # -1e30 survives (float32 holds it); 1e300 is beyond float32: clamped to FLT_MAX, then *2 = inf
    assert y.dtype == np.float32 and y[1] == np.float32(-2e30) and y[0] == 2.0 and np.isinf(y[3])
    np.testing.assert_allclose(y[:3], ref[:3].astype(np.float32), rtol=1e-6)
    meta = {p.key: p.value for p in out.metadata_props}
    assert "1 values beyond float32 clamped" in meta[META_KEY]
    for version in ("2.1", "2.4"):
        assert not {r for r, _ in _levels(check_model(out, version))} & {"dtype-double", "double-clamp"}


def _payload_model(kind):
    if kind == "float16":
        t = h.make_tensor("w", T.FLOAT16, [3], [0.5, -1.25, 3.0])  # int32_data
        nodes = [h.make_node("Cast", ["w"], ["wf"], to=T.FLOAT), h.make_node("Add", ["x", "wf"], ["y"])]
        return model(nodes, [vi("x", T.FLOAT, [3])], [vi("y", T.FLOAT, [3])], [t])
    if kind == "bool":
        t = h.make_tensor("w", T.BOOL, [3], [1, 0, 1])
        return model([h.make_node("And", ["x", "w"], ["y"])], [vi("x", T.BOOL, [3])], [vi("y", T.BOOL, [3])], [t])
    t = h.make_tensor("w", T.DOUBLE, [3], [0.5, -1.25, 3.0])  # double_data
    nodes = [h.make_node("Cast", ["w"], ["wf"], to=T.FLOAT), h.make_node("Add", ["x", "wf"], ["y"])]
    return model(nodes, [vi("x", T.FLOAT, [3])], [vi("y", T.FLOAT, [3])], [t])


@pytest.mark.parametrize("kind, rule", [("float16", "typed-data-float16"), ("bool", "typed-data-int32"), ("double", "typed-data-double")])
def test_tensor_payloads_moves_typed_fields_into_raw_data(kind, rule):
    m = _payload_model(kind)
    assert rule in {r for v in ("2.1", "2.4") for r, _ in _levels(check_model(m, v))}
    out = tensor_payloads(m)
    w = out.graph.initializer[0]
    assert w.raw_data and not len(w.int32_data) and not len(w.double_data)
    np.testing.assert_array_equal(nh.to_array(w), nh.to_array(m.graph.initializer[0]))
    feeds = {"x": np.array([True, True, False])} if kind == "bool" else {"x": np.arange(3, dtype=np.float32)}
    assert_same(m, out, feeds)
    for version in ("2.1", "2.4"):
        assert not {r for r, _ in _levels(check_model(out, version))} & {"typed-data-float16", "typed-data-int32", "typed-data-double"}


def test_remove_same_dtype_casts_keeps_real_casts_and_outputs():
    nodes = [h.make_node("Cast", ["x"], ["a"], to=T.FLOAT, name="same"), h.make_node("Cast", ["a"], ["b"], to=T.INT32, name="real"),
             h.make_node("CastLike", ["b", "z"], ["y"], name="like_same"), h.make_node("Cast", ["x"], ["y2"], to=T.FLOAT, name="to_output")]
    m = model(nodes, [vi("x", T.FLOAT, [4]), vi("z", T.INT32, [1])], [vi("y", T.INT32, [4]), vi("y2", T.FLOAT, [4])])
    out = remove_same_dtype_casts(m)
    ops = [n.op_type for n in out.graph.node]
    assert ops.count("Cast") == 1 and "CastLike" not in ops
    x = np.array([0.5, -1.5, 2.0, 7.9], np.float32)
    assert_same(m, out, {"x": x, "z": np.zeros(1, np.int32)})


def test_default_pipeline_fixes_loader_findings_for_2_1_and_2_4():
    m = _double_mask()
    m.graph.initializer.append(h.make_tensor("h16", T.FLOAT16, [4], [1.0, 2.0, 3.0, 4.0]))
    m.graph.node.append(h.make_node("Cast", ["h16"], ["h32"], to=T.DOUBLE))
    m.graph.node.append(h.make_node("Add", ["y", "h32"], ["y_out"]))
    del m.graph.output[:]
    m.graph.output.append(vi("y_out", T.DOUBLE, [4]))
    before = {r for v in ("2.1", "2.4") for r, _ in _levels(check_model(m, v))}
    assert {"double-clamp", "dtype-double", "typed-data-float16"} <= before
    out, applied = run_pipeline(m)
    assert {"double_to_float", "tensor_payloads"} <= set(applied)
    for version in ("2.1", "2.4"):
        r = check_model(out, version)
        assert r.ok, r.format()
