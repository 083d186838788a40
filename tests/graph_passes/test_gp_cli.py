import json

import numpy as np
import onnx
import pytest
from _gp_helpers import init, model, run, vi
from click.testing import CliRunner
from onnx import TensorProto as T
from onnx import helper as h

from exporter.cli_graph import check_command, convert_command


@pytest.fixture
def runner():
    return CliRunner()


def _save(m, path):
    onnx.save_model(m, str(path))
    return str(path)


def _good(tmp_path):
    m = model([h.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, [1, 4])], [vi("y", T.FLOAT, [1, 4])])
    return _save(m, tmp_path / "good.onnx")


def _bad(tmp_path):
    nodes = [h.make_node("LpNormalization", ["x"], ["u"], name="lpn"), h.make_node("Cast", ["u"], ["y"], to=T.BOOL, name="cb")]
    m = model(nodes, [vi("x", T.FLOAT, [1, "T"])], [vi("y", T.BOOL, None)])
    return _save(m, tmp_path / "bad.onnx")


def test_check_good_exits_0(runner, tmp_path):
    res = runner.invoke(check_command, [_good(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "OK for Sentis 2.4" in res.output  # check/convert default: the newest version


def test_check_bad_exits_1_with_rule_ids(runner, tmp_path):
    res = runner.invoke(check_command, [_bad(tmp_path), "--sentis-version", "2.4"])
    assert res.exit_code == 1
    for rule in ("op-unsupported  lpn(LpNormalization)", "cast-to-bool  cb(Cast)", "dynamic-dim"):
        assert rule in res.output
    res = runner.invoke(check_command, [_bad(tmp_path), "--allow-dynamic", "T"])
    assert "dynamic-dim" not in res.output and res.exit_code == 1


def test_check_json(runner, tmp_path):
    res = runner.invoke(check_command, [_good(tmp_path), _bad(tmp_path), "--json"])
    assert res.exit_code == 1
    data = json.loads(res.output)
    assert [d["ok"] for d in data] == [True, False]
    assert {v["rule"] for v in data[1]["violations"]} >= {"op-unsupported", "cast-to-bool", "dynamic-dim"}


def test_check_corrupt_file_exits_2_one_line(runner, tmp_path):
    p = tmp_path / "corrupt.onnx"
    p.write_bytes(b"\x08\x07not an onnx file\xff\xff")
    res = runner.invoke(check_command, [str(p)])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and "corrupt.onnx" in res.output
    res = runner.invoke(check_command, [str(tmp_path / "missing.onnx")])
    assert res.exit_code == 2


def test_convert_pins_dynamic_dim_and_writes_clean_file(runner, tmp_path):
    nodes = [
        h.make_node("Constant", [], ["two"], value_float=2.0),
        h.make_node("Mul", ["x", "two"], ["m"]),
        h.make_node("Slice", ["m", "st", "en", "ax"], ["y"]),
    ]
    inits = [init("st", np.array([1], np.int64)), init("en", np.array([np.iinfo(np.int64).max], np.int64)), init("ax", np.array([1], np.int64))]
    src = _save(model(nodes, [vi("x", T.FLOAT, [1, "T", 4])], [vi("y", T.FLOAT, [1, "T2", 4])], inits, opset=13), tmp_path / "in.onnx")
    dst = tmp_path / "out" / "clean.onnx"
    res = runner.invoke(convert_command, [src, str(dst), "--input-shape", "x=1,6,4"])
    assert res.exit_code == 0, res.output
    assert "OK for Sentis 2.4" in res.output  # check/convert default: the newest version
    out = onnx.load(str(dst))
    assert out.opset_import[0].domain == "" and out.opset_import[0].version == 17
    assert [d.dim_value for d in out.graph.input[0].type.tensor_type.shape.dim] == [1, 6, 4]
    assert [d.dim_value for d in out.graph.output[0].type.tensor_type.shape.dim] == [1, 5, 4]
    x = np.random.default_rng(0).standard_normal((1, 6, 4)).astype(np.float32)
    np.testing.assert_array_equal(run(onnx.load(src), {"x": x})[0], run(out, {"x": x})[0])
    assert not [p for p in dst.parent.iterdir() if p.name.startswith(".tmp-")]
    res = runner.invoke(check_command, [str(dst)])
    assert res.exit_code == 0


def test_convert_json_and_passes(runner, tmp_path):
    src = _good(tmp_path)
    res = runner.invoke(convert_command, [src, str(tmp_path / "o.onnx"), "--passes", "convert_opset,remove_dead_nodes", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["ok"] and data["passes_applied"] == ["convert_opset", "remove_dead_nodes"]


def test_convert_violations_still_write_and_exit_1(runner, tmp_path):
    src = _bad(tmp_path)
    dst = tmp_path / "o.onnx"
    res = runner.invoke(convert_command, [src, str(dst), "--passes", "remove_dead_nodes"])
    assert res.exit_code == 1 and dst.exists()
    assert "op-unsupported" in res.output


def test_convert_errors_exit_2(runner, tmp_path):
    src = _good(tmp_path)
    res = runner.invoke(convert_command, [src, str(tmp_path / "o.onnx"), "--passes", "nope"])
    assert res.exit_code == 2 and "unknown pass 'nope'" in res.output
    res = runner.invoke(convert_command, [src, str(tmp_path / "o.onnx"), "--input-shape", "x"])
    assert res.exit_code == 2 and "NAME=" in res.output
    res = runner.invoke(convert_command, [src, str(tmp_path / "o.onnx"), "--input-shape", "zz=1,4"])
    assert res.exit_code == 2 and "zz" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o.onnx").exists()
