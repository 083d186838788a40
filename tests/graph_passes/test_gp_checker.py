import json

import numpy as np
import onnx
import pytest
from _gp_helpers import init, model, note_rules, rules, vi
from onnx import TensorProto as T
from onnx import helper as h

from graph_passes import ModelLoadError
from graph_passes.sentis import OPS_2_4, SUPPORTED_VERSIONS, check_model, op_counts_by_version, supported_ops
from graph_passes.sentis.check import RULES


def _one(node, inputs, outputs, inits=(), **kw):
    return model([node], inputs, outputs, inits, **kw)


def test_op_counts_per_version():
    assert len(OPS_2_4) == 147
    counts = op_counts_by_version()
    assert counts["2.4"] == counts["2.5"] == 147
    assert counts["2.1"] == 147 - 11  # minus Mish, Bitwise*(4), windows(3), DFT, STFT, MelWeightMatrix
    assert counts["2.2"] == counts["2.3"] == 137
    assert counts["1.4"] == 135
    assert "GridSample" in supported_ops("1.6") and "GridSample" not in supported_ops("1.4")
    assert set(SUPPORTED_VERSIONS) >= {"2.1", "2.4"}


@pytest.mark.parametrize(
    "node, inputs",
    [
        (h.make_node("Unique", ["x"], ["y"], name="u"), [vi("x", T.FLOAT, [4])]),
        (h.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=1, name="gn"), [vi("x", T.FLOAT, [1, 2, 4]), vi("s", T.FLOAT, [2]), vi("b", T.FLOAT, [2])]),
        (h.make_node("FastGelu", ["x"], ["y"], domain="com.microsoft", name="ms"), [vi("x", T.FLOAT, [4])]),
    ],
)
def test_unsupported_op_violation_names_it(node, inputs):
    extra = [h.make_opsetid("com.microsoft", 1)] if node.domain else []
    m = _one(node, inputs, [vi("y", T.FLOAT, None)], opset=18 if node.op_type == "GroupNormalization" else 17, extra_opsets=extra)
    report = check_model(m)
    v = [v for v in report.violations if v.rule == "op-unsupported"]
    assert len(v) == 1 and v[0].node == node.name and v[0].op == node.op_type
    assert node.op_type in v[0].message
    if node.domain:
        assert "com.microsoft" in v[0].message


def test_stft_allowed_in_24_not_21():
    node = h.make_node("STFT", ["sig", "step", "win"], ["y"], onesided=1, name="stft")
    m = _one(node, [vi("sig", T.FLOAT, [1, 64, 1])], [vi("y", T.FLOAT, [1, 5, 9, 2])],
             [init("step", np.array(16, np.int64)), init("win", np.hanning(16).astype(np.float32))])
    r21 = check_model(m, "2.1")
    assert rules(r21) == {"op-unsupported"}
    assert "2.4" in r21.violations[0].message
    assert check_model(m, "2.4").ok


def test_control_flow_and_functions():
    branch = h.make_graph([h.make_node("Identity", ["x"], ["o"])], "b", [], [vi("o", T.FLOAT, [2])])
    m = _one(h.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch, name="if1"), [vi("x", T.FLOAT, [2]), vi("c", T.BOOL, [])], [vi("y", T.FLOAT, [2])])
    m.functions.append(onnx.helper.make_function("local", "F", ["a"], ["b"], [h.make_node("Relu", ["a"], ["b"])], [h.make_opsetid("", 17)]))
    report = check_model(m)
    assert {"op-unsupported", "subgraph", "local-function"} <= rules(report) | {f.rule for f in report.findings}
    assert any(v.rule == "subgraph" and v.node == "if1" and v.op == "If" for v in report.violations)


