"""The import model on hand-built graphs: folding, SimplifyReshapeInput, fusions per version, the
CPU-fallback walk, 2.4's flushes and the residency of tensors over two executions.

S = com.unity.sentis 2.1.3, IE = com.unity.ai.inference 2.4.0; paths are inside those packages.
"""
import numpy as np
import pytest
from _gp_helpers import assert_same, init, model, vi
from onnx import TensorProto as T
from onnx import helper as h

from graph_passes import remove_same_dtype_casts, run_pipeline
from graph_passes.sentis import check_model


def _findings(report, rule):
    return [f for f in report.findings if f.rule == rule]


def _shape_chain(simplifiable: bool):
    """Reshape(x[1,T,4]) with a shape computed from Shape(x)."""
    nodes = [
        h.make_node("Shape", ["x"], ["s"], name="shape"),
        h.make_node("Gather", ["s", "one"], ["t"], axis=0, name="gather"),
        h.make_node("Unsqueeze", ["t", "ax0"], ["tu"], name="unsq"),
    ]
    if simplifiable:  # [1, T, 2, 2]: T equals the input dim at the same index -> 0
        nodes.append(h.make_node("Concat", ["c1", "tu", "c2", "c2"], ["shape_v"], axis=0, name="concat"))
        out = vi("y", T.FLOAT, [1, "T", 2, 2])
    else:  # [2T, -1]: one unknown and a -1 already -> stays dynamic
        nodes.insert(3, h.make_node("Mul", ["tu", "c2"], ["t2"], name="mul"))
        nodes.append(h.make_node("Concat", ["t2", "m1"], ["shape_v"], axis=0, name="concat"))
        out = vi("y", T.FLOAT, ["T2", 2])
    nodes.append(h.make_node("Reshape", ["x", "shape_v"], ["y"], name="reshape"))
    inits = [init("one", np.array(1, np.int64)), init("ax0", np.array([0], np.int64)), init("c1", np.array([1], np.int64)),
             init("c4", np.array([4], np.int64)), init("c2", np.array([2], np.int64)), init("m1", np.array([-1], np.int64))]
    return model(nodes, [vi("x", T.FLOAT, [1, "T", 4])], [out], inits)


@pytest.mark.parametrize("version", ["2.1", "2.4"])
def test_simplify_reshape_input_makes_the_shape_constant(version):
    # SimplifyReshapeInputPass (S l.41-47, IE l.40-46): a param equal to the input dim -> 0
    r = check_model(_shape_chain(True), version, allowed_symbolic_dims=["T"])
    a = r.importer
    assert a.simplified_reshapes == ["reshape"] and not a.cpu_read_inputs and not a.cpu_layers
    assert a.n_layers == 1  # only the Reshape is left: the Shape chain has no reader any more
    assert r.ok and not r.findings


@pytest.mark.parametrize("version", ["2.1", "2.4"])
def test_dynamic_shape_chain_runs_on_the_cpu_without_readback(version):
    # CPUFallbackCalculator.Calculate (S l.36-74, IE l.44-87): the Reshape shape is a seed, the
    # walk climbs Concat/Mul/Unsqueeze/Gather and stops at Shape (no data dependency, S l.112)
    r = check_model(_shape_chain(False), version, allowed_symbolic_dims=["T", "T2"])
    a = r.importer
    assert [(x[0], x[2]) for x in a.cpu_read_inputs] == [("reshape", 1)]
    assert [L.name for L in a.cpu_layers] == ["shape", "gather", "unsq", "mul", "concat"]
    assert a.summary()["blocking_readbacks"] == 0  # Shape reads no data: nothing waits on the GPU
    assert r.ok  # perf findings never fail
    assert {f.level for f in r.findings} == {"perf"}
    assert len(_findings(r, "cpu-fallback")) == 5 and len(_findings(r, "cpu-read-input")) == 1


def test_pinning_the_dim_at_import_removes_the_cpu_layers():
    # IE-2.2+ DynamicDimConfigs (ONNXModelConverter.cs l.1555) pins a named dim at import
    r = check_model(_shape_chain(False), "2.4", allowed_symbolic_dims=["T2"], pinned_dims={"T": 3})
    assert not r.importer.cpu_layers and not r.importer.cpu_read_inputs
    with pytest.raises(ValueError, match="2.2"):
        check_model(_shape_chain(False), "2.1", pinned_dims={"T": 3})


