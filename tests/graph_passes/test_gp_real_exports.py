"""The five ways `convert` failed on the official ZipVoice / Vocos ONNX exports (issue 13), each as
a small hand-built graph of the same pattern. These always run (CI has no official code copy);
tests/graph_passes/test_gp_zipvoice_official.py runs the real exports where the copy exists."""

import numpy as np
import onnx
import pytest
from _gp_helpers import init, model, op_types, run, vi
from click.testing import CliRunner
from onnx import TensorProto as T
from onnx import helper as h

from exporter.cli_graph import check_command, convert_command
from graph_passes import GraphPassError, fold_constants, run_pipeline
from graph_passes.folding import prove_folded


@pytest.fixture
def runner():
    return CliRunner()


def _save(m, path):
    onnx.save_model(m, str(path))
    return str(path)


def _branch(name, out, value):
    c = h.make_node("Constant", [], [f"{name}_c"], value=h.make_tensor("v", T.FLOAT, [], [value]))
    add = h.make_node("Add", ["y", f"{name}_c"], [out])
    return h.make_graph([c, add], name, [], [vi(out, T.FLOAT, None)])


# --------------------------------------------------------------------------------------------
# 1. shape-only If behind a Pad with computed pads / a Reshape with a computed shape
# --------------------------------------------------------------------------------------------
def _shape_if_model(pads_from_input=False):
    """x [1,T]: y = Pad(x, pads) with pads computed by nodes (not an initializer); z = Reshape(y,
    float shape arithmetic) (data propagation cannot follow it); If(len(z) > 5); a Loop whose
    trip count is the If output's length. Every condition depends on shapes only."""
    pads_src = "p" if pads_from_input else "pads_c"
    nodes = [
        h.make_node("Concat", ["zeros2", pads_src], ["pads"], axis=0, name="pads_concat"),
        h.make_node("Pad", ["x", "pads"], ["y"], name="pad"),
        h.make_node("Shape", ["y"], ["ys"], name="y_shape"),
        h.make_node("Cast", ["ys"], ["ysf"], to=T.FLOAT, name="to_float"),
        h.make_node("Mul", ["ysf", "one_f"], ["ysf1"], name="float_math"),
        h.make_node("Cast", ["ysf1"], ["zs"], to=T.INT64, name="to_int"),
        h.make_node("Reshape", ["y", "zs"], ["z"], name="reshape"),
        h.make_node("Shape", ["z"], ["zsh"], name="z_shape"),
        h.make_node("Gather", ["zsh", "one_i"], ["zlen"], axis=0, name="z_len"),
        h.make_node("Greater", ["zlen", "five"], ["cond"], name="len_gt_5"),
        h.make_node("If", ["cond"], ["w"], then_branch=_branch("then", "w_t", 1.0), else_branch=_branch("else", "w_e", -1.0),
                    name="shape_if"),
        h.make_node("Shape", ["w"], ["wsh"], name="w_shape"),
        h.make_node("Gather", ["wsh", "one_i"], ["trip"], axis=0, name="w_len"),
        h.make_node("Loop", ["trip", "", "acc0"], ["acc"], body=_sum_body(), name="shape_loop"),
        h.make_node("Add", ["z", "acc"], ["out"], name="out_add"),
    ]
    inputs = [vi("x", T.FLOAT, [1, "T"]), vi("acc0", T.FLOAT, [1])]
    if pads_from_input:
        inputs.append(vi("p", T.INT64, [2]))
    inits = [init("zeros2", np.zeros(2, np.int64)), init("pads_c", np.array([0, 1], np.int64)), init("one_f", np.float32(1.0)),
             init("one_i", np.int64(1)), init("five", np.int64(5))]
    return model(nodes, inputs, [vi("out", T.FLOAT, [1, None])], inits)


def _sum_body():
    nodes = [h.make_node("Cast", ["i"], ["fi"], to=T.FLOAT), h.make_node("Add", ["a_in", "fi"], ["a_out"]),
             h.make_node("Identity", ["c_in"], ["c_out"])]
    return h.make_graph(nodes, "body", [vi("i", T.INT64, []), vi("c_in", T.BOOL, []), vi("a_in", T.FLOAT, [1])],
                        [vi("c_out", T.BOOL, []), vi("a_out", T.FLOAT, [1])])


