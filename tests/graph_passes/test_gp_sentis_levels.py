"""Every checker rule on a hand-built graph, with the level the Unity source implies per version.

S = com.unity.sentis 2.1.3, IE = com.unity.ai.inference 2.2.0 / 2.3.0 / 2.4.0 (file paths below are
inside those packages; shared/reference/sentis_importer.md §2 has the same rules in prose).
Each case lists {version: level} for its rule; a version missing from the dict means the rule does
not fire there.
"""
import numpy as np
import onnx
import pytest
from _gp_helpers import init, model, vi
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from graph_passes.sentis import check_model, rule_counts
from graph_passes.sentis import rules as R
from graph_passes.sentis.check import FAILING, LEVELS, RULES

VERSIONS = ("2.1", "2.2", "2.3", "2.4")
ALL = dict.fromkeys(VERSIONS)


def lv(level, versions=VERSIONS):
    return {v: level for v in versions}


def _m(nodes, inputs, outputs, inits=(), opset=17, **kw):
    return model(nodes, inputs, outputs, inits, opset=opset, **kw)


def _fp16_in_int32_data():
    t = h.make_tensor("w", T.FLOAT16, [2], [1.0, 2.0])  # onnx.helper stores FLOAT16 bit patterns in int32_data
    assert len(t.int32_data) == 2 and not t.raw_data
    return t


def _bool_in_int32_data():
    return h.make_tensor("w", T.BOOL, [2], [1, 0])


def _double_in_double_data(values=(1.0, 2.0)):
    return h.make_tensor("w", T.DOUBLE, [2], list(values))


def _external(tmp_path, layout="contiguous"):
    a = init("a", np.ones(64, np.float32))
    b = init("b", np.full(64, 2, np.float32))
    m = _m([h.make_node("Add", ["x", "a"], ["t"], name="add_a"), h.make_node("Add", ["t", "b"], ["y"], name="add_b")],
           [vi("x", T.FLOAT, [64])], [vi("y", T.FLOAT, [64])], [a, b])
    path = tmp_path / "ext.onnx"
    onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="ext.data", size_threshold=0)
    if layout == "swapped":  # initializer order no longer the file order: Sentis reads them sequentially
        saved = onnx.load(str(path), load_external_data=False)
        inits = list(saved.graph.initializer)[::-1]
        del saved.graph.initializer[:]
        saved.graph.initializer.extend(inits)
        onnx.save_model(saved, str(path))
    if layout == "missing":
        (tmp_path / "ext.data").unlink()
    return path


