import numpy as np
import onnx
import pytest
from _gp_helpers import assert_same, init, model, op_types, vi
from onnx import TensorProto as T
from onnx import helper as h

from graph_passes import DEFAULT_PASSES, PASSES, GraphPassError, run_pipeline
from graph_passes.sentis import check_model

I64_MAX = np.iinfo(np.int64).max


def _messy_model():
    """Everything the default pipeline must fix, at opset 13, with a dynamic dim."""
    then_b = h.make_graph([h.make_node("Add", ["x", "one_f"], ["tb"])], "then", [], [vi("tb", T.FLOAT, None)])
    else_b = h.make_graph([h.make_node("Sub", ["x", "one_f"], ["eb"])], "else", [], [vi("eb", T.FLOAT, None)])
    body = h.make_graph(
        [h.make_node("Mul", ["s_in", "half"], ["s_out"]), h.make_node("Identity", ["c_in"], ["c_out"])],
        "body",
        [vi("i", T.INT64, []), vi("c_in", T.BOOL, []), vi("s_in", T.FLOAT, None)],
        [vi("c_out", T.BOOL, []), vi("s_out", T.FLOAT, None)],
        [init("half", np.array(0.5, np.float32))],
    )
    nodes = [
        h.make_node("Constant", [], ["one_f"], value_float=1.0, name="const_one"),
        h.make_node("Shape", ["x"], ["shp"], name="shape"),
        h.make_node("Gather", ["shp", "idx1"], ["t"], axis=0, name="gather_t"),
        h.make_node("Greater", ["t", "three"], ["cond"], name="t_gt_3"),
        h.make_node("If", ["cond"], ["a"], then_branch=then_b, else_branch=else_b, name="branch"),
        h.make_node("Loop", ["trip", "", "a"], ["b"], body=body, name="halve3"),
        h.make_node("Slice", ["b", "st", "en", "ax"], ["c"], name="drop_first"),
        h.make_node("Cast", ["c"], ["mask"], to=T.BOOL, name="to_mask"),
        h.make_node("Where", ["mask", "c", "zero_f"], ["y"], name="where"),
        h.make_node("Identity", ["y"], ["y_id"]),
        h.make_node("Neg", ["x"], ["unused"], name="dead"),
    ]
    inits = [
        init("idx1", np.array(1, np.int64)), init("three", np.array(3, np.int64)), init("trip", np.array(3, np.int64)),
        init("st", np.array([1], np.int64)), init("en", np.array([I64_MAX], np.int64)), init("ax", np.array([1], np.int64)),
        init("zero_f", np.array(0, np.float32)), init("orphan", np.ones(4, np.float32)),
    ]
    return model(nodes, [vi("x", T.FLOAT, [1, "T", 4])], [vi("y_id", T.FLOAT, [1, "T1", 4])], inits, opset=13)


def test_default_pipeline_fixes_everything():
    m = _messy_model()
    before = check_model(m, "2.1")
    assert {"op-unsupported", "subgraph", "opset-range", "dynamic-dim", "cast-to-bool", "constant-attr"} <= {v.rule for v in before.violations}
    out, applied = run_pipeline(m, input_shapes={"x": [1, 5, 4]})
    assert applied == DEFAULT_PASSES
    onnx.checker.check_model(out)
    for version in ("2.1", "2.4"):
        report = check_model(out, version)
        assert report.ok and not report.notes, report.format()
    ops = op_types(out)
    assert not {"If", "Loop", "Cast", "Identity", "Neg", "Shape", "Constant"} & set(ops)
    assert "orphan" not in {i.name for i in out.graph.initializer}
    assert out.opset_import[0].domain == "" and out.opset_import[0].version == 17
    x = np.random.default_rng(0).standard_normal((1, 5, 4)).astype(np.float32)
    x[0, 2, 1] = 0.0
    assert_same(m, out, {"x": x})
    assert m.graph.node[4].op_type == "If"  # input untouched


def test_pipeline_order_names_and_errors():
    m = _messy_model()
    out, applied = run_pipeline(m, ["fix_input_shapes", "fold_if"], input_shapes={"x": [1, 2, 4]})
    assert applied == ["fix_input_shapes", "fold_if"]
    assert "If" not in op_types(out) and "Loop" in op_types(out)
    _, applied = run_pipeline(m, ["fix_input_shapes", "remove_dead_nodes"])
    assert applied == ["remove_dead_nodes"]  # no shapes given: skipped, not recorded
    with pytest.raises(GraphPassError, match="unknown pass"):
        run_pipeline(m, ["fold_if", "bogus"])
    with pytest.raises(GraphPassError, match=r"^fold_to_fixed_point: If node 'branch' \(If\).*'t_gt_3' \(Greater\).*graph input 'x' has dynamic dims"):
        run_pipeline(m)  # T is dynamic, so the If condition is data(shape)-dependent


def test_target_opset_option():
    m = model([h.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, [2])], [vi("y", T.FLOAT, [2])], opset=13)
    out, _ = run_pipeline(m, ["convert_opset"], target_opset=15)
    assert out.opset_import[0].version == 15
    assert set(DEFAULT_PASSES) <= set(PASSES)
