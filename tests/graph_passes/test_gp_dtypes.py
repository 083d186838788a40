import numpy as np
import onnx
import pytest
from _gp_helpers import assert_same, init, model, op_types, rules, note_rules, vi
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from graph_passes import GraphPassError, check_int64, fix_cast_to_bool
from graph_passes.sentis import check_model

I64_MAX = np.iinfo(np.int64).max
I64_MIN = np.iinfo(np.int64).min


def _slice_model(end_value, as_constant=False):
    nodes = [h.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"], name="sl")]
    inits = [init("starts", np.array([1], np.int64)), init("axes", np.array([1], np.int64))]
    if as_constant:
        nodes.insert(0, h.make_node("Constant", [], ["ends"], value=nh.from_array(np.array([end_value], np.int64)), name="c_end"))
    else:
        inits.append(init("ends", np.array([end_value], np.int64)))
    return model(nodes, [vi("x", T.FLOAT, [2, 5])], [vi("y", T.FLOAT, [2, 4])], inits)


@pytest.mark.parametrize("as_constant", [False, True])
def test_int64_max_slice_end_is_clamped(as_constant):
    m = _slice_model(I64_MAX, as_constant)
    report = check_model(m)
    # saturating INT64_MAX to INT32_MAX is exact for a Slice end (ONNX clamps to the dim): no finding
    assert report.ok and "int64-range" not in {f.rule for f in report.findings}
    out = check_int64(m)
    values = [nh.to_array(i) for i in out.graph.initializer if i.name == "ends"]
    values += [nh.to_array(a.t) for n in out.graph.node for a in n.attribute if n.op_type == "Constant"]
    assert values and int(values[0][0]) == 2**31 - 1
    assert not check_model(out).notes
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    assert_same(m, out, {"x": x})


def test_int64_min_end_with_negative_step():
    nodes = [h.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"], name="rev")]
    inits = [init("starts", np.array([-1], np.int64)), init("ends", np.array([I64_MIN], np.int64)),
             init("axes", np.array([1], np.int64)), init("steps", np.array([-1], np.int64))]
    m = model(nodes, [vi("x", T.FLOAT, [2, 5])], [vi("y", T.FLOAT, [2, 5])], inits)
    out = check_int64(m)
    assert_same(m, out, {"x": np.arange(10, dtype=np.float32).reshape(2, 5)})


def test_int64_sentinel_through_concat_is_harmless():
    nodes = [h.make_node("Concat", ["e0", "e1"], ["ends"], axis=0), h.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])]
    inits = [init("e0", np.array([2], np.int64)), init("e1", np.array([I64_MAX], np.int64)),
             init("starts", np.array([0, 1], np.int64)), init("axes", np.array([0, 1], np.int64))]
    m = model(nodes, [vi("x", T.FLOAT, [2, 5])], [vi("y", T.FLOAT, [2, 4])], inits)
    assert check_model(m).ok
    out = check_int64(m)
    assert_same(m, out, {"x": np.arange(10, dtype=np.float32).reshape(2, 5)})


def test_int64_overflow_is_violation_and_error():
    nodes = [h.make_node("Add", ["x", "big"], ["y"], name="add_big")]
    m = model(nodes, [vi("x", T.INT64, [2])], [vi("y", T.INT64, [2])], [init("big", np.array([1, 2**40], np.int64))])
    report = check_model(m)
    assert "int64-range" in rules(report)
    v = next(v for v in report.violations if v.rule == "int64-range")
    assert "big" in v.message and str(2**40) in v.message and "add_big" in v.message
    with pytest.raises(GraphPassError, match=r"'big'.*1099511627776.*'add_big' \(Add\)"):
        check_int64(m)


def test_int64_sentinel_used_elsewhere_is_violation():
    # the same INT64_MAX also feeds an Add: saturating it would change that result
    nodes = [h.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"]), h.make_node("Add", ["ends", "ends"], ["z"], name="uses_end")]
    inits = [init("starts", np.array([1], np.int64)), init("ends", np.array([I64_MAX], np.int64)), init("axes", np.array([1], np.int64))]
    m = model(nodes, [vi("x", T.FLOAT, [2, 5])], [vi("y", T.FLOAT, [2, 4]), vi("z", T.INT64, [1])], inits)
    assert "int64-range" in rules(check_model(m))
    with pytest.raises(GraphPassError, match="uses_end"):
        check_int64(m)


@pytest.mark.parametrize("src_dtype", [T.FLOAT, T.FLOAT16, T.INT32, T.INT64])
def test_cast_to_bool_flagged_and_rewritten(src_dtype):
    np_dtype = onnx.helper.tensor_dtype_to_np_dtype(src_dtype)
    nodes = [h.make_node("Cast", ["x"], ["b"], to=T.BOOL, name="to_bool"), h.make_node("Not", ["b"], ["y"])]
    m = model(nodes, [vi("x", src_dtype, [6])], [vi("y", T.BOOL, [6])])
    report = check_model(m)
    assert "cast-to-bool" in rules(report)
    assert any(v.node == "to_bool" and v.op == "Cast" for v in report.violations)
    out = fix_cast_to_bool(m)
    assert "Cast" not in op_types(out) and {"Equal", "Not"} <= set(op_types(out))
    assert check_model(out).ok
    if np.issubdtype(np_dtype, np.floating):
        x = np.array([0.0, -0.0, 0.5, -2.0, np.nan, np.inf], dtype=np_dtype)
    else:
        x = np.array([0, 1, 2, -3, 7, 0], dtype=np_dtype)
    assert_same(m, out, {"x": x})


def test_cast_bool_to_bool_left_alone():
    m = model([h.make_node("Cast", ["x"], ["y"], to=T.BOOL)], [vi("x", T.BOOL, [3])], [vi("y", T.BOOL, [3])])
    assert check_model(m).ok
    assert op_types(fix_cast_to_bool(m)) == ["Cast"]