@pytest.mark.parametrize(
    "node, rule, ok",
    [
        (h.make_node("LayerNormalization", ["x", "s"], ["y"], axis=1), "attr-layernorm-axis", False),
        (h.make_node("LayerNormalization", ["x", "s"], ["y"], axis=2), "attr-layernorm-axis", True),  # == last axis
        (h.make_node("LayerNormalization", ["x", "s"], ["y"]), "attr-layernorm-axis", True),
        (h.make_node("Resize", ["x", "", "sc"], ["y"], mode="cubic"), "attr-resize-mode", False),
        (h.make_node("Resize", ["x", "", "sc"], ["y"], mode="linear", coordinate_transformation_mode="tf_crop_and_resize"), "attr-resize-coord", False),
        (h.make_node("Resize", ["x", "", "sc"], ["y"], mode="linear", coordinate_transformation_mode="align_corners"), "attr-resize-coord", True),
        (h.make_node("Pad", ["x", "pads"], ["y"], mode="reflect"), "attr-pad-mode", True),
        (h.make_node("Pad", ["x", "pads"], ["y"], mode="edge"), "attr-pad-mode", True),
        (h.make_node("Pad", ["x", "pads"], ["y"], mode="symmetric"), "attr-pad-mode", False),
        (h.make_node("ConvTranspose", ["x", "w"], ["y"], output_shape=[8]), "attr-convtranspose-output-shape", False),
        (h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2], ceil_mode=1), "attr-pool", False),
        (h.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2], pads=[1, 1], count_include_pad=1), "attr-pool", False),
        (h.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2]), "attr-pool", True),
    ],
)
def test_attribute_rules(node, rule, ok):
    node.name = "n"
    inits = {
        "s": np.ones(4, np.float32), "sc": np.array([1, 1, 2], np.float32), "pads": np.array([0, 0, 1, 0, 0, 1], np.int64),
        "w": np.ones((1, 1, 3), np.float32),
    }
    m = _one(node, [vi("x", T.FLOAT, [1, 1, 4])], [vi("y", T.FLOAT, None)], [init(k, v) for k, v in inits.items() if k in node.input])
    report = check_model(m)
    got = [v for v in report.violations if v.rule == rule]
    assert (not got) == ok, report.format()
    if not ok:
        assert got[0].node == "n" and got[0].op == node.op_type
        assert got[0].level == "semantics"  # ONNXModelConverter.cs: the attribute is ignored / falls back, the import works


def test_convtranspose_group_before_23():
    node = h.make_node("ConvTranspose", ["x", "w"], ["y"], group=2, name="ct")
    m = _one(node, [vi("x", T.FLOAT, [1, 2, 4])], [vi("y", T.FLOAT, [1, 2, 6])], [init("w", np.ones((2, 1, 3), np.float32))])
    assert "attr-convtranspose-group" in rules(check_model(m, "2.2"))
    assert check_model(m, "2.3").ok


def test_com_microsoft_gelu_imports_as_onnx_gelu():
    # S-2.1.3 ONNXModelConverter.cs OnNode matches op_type only (node.domain is never read): a
    # com.microsoft Gelu imports as ONNX Gelu. That is a project policy finding, not a reject.
    node = h.make_node("Gelu", ["x"], ["y"], domain="com.microsoft", name="ms_gelu")
    m = _one(node, [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])], opset=17, extra_opsets=[h.make_opsetid("com.microsoft", 1)])
    for version in ("2.1", "2.4"):
        report = check_model(m, version)
        assert [(f.rule, f.level, f.node) for f in report.findings] == [("op-domain", "policy", "ms_gelu")]
        assert not report.ok and check_model(m, version, policy=False).ok


