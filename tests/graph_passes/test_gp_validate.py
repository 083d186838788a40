"""Structural validation before trust and resource bounds (issue 19 items 2 and 7): a broken or
absurd file gets one line naming what is broken from `check` and `convert`, never "OK for Sentis",
never a flood of onnxruntime log lines, a traceback or a RecursionError."""

import subprocess
import sys

import numpy as np
import onnx
import pytest
from _gp_helpers import init, model, vi
from click.testing import CliRunner
from onnx import TensorProto as T
from onnx import helper as h

from exporter.cli_graph import check_command, convert_command
from graph_passes.validate import InvalidModelError, Limits, find_problem, validate_model


@pytest.fixture
def runner():
    return CliRunner()


def _relu(extra_nodes=(), inits=(), x_shape=(1, 4)):
    nodes = [h.make_node("Relu", ["x"], ["r"], name="relu"), *extra_nodes]
    out = nodes[-1].output[0]
    return model(nodes, [vi("x", T.FLOAT, list(x_shape))], [vi(out, T.FLOAT, None)], list(inits))


def _missing_weight():
    return _relu([h.make_node("MatMul", ["r", "w"], ["y"], name="mm")])


def _cycle():
    nodes = [h.make_node("Add", ["x", "b"], ["a"], name="add_a"), h.make_node("Relu", ["a"], ["b"], name="relu_b")]
    return model(nodes, [vi("x", T.FLOAT, [2])], [vi("b", T.FLOAT, [2])])


def _unsorted():
    nodes = [h.make_node("Neg", ["r"], ["y"], name="neg"), h.make_node("Relu", ["x"], ["r"], name="relu")]
    return model(nodes, [vi("x", T.FLOAT, [2])], [vi("y", T.FLOAT, [2])])


def _twice():
    nodes = [h.make_node("Relu", ["x"], ["y"], name="r1"), h.make_node("Neg", ["x"], ["y"], name="r2")]
    return model(nodes, [vi("x", T.FLOAT, [2])], [vi("y", T.FLOAT, [2])])


def _truncated():
    w = init("w", np.ones((4, 4), np.float32))
    w.raw_data = w.raw_data[:10]
    return _relu([h.make_node("MatMul", ["r", "w"], ["y"], name="mm")], [w])


def _bad_dtype():
    w = init("w", np.ones((4,), np.float32))
    w.data_type = 99
    return _relu([h.make_node("Add", ["r", "w"], ["y"], name="add")], [w])


def _int64_payload_short():
    w = onnx.TensorProto(name="w", data_type=T.INT64, dims=[3], int64_data=[1, 2])
    return _relu([h.make_node("Cast", ["r"], ["ri"], to=T.INT64), h.make_node("Add", ["ri", "w"], ["y"])], [w])


def _huge_range():
    nodes = [h.make_node("Range", ["zero", "big", "one"], ["y"], name="range")]
    inits = [init("zero", np.int64(0)), init("big", np.int64(2**62)), init("one", np.int64(1))]
    return model(nodes, [], [vi("y", T.INT64, None)], inits)


def _huge_dim():
    return model([h.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, [1, 2**40])], [vi("y", T.FLOAT, [1, 2**40])])