def _data_dependent_slice():
    nodes = [h.make_node("ArgMax", ["x"], ["am"], axis=0, keepdims=1, name="argmax"),
             h.make_node("Slice", ["x", "am", "end"], ["y"], name="slice")]
    return model(nodes, [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, ["k"])], [init("end", np.array([4], np.int64))])


@pytest.mark.parametrize("version", ["2.1", "2.4"])
def test_data_dependent_cpu_read_blocks_when_the_input_is_on_the_gpu(version):
    # ArgMax feeds Slice.starts (CPU-read, S l.97): it runs on the CPU and reads x. A GPU input is
    # moved with AsyncGPUReadback.WaitForCompletion (ComputeTensorData.cs l.159): once per run.
    a = check_model(_data_dependent_slice(), version, allowed_symbolic_dims=["k"]).importer
    assert [L.name for L in a.cpu_layers] == ["argmax"]
    assert a.readbacks_per_run("inputs on GPU") == [1, 1]
    assert a.readbacks_per_run("inputs on CPU") == [0, 0]  # read on the CPU first, then uploaded by Slice
    assert not a.flush_layers and not a.unflushed_repins


def _shared_int_constant():
    """A small int constant used as GPU data (Add) and by a CPU-fallback layer (Mul -> Reshape shape)."""
    nodes = [h.make_node("Add", ["j", "c"], ["j_plus"], name="add_gpu"),
             h.make_node("Mul", ["k", "c"], ["shape_v"], name="mul_cpu"),
             h.make_node("Reshape", ["d", "shape_v"], ["y"], name="reshape")]
    return model(nodes, [vi("j", T.INT64, [2]), vi("k", T.INT64, [2]), vi("d", T.FLOAT, [6])],
                 [vi("j_plus", T.INT64, [2]), vi("y", T.FLOAT, ["a", "b"])],
                 [init("c", np.array([1, 1], np.int64))])


def test_shared_constant_ping_pongs_and_2_4_flushes():
    # the GPU Add uploads (moves) c; the later CPU Mul moves it back (a blocking readback) in
    # every run, since constants persist across executions (CPUTensorData/ComputeTensorData.Pin)
    m = _shared_int_constant()
    r24 = check_model(m, "2.4", allowed_symbolic_dims=["a", "b"])
    a = r24.importer
    assert [L.name for L in a.cpu_layers] == ["mul_cpu"]
    assert a.readbacks_per_run("inputs on CPU") == [1, 1]  # c, every run
    assert a.readbacks_per_run("inputs on GPU") == [2, 2]  # c and k
    # IE l.95-147: mul_cpu reads tensors an earlier GPU layer reads -> flush before it (Worker.cs l.215-225)
    assert [L.name for L in a.flush_layers] == ["mul_cpu"]
    assert {f.rule for f in r24.findings} == {"cpu-read-input", "cpu-fallback", "blocking-readback", "gpu-flush"}
    assert r24.ok
    # 2.1 has no flush: the CPU layer moves c while the unsubmitted GPU Add still has it bound [I]
    r21 = check_model(m, "2.1", allowed_symbolic_dims=["a", "b"])
    assert {(f.rule, f.level) for f in _findings(r21, "cpu-fallback-unflushed")} == {("cpu-fallback-unflushed", "semantics")}
    assert not _findings(r21, "gpu-flush") and not r21.ok


# -- fusions ----------------------------------------------------------------------------------
def _rms_norm(with_cast: bool, scale_input: bool = False):
    """Qwen2 RMSNorm as TorchScript exports it: w * (x * (1 / sqrt(mean(x^2) + eps))).to(dtype);
    with_cast keeps the float->float Cast of `.to(input_dtype)` inside the pattern."""
    n = "nc" if with_cast else "n"
    nodes = [
        h.make_node("Pow", ["x", "two"], ["p"], name="pow"),
        h.make_node("ReduceMean", ["p"], ["m"], axes=[-1], keepdims=1, name="mean"),
        h.make_node("Add", ["m", "eps"], ["a"], name="add"),
        h.make_node("Sqrt", ["a"], ["s"], name="sqrt"),
        h.make_node("Div", ["one", "s"], ["r"], name="div"),
        h.make_node("Mul", ["x", "r"], ["n"], name="mul"),
    ] + ([h.make_node("Cast", ["n"], ["nc"], to=T.FLOAT, name="cast")] if with_cast else []) + [
        h.make_node("Mul", ["w", n], ["y"], name="scale"),
    ]
    inits = [init("two", np.array(2.0, np.float32)), init("eps", np.array(1e-6, np.float32)), init("one", np.array(1.0, np.float32))]
    inputs = [vi("x", T.FLOAT, [1, 3, 8])]
    if scale_input:
        inputs.append(vi("w", T.FLOAT, [8]))
    else:
        inits.append(init("w", np.linspace(0.5, 1.5, 8).astype(np.float32)))
    return model(nodes, inputs, [vi("y", T.FLOAT, [1, 3, 8])], inits)