def test_dtype_rank_and_nonzero_notes():
    nodes = [h.make_node("Add", ["x", "d"], ["y"]), h.make_node("NonZero", ["x"], ["nz"], name="nz")]
    m = model(nodes, [vi("x", T.DOUBLE, [2])], [vi("y", T.DOUBLE, [2]), vi("nz", T.INT64, [1, 2])],
              [init("d", np.ones(2, np.float64))])
    report = check_model(m)
    # DOUBLE I/O and initializers import as float32 (ONNXNodeWrapper.DataTypeFromOnnxDataType): policy
    assert {v.node for v in report.violations if v.rule == "dtype-double"} == {"x", "y", "d"}
    assert {v.level for v in report.violations} == {"policy"}
    assert check_model(m, policy=False).ok
    # GPU NonZero flushes and downloads inside Execute: a blocking readback every run (perf)
    assert {(f.rule, f.node) for f in report.notes} == {("blocking-readback", "nz")}
    big = model([h.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, [1] * 9)], [vi("y", T.FLOAT, [1] * 9)])
    assert "rank" in rules(check_model(big))


def test_external_data_and_file_size(tmp_path):
    def make():
        return model([h.make_node("Add", ["x", "w"], ["y"])], [vi("x", T.FLOAT, [256])], [vi("y", T.FLOAT, [256])], [init("w", np.ones(256, np.float32))])

    path = tmp_path / "ext.onnx"
    onnx.save_model(make(), str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="ext.data", size_threshold=0)
    report = check_model(path)
    assert "external-data" in rules(report)
    assert report.file_size == path.stat().st_size
    path2 = tmp_path / "inline.onnx"
    onnx.save_model(make(), str(path2))
    assert check_model(path2).ok


def test_report_format_and_dict():
    m = _one(h.make_node("Unique", ["x"], ["y"], name="u"), [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, None)])
    report = check_model(m)
    assert not report.ok
    text = report.format()
    assert "op-unsupported  u(Unique)" in text and "opset 17" in text
    d = json.loads(json.dumps(report.to_dict()))
    assert d["ok"] is False and d["violations"][0]["rule"] == "op-unsupported" and d["op_counts"] == {"Unique": 1}
    assert all(v["rule"] in RULES for v in d["violations"])


def test_corrupt_file_raises_load_error(tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x08\x07garbage\xff\xff")
    with pytest.raises(ModelLoadError):
        check_model(p)


def test_unknown_version():
    m = _one(h.make_node("Relu", ["x"], ["y"]), [vi("x", T.FLOAT, [4])], [vi("y", T.FLOAT, [4])])
    with pytest.raises(ValueError):
        check_model(m, "3.0")
    assert check_model(m, "2.1.3").ok


def test_shapes_through_big_weights_without_copying_them():
    """Shape inference runs on a copy whose >= 1 MB initializers are shape-only inputs: a rank
    violation downstream of a big weight is still found, and the copy carries no weight bytes."""
    from graph_passes._graph import without_weights

    w = np.zeros((600, 600), np.float32)  # 1.44 MB
    shape = np.array([1, 1, 1, 1, 1, 1, 1, 2, 600], np.int64)
    m = model([h.make_node("MatMul", ["x", "w"], ["y"]), h.make_node("Reshape", ["y", "shape"], ["z"])],
              [vi("x", T.FLOAT, [2, 600])], [vi("z", T.FLOAT, None)],
              [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(shape, "shape")])
    light = without_weights(m)
    assert [i.name for i in light.graph.initializer] == ["shape"] and "w" in {i.name for i in light.graph.input}
    assert light.ByteSize() < 10_000
    assert "rank" in rules(check_model(m))


def test_model_bytes_equals_bytesize_without_serialising_the_weights():
    """The checker's size checks use model_bytes (ByteSize serialises the whole model, a transient
    copy of every weight): the same number, for weights, small initializers and none."""
    from graph_passes._graph import model_bytes

    w = onnx.numpy_helper.from_array(np.ones((70000,), np.float32), "w")
    b = onnx.numpy_helper.from_array(np.arange(7, dtype=np.int64), "b")
    g = h.make_graph([h.make_node("Add", ["x", "w"], ["y"])], "g", [vi("x", T.FLOAT, [70000])], [vi("y", T.FLOAT, [70000])], [w, b])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], doc_string="d")
    assert model_bytes(m) == m.ByteSize()
    del m.graph.initializer[:]
    assert model_bytes(m) == m.ByteSize()
