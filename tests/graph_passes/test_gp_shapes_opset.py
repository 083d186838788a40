import numpy as np
import onnx
import pytest
from _gp_helpers import assert_same, init, model, rules, vi
from onnx import TensorProto as T
from onnx import helper as h

from graph_passes import GraphPassError, convert_opset, fix_input_shapes, infer_shapes, normalize_default_domain
from graph_passes.sentis import check_model


def _dyn_model():
    nodes = [h.make_node("Add", ["a", "b"], ["s"]), h.make_node("Relu", ["s"], ["y"])]
    return model(nodes, [vi("a", T.FLOAT, [1, "T", 4]), vi("b", T.FLOAT, [1, "T", 4])], [vi("y", T.FLOAT, [1, "T", 4])])


def _dims(v):
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]


def test_dynamic_dims_violation_unless_allowed():
    m = _dyn_model()
    report = check_model(m)
    dyn = [v for v in report.violations if v.rule == "dynamic-dim"]
    assert {v.node for v in dyn} == {"a", "b", "y"} and all("'T'" in v.message for v in dyn)
    assert check_model(m, allowed_symbolic_dims=["T"]).ok


def test_fix_input_shapes_makes_dims_static_and_propagates_dim_param():
    m = _dyn_model()
    out = fix_input_shapes(m, {"a": [1, 7, 4]})
    assert [_dims(i) for i in out.graph.input] == [[1, 7, 4], [1, 7, 4]]  # b shares 'T'
    assert _dims(out.graph.output[0]) == [1, "", 4]  # outputs: left to shape inference
    assert _dims(infer_shapes(out).graph.output[0]) == [1, 7, 4]
    assert check_model(infer_shapes(out)).ok
    assert _dims(m.graph.input[0]) == [1, "T", 4]  # input untouched


@pytest.mark.parametrize(
    "shapes, match",
    [
        ({"nope": [1]}, "not a graph input"),
        ({"a": [1, 7]}, "rank 3"),
        ({"a": [2, 7, 4]}, "dim 0 is static 1"),
    ],
)
def test_fix_input_shapes_errors(shapes, match):
    with pytest.raises(GraphPassError, match=match):
        fix_input_shapes(_dyn_model(), shapes)


def test_fix_input_shapes_splits_a_shared_dim_name_and_pins_named_dims():
    m = _dyn_model()
    out = fix_input_shapes(m, {"a": [1, 7, 4], "b": [1, 8, 4]})  # 'T' on both: split, not refused
    assert [_dims(i) for i in out.graph.input] == [[1, 7, 4], [1, 8, 4]]
    assert _dims(out.graph.output[0])[1] in ("", None)  # no single value: left to inference
    out = fix_input_shapes(m, dims={"T": 5})
    assert [_dims(i) for i in out.graph.input] == [[1, 5, 4], [1, 5, 4]] and _dims(infer_shapes(out).graph.output[0]) == [1, 5, 4]
    with pytest.raises(GraphPassError, match="dim 'Q' is not a symbolic dim"):
        fix_input_shapes(m, dims={"Q": 2})


def test_infer_shapes_fills_outputs_and_value_info():
    m = model([h.make_node("Relu", ["x"], ["r"]), h.make_node("Transpose", ["r"], ["y"], perm=[1, 0])],
              [vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, None)])
    out = infer_shapes(m)
    assert _dims(out.graph.output[0]) == [3, 2]
    assert [v.name for v in out.graph.value_info] == ["r"]


def test_convert_opset_13_to_17_keeps_outputs():
    nodes = [
        h.make_node("ReduceMean", ["x"], ["m"], axes=[1], keepdims=1),
        h.make_node("Sub", ["x", "m"], ["c"]),
        h.make_node("Split", ["c", "split"], ["p", "q"], axis=1),
        h.make_node("Unsqueeze", ["p", "ax"], ["u"]),
        h.make_node("Squeeze", ["u", "ax"], ["y"]),
        h.make_node("Clip", ["q", "lo", "hi"], ["z"]),
    ]
    inits = [init("split", np.array([2, 2], np.int64)), init("ax", np.array([0], np.int64)),
             init("lo", np.array(-0.5, np.float32)), init("hi", np.array(0.5, np.float32))]
    m = model(nodes, [vi("x", T.FLOAT, [3, 4])], [vi("y", T.FLOAT, [3, 2]), vi("z", T.FLOAT, [3, 2])], inits, opset=13)
    out = convert_opset(m, 17)
    onnx.checker.check_model(out)
    assert [(i.domain, i.version) for i in out.opset_import] == [("", 17)]
    assert check_model(out).ok
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    assert_same(m, out, {"x": x})


def test_opset_18_model_is_opset_range_violation_and_converts_down():
    nodes = [h.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1), h.make_node("Split", ["m"], ["a", "b"], axis=2, num_outputs=2),
             h.make_node("Pad", ["x", "pads"], ["p"], mode="reflect")]
    inits = [init("axes", np.array([1], np.int64)), init("pads", np.array([0, 0, 1, 0, 0, 1], np.int64))]
    m = model(nodes, [vi("x", T.FLOAT, [2, 3, 4])], [vi("a", T.FLOAT, None), vi("b", T.FLOAT, None), vi("p", T.FLOAT, None)], inits, opset=18)
    report = check_model(m)
    assert "opset-range" in rules(report)
    out = convert_opset(m, 17)
    assert [(i.domain, i.version) for i in out.opset_import] == [("", 17)]
    assert "opset-range" not in rules(check_model(out))
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    assert_same(m, out, {"x": x})


def test_uneven_split_18_to_17():
    m = model([h.make_node("Split", ["x"], ["a", "b"], axis=0, num_outputs=2)], [vi("x", T.FLOAT, [5, 2])],
              [vi("a", T.FLOAT, None), vi("b", T.FLOAT, None)], opset=18)
    out = convert_opset(m, 17)
    assert_same(m, out, {"x": np.arange(10, dtype=np.float32).reshape(5, 2)})


def test_ai_onnx_domain_spelling():
    m = model([h.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, [2])], [vi("y", T.FLOAT, [2])])
    m.opset_import[0].domain = "ai.onnx"
    assert "opset-domain" in rules(check_model(m))
    out = normalize_default_domain(m)
    assert [(i.domain, i.version) for i in out.opset_import] == [("", 17)]
    assert check_model(out).ok
    assert [(i.domain, i.version) for i in convert_opset(m, 17).opset_import] == [("", 17)]
