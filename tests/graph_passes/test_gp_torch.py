"""Real torch exports (TorchScript exporter, opset 17) through the default pipeline."""

import io
import warnings

import numpy as np
import onnx
import pytest
import torch
from _gp_helpers import op_types, run

from graph_passes import DEFAULT_PASSES, GraphPassError, run_pipeline, unroll_loop
from graph_passes.sentis import check_model


def _export(module, args, **kw) -> onnx.ModelProto:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, dynamo=False, opset_version=17, **kw)
    return onnx.load_from_string(buf.getvalue())


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(8, 16, 3, padding=1)
        self.norm = torch.nn.LayerNorm(16)
        self.proj = torch.nn.Linear(16, 4)

    def forward(self, x):
        y = self.conv(x).transpose(1, 2)
        y = torch.nn.functional.gelu(self.norm(y))
        return self.proj(y)[:, 1:]  # slice end = INT64_MAX in the export


@pytest.fixture(scope="module")
def block_onnx():
    torch.manual_seed(0)
    mod = Block().eval()
    x = torch.randn(1, 8, 20)
    m = _export(mod, (x,), input_names=["x"], output_names=["y"], dynamic_axes={"x": {2: "T"}, "y": {1: "T_out"}})
    with torch.no_grad():
        ref = mod(x).numpy()
    return m, x.numpy(), ref


def test_torch_block_default_pipeline_is_sentis_clean(block_onnx):
    m, x, ref = block_onnx
    before = check_model(m, "2.1")
    assert "dynamic-dim" in {v.rule for v in before.violations}
    out, applied = run_pipeline(m, input_shapes={"x": [1, 8, 20]})
    assert applied == DEFAULT_PASSES
    onnx.checker.check_model(out)
    for version in ("2.1", "2.4"):
        report = check_model(out, version)
        assert report.ok, report.format()
        assert not report.notes
    assert {"Conv", "LayerNormalization", "MatMul", "Slice"} <= set(op_types(out))
    assert "Constant" not in op_types(out)
    np.testing.assert_array_equal(run(m, {"x": x})[0], run(out, {"x": x})[0])
    np.testing.assert_allclose(run(out, {"x": x})[0], ref, rtol=1e-4, atol=1e-5)


def test_torch_block_keep_dynamic_dim(block_onnx):
    m, x, _ = block_onnx
    out, applied = run_pipeline(m)
    assert "fix_input_shapes" not in applied
    assert check_model(out, "2.4", allowed_symbolic_dims=["T", "T_out"]).ok
    np.testing.assert_array_equal(run(m, {"x": x})[0], run(out, {"x": x})[0])


class Scripted(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):
        y = x
        for _ in range(x.size(1)):  # -> Loop, trip count from Shape(x)
            y = self.lin(y) * 0.5 + y
        if x.shape[1] > 2:  # -> If on a shape
            y = y * 2.0
        else:
            y = y - 1.0
        return y


@pytest.fixture(scope="module")
def scripted_onnx():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = torch.jit.script(Scripted().eval())
    x = torch.randn(1, 5, 4)
    m = _export(mod, (x,), input_names=["x"], output_names=["y"], dynamic_axes={"x": {1: "T"}})
    assert {"Loop", "If"} <= set(op_types(m))
    return m, x.numpy()


def test_torch_script_loop_and_if_unrolled_with_static_shape(scripted_onnx):
    m, x = scripted_onnx
    out, _ = run_pipeline(m, input_shapes={"x": [1, 5, 4]})
    assert not {"Loop", "If"} & set(op_types(out))
    assert op_types(out).count("MatMul") == 5
    assert check_model(out, "2.1").ok
    np.testing.assert_array_equal(run(m, {"x": x})[0], run(out, {"x": x})[0])


def test_torch_script_dynamic_loop_is_error(scripted_onnx):
    m, _ = scripted_onnx
    with pytest.raises(GraphPassError, match=r"^fold_to_fixed_point: If node '/If' \(If\): condition .*graph input 'x' has dynamic dims"):
        run_pipeline(m)
    with pytest.raises(GraphPassError, match=r"^Loop node '/Loop' \(Loop\): trip count .*graph input 'x'"):
        unroll_loop(m)