# (id, builder, rule, {version: level}) -- the source line is in the comment of each case
CASES = [
    # ONNXModelConverter.cs: S has no "Mish" branch (final else: "X not supported"); IE-2.2.0 adds it
    ("mish", lambda: _m([h.make_node("Mish", ["x"], ["y"], name="n")], [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])], opset=18),
     "op-unsupported", {"2.1": "reject"}),
    # converter reads op_type only; a com.microsoft Gelu is the ONNX Gelu (project policy to flag it)
    ("ms_gelu", lambda: _m([h.make_node("Gelu", ["x"], ["y"], domain="com.microsoft", name="n")], [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])],
                           extra_opsets=[h.make_opsetid("com.microsoft", 1)]), "op-domain", lv("policy")),
    # model.functions is never read (grep: no reference in ONNXModelConverter.cs)
    ("function", lambda: _with_function(), "local-function", lv("policy")),
    # S l.1359-1366 / IE l.1517-1524: no opset range check; the 15-17 range is this project's policy
    ("opset14", lambda: _m([h.make_node("Relu", ["x"], ["y"], name="n")], [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])], opset=14),
     "opset-range", lv("policy")),
    # only domain "" sets the opset (string.IsNullOrEmpty); 'ai.onnx' -> 15 assumed, same encoding at 17
    ("ai_onnx_17", lambda: _ai_onnx(17, reduce_axes_input=False), "opset-domain", lv("policy")),
    # ... but at 18 a ReduceMean axes *input* is read through the opset-15 attribute path
    ("ai_onnx_18", lambda: _ai_onnx(18, reduce_axes_input=True), "opset-assumed", lv("semantics")),
    # ONNXModelConverter TrimTensorflowNames trims ':0' (S l.1477/1510, IE-2.2.0 l.1530/1563, 2.3.0); gone in IE-2.4.0
    ("tf_name", lambda: _m([h.make_node("Relu", ["x:0"], ["y"], name="n")], [vi("x:0", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])]),
     "io-name-trimmed", lv("policy", ("2.1", "2.2", "2.3"))),
    # S l.105-111 GetRequiredTensor("value"): value_float throws; IE-2.3.0 l.116 reads value_float
    ("const_float", lambda: _m([h.make_node("Constant", [], ["c"], value_float=2.0, name="n"), h.make_node("Mul", ["x", "c"], ["y"])],
                               [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])]), "constant-attr", {"2.1": "reject", "2.2": "reject"}),
    # Concat: node.GetRequiredInt("axis") throws without it
    ("concat_no_axis", lambda: _m([h.make_node("Concat", ["x", "x"], ["y"], name="n")], [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [8])]),
     "concat-axis", lv("reject")),
    # S/IE-2.2/2.3 GridSample mode switch: `_ => throw new ArgumentOutOfRangeException()`; IE-2.4 warns
    ("gridsample_mode", lambda: _gridsample("quartic"), "attr-gridsample-mode", {"2.1": "reject", "2.2": "reject", "2.3": "reject", "2.4": "semantics"}),
    # S l.127-130: new Layers.Gelu(...) never reads approximate; IE-2.2.0 l.131-132 maps tanh to GeluFast
    ("gelu_tanh", lambda: _m([h.make_node("Gelu", ["x"], ["y"], approximate="tanh", name="n")], [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])], opset=20),
     "gelu-tanh", {"2.1": "semantics"}),
    # S ONNXNodeWrapper.ScatterReductionMode: max/min -> none; IE-2.2.0 l.328-338 maps them
    ("scatternd_max", lambda: _scatter("ScatterND", "max"), "scatter-reduction-minmax", {"2.1": "semantics"}),
    # GPUCompute.ScatterElements (S l.2721-2729, IE l.2968): any reduction throws NotImplementedException
    ("scatter_add", lambda: _scatter("ScatterElements", "add"), "scatter-elements-reduction", lv("runtime")),
    # S l.590 / IE l.663: LayerNormalization always over the last axis
    ("ln_axis", lambda: _m([h.make_node("LayerNormalization", ["x", "s"], ["y"], axis=1, name="n")], [vi("x", T.FLOAT, [1, 4, 4])],
                           [vi("y", T.FLOAT, [1, 4, 4])], [init("s", np.ones(4, np.float32))]), "attr-layernorm-axis", lv("semantics")),
    # S l.220-221: ConvTranspose group/dilations → UnsupportedAttribute (ignored); IE-2.3 implements them
    ("convt_group", lambda: _m([h.make_node("ConvTranspose", ["x", "w"], ["y"], group=2, name="n")], [vi("x", T.FLOAT, [1, 2, 4])],
                               [vi("y", T.FLOAT, [1, 2, 6])], [init("w", np.ones((2, 1, 3), np.float32))]),
     "attr-convtranspose-group", {"2.1": "semantics", "2.2": "semantics"}),
    # Compute.Shaders.PointwiseUnary OpperationCastFloatToInt: (int)v, so 0.5 -> false
    ("cast_bool", lambda: _m([h.make_node("Cast", ["x"], ["y"], to=T.BOOL, name="n")], [vi("x", T.FLOAT, [4])], [vi("y", T.BOOL, [4])]),
     "cast-to-bool", lv("semantics")),
    # ONNXConstantsLoader.GetTensorData: raw INT16 -> "Tensor data type ... is not supported" (S l.262, IE l.178)
    ("int16_raw", lambda: _m([h.make_node("Cast", ["w"], ["y"], to=T.FLOAT, name="n")], [], [vi("y", T.FLOAT, [2])],
                             [init("w", np.array([1, 2], np.int16))]), "dtype-unsupported", lv("reject")),
    # ONNXNodeWrapper.DataTypeFromOnnxDataType: DOUBLE -> float32 (the import works: project policy)
    ("double_init", lambda: _m([h.make_node("Cast", ["w"], ["y"], to=T.FLOAT, name="n")], [], [vi("y", T.FLOAT, [2])],
                               [init("w", np.array([1.0, 2.0]))]), "dtype-double", lv("policy")),
    # BurstJobsCastTensor.cs l.21: doubles clamp to [int.MinValue, int.MaxValue] -> a -1e30 mask is -2.1e9
    ("double_mask", lambda: _m([h.make_node("Cast", ["w"], ["y"], to=T.FLOAT, name="n")], [], [vi("y", T.FLOAT, [2])],
                               [init("w", np.array([0.0, -1e30]))]), "double-clamp", lv("semantics")),
    # the project's I/O contract types; uint8 runs as int32
    ("uint8_io", lambda: _m([h.make_node("Identity", ["x"], ["y"], name="n")], [vi("x", T.UINT8, [4])], [vi("y", T.UINT8, [4])]),
     "io-dtype", lv("policy")),
    # S l.72-78 copies int32_data whatever the dtype (FLOAT16 bit patterns as ints); IE-2.4 l.60-67/113 throws
    ("fp16_int32_data", lambda: _m([h.make_node("Cast", ["w"], ["y"], to=T.FLOAT, name="n")], [], [vi("y", T.FLOAT, [2])], [_fp16_in_int32_data()]),
     "typed-data-float16", {"2.1": "semantics", "2.2": "semantics", "2.3": "semantics", "2.4": "reject"}),
    # BOOL in int32_data: S l.72-78 reads it correctly; IE-2.4 reads int32_data only for INT32 (l.61) and throws (l.113)
    ("bool_int32_data", lambda: _m([h.make_node("Not", ["w"], ["y"], name="n")], [], [vi("y", T.BOOL, [2])], [_bool_in_int32_data()]),
     "typed-data-int32", {"2.4": "reject"}),
    # S l.59-103 has no double_data branch ("Could not read tensor data"); IE-2.4 l.69-89 reads it
    ("double_data", lambda: _m([h.make_node("Cast", ["w"], ["y"], to=T.FLOAT, name="n")], [], [vi("y", T.FLOAT, [2])], [_double_in_double_data()]),
     "typed-data-double", {"2.1": "reject", "2.2": "reject", "2.3": "reject"}),
    # Int64BytesAsIntJob saturates: 2^40 + x is not 2^40 + x in Sentis
    ("int64_big", lambda: _m([h.make_node("Add", ["x", "c"], ["y"], name="n")], [vi("x", T.INT64, [1])], [vi("y", T.INT64, [1])],
                             [init("c", np.array([2**40], np.int64))]), "int64-range", lv("semantics")),
    # TensorShape.maxRank = 8
    ("rank9", lambda: _m([h.make_node("Relu", ["x"], ["y"], name="n")], [vi("x", T.FLOAT, [1] * 9)], [vi("y", T.FLOAT, [1] * 9)]),
     "rank", lv("reject")),
    # dim_param imports as a symbolic dim; static shapes unless declared are this project's policy
    ("dyn_dim", lambda: _m([h.make_node("Relu", ["x"], ["y"], name="n")], [vi("x", T.FLOAT, [1, "T"])], [vi("y", T.FLOAT, [1, "T"])]),
     "dynamic-dim", lv("policy")),
    # GPUCompute.Conv: rank > 5 -> NotImplementedException
    ("conv4d", lambda: _m([h.make_node("Conv", ["x", "w"], ["y"], name="n")], [vi("x", T.FLOAT, [1, 1, 3, 3, 3, 3])],
                          [vi("y", T.FLOAT, [1, 1, 1, 1, 1, 1])], [init("w", np.ones((1, 1, 3, 3, 3, 3), np.float32))]),
     "conv-rank-gpu", lv("runtime")),
    # Compute.Backend.gen.cs: GPU MaxPool switches on rank 3/4 only
    ("maxpool3d", lambda: _m([h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2, 2], name="n")], [vi("x", T.FLOAT, [1, 1, 4, 4, 4])],
                             [vi("y", T.FLOAT, [1, 1, 3, 3, 3])]), "pool-rank-gpu", lv("runtime")),
    # Layer.Logical.cs Compress reads condition[i] (S l.104); Tensor.GetItem throws when the data is on the GPU
    ("compress_gpu", lambda: _compress(computed=True), "compress-gpu-condition", lv("runtime")),
]