def test_rmsnorm_fuses_in_2_1_and_a_same_dtype_cast_blocks_it_in_2_4():
    # S: ContractToSimplerLayer drops the Cast (l.191-198) before ContractSubExpression (l.282-297);
    # IE-2.4: ModelOptimizer runs ContractSubExpression first, the Cast sits in the pattern (l.109-125)
    m = _rms_norm(with_cast=True)
    r21, r24 = check_model(m, "2.1"), check_model(m, "2.4")
    assert r21.importer.rewrites.get("RMSNormalization") == 1 and not r21.importer.blocked_rewrites
    assert "RMSNormalization" not in r24.importer.rewrites
    assert [(f.rule, f.level, f.node) for f in _findings(r24, "fusion-blocked")] == [("fusion-blocked", "perf", "scale")]
    assert r24.ok  # perf only
    fixed = remove_same_dtype_casts(m)
    assert "Cast" not in [n.op_type for n in fixed.graph.node]
    assert check_model(fixed, "2.4").importer.rewrites.get("RMSNormalization") == 1
    x = np.random.default_rng(0).standard_normal((1, 3, 8)).astype(np.float32)
    assert_same(m, fixed, {"x": x})


def test_rmsnorm_scale_must_be_constant_in_2_1_only():
    # S CheckGraphFullInclusion (l.365-402): one non-constant input only; IE: scale is a placeholder
    m = _rms_norm(with_cast=False, scale_input=True)
    assert "RMSNormalization" not in check_model(m, "2.1").importer.rewrites
    assert check_model(m, "2.4").importer.rewrites.get("RMSNormalization") == 1


def _gelu(swap=False):
    mul_in = ["h", "x"] if swap else ["x", "h"]
    nodes = [h.make_node("Div", ["x", "sqrt2"], ["d"]), h.make_node("Erf", ["d"], ["e"]), h.make_node("Add", ["e", "one"], ["h"]),
             h.make_node("Mul", mul_in, ["g"]), h.make_node("Mul", ["g", "half"], ["y"], name="root")]
    inits = [init("sqrt2", np.array(np.sqrt(np.float32(2)), np.float32)), init("one", np.array(1.0, np.float32)),
             init("half", np.array(0.5, np.float32))]
    return model(nodes, [vi("x", T.FLOAT, [2, 8])], [vi("y", T.FLOAT, [2, 8])], inits)


def _gelu_fast():
    nodes = [h.make_node("Pow", ["x", "three"], ["p"]), h.make_node("Mul", ["p", "k"], ["pk"]), h.make_node("Add", ["x", "pk"], ["s"]),
             h.make_node("Mul", ["s", "c"], ["sc"]), h.make_node("Tanh", ["sc"], ["t"]), h.make_node("Add", ["t", "one"], ["t1"]),
             h.make_node("Mul", ["x", "half"], ["xh"]), h.make_node("Mul", ["xh", "t1"], ["y"])]
    inits = [init("three", np.array(3.0, np.float32)), init("k", np.array(0.044714998453855515, np.float32)),
             init("c", np.array(0.7978845834732056, np.float32)), init("one", np.array(1.0, np.float32)), init("half", np.array(0.5, np.float32))]
    return model(nodes, [vi("x", T.FLOAT, [2, 8])], [vi("y", T.FLOAT, [2, 8])], inits)


