import numpy as np
import onnx
import pytest
from _gp_helpers import assert_same, init, model, op_types, vi
from onnx import TensorProto as T
from onnx import helper as h

from graph_passes import GraphPassError, fold_if, unroll_loop

X = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)


def _branch(name, op, const):
    return h.make_graph(
        [h.make_node(op, ["x", f"{name}_c"], [f"{name}_o"], name=f"{name}_node")],
        name,
        [],
        [vi(f"{name}_o", T.FLOAT, [2, 3])],
        [init(f"{name}_c", np.full((1,), const, np.float32))],
    )


def _if_model(cond_value):
    node = h.make_node("If", ["cond"], ["y"], then_branch=_branch("t", "Add", 1.0), else_branch=_branch("e", "Mul", 3.0), name="the_if")
    return model([node], [vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, [2, 3])], [init("cond", np.array(cond_value))])


@pytest.mark.parametrize("cond", [True, False])
def test_fold_if_constant_condition(cond):
    m = _if_model(cond)
    out = fold_if(m)
    onnx.checker.check_model(out)
    assert op_types(out) == (["Add"] if cond else ["Mul"])
    assert_same(m, out, {"x": X})
    assert op_types(m) == ["If"]  # input untouched


@pytest.mark.parametrize("c1", [True, False])
@pytest.mark.parametrize("c2", [True, False])
def test_fold_nested_if(c1, c2):
    inner = h.make_node("If", ["c2"], ["y_in"], then_branch=_branch("t2", "Add", 10.0), else_branch=_branch("e2", "Sub", 10.0), name="inner")
    then_g = h.make_graph([inner, h.make_node("Mul", ["y_in", "x"], ["t_out"])], "then", [], [vi("t_out", T.FLOAT, [2, 3])])
    outer = h.make_node("If", ["c1"], ["y"], then_branch=then_g, else_branch=_branch("e1", "Mul", 3.0), name="outer")
    m = model([outer], [vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, [2, 3])], [init("c1", np.array(c1)), init("c2", np.array(c2))])
    out = fold_if(m)
    onnx.checker.check_model(out)
    assert "If" not in op_types(out)
    assert_same(m, out, {"x": X})


def test_fold_if_condition_computed_from_static_shape():
    # cond = Shape(x)[1] > 2, decidable once x has a static shape
    nodes = [
        h.make_node("Shape", ["x"], ["s"]),
        h.make_node("Gather", ["s", "one"], ["d"], axis=0),
        h.make_node("Greater", ["d", "two"], ["cond"]),
        h.make_node("If", ["cond"], ["y"], then_branch=_branch("t", "Add", 1.0), else_branch=_branch("e", "Mul", 3.0), name="shape_if"),
    ]
    m = model(nodes, [vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, [2, 3])], [init("one", np.array(1, np.int64)), init("two", np.array(2, np.int64))])
    out = fold_if(m)
    assert "If" not in op_types(out) and "Add" in op_types(out)
    assert_same(m, out, {"x": X})


def test_fold_if_data_dependent_condition_names_source():
    nodes = [
        h.make_node("ReduceSum", ["x"], ["s"], keepdims=0, name="sum_x"),
        h.make_node("Greater", ["s", "zero"], ["cond"], name="is_pos"),
        h.make_node("If", ["cond"], ["y"], then_branch=_branch("t", "Add", 1.0), else_branch=_branch("e", "Mul", 3.0), name="dyn_if"),
    ]
    m = model(nodes, [vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, [2, 3])], [init("zero", np.array(0, np.float32))])
    with pytest.raises(GraphPassError) as err:
        fold_if(m)
    msg = str(err.value)
    assert "'dyn_if'" in msg and "(If)" in msg
    assert "'is_pos' (Greater)" in msg and "graph input 'x'" in msg
    assert "\n" not in msg