def _with_function():
    m = _m([h.make_node("Relu", ["x"], ["y"], name="n")], [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])])
    m.functions.append(onnx.helper.make_function("local", "F", ["a"], ["b"], [h.make_node("Relu", ["a"], ["b"])], [h.make_opsetid("", 17)]))
    return m


def _ai_onnx(opset, reduce_axes_input):
    if reduce_axes_input:
        node = h.make_node("ReduceMean", ["x", "axes"], ["y"], name="n")
        inits = [init("axes", np.array([1], np.int64))]
    else:
        node = h.make_node("ReduceMean", ["x"], ["y"], axes=[1], name="n")
        inits = []
    g = h.make_graph([node], "g", [vi("x", T.FLOAT, [2, 4])], [vi("y", T.FLOAT, [2, 1])], inits)
    return h.make_model(g, opset_imports=[h.make_opsetid("ai.onnx", opset)], ir_version=8)


def _gridsample(mode):
    return _m([h.make_node("GridSample", ["x", "g"], ["y"], mode=mode, name="n")], [vi("x", T.FLOAT, [1, 1, 4, 4]), vi("g", T.FLOAT, [1, 2, 2, 2])],
              [vi("y", T.FLOAT, [1, 1, 2, 2])], opset=16)


def _scatter(op, reduction):
    idx = np.array([[0], [1]], np.int64)
    if op == "ScatterND":
        node = h.make_node(op, ["x", "i", "u"], ["y"], reduction=reduction, name="n")
        return _m([node], [vi("x", T.FLOAT, [4]), vi("u", T.FLOAT, [2])], [vi("y", T.FLOAT, [4])], [init("i", idx)], opset=18)
    node = h.make_node(op, ["x", "i", "u"], ["y"], reduction=reduction, axis=0, name="n")
    return _m([node], [vi("x", T.FLOAT, [4]), vi("u", T.FLOAT, [2])], [vi("y", T.FLOAT, [4])], [init("i", np.array([0, 1], np.int64))], opset=16)


