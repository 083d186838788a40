"""Flow: module layout vs the official key table, ONNX parity per graph and bucket, runtime_ref
token2mel vs our unpadded PyTorch path, padding independence, streaming chunk consistency, fp16.

One tiny bundle (buckets 128 and 256, encoder + unrolled solver + step graphs) is exported once per
module; all tests reuse it.
"""
from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
import torch

from exporter.config import FlowConfig
from exporter.export import export_components
from exporter.flow import export as flow_export
from exporter.flow.keys import official_keys
from exporter.flow.model import Flow, euler_schedule, official_noise, token2mel_torch
from exporter.spec import ExportOptions
from runtime_ref.bundle import Bundle
from runtime_ref.flow import FlowInputError, token2mel

LENS = (128, 256)


@pytest.fixture(scope="module")
def flows(tiny_md):
    return flow_export.load_flows(tiny_md, LENS)


@pytest.fixture(scope="module")
def bundle_dir(tiny_md, tmp_path_factory):
    out = tmp_path_factory.mktemp("flow") / "bundle"
    opts = ExportOptions(flow_lens=LENS, extra={"flow_solver": "both"})
    export_components(tiny_md, out, ["flow"], opts, overwrite=True)
    return out


@pytest.fixture(scope="module")
def bundle(bundle_dir):
    return Bundle.open(bundle_dir)


def _inputs(P=12, N=40, seed=0, F=None):
    rng = np.random.default_rng(seed)
    pt = rng.integers(0, 6561, (1, P))
    tk = rng.integers(0, 6561, (1, N))
    pm = (rng.standard_normal((1, 2 * P if F is None else F, 80)) - 5).astype(np.float32)
    xv = rng.standard_normal((1, 192)).astype(np.float32)
    return pt, tk, pm, xv


# ---------------------------------------------------------------------------------------------
# layout


def test_state_dict_matches_official_table(flows, tiny_md):
    f = flows[LENS[0]]
    ours = {k: tuple(v.shape) for k, v in f.state_dict().items()}
    assert ours == official_keys(tiny_md.config.flow)


def test_full_size_layout_and_count():
    cfg = FlowConfig()  # the CosyVoice2-0.5B hyper-parameters
    with torch.device("meta"):
        f = Flow(cfg, 64)
    ours = {k: tuple(v.shape) for k, v in f.state_dict().items()}
    assert ours == official_keys(cfg)
    assert len(ours) == 1121
    assert sum(int(np.prod(s)) for s in ours.values()) == 112_549_360  # fact sheet §6.4


def test_noise_is_the_official_table(bundle):
    torch.manual_seed(0)
    ref = torch.randn(1, 80, 15000)[:, :, :max(LENS)].numpy()
    got = bundle.load_array("flow/noise.npy")
    assert got.shape == (1, 80, max(LENS)) and got.dtype == np.float32
    assert np.array_equal(got, ref)


