"""`sentis-tts check` prints the levels and the import analysis per graph; --no-policy, --dim, --json."""
import json

import numpy as np
import onnx
from _gp_helpers import init, model, vi
from click.testing import CliRunner
from onnx import TensorProto as T
from onnx import helper as h

from exporter.cli_graph import check_command, convert_command


def _shape_chain(path):
    """Reshape(x[1,T,4]) to [2T, -1] with the shape computed from Shape(x): CPU fallback, no readback."""
    nodes = [h.make_node("Shape", ["x"], ["s"], name="shape"), h.make_node("Gather", ["s", "one"], ["t"], axis=0, name="gather"),
             h.make_node("Unsqueeze", ["t", "ax0"], ["tu"], name="unsq"), h.make_node("Mul", ["tu", "c2"], ["t2"], name="mul"),
             h.make_node("Concat", ["t2", "m1"], ["sv"], axis=0, name="concat"), h.make_node("Reshape", ["x", "sv"], ["y"], name="reshape")]
    inits = [init("one", np.array(1, np.int64)), init("ax0", np.array([0], np.int64)), init("c2", np.array([2], np.int64)),
             init("m1", np.array([-1], np.int64))]
    onnx.save_model(model(nodes, [vi("x", T.FLOAT, [1, "T", 4])], [vi("y", T.FLOAT, ["T2", 2])], inits), str(path))
    return str(path)


def test_check_prints_levels_and_the_import_analysis(tmp_path):
    p = _shape_chain(tmp_path / "chain.onnx")
    r = CliRunner().invoke(check_command, [p])
    assert r.exit_code == 1  # dynamic dims are a policy finding
    assert "policy    dynamic-dim" in r.output
    assert "note: perf      cpu-fallback  gather(Gather)" in r.output
    assert "import (Sentis 2.4): 6 layers after folding" in r.output and "5 CPU-fallback layers" in r.output
    assert "blocking readbacks per run 0/0 (inputs on GPU, runs 1/2) 0/0 (inputs on CPU)" in r.output
    r = CliRunner().invoke(check_command, [p, "--no-policy"])
    assert r.exit_code == 0 and "policy rules off" in r.output
    r = CliRunner().invoke(check_command, [p, "--allow-dynamic", "T", "--allow-dynamic", "T2", "--dim", "T=3"])
    assert r.exit_code == 0 and "0 CPU-fallback layers" in r.output and "dims pinned at import: T=3" in r.output
    r = CliRunner().invoke(check_command, [p, "--dim", "T=3", "--sentis-version", "2.1"])
    assert r.exit_code == 2 and "2.2" in r.output


def test_check_json_keeps_every_finding_and_the_figures(tmp_path):
    p = _shape_chain(tmp_path / "chain.onnx")
    r = CliRunner().invoke(check_command, [p, "--json", "--sentis-version", "2.1", "--allow-dynamic", "T", "--allow-dynamic", "T2"])
    assert r.exit_code == 0, r.output
    (rep,) = json.loads(r.output)
    assert rep["ok"] and rep["by_level"]["perf"] == 6 and rep["import"]["cpu_layers"] == 5
    assert {f["rule"] for f in rep["findings"]} == {"cpu-read-input", "cpu-fallback"}
    assert all(f["source"].startswith("Runtime/Core/Backends/CPUFallbackCalculator.cs") for f in rep["findings"])
    detail = rep["import_detail"]
    assert [c["layer"] for c in detail["cpu_layers"]] == ["shape", "gather", "unsq", "mul", "concat"]
    assert detail["cpu_read_inputs"] == [{"layer": "reshape", "op": "Reshape", "input": 1, "tensor": "sv"}] and detail["readbacks"] == []


def test_convert_says_what_double_to_float_changed(tmp_path):
    nodes = [h.make_node("Cast", ["x"], ["xd"], to=T.DOUBLE), h.make_node("Add", ["xd", "mask"], ["y"])]
    m = model(nodes, [vi("x", T.FLOAT, [2])], [vi("y", T.DOUBLE, [2])], [init("mask", np.array([0.0, -1e30]))])
    src = tmp_path / "in.onnx"
    onnx.save_model(m, str(src))
    r = CliRunner().invoke(check_command, [str(src)])
    assert r.exit_code == 1 and "semantics double-clamp" in r.output
    r = CliRunner().invoke(convert_command, [str(src), str(tmp_path / "out.onnx")])
    assert r.exit_code == 0, r.output
    assert "graph_passes.double_to_float: 3 DOUBLE tensors/types made FLOAT; 0 values beyond float32" in r.output