@pytest.mark.parametrize("t", [3, 6])
def test_shape_only_if_and_loop_fold_to_a_fixed_point(t):
    m = _shape_if_model()
    notes = []
    out, _ = run_pipeline(m, input_shapes={"x": [1, t]}, notes=notes)
    assert not {"If", "Loop", "Shape"} & set(op_types(out))
    assert any("fixed point after" in n for n in notes)
    feeds = {"x": np.random.default_rng(t).standard_normal((1, t)).astype(np.float32), "acc0": np.ones(1, np.float32)}
    np.testing.assert_array_equal(run(out, feeds)[0], run(m, feeds)[0])  # both branches and trip counts


def test_if_left_names_the_blocking_node_not_the_pinned_input():
    m = _shape_if_model(pads_from_input=True)
    with pytest.raises(GraphPassError) as err:
        run_pipeline(m, input_shapes={"x": [1, 4]})
    msg = str(err.value)
    assert "If node 'shape_if' (If)" in msg
    assert "the output shape of node 'pad' (Pad) depends on its input 'pads'" in msg
    assert "the values of graph input 'p'" in msg
    assert "graph input 'x'" not in msg  # its shape is pinned: not what blocks


# --------------------------------------------------------------------------------------------
# 2. one symbolic dim name on several inputs (ZipVoice: tokens, prompt_tokens and the output 'T')
# --------------------------------------------------------------------------------------------
def _shared_dim_model():
    nodes = [h.make_node("Concat", ["tokens", "prompt_tokens"], ["cat"], axis=1), h.make_node("Cast", ["cat"], ["y"], to=T.FLOAT)]
    return model(nodes, [vi("tokens", T.INT64, ["N", "T"]), vi("prompt_tokens", T.INT64, ["N", "T"])],
                 [vi("y", T.FLOAT, ["N", "T"])])


def test_input_shapes_pin_each_input_even_when_dim_names_collide(runner, tmp_path):
    src = _save(_shared_dim_model(), tmp_path / "in.onnx")
    dst = tmp_path / "out.onnx"
    res = runner.invoke(convert_command, [src, str(dst), "--input-shape", "tokens=1,40", "--input-shape", "prompt_tokens=1,20"])
    assert res.exit_code == 0, res.output
    assert "symbolic dim 'T' split: tokens=40, prompt_tokens=20" in res.output
    out = onnx.load(str(dst))
    assert [d.dim_value for d in out.graph.output[0].type.tensor_type.shape.dim] == [1, 60]
    res = runner.invoke(convert_command, [src, str(dst), "--dim", "T=8", "--dim", "N=1"])
    assert res.exit_code == 0, res.output
    out = onnx.load(str(dst))
    assert [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in out.graph.input] == [[1, 8], [1, 8]]
    res = runner.invoke(convert_command, [src, str(dst), "--dim", "T"])
    assert res.exit_code == 2 and "NAME=VALUE" in res.output


# --------------------------------------------------------------------------------------------
# 3. Shape(start, end): onnx-graphsurgeon folds it to the full shape (a silent wrong result)
# --------------------------------------------------------------------------------------------
def _shape_slice_model():
    """The 2-node graph of the issue: the length of axis 1 of x, plus one."""
    nodes = [h.make_node("Shape", ["x"], ["s"], start=1, end=2, name="len"),
             h.make_node("Add", ["s", "one"], ["y"], name="plus_one")]
    return model(nodes, [vi("x", T.FLOAT, [2, "T", 4])], [vi("y", T.INT64, [1])], [init("one", np.array([1], np.int64))])


def _shape_gather_model():
    nodes = [h.make_node("Shape", ["x"], ["s"], start=-2, name="tail"),
             h.make_node("Gather", ["s", "zero"], ["y"], axis=0, name="first")]
    return model(nodes, [vi("x", T.FLOAT, [2, "T", 4])], [vi("y", T.INT64, [])], [init("zero", np.int64(0))])


def test_shape_start_end_folds_to_the_right_value(runner, tmp_path):
    dst = tmp_path / "out.onnx"
    res = runner.invoke(convert_command, [_save(_shape_slice_model(), tmp_path / "a.onnx"), str(dst), "--input-shape", "x=2,299,4"])
    assert res.exit_code == 0, res.output
    out = onnx.load(str(dst))
    x = np.zeros((2, 299, 4), np.float32)
    assert run(out, {"x": x})[0].tolist() == [300] == run(_shape_slice_model(), {"x": x})[0].tolist()
    assert "Shape" not in op_types(out)
    res = runner.invoke(convert_command, [_save(_shape_gather_model(), tmp_path / "b.onnx"), str(dst), "--input-shape", "x=2,299,4"])
    assert res.exit_code == 0, res.output
    assert int(run(onnx.load(str(dst)), {"x": x})[0]) == 299