def test_euler_schedule_is_cosine():
    ts, dts = euler_schedule(10)
    span = 1 - np.cos(np.linspace(0, 1, 11) * 0.5 * np.pi)
    assert len(ts) == 10
    np.testing.assert_allclose(ts, span[:-1], atol=1e-6)
    np.testing.assert_allclose(np.cumsum(dts), span[1:], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# graphs


def test_graphs_are_static_and_checked(bundle):
    names = bundle.graphs_of("flow")
    assert sorted(names) == sorted(f"flow_{k}_{n}" for n in LENS for k in ("encoder", "solve", "step"))
    for name in names:
        e = bundle.graph(name).entry
        assert e["checker"]["ok"]
        assert e["symbolic_dims"] == {}
        for t in e["inputs"] + e["outputs"]:
            assert all(isinstance(d, int) for d in t["shape"]), (name, t)
            assert t["dtype"] in ("float32", "int32")
        ops = set(e["checker"]["op_counts"])
        assert not ops & {"If", "Loop", "Scan", "Mish", "Resize"}, (name, ops)


def test_manifest_parity_figures(bundle):
    for n in LENS:
        par = bundle.graph(f"flow_step_{n}").entry["parity"]["max_abs"]
        assert par["velocity"] <= 1e-4 and par["x_next"] <= 1e-4
        assert bundle.graph(f"flow_solve_{n}").entry["parity"]["max_abs"]["mel"] <= 1e-3
        assert bundle.graph(f"flow_encoder_{n}").entry["parity"]["max_abs"]["mu"] <= 1e-4


def test_unrolled_solver_shares_weights(bundle_dir):
    """The 10 unrolled estimator copies must reference one set of initializers."""
    step = onnx.load(str(bundle_dir / "flow_step_256.onnx"))
    solve = onnx.load(str(bundle_dir / "flow_solve_256.onnx"))
    size = lambda m: sum(onnx.numpy_helper.to_array(i).nbytes for i in m.graph.initializer)  # noqa: E731
    assert size(solve) < 1.5 * size(step)


@pytest.mark.parametrize("n", LENS)
def test_step_parity_several_lengths(bundle, flows, n):
    """One CFG Euler step vs PyTorch: max-abs <= 1e-4 and no element outside atol 1e-4."""
    flow = flows[n]
    noise = official_noise(n).numpy()
    worst, outside = 0.0, 0
    for case in range(4):
        feeds = flow_export.decoder_inputs(flow.cfg, n, case, noise)
        feeds = {k: feeds[k] for k in ("x", "t", "dt", "mu", "cond", "spks", "mel_mask", "streaming")}
        got = bundle.run(f"flow_step_{n}", dict(feeds))["velocity"]
        with torch.inference_mode():
            ref = flow.velocity(*(torch.from_numpy(feeds[k]) for k in ("x", "t", "mu", "cond", "spks", "mel_mask", "streaming"))).numpy()
        mask = feeds["mel_mask"][0, 0] > 0
        err = np.abs(got - ref)[:, :, mask]
        worst = max(worst, float(err.max()))
        outside += int((err > 1e-4).sum())
    assert worst <= 1e-4 and outside == 0, (worst, outside)


# ---------------------------------------------------------------------------------------------
# runtime_ref token2mel


def test_token2mel_matches_unpadded_torch(bundle, flows):
    pt, tk, pm, xv = _inputs(P=12, N=40)
    got = token2mel(bundle, pt, tk, pm, xv)  # bucket 128 (52 tokens = 104 frames, padded)
    ref = token2mel_torch(flows[LENS[0]], pt, tk, pm, xv).numpy()  # exactly 104 frames
    assert got.shape == ref.shape == (1, 80, 80)
    assert np.isfinite(got).all() and got.std() > 0.1
    assert float(np.abs(got - ref).max()) <= 1e-5 * max(1.0, float(np.abs(ref).max()))


def test_bucket_choice_and_padding_independence(bundle):
    pt, tk, pm, xv = _inputs(P=10, N=50, seed=1)  # 60 tokens -> 120 frames -> bucket 128
    small = token2mel(bundle, pt, tk, pm, xv)
    comp = bundle.manifest["components"]["flow"]
    saved = comp["mel_lens"]
    comp["mel_lens"] = [256]  # force the larger bucket (more padding)
    try:
        big = token2mel(bundle, pt, tk, pm, xv)
    finally:
        comp["mel_lens"] = saved
    assert float(np.abs(small - big).max()) <= 1e-5


def test_step_loop_equals_unrolled(bundle):
    pt, tk, pm, xv = _inputs(P=8, N=30, seed=2)
    unrolled = token2mel(bundle, pt, tk, pm, xv)
    g = bundle.manifest["components"]["flow"]["graphs"]
    saved = {k: dict(v) for k, v in g.items()}
    for v in g.values():
        v.pop("solve")
    try:
        stepped = token2mel(bundle, pt, tk, pm, xv)
    finally:
        g.update(saved)
    assert float(np.abs(unrolled - stepped).max()) <= 1e-5


def test_streaming_chunks_are_consistent(bundle, flows):
    """Chunk masks + fixed noise: frames of finished chunks do not change when tokens are added."""
    rng = np.random.default_rng(3)
    P = 10
    pt = rng.integers(0, 6561, (1, P))
    tk = rng.integers(0, 6561, (1, 90))
    pm = (rng.standard_normal((1, 2 * P, 80)) - 5).astype(np.float32)
    xv = rng.standard_normal((1, 192)).astype(np.float32)
    # first chunk: encoder tokens up to 50 (2 chunks of 25, counted from the prompt start) + 3 lookahead
    first = token2mel(bundle, pt, tk[:, :50 - P + 3], pm, xv, streaming=True, finalize=False)
    second = token2mel(bundle, pt, tk[:, :75 - P + 3], pm, xv, streaming=True, finalize=False)
    assert first.shape[2] == 2 * (50 - P) and second.shape[2] == 2 * (75 - P)
    assert float(np.abs(first - second[:, :, :first.shape[2]]).max()) <= 1e-5
    # and the streaming graph agrees with PyTorch
    ref = token2mel_torch(flows[LENS[0]], pt, tk[:, :50 - P + 3], pm, xv, streaming=True, finalize=False).numpy()
    assert float(np.abs(first - ref).max()) <= 1e-4
    # full attention differs (so the streaming flag does something)
    full = token2mel(bundle, pt, tk[:, :50 - P + 3], pm, xv, streaming=False, finalize=False)
    assert float(np.abs(full - first).max()) > 1e-3


def test_fp16_weights_snr(bundle_dir, tmp_path, flows):
    """fp16 weights (converted from the fp32 graphs with the export's pass): mel SNR >= 30 dB."""
    from graph_passes.precision import weights_to_fp16

    b16 = tmp_path / "b16"
    shutil.copytree(bundle_dir, b16)
    for n in LENS:
        for kind in ("encoder", "solve"):
            p = b16 / f"flow_{kind}_{n}.onnx"
            onnx.save(weights_to_fp16(onnx.load(str(p))), str(p))
    bundle16 = Bundle.open(b16, verify=False)
    pt, tk, pm, xv = _inputs(P=12, N=40, seed=4)
    ref = token2mel_torch(flows[LENS[0]], pt, tk, pm, xv).numpy().astype(np.float64)
    got = token2mel(bundle16, pt, tk, pm, xv).astype(np.float64)
    snr = 10 * np.log10(np.sum(ref ** 2) / np.sum((got - ref) ** 2))
    print(f"fp16 weights: mel max-abs {np.abs(got - ref).max():.3g}, SNR {snr:.1f} dB")
    assert snr >= 30.0


def test_errors(bundle):
    pt, tk, pm, xv = _inputs(P=12, N=200)
    with pytest.raises(FlowInputError, match=r"largest flow graph takes 256"):
        token2mel(bundle, pt, tk, pm, xv)
    pt, tk, pm, xv = _inputs(P=4, N=10)
    with pytest.raises(FlowInputError, match="outside"):
        token2mel(bundle, pt, tk + 7000, pm, xv)
    with pytest.raises(FlowInputError, match="prompt_mel"):
        token2mel(bundle, pt, tk, pm[:, :, :40], xv)


def test_unroll_euler_on_a_linear_velocity():
    """unroll_euler on v(x, t) = a*x + t*c: the ONNX result equals the Euler recurrence; the
    t-independent, x-independent node (c = 2*cvec) is emitted once, not once per step."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from exporter.flow.unroll import unroll_euler

    a = np.float32(-0.7)
    nodes = [helper.make_node("Mul", ["cvec", "two"], ["c"], name="c"),
             helper.make_node("Mul", ["x", "a"], ["ax"], name="ax"),
             helper.make_node("Mul", ["t", "c"], ["tc"], name="tc"),
             helper.make_node("Add", ["ax", "tc"], ["velocity"], name="v")]
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    g = helper.make_graph(nodes, "v", [vi("x", [1, 3]), vi("t", [1]), vi("cvec", [1, 3])], [vi("velocity", [1, 3])],
                          [numpy_helper.from_array(np.array([a], np.float32), "a"),
                           numpy_helper.from_array(np.array([2.0], np.float32), "two")])
    step = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    ts, dts = euler_schedule(10)
    m = unroll_euler(step, x="x", t="t", velocity="velocity", ts=ts, dts=dts, x0="noise", out="mel")
    assert [i.name for i in m.graph.input] == ["noise", "cvec"] and [o.name for o in m.graph.output] == ["mel"]
    assert sum(n.name == "c" for n in m.graph.node) == 1 and len(m.graph.initializer) == 2
    x0 = np.array([[1.0, -2.0, 0.5]], np.float32)
    cvec = np.array([[0.3, 0.1, -1.0]], np.float32)
    got = ort.InferenceSession(m.SerializeToString()).run(None, {"noise": x0, "cvec": cvec})[0]
    x = x0.copy()
    for t, dt in zip(ts, dts):
        x = x + np.float32(dt) * (a * x + np.float32(t) * (cvec * 2))
    np.testing.assert_allclose(got, x, rtol=1e-6, atol=1e-6)