def _layer_norm():
    nodes = [h.make_node("ReduceMean", ["x"], ["mu"], axes=[-1]), h.make_node("Sub", ["x", "mu"], ["c"]),
             h.make_node("Pow", ["c", "two"], ["c2"]), h.make_node("ReduceMean", ["c2"], ["var"], axes=[-1]),
             h.make_node("Add", ["var", "eps"], ["ve"]), h.make_node("Sqrt", ["ve"], ["sd"]), h.make_node("Div", ["c", "sd"], ["n"]),
             h.make_node("Mul", ["n", "g"], ["ng"]), h.make_node("Add", ["ng", "b"], ["y"])]
    inits = [init("two", np.array(2.0, np.float32)), init("eps", np.array(1e-5, np.float32)), init("g", np.ones(8, np.float32)),
             init("b", np.zeros(8, np.float32))]
    return model(nodes, [vi("x", T.FLOAT, [2, 8])], [vi("y", T.FLOAT, [2, 8])], inits)


def _swish(swap=False):
    ins = ["s", "x"] if swap else ["x", "s"]
    return model([h.make_node("Sigmoid", ["x"], ["s"]), h.make_node("Mul", ins, ["y"])], [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])])


def _dense_and_mad():
    nodes = [h.make_node("MatMul", ["x", "w"], ["mm"]), h.make_node("Add", ["mm", "b"], ["d"]), h.make_node("Mul", ["d", "k"], ["y"])]
    inits = [init("w", np.ones((8, 4), np.float32)), init("b", np.ones(4, np.float32)), init("k", np.array(3.0, np.float32))]
    return model(nodes, [vi("x", T.FLOAT, [2, 8])], [vi("y", T.FLOAT, [2, 4])], inits)


@pytest.mark.parametrize("build, kind, fused", [
    (_gelu, "Gelu", True),  # S l.265, IE l.74
    (lambda: _gelu(swap=True), "Gelu", False),  # patterns are positional: Mul(h, x) is not Mul(x, h)
    (_gelu_fast, "GeluFast", True),  # S l.266, IE l.78-88
    (_layer_norm, "LayerNormalization", True),  # S l.267-277, IE l.91-106
    (_swish, "Swish", True),  # S l.264, IE l.70
    (lambda: _swish(swap=True), "Swish", False),
    (_dense_and_mad, "Dense", True),  # FuseDensePass: MatMul + Add with constant rank-2 weights and bias
    (_dense_and_mad, "ScalarMad", True),  # x * one-element constant (S l.300-316 / IE ContractToSimplerLayerPass l.366)
])
@pytest.mark.parametrize("version", ["2.1", "2.4"])
def test_rewrites_fire_per_version(build, kind, fused, version):
    a = check_model(build(), version).importer
    assert (a.rewrites.get(kind, 0) >= 1) == fused, a.rewrites


def test_pattern_with_an_interior_output_used_elsewhere_does_not_fuse():
    # CheckGraphFullInclusion / MatcherUtils.IsContained: interior nodes may only feed the pattern
    m = _swish()
    m.graph.output.append(vi("s", T.FLOAT, [4]))
    for version in ("2.1", "2.4"):
        assert "Swish" not in check_model(m, version).importer.rewrites


def test_folding_and_aliases_count_layers():
    # FuseConstants (S FuseConstantsPass l.44-89) folds c = a + b; a float->float Cast and a no-op
    # Reshape become Identity (ContractToSimplerLayerPass l.66-84, l.191-198) and are removed
    nodes = [h.make_node("Add", ["a", "b"], ["c"], name="const_add"), h.make_node("Cast", ["x"], ["xc"], to=T.FLOAT, name="cast"),
             h.make_node("Reshape", ["xc", "shape"], ["xr"], name="noop_reshape"), h.make_node("Mul", ["xr", "c"], ["y"], name="mul")]
    inits = [init("a", np.ones(4, np.float32)), init("b", np.ones(4, np.float32)), init("shape", np.array([2, 4], np.int64))]
    a = check_model(model(nodes, [vi("x", T.FLOAT, [2, 4])], [vi("y", T.FLOAT, [2, 4])], inits), "2.1").importer
    assert a.folded == ["const_add"] and sorted(a.aliased) == ["cast", "noop_reshape"]
    assert a.n_layers == 1 and [L.name for L in a.layers] == ["mul"]


def test_default_pipeline_removes_the_blocking_casts():
    m = _rms_norm(with_cast=True)
    out, applied = run_pipeline(m)
    assert "remove_same_dtype_casts" in applied
    r = check_model(out, "2.4")
    assert r.importer.rewrites.get("RMSNormalization") == 1 and r.blocked_fusions == 0