def test_partly_static_shape_folds_the_static_dims_only():
    """x.shape[2] of a [2, T, 4] tensor is 4 whatever T is (gs folded it from the full shape)."""
    nodes = [h.make_node("Shape", ["x"], ["s"], start=1), h.make_node("Gather", ["s", "one"], ["d"], axis=0),
             h.make_node("Shape", ["x"], ["s2"]), h.make_node("Slice", ["s2", "one1", "two1"], ["t"]),
             h.make_node("Cast", ["t"], ["tf"], to=T.FLOAT), h.make_node("Mul", ["x", "tf"], ["y0"]),
             h.make_node("Cast", ["d"], ["df"], to=T.FLOAT), h.make_node("Mul", ["y0", "df"], ["y"])]
    m = model(nodes, [vi("x", T.FLOAT, [2, "T", 4])], [vi("y", T.FLOAT, [2, "T", 4])],
              [init("one", np.int64(1)), init("one1", np.array([1], np.int64)), init("two1", np.array([2], np.int64))])
    out, _ = run_pipeline(m)  # T stays dynamic: only Shape(x)[1:2] (= T) is left
    assert op_types(out).count("Shape") == 1
    x = np.ones((2, 5, 4), np.float32)
    np.testing.assert_array_equal(run(out, {"x": x})[0], run(m, {"x": x})[0])
    assert float(run(out, {"x": x})[0][0, 0, 0]) == 20.0


def test_a_wrong_fold_is_refused():
    """The proof recomputes each folded value from the unfolded graph: gs's old answer (the full
    shape, +1) is caught."""
    from onnx import numpy_helper as nh

    from graph_passes import fix_input_shapes

    before = fix_input_shapes(_shape_slice_model(), {"x": [2, 300, 4]})
    wrong = fold_constants(before)
    del wrong.graph.initializer[:]
    wrong.graph.initializer.append(nh.from_array(np.array([3, 301, 5], np.int64), "y"))  # what gs computed
    with pytest.raises(GraphPassError, match=r"folded value 'y' of node 'plus_one' \(Add\) differs .*\[301\]"):
        prove_folded(before, wrong)
    assert prove_folded(before, fold_constants(before, verify=False)) >= 1


# --------------------------------------------------------------------------------------------
# 4. declared output shapes that lie: a length from input values through Expand
# --------------------------------------------------------------------------------------------
def _value_length_model():
    """ZipVoice text encoder pattern: output length = the VALUE of input n (an Expand with a
    runtime shape); torch declared the output with the token axis name 'T'."""
    nodes = [
        h.make_node("Gather", ["emb", "tokens"], ["e"], axis=0),
        h.make_node("ReduceMean", ["e"], ["last"], axes=[1], keepdims=1),
        h.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        h.make_node("Concat", ["one", "n1", "four"], ["shp"], axis=0),
        h.make_node("Expand", ["last", "shp"], ["y"]),
    ]
    inits = [init("emb", np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)), init("ax0", np.array([0], np.int64)),
             init("one", np.array([1], np.int64)), init("four", np.array([4], np.int64))]
    return model(nodes, [vi("tokens", T.INT64, [1, "T"]), vi("n", T.INT64, [])], [vi("y", T.FLOAT, [1, "T", 4])], inits, opset=13)


