"""The export driver and bundle contract on a toy component (trace → passes → checker → parity →
atomic bundle), and the runtime_ref reader."""
import json
import sys
import types

import numpy as np
import pytest
import torch

from exporter.errors import ExportError, SentisTTSError
from exporter.export import export_components
from exporter.spec import ComponentExport, ExportOptions, GraphSpec, TensorSpec
from runtime_ref.bundle import Bundle
from runtime_ref.errors import BundleError


class Toy(torch.nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv1d(8, 16, 3, padding=1)
        self.norm = torch.nn.LayerNorm(16)
        self.scale = scale

    def forward(self, x, length):
        # x (1, 8, 32), length (1,) int32 -> y (1, 32, 16) masked beyond length
        y = self.norm(torch.nn.functional.gelu(self.conv(x)).transpose(1, 2)) * self.scale
        mask = (torch.arange(32).unsqueeze(0) < length.unsqueeze(1)).to(y.dtype)
        return y * mask.unsqueeze(-1)


def _inputs(case):
    rng = np.random.default_rng(case)
    return {"x": rng.standard_normal((1, 8, 32)).astype(np.float32), "length": np.array([20 + case], np.int32)}


def toy_build():
    def build(md, options):
        module = Toy()

        class Wrapper(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = module

            def forward(self, x, length):
                return self.m(x, length)

        spec = GraphSpec(
            name="toy_graph", component="toy", module=Wrapper(),
            inputs=[TensorSpec("x", (1, 8, 32)), TensorSpec("length", (1,), "int32")],
            outputs=[TensorSpec("y", (1, 32, 16))], make_inputs=_inputs, atol=1e-5,
            fixed_dims={"frames": 32},
        )
        return ComponentExport("toy", [spec], manifest={"frames": 32}, files={"toy/table.npy": np.arange(5, dtype=np.float32)})

    return build


@pytest.fixture
def toy_component(monkeypatch):
    mod = types.ModuleType("toy_component_for_tests")
    mod.build = toy_build()
    monkeypatch.setitem(sys.modules, "toy_component_for_tests", mod)
    from exporter.families import get_family

    monkeypatch.setitem(get_family("cosyvoice2").components, "toy", "toy_component_for_tests")
    return mod


def test_export_writes_a_checked_bundle_with_parity(tmp_path, tiny_md, toy_component):
    out = tmp_path / "bundle"
    m = export_components(tiny_md, out, ["toy"], ExportOptions(), mode="create")
    files = sorted(p.name for p in out.iterdir())
    assert files == ["manifest.json", "toy", "toy_graph.onnx"]
    man = json.loads((out / "manifest.json").read_text())
    assert man == m
    g = man["graphs"]["toy_graph"]
    assert g["checker"]["ok"] and g["opset"] == 17 and g["fixed_dims"] == {"frames": 32}
    assert g["inputs"][1] == {"name": "length", "shape": [1], "dtype": "int32"}
    assert g["parity"]["max_abs"]["y"] < 1e-5 and g["parity"]["atol"]["y"] == 1e-5
    assert g["passes"] and len(g["sha256"]) == 64
    assert man["components"]["toy"] == {"frames": 32}
    assert man["constants"]["sample_rate"] == 24000
    # the runtime reads it back, verifies hashes, and runs the graph
    b = Bundle.open(out)
    y = b.run("toy_graph", _inputs(0))["y"]
    ref = Toy()(*(torch.from_numpy(v) for v in _inputs(0).values())).detach().numpy()
    np.testing.assert_allclose(y, ref, atol=1e-5)
    np.testing.assert_array_equal(b.load_array("toy/table.npy"), np.arange(5, dtype=np.float32))


def test_fp16_weights_bundle(tmp_path, tiny_md, toy_component):
    m = export_components(tiny_md, tmp_path / "b16", ["toy"], ExportOptions(fp16=True), mode="create")
    g = m["graphs"]["toy_graph"]
    assert g["weights_dtype"] == "float16" and "weights_to_fp16" in g["passes"]
    assert g["inputs"][0]["dtype"] == "float32"


def test_failed_export_leaves_nothing_behind(tmp_path, tiny_md, toy_component, monkeypatch):
    out = tmp_path / "bundle"
    export_components(tiny_md, out, ["toy"], ExportOptions(), mode="create")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def boom(md, options):
        raise ExportError("simulated failure")

    monkeypatch.setattr(toy_component, "build", boom)
    with pytest.raises(ExportError):
        export_components(tiny_md, out, ["toy"], ExportOptions(), mode="update")
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # the existing bundle is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]  # no temp dirs left


def test_parity_failure_is_an_error(tmp_path, tiny_md, toy_component, monkeypatch):
    def bad_build(md, options):
        ce = toy_build()(md, options)
        spec = ce.graphs[0]

        # compare the traced module against a changed one after tracing
        class Drift(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner
                self.calls = 0

            def forward(self, x, length):
                self.calls += 1
                out = self.inner(x, length)
                return out if self.calls == 1 else out + 1e-3

        spec.module = Drift(spec.module)
        return ce

    monkeypatch.setattr(toy_component, "build", bad_build)
    with pytest.raises(ExportError, match=r"parity vs PyTorch failed: y max-abs 0.001 > 1e-05"):
        export_components(tiny_md, tmp_path / "x", ["toy"], ExportOptions(), mode="create")
    assert not (tmp_path / "x").exists()


def test_create_refuses_to_overwrite(tmp_path, tiny_md, toy_component):
    out = tmp_path / "bundle"
    export_components(tiny_md, out, ["toy"], ExportOptions(), mode="create")
    with pytest.raises(SentisTTSError, match="--overwrite"):
        export_components(tiny_md, out, ["toy"], ExportOptions(), mode="create")
    export_components(tiny_md, out, ["toy"], ExportOptions(), mode="create", overwrite=True)


def test_bundle_reader_errors(tmp_path, tiny_md, toy_component):
    out = tmp_path / "bundle"
    export_components(tiny_md, out, ["toy"], ExportOptions(), mode="create")
    with pytest.raises(BundleError, match="no manifest.json"):
        Bundle.open(tmp_path)
    b = Bundle.open(out)
    with pytest.raises(BundleError, match="expects"):
        b.run("toy_graph", {"x": np.zeros((1, 8, 31), np.float32), "length": np.array([3], np.int32)})
    with pytest.raises(BundleError, match="no graph"):
        b.graph("nope")
    with pytest.raises(BundleError, match="no 'llm' component"):
        b.component("llm")
    data = bytearray((out / "toy_graph.onnx").read_bytes())
    data[-10] ^= 0xFF
    (out / "toy_graph.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        Bundle.open(out)
    man = json.loads((out / "manifest.json").read_text())
    man["schema_version"] = 99
    (out / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(BundleError, match="schema_version 99"):
        Bundle.open(out, verify=False)


def test_save_with_weights_writes_what_attach_and_save_write(tmp_path):
    """The streamed writer (big weights appended one by one as initializer entries) gives a model
    with the same initializers, inputs and results as attach_weights + onnx.save."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    from exporter.export import attach_weights, detach_weights, save_with_weights

    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((300, 300)).astype(np.float32), rng.standard_normal(300).astype(np.float32)
    unused = numpy_helper.from_array(np.ones((300, 300), np.float32), "unused")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y0"]), helper.make_node("Add", ["y0", "b"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 300])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 300])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"), unused])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    stash = detach_weights(m, min_bytes=2000)
    assert set(stash) == {"w", "unused"} and "w" in {i.name for i in m.graph.input}
    save_with_weights(m, stash, tmp_path / "streamed.onnx")
    onnx.save(attach_weights(m, stash), str(tmp_path / "attached.onnx"))
    got, ref = onnx.load(str(tmp_path / "streamed.onnx")), onnx.load(str(tmp_path / "attached.onnx"))
    onnx.checker.check_model(got)
    assert [i.name for i in got.graph.input] == ["x"]
    assert {i.name: i.SerializeToString() for i in got.graph.initializer} == {i.name: i.SerializeToString() for i in ref.graph.initializer}
    x = rng.standard_normal((2, 300)).astype(np.float32)
    y = ort.InferenceSession(str(tmp_path / "streamed.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(y, x @ w + b, rtol=1e-5, atol=1e-4)


def test_trace_detached_keeps_the_modules_own_weights(tmp_path):
    """trace_detached: big Linear weights leave the exporter as the module's own storage (a
    transposed view for a 3-D MatMul, the weight itself for a 2-D Gemm), small ones are
    initializers; streamed to a file the graph computes what the module computes. A weight the
    exporter folds into a new value (here w * 2) takes the ordinary export, detached."""
    import onnxruntime as ort
    from torch import nn

    from exporter.export import save_with_weights, trace_detached

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(64, 96)  # 24 kB weight: a view in the stash
            self.b = nn.Linear(96, 8, bias=False)  # 3 kB: below min_bytes, an initializer (a view too)
            self.c = nn.Linear(96, 80)  # used on a 2-D row: Gemm on the weight itself
            self.folded = False

        def forward(self, x):
            h = self.b(self.a(x)) if not self.folded else torch.matmul(self.a(x), self.b.weight.t() * 2)
            return h, self.c(self.a(x)[:, -1])

    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(1, 5, 64)
    kw = dict(input_names=["x"], output_names=["h", "last"], opset=17, scratch=tmp_path / "raw.onnx", what="net",
              min_bytes=4000)
    model, stash = trace_detached(net, (x,), **kw)
    assert set(stash) == {"a.weight_t", "c.weight"}
    assert stash["a.weight_t"].data_ptr() == net.a.weight.data_ptr() and stash["c.weight"] is not None
    assert not hasattr(net.a, "weight_t") and "forward" not in vars(net.a)  # patch undone
    assert {i.name for i in model.graph.initializer} >= {"b.weight_t", "a.bias"}
    assert not [i for i in model.graph.initializer if i.name in stash]
    def saved_graph_computes_the_module(model, stash, name):
        save_with_weights(model, stash, tmp_path / name)
        with torch.no_grad():
            ref = [t.numpy() for t in net(x)]
        got = ort.InferenceSession(str(tmp_path / name)).run(None, {"x": x.numpy()})
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)

    saved_graph_computes_the_module(model, stash, "net.onnx")

    net.folded = True  # Transpose(w) * 2 folds into a new value: no parameter to stream
    model, stash = trace_detached(net, (x,), **kw)
    assert all(not isinstance(v, torch.Tensor) for v in stash.values())  # the ordinary export's initializers
    saved_graph_computes_the_module(model, stash, "folded.onnx")


def test_export_fails_a_graph_with_a_blocking_readback(tmp_path):
    """import_figures (run by export_graph after the checker) fails on a GPU->CPU readback: here a
    Clip whose min is computed from the data (Clip min is read on the CPU, docs/sentis.md)."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h

    from exporter.export import import_figures
    from graph_passes.sentis import check_model

    nodes = [h.make_node("ReduceMean", ["x"], ["m"], keepdims=0, name="mean"), h.make_node("Clip", ["x", "m"], ["y"], name="clip")]
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, [4])], [h.make_tensor_value_info("y", T.FLOAT, [4])])
    path = tmp_path / "clip.onnx"
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8), str(path))
    report = check_model(path, "2.1", import_versions=["2.4"])
    assert report.ok and report.blocking_readbacks == 1 and set(report.other_imports) == {"2.4"}
    with pytest.raises(ExportError, match="blocking GPU->CPU readback"):
        import_figures(path, report)