def test_fold_if_condition_is_graph_input():
    node = h.make_node("If", ["flag"], ["y"], then_branch=_branch("t", "Add", 1.0), else_branch=_branch("e", "Mul", 3.0), name="in_if")
    m = model([node], [vi("x", T.FLOAT, [2, 3]), vi("flag", T.BOOL, [])], [vi("y", T.FLOAT, [2, 3])])
    with pytest.raises(GraphPassError, match=r"'in_if' \(If\).*graph input 'flag'"):
        fold_if(m)


def _loop_body(with_if=True):
    """body(i, cond, s) -> (cond, s', scan): s' = (2*s if i == 1 else s) + x*i ; scan = s' * x."""
    then_b = h.make_graph([h.make_node("Mul", ["s_in", "two"], ["tb"])], "tb", [], [vi("tb", T.FLOAT, None)])
    else_b = h.make_graph([h.make_node("Identity", ["s_in"], ["eb"])], "eb", [], [vi("eb", T.FLOAT, None)])
    nodes = [
        h.make_node("Cast", ["i"], ["fi"], to=T.FLOAT),
        h.make_node("Mul", ["x", "fi"], ["xi"]),
    ]
    if with_if:
        nodes += [h.make_node("Equal", ["i", "one"], ["is1"]), h.make_node("If", ["is1"], ["s2"], then_branch=then_b, else_branch=else_b, name="body_if")]
    else:
        nodes += [h.make_node("Identity", ["s_in"], ["s2"])]
    nodes += [
        h.make_node("Add", ["s2", "xi"], ["s_out"]),
        h.make_node("Identity", ["cond_in"], ["cond_out"]),
        h.make_node("Mul", ["s_out", "x"], ["scan_v"]),
    ]
    return h.make_graph(
        nodes,
        "body",
        [vi("i", T.INT64, []), vi("cond_in", T.BOOL, []), vi("s_in", T.FLOAT, [2, 3])],
        [vi("cond_out", T.BOOL, []), vi("s_out", T.FLOAT, [2, 3]), vi("scan_v", T.FLOAT, [2, 3])],
        [init("one", np.array(1, np.int64)), init("two", np.array(2, np.float32))],
    )


@pytest.mark.parametrize("with_if", [False, True])
def test_unroll_loop_state_and_scan(with_if):
    loop = h.make_node("Loop", ["M", "", "s0"], ["s_final", "scans"], body=_loop_body(with_if), name="loop")
    m = model(
        [loop],
        [vi("x", T.FLOAT, [2, 3]), vi("s0", T.FLOAT, [2, 3])],
        [vi("s_final", T.FLOAT, [2, 3]), vi("scans", T.FLOAT, [4, 2, 3])],
        [init("M", np.array(4, np.int64))],
    )
    out = unroll_loop(m)
    onnx.checker.check_model(out)
    assert not {"Loop", "If"} & set(op_types(out))
    s0 = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    assert_same(m, out, {"x": X, "s0": s0})


def test_unroll_loop_condition_stops_early():
    # while-loop on a constant state: i < 3 with M = 10 -> runs 3 times
    body = h.make_graph(
        [
            h.make_node("Add", ["s_in", "x"], ["s_out"]),
            h.make_node("Add", ["i", "one"], ["i1"]),
            h.make_node("Less", ["i1", "three"], ["cond_out"]),
        ],
        "body",
        [vi("i", T.INT64, []), vi("cond_in", T.BOOL, []), vi("s_in", T.FLOAT, [2, 3])],
        [vi("cond_out", T.BOOL, []), vi("s_out", T.FLOAT, [2, 3])],
        [init("one", np.array(1, np.int64)), init("three", np.array(3, np.int64))],
    )
    loop = h.make_node("Loop", ["M", "c", "s0"], ["s_final"], body=body, name="while")
    m = model([loop], [vi("x", T.FLOAT, [2, 3]), vi("s0", T.FLOAT, [2, 3])], [vi("s_final", T.FLOAT, [2, 3])],
              [init("M", np.array(10, np.int64)), init("c", np.array(True))])
    out = unroll_loop(m)
    assert op_types(out).count("Add") == 3 * 2
    assert_same(m, out, {"x": X, "s0": X})


