"""The parity gate's float64 reference (GraphSpec.float64_reference / float32_limited): outputs the
model's own math amplifies float32 rounding in are compared with the float64 math, bounded by
max(tolerance, factor x PyTorch float32's distance from it) — a correct graph passes where the
float32 floor is large, a broken one still fails, and the manifest says which figure is which."""
from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch

from exporter.errors import ExportError
from exporter.export import export_graph
from exporter.spec import ExportOptions, GraphSpec, TensorSpec


class Scale(torch.nn.Module):
    def __init__(self, k: float, offset: float = 0.0):
        super().__init__()
        self.k, self.offset = k, offset

    def forward(self, x):
        return x * self.k + self.offset


def spec_for(reference: torch.nn.Module, *, build_onnx=None, tol=1e-9):
    return GraphSpec("amplified", "toy", Scale(3.0), [TensorSpec("x", (1, 64))], [TensorSpec("y", (1, 64))],
                     make_inputs=lambda case: {"x": np.random.default_rng(case).standard_normal((1, 64)).astype(np.float32)},
                     atol=tol, parity_cases=2, float64_reference=lambda: reference, float32_limited={"y": 4.0},
                     build_onnx=build_onnx)


def test_within_the_float32_floor_passes_and_is_reported(tmp_path):
    # the "float64 math" is off by 1e-3 from what float32 computes: that is PyTorch float32's distance
    # from it (the floor), and onnxruntime's, so the bound becomes 4e-3 instead of the 1e-9 tolerance
    entry = export_graph(spec_for(Scale(3.0, 1e-3)), tmp_path, ExportOptions()).entry
    p = entry["parity"]
    v = p["float64_reference"]["y"]
    assert v["torch_float32"] == pytest.approx(1e-3, rel=1e-3) and v["onnx"] == pytest.approx(1e-3, rel=1e-3)
    assert v["tolerance"] == 1e-9 and p["atol"]["y"] == pytest.approx(4e-3, rel=1e-3)
    assert p["max_abs"]["y"] == v["onnx"] <= p["atol"]["y"]
    assert v["onnx_vs_torch"] < 1e-6


def test_a_broken_graph_still_fails_against_float64(tmp_path):
    def broken(opset, _scratch):  # the graph computes x * 3.1: off by 0.1 |x|, far past any float32 floor
        buf = io.BytesIO()
        torch.onnx.export(Scale(3.1), (torch.zeros(1, 64),), buf, input_names=["x"], output_names=["y"], opset_version=opset,
                          dynamo=False)
        return onnx.load_from_string(buf.getvalue())

    with pytest.raises(ExportError, match=r"y max-abs vs the float64 math .* > .*the larger of 1e-06 and 4 x PyTorch float32's"):
        export_graph(spec_for(Scale(3.0).double(), build_onnx=broken, tol=1e-6), tmp_path, ExportOptions())