def _compress(computed):
    if computed:
        nodes = [h.make_node("Greater", ["x", "zero"], ["c"], name="gt"), h.make_node("Compress", ["x", "c"], ["y"], axis=0, name="n")]
        inits = [init("zero", np.array(0, np.float32))]
    else:
        nodes = [h.make_node("Compress", ["x", "c"], ["y"], axis=0, name="n")]
        inits = [init("c", np.array([True, False, True, False]))]
    return _m(nodes, [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, ["k"])], inits)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("version", VERSIONS)
def test_rule_level_per_version(case, version):
    _, build, rule, expected = case
    report = check_model(build(), version, allowed_symbolic_dims=["k"])
    got = {f.level for f in report.findings if f.rule == rule}
    want = expected.get(version)
    assert got == ({want} if want else set()), report.format()
    for f in report.findings:
        assert f.source and f.level in LEVELS and f.rule in RULES
    if want in FAILING:
        assert not report.ok
    if want == "policy":  # policy rules fail unless switched off
        assert not report.ok
        assert rule not in {f.rule for f in check_model(build(), version, policy=False, allowed_symbolic_dims=["k"]).violations}


def test_compress_with_a_constant_condition_does_not_throw():
    # the constant condition stays on the CPU (nothing uploads it): Compress can index it
    report = check_model(_compress(computed=False), "2.4", allowed_symbolic_dims=["k"])
    assert "compress-gpu-condition" not in {f.rule for f in report.findings}


def test_gridsample_known_mode_is_clean():
    assert "attr-gridsample-mode" not in {f.rule for f in check_model(_gridsample("nearest"), "2.1").findings}