def test_data_dependent_output_length_is_declared_symbolic_and_reported(runner, tmp_path):
    src = _save(_value_length_model(), tmp_path / "in.onnx")
    dst = tmp_path / "out.onnx"
    res = runner.invoke(convert_command, [src, str(dst), "--input-shape", "tokens=1,5"])
    assert res.exit_code == 1, res.output  # written, but the Sentis checker flags the dynamic dim
    assert "output 'y' dim 1 depends on input values" in res.output and "explicit length input" in res.output
    out = onnx.load(str(dst))
    d = out.graph.output[0].type.tensor_type.shape.dim
    assert d[1].dim_param == "y_dim1" and d[0].dim_value == 1 and d[2].dim_value == 4
    for n in (0, 3, 11):
        feeds = {"tokens": np.array([[1, 2, 3, 4, 5]]), "n": np.array(n)}
        assert run(out, feeds)[0].shape == (1, n, 4)
    res = runner.invoke(convert_command, [src, str(dst), "--input-shape", "tokens=1,5", "--allow-dynamic", "y_dim1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(convert_command, [src, str(dst), "--input-shape", "tokens=1,5", "--input-value", "n=3"])
    assert "parity vs the input model" in res.output and "depends on input values" not in res.output  # n fixed
    res = runner.invoke(convert_command, [src, str(dst), "--input-value", "m=3"])
    assert res.exit_code == 2 and "'m', which is not a graph input" in res.output


# --------------------------------------------------------------------------------------------
# 5. graphs the checker passed but onnxruntime refuses
# --------------------------------------------------------------------------------------------
def _zero_size_concat_model():
    """fm decoder pattern: Concat(x, Expand(c, [1, T - T, 4])) — a zero-size Expand once T is pinned."""
    nodes = [
        h.make_node("Shape", ["x"], ["xs"]),
        h.make_node("Gather", ["xs", "one_i"], ["t"], axis=0),
        h.make_node("Sub", ["t", "t"], ["zero"]),
        h.make_node("Unsqueeze", ["zero", "ax0"], ["zero1"]),
        h.make_node("Concat", ["one", "zero1", "four"], ["shp"], axis=0),
        h.make_node("Expand", ["c", "shp"], ["pad"]),
        h.make_node("Concat", ["x", "pad"], ["y"], axis=1, name="cat"),
    ]
    inits = [init("one_i", np.int64(1)), init("ax0", np.array([0], np.int64)), init("one", np.array([1], np.int64)),
             init("four", np.array([4], np.int64)), init("c", np.ones((1, 1, 4), np.float32))]
    return model(nodes, [vi("x", T.FLOAT, [1, "T", 4])], [vi("y", T.FLOAT, [1, "T", 4])], inits, opset=13)


def test_zero_size_concat_inputs_are_removed(runner, tmp_path):
    dst = tmp_path / "out.onnx"
    res = runner.invoke(convert_command, [_save(_zero_size_concat_model(), tmp_path / "in.onnx"), str(dst), "--input-shape", "x=1,6,4"])
    assert res.exit_code == 0, res.output
    out = onnx.load(str(dst))
    cat = [n for n in out.graph.node if n.op_type == "Concat"]
    assert all(len(n.input) == 1 for n in cat) and "Expand" not in op_types(out)
    x = np.random.default_rng(1).standard_normal((1, 6, 4)).astype(np.float32)
    np.testing.assert_array_equal(run(out, {"x": x})[0], x)


def _scatter_int32_model():
    nodes = [h.make_node("ScatterND", ["x", "idx", "upd"], ["y"], name="scatter")]
    inits = [init("idx", np.array([[1]], np.int32)), init("upd", np.array([[5, 5, 5, 5]], np.float32))]
    return model(nodes, [vi("x", T.FLOAT, [3, 4])], [vi("y", T.FLOAT, [3, 4])], inits, opset=13)


def test_int32_scatternd_indices_are_invalid_onnx(runner, tmp_path):
    src = _save(_scatter_int32_model(), tmp_path / "s.onnx")
    res = runner.invoke(check_command, [src])
    assert res.exit_code == 2 and "OK for Sentis" not in res.output
    assert "invalid ONNX" in res.output and "ScatterND" in res.output and len(res.output.strip().splitlines()) == 1
    dst = tmp_path / "o.onnx"
    res = runner.invoke(convert_command, [src, str(dst)])
    assert res.exit_code == 2 and "invalid ONNX" in res.output and not dst.exists()


def test_fixed_point_is_bounded():
    from graph_passes import fold_to_fixed_point, fix_input_shapes

    m = fix_input_shapes(_shape_if_model(), {"x": [1, 6]})
    with pytest.raises(GraphPassError, match="no fixed point after 1 rounds"):
        fold_to_fixed_point(m, max_rounds=1)


def test_a_pass_that_changes_the_result_is_caught_and_nothing_is_written(runner, tmp_path, monkeypatch):
    """The after-convert comparison with the input model: a (simulated) wrong pass is an error."""
    from onnx import numpy_helper as nh

    import graph_passes.pipeline as pipeline

    def wrong(model):
        out = onnx.ModelProto()
        out.CopyFrom(model)
        for i, t in enumerate(out.graph.initializer):
            if t.name == "w":
                out.graph.initializer[i].CopyFrom(nh.from_array(nh.to_array(t) * 1.01, "w"))
        return out

    monkeypatch.setitem(pipeline.PASSES, "remove_identity", wrong)
    m = model([h.make_node("Mul", ["x", "w"], ["y"])], [vi("x", T.FLOAT, [1, 4])], [vi("y", T.FLOAT, [1, 4])],
              [init("w", np.full((1, 4), 2.0, np.float32))])
    dst = tmp_path / "out.onnx"
    res = runner.invoke(convert_command, [_save(m, tmp_path / "in.onnx"), str(dst)])
    assert res.exit_code == 2 and "differs from the input model on output 'y'" in res.output and "not written" in res.output
    assert not dst.exists()