def test_unroll_loop_dynamic_trip_count_names_source():
    loop = h.make_node("Loop", ["n", "", "s0"], ["s_final", "scans"], body=_loop_body(False), name="dyn_loop")
    m = model(
        [h.make_node("Cast", ["count"], ["n"], to=T.INT64, name="to_i64"), loop],
        [vi("x", T.FLOAT, [2, 3]), vi("s0", T.FLOAT, [2, 3]), vi("count", T.INT32, [])],
        [vi("s_final", T.FLOAT, [2, 3]), vi("scans", T.FLOAT, None)],
    )
    with pytest.raises(GraphPassError) as err:
        unroll_loop(m)
    msg = str(err.value)
    assert "'dyn_loop' (Loop)" in msg and "trip count 'n'" in msg
    assert "'to_i64' (Cast)" in msg and "graph input 'count'" in msg


def test_unroll_loop_data_dependent_condition():
    body = h.make_graph(
        [h.make_node("Add", ["s_in", "x"], ["s_out"]), h.make_node("ReduceSum", ["s_out"], ["t"], keepdims=0),
         h.make_node("Less", ["t", "lim"], ["cond_out"], name="keep_going")],
        "body",
        [vi("i", T.INT64, []), vi("cond_in", T.BOOL, []), vi("s_in", T.FLOAT, [2, 3])],
        [vi("cond_out", T.BOOL, []), vi("s_out", T.FLOAT, [2, 3])],
        [init("lim", np.array(5.0, np.float32))],
    )
    loop = h.make_node("Loop", ["M", "", "s0"], ["s_final"], body=body, name="dd_loop")
    m = model([loop], [vi("x", T.FLOAT, [2, 3]), vi("s0", T.FLOAT, [2, 3])], [vi("s_final", T.FLOAT, [2, 3])], [init("M", np.array(3, np.int64))])
    with pytest.raises(GraphPassError, match=r"'dd_loop' \(Loop\).*'keep_going' \(Less\)"):
        unroll_loop(m)


def test_unroll_nested_loops():
    inner_body = h.make_graph(
        [h.make_node("Add", ["a_in", "x"], ["a_out"]), h.make_node("Identity", ["ci"], ["co"])],
        "inner_body",
        [vi("j", T.INT64, []), vi("ci", T.BOOL, []), vi("a_in", T.FLOAT, [2, 3])],
        [vi("co", T.BOOL, []), vi("a_out", T.FLOAT, [2, 3])],
    )
    outer_body = h.make_graph(
        [h.make_node("Loop", ["two", "", "s_in"], ["s_mid"], body=inner_body, name="inner"),
         h.make_node("Mul", ["s_mid", "half"], ["s_out"]), h.make_node("Identity", ["cond_in"], ["cond_out"])],
        "outer_body",
        [vi("i", T.INT64, []), vi("cond_in", T.BOOL, []), vi("s_in", T.FLOAT, [2, 3])],
        [vi("cond_out", T.BOOL, []), vi("s_out", T.FLOAT, [2, 3])],
        [init("half", np.array(0.5, np.float32))],
    )
    loop = h.make_node("Loop", ["three", "", "s0"], ["y"], body=outer_body, name="outer")
    m = model([loop], [vi("x", T.FLOAT, [2, 3]), vi("s0", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, [2, 3])],
              [init("three", np.array(3, np.int64)), init("two", np.array(2, np.int64))])
    out = unroll_loop(m)
    onnx.checker.check_model(out)
    assert "Loop" not in op_types(out)
    assert op_types(out).count("Add") == 6
    assert_same(m, out, {"x": X, "s0": X})