@pytest.mark.parametrize("layout, rule, level", [
    ("contiguous", "external-data", "policy"),  # ONNXConstantsLoader reads sequentially from byte 0: right values
    ("swapped", "external-data-layout", "semantics"),  # S l.16-36 / IE l.11-30: `offset` never read -> wrong weights
    ("missing", "external-data-missing", "reject"),
])
def test_external_data_layout(tmp_path, layout, rule, level):
    path = _external(tmp_path, layout)
    for version in ("2.1", "2.4"):
        report = check_model(path, version)
        assert {f.level for f in report.findings if f.rule == rule} == {level}, report.format()
    if layout == "contiguous":
        assert {f.rule for f in check_model(path).findings} == {"external-data"}


def test_file_size_rule(monkeypatch):
    monkeypatch.setattr(R, "MAX_FILE_SIZE", 16)
    m = _m([h.make_node("Relu", ["x"], ["y"], name="n")], [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])])
    assert [(f.rule, f.level) for f in check_model(m).findings] == [("file-size", "reject")]


def test_sparse_initializer_rejects():
    m = _m([h.make_node("Relu", ["x"], ["y"], name="n")], [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])])
    values = nh.from_array(np.array([1.0], np.float32), "sp")
    m.graph.sparse_initializer.append(h.make_sparse_tensor(values, nh.from_array(np.array([0], np.int64)), [4]))
    assert ("sparse-initializer", "reject") in {(f.rule, f.level) for f in check_model(m).findings}


def test_subgraph_rejects():
    branch = h.make_graph([h.make_node("Identity", ["x"], ["o"])], "b", [], [vi("o", T.FLOAT, [2])])
    m = _m([h.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch, name="if1")], [vi("x", T.FLOAT, [2]), vi("c", T.BOOL, [])],
           [vi("y", T.FLOAT, [2])])
    for version in VERSIONS:
        assert {(f.rule, f.level) for f in check_model(m, version).findings} >= {("subgraph", "reject"), ("op-unsupported", "reject")}


def test_rule_counts_cover_every_level_and_version():
    counts = rule_counts()
    assert set(counts) == set(VERSIONS)
    for v in VERSIONS:
        assert set(counts[v]) == set(LEVELS) and all(counts[v][lvl] > 0 for lvl in LEVELS)
    assert counts["2.4"]["perf"] == counts["2.1"]["perf"] + 2  # gpu-flush and fusion-blocked exist in 2.4 only
    assert sum(counts["2.1"].values()) == sum(1 for r in RULES.values() if "2.1" in r.levels)


def test_every_rule_has_a_case_here_or_in_the_import_tests():
    here = {c[2] for c in CASES} | {"external-data", "external-data-layout", "external-data-missing", "file-size", "sparse-initializer", "subgraph"}
    import_tests = {"cpu-read-input", "cpu-fallback", "blocking-readback", "gpu-flush", "cpu-fallback-unflushed", "fusion-blocked",
                    "import-analysis-failed"}
    other_files = {"attr-resize-mode", "attr-resize-coord", "attr-pad-mode", "attr-convtranspose-output-shape", "attr-pool"}  # test_gp_checker
    assert set(RULES) == here | import_tests | other_files


def test_docs_list_every_rule_with_its_levels():
    from pathlib import Path

    from graph_passes.sentis.check import VERSION_BUCKETS

    text = (Path(__file__).resolve().parents[2] / "docs" / "sentis.md").read_text(encoding="utf-8")
    for rule, r in RULES.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{rule}` |")), None)
        assert row is not None, f"docs/sentis.md has no row for {rule}"
        cells = [c.strip() for c in row.split("|")[2:6]]
        assert cells == [r.levels.get(v, "–") for v in VERSION_BUCKETS], rule
    from graph_passes.sentis.check import rules_markdown

    assert rules_markdown() in text  # regenerate the table with rules_markdown() when a rule changes


def test_a_failing_import_model_is_a_perf_finding_not_a_crash(monkeypatch):
    import graph_passes.sentis.check as C

    def boom(*a, **k):
        raise RuntimeError("unexpected graph")

    monkeypatch.setattr(C, "analyze_import", boom)
    m = _m([h.make_node("Relu", ["x"], ["y"], name="n")], [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])])
    r = check_model(m)
    assert r.ok and [(f.rule, f.level) for f in r.findings] == [("import-analysis-failed", "perf")] and r.importer is None
