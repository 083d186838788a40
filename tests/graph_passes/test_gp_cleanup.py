import numpy as np
import onnx
from _gp_helpers import assert_same, init, model, op_types, run, vi
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from graph_passes import constant_value_attrs, fold_constants, remove_dead_nodes, remove_identity
from graph_passes.sentis import check_model

X = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)


def test_remove_dead_nodes_and_unused_initializers():
    nodes = [
        h.make_node("Add", ["x", "w"], ["y"], name="live"),
        h.make_node("Mul", ["x", "dead_w"], ["d1"], name="dead1"),
        h.make_node("Relu", ["d1"], ["d2"], name="dead2"),
    ]
    inits = [init("w", np.ones((2, 3), np.float32)), init("dead_w", np.ones((2, 3), np.float32)), init("orphan", np.zeros(3, np.float32))]
    m = model(nodes, [vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, [2, 3])], inits)
    m.graph.value_info.append(vi("d1", T.FLOAT, [2, 3]))
    out = remove_dead_nodes(m)
    assert [n.name for n in out.graph.node] == ["live"]
    assert [i.name for i in out.graph.initializer] == ["w"]
    assert not out.graph.value_info
    assert [i.name for i in out.graph.input] == ["x"]
    assert len(m.graph.node) == 3  # input untouched
    assert_same(m, out, {"x": X})


def test_remove_identity_chains_and_output_identity():
    nodes = [
        h.make_node("Identity", ["x"], ["i1"]),
        h.make_node("Identity", ["i1"], ["i2"]),
        h.make_node("Relu", ["i2"], ["r"], name="relu"),
        h.make_node("Identity", ["r"], ["y"]),
        h.make_node("Identity", ["x"], ["z"]),  # graph output fed by a graph input: must stay
    ]
    m = model(nodes, [vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, [2, 3]), vi("z", T.FLOAT, [2, 3])])
    out = remove_identity(m)
    onnx.checker.check_model(out)
    assert op_types(out) == ["Relu", "Identity"]
    assert list(out.graph.node[0].input) == ["x"] and list(out.graph.node[0].output) == ["y"]
    assert_same(m, out, {"x": X})


def test_constant_value_float_rewritten():
    nodes = [
        h.make_node("Constant", [], ["c"], value_float=2.5, name="cf"),
        h.make_node("Constant", [], ["cs"], value_ints=[1, 2, 3], name="ci"),
        h.make_node("Mul", ["x", "c"], ["y"]),
        h.make_node("Cast", ["cs"], ["z"], to=T.FLOAT),
    ]
    m = model(nodes, [vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, [2, 3]), vi("z", T.FLOAT, [3])])
    report = check_model(m, "2.1")
    assert [v.node for v in report.violations if v.rule == "constant-attr"] == ["cf", "ci"]
    assert check_model(m, "2.3").ok  # 2.3+ reads value_float(s)/value_int(s)
    out = constant_value_attrs(m)
    for n in out.graph.node[:2]:
        assert [a.name for a in n.attribute] == ["value"]
    assert nh.to_array(out.graph.node[1].attribute[0].t).dtype == np.int64
    assert check_model(out, "2.1").ok
    assert_same(m, out, {"x": X})


def test_fold_constants_folds_shape_chain_but_not_random():
    nodes = [
        h.make_node("Shape", ["x"], ["s"]),
        h.make_node("Reshape", ["x", "s"], ["xr"]),
        h.make_node("Mul", ["c", "c"], ["c2"]),
        h.make_node("Add", ["xr", "c2"], ["y"]),
        h.make_node("RandomNormal", [], ["noise"], shape=[2, 3], seed=1.0),
        h.make_node("Add", ["y", "noise"], ["z"]),
    ]
    m = model(nodes, [vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, [2, 3]), vi("z", T.FLOAT, [2, 3])], [init("c", np.full((2, 3), 2, np.float32))])
    out = fold_constants(m)
    ops = op_types(out)
    assert "RandomNormal" in ops and ops.count("Add") == 2
    assert not {"Shape", "Mul"} & set(ops)
    np.testing.assert_array_equal(run(m, {"x": X})[0], run(out, {"x": X})[0])  # y is deterministic
    assert check_model(out).ok


def test_weights_to_fp16_keeps_io_fp32_and_skips_risky_tensors():
    from graph_passes import weights_to_fp16

    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 300)).astype(np.float32)
    big = np.full((300,), 1e6, np.float32)  # beyond fp16 range: must stay fp32
    eps = np.array(1e-12, np.float32)  # small tensor: stays fp32
    nodes = [h.make_node("MatMul", ["x", "w"], ["a"]), h.make_node("Add", ["a", "big"], ["b"]), h.make_node("Add", ["b", "eps"], ["y"])]
    m = model(nodes, [vi("x", T.FLOAT, [2, 4])], [vi("y", T.FLOAT, [2, 300])], [init("w", w), init("big", big), init("eps", eps)])
    out = weights_to_fp16(m, min_elements=256)
    onnx.checker.check_model(out)
    dtypes = {i.name: i.data_type for i in out.graph.initializer}
    assert dtypes == {"w__fp16": T.FLOAT16, "big": T.FLOAT, "eps": T.FLOAT}
    assert out.graph.node[0].op_type == "Cast" and list(out.graph.node[0].output) == ["w"]
    assert out.graph.output[0].type.tensor_type.elem_type == T.FLOAT
    assert check_model(out).ok
    x = rng.standard_normal((2, 4)).astype(np.float32)
    ref = run(m, {"x": x})[0]
    got = run(out, {"x": x})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-2, atol=1e-2)
    w16 = w.astype(np.float16).astype(np.float32)
    np.testing.assert_allclose(got, x @ w16 + big + eps, rtol=1e-6, atol=1e-3)


def test_remove_identity_renames_reads_inside_subgraphs_but_not_shadowed_names():
    """An If branch that reads the bypassed Identity's output from the outer scope is rewired;
    a branch that defines a value of the same name itself keeps reading its own value."""
    reads_outer = h.make_graph([h.make_node("Neg", ["t"], ["b1"])], "then", [], [vi("b1", T.FLOAT, [2, 3])])
    shadows = h.make_graph([h.make_node("Abs", ["x"], ["t"]), h.make_node("Relu", ["t"], ["b2"])], "else", [],
                           [vi("b2", T.FLOAT, [2, 3])])
    no_shadow = h.make_graph([h.make_node("Relu", ["x"], ["b2"])], "else", [], [vi("b2", T.FLOAT, [2, 3])])

    def with_else(else_branch):
        nodes = [
            h.make_node("Exp", ["x"], ["e"]),
            h.make_node("Identity", ["e"], ["t"]),
            h.make_node("If", ["c"], ["y"], then_branch=reads_outer, else_branch=else_branch),
        ]
        return model(nodes, [vi("x", T.FLOAT, [2, 3]), vi("c", T.BOOL, [])], [vi("y", T.FLOAT, [2, 3])])

    out = remove_identity(with_else(shadows))  # (onnxruntime refuses shadowing, so structure only)
    assert op_types(out) == ["Exp", "If"]
    branches = {a.name: a.g for a in out.graph.node[1].attribute}
    assert list(branches["then_branch"].node[0].input) == ["e"]
    assert [list(n.input) for n in branches["else_branch"].node] == [["x"], ["t"]]
    m = with_else(no_shadow)
    for c in (True, False):
        assert_same(m, remove_identity(m), {"x": X, "c": np.array(c)})