BROKEN = {
    "missing_weight": (_missing_weight, "reads 'w', which no node, input or initializer defines"),
    "cycle": (_cycle, "cycle"),
    "unsorted": (_unsorted, "topological order"),
    "produced_twice": (_twice, "produced twice"),
    "truncated": (_truncated, "truncated or corrupt tensor"),
    "bad_dtype": (_bad_dtype, "not an ONNX tensor type"),
    "int64_short": (_int64_payload_short, "has 2 values, but its dims [3] need 3"),
    "huge_range": (_huge_range, "node 'range' (Range) would make a tensor of"),
    "huge_dim": (_huge_dim, "dim 1099511627776 > 2147483647"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_are_one_line_errors_in_check_and_convert(runner, tmp_path, name):
    build, expected = BROKEN[name]
    src = tmp_path / f"{name}.onnx"
    onnx.save_model(build(), str(src))
    res = runner.invoke(check_command, [str(src)])
    assert res.exit_code == 2, res.output
    kind = "over a size limit" if name.startswith("huge") else "invalid ONNX"
    assert expected in res.output and kind in res.output and "OK for Sentis" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    dst = tmp_path / "out.onnx"
    res = runner.invoke(convert_command, [str(src), str(dst)])
    assert res.exit_code == 2 and expected in res.output and not dst.exists(), res.output


def test_a_good_model_passes_and_limits_are_configurable(tmp_path):
    m = _relu([h.make_node("MatMul", ["r", "w"], ["y"])], [init("w", np.ones((512, 512), np.float32))], x_shape=(1, 512))
    assert find_problem(m) is None
    with pytest.raises(InvalidModelError, match=r"initializer 'w' holds 1 MiB > 0 MiB \(raise --max-tensor-mb"):
        validate_model(m, limits=Limits.from_mb(0.5))
    with pytest.raises(InvalidModelError, match="dim 512 > 100"):
        validate_model(m, limits=Limits.from_mb(max_dim=100))


def test_onnxruntime_refusal_is_reported(tmp_path):
    """Valid for onnx.checker (shape mismatch only visible at load), refused by onnxruntime."""
    m = model([h.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", T.FLOAT, [1, 3])], [vi("y", T.FLOAT, [1, 5])],
              [init("w", np.ones((4, 5), np.float32))])
    p = find_problem(m)
    assert p is not None and ("onnxruntime" in p or "onnx.checker" in p)


def test_problems_behind_big_weights_are_found_without_copying_them(tmp_path):
    """Shape inference and onnx.checker run on a copy whose >= 1 MB weights are shape-only inputs
    (no serialised copy of the weights; the full-size LLM step's check went 10 -> 3 GB): a shape
    mismatch at a 1.3 MB weight is still rejected; onnxruntime loads the file itself when the
    path is given (and a valid model with that weight passes both ways)."""
    big = np.ones((4, 80000), np.float32)  # 1.28 MB
    bad = model([h.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [vi("x", T.FLOAT, [1, 3])],
                [vi("y", T.FLOAT, [1, 80000])], [init("w", big)])
    p = find_problem(bad)
    assert p is not None and "onnx.checker" in p, p
    good = model([h.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [vi("x", T.FLOAT, [1, 4])],
                 [vi("y", T.FLOAT, [1, 80000])], [init("w", big)])
    path = tmp_path / "good.onnx"
    onnx.save(good, path)
    assert find_problem(good) is None and find_problem(onnx.load(path), path=str(path)) is None
    broken = tmp_path / "broken.onnx"  # the file onnxruntime reads is what it judges
    broken.write_bytes(b"not onnx")
    p = find_problem(good, path=str(broken))
    assert p is not None and "onnxruntime cannot load it" in p, p


def _huge_computed_range():
    """The limit is computed (2^31 * 2^31): only visible once the integer arithmetic is folded."""
    nodes = [h.make_node("Mul", ["a", "a"], ["lim"]), h.make_node("Range", ["zero", "lim", "one"], ["r"], name="range"),
             h.make_node("Shape", ["x"], ["s"]), h.make_node("Gather", ["s", "zero"], ["d"]), h.make_node("Add", ["r", "d"], ["y"])]
    inits = [init("a", np.int64(2**31)), init("zero", np.int64(0)), init("one", np.int64(1))]
    return model(nodes, [vi("x", T.FLOAT, [2, 3])], [vi("y", T.INT64, None)], inits)


@pytest.mark.parametrize("build", [_huge_range, _huge_computed_range])
def test_huge_range_convert_is_quiet_and_bounded(tmp_path, build):
    """Range(0, 2^62) used to print thousands of onnxruntime log lines and grow to 16 GB."""
    src = tmp_path / "range.onnx"
    onnx.save_model(build(), str(src))
    code = "from exporter.cli_graph import convert_command; convert_command(['%s', '%s'])" % (src, tmp_path / "o.onnx")
    limit_memory = "import resource; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
    res = subprocess.run([sys.executable, "-c", limit_memory + code], capture_output=True, text=True, timeout=120)
    lines = (res.stdout + res.stderr).strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "would make a tensor" in lines[0], lines[:5]


def test_verify_refuses_a_broken_graph_with_a_matching_hash(tmp_path, capsys):
    """`verify` used to end in a traceback (or "checker ok") on a garbage graph whose sha256 matches."""
    import hashlib
    import json

    from exporter.cli import main

    onnx.save_model(_cycle(), str(tmp_path / "g.onnx"))
    digest = hashlib.sha256((tmp_path / "g.onnx").read_bytes()).hexdigest()
    manifest = {"schema_version": 1, "graphs": {"flow": {"file": "g.onnx", "sha256": digest, "inputs": [], "outputs": []}},
                "constants": {}, "components": {}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", "--bundle", str(tmp_path)])
    err = capsys.readouterr()
    assert exit_info.value.code != 0
    assert "flow (g.onnx): invalid ONNX" in err.err and "cycle" in err.err and "Traceback" not in err.err + err.out
    assert "checker ok" not in err.out
