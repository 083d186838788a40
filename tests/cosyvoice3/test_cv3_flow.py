"""CosyVoice3 flow (DiTFlow on the shared CosyVoice2 flow machinery): exported graphs pass the
checker and match PyTorch; the runtime's bucketed token2mel equals the exact-length PyTorch path;
streaming masks matter; padding never reaches valid frames."""
from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def cv3_flow(cv3_md):
    from exporter.checkpoint import load_into
    from exporter.cosyvoice3.flow import DiTFlow

    return load_into(DiTFlow(cv3_md.config.flow, 64).eval(), cv3_md.load_checkpoint("flow"), source="flow.pt")


@pytest.fixture(scope="module")
def cv3_flow_bundle(cv3_md, tmp_path_factory):
    from exporter.export import export_components
    from exporter.spec import ExportOptions

    out = tmp_path_factory.mktemp("cv3_flow") / "bundle"
    export_components(cv3_md, out, ["flow"], ExportOptions(flow_lens=(64,)))
    return out


def test_graphs_checked_and_in_parity(cv3_flow_bundle):
    import json

    m = json.loads((cv3_flow_bundle / "manifest.json").read_text())
    assert m["family"] == "cosyvoice3" and m["components"]["flow"]["estimator"] == "dit"
    for name in ("flow_encoder_64", "flow_solve_64"):
        g = m["graphs"][name]
        assert g["checker"]["ok"], (name, g["checker"])
        assert all(v <= g["parity"]["atol"][k] for k, v in g["parity"]["max_abs"].items()), (name, g["parity"])
    assert [i["name"] for i in m["graphs"]["flow_encoder_64"]["inputs"]] == ["tokens", "token_mask", "conv_mask", "xvec"]


@pytest.mark.parametrize("streaming,finalize", [(False, True), (True, False)])
def test_runtime_token2mel_equals_exact_length_torch(cv3_flow, cv3_flow_bundle, streaming, finalize):
    from exporter.flow.model import token2mel_torch
    from runtime_ref.bundle import Bundle
    from runtime_ref.flow import token2mel

    rng = np.random.default_rng(3)
    pt, tk = rng.integers(0, 6561, (1, 6)), rng.integers(0, 6561, (1, 21))
    pm = rng.standard_normal((1, 12, 80)).astype(np.float32) - 4
    xv = rng.standard_normal((1, 192)).astype(np.float32)
    ref = token2mel_torch(cv3_flow, pt, tk, pm, xv, streaming=streaming, finalize=finalize).numpy()
    got = token2mel(Bundle.open(cv3_flow_bundle), pt, tk, pm, xv, streaming=streaming, finalize=finalize)
    assert got.shape == ref.shape == (1, 80, 2 * (27 - (0 if finalize else 3)) - 12)
    assert np.abs(got - ref).max() <= 1e-4


def test_streaming_chunk_masks_change_only_later_chunks(cv3_flow):
    """With > 50 frames the chunk masks must change the solve; frames of the first chunk (50) see
    no later frames either way only when streaming."""
    from exporter.flow.model import token2mel_torch

    rng = np.random.default_rng(4)
    tk = rng.integers(0, 6561, (1, 40))
    xv = rng.standard_normal((1, 192)).astype(np.float32)
    empty = np.zeros((1, 0, 80), np.float32)
    full = token2mel_torch(cv3_flow, np.zeros((1, 0), np.int64), tk, empty, xv, streaming=False).numpy()
    st = token2mel_torch(cv3_flow, np.zeros((1, 0), np.int64), tk, empty, xv, streaming=True).numpy()
    assert np.abs(full - st).max() > 1e-3
    # streaming: the first 50-frame chunk does not depend on the tokens after it
    tk2 = tk.copy()
    tk2[0, 30:] = rng.integers(0, 6561, 10)
    st2 = token2mel_torch(cv3_flow, np.zeros((1, 0), np.int64), tk2, empty, xv, streaming=True).numpy()
    assert np.abs(st2[..., :50] - st[..., :50]).max() < 1e-5 and np.abs(st2[..., 60:] - st[..., 60:]).max() > 1e-3


def test_padding_does_not_reach_valid_frames(cv3_flow):
    f = cv3_flow
    rng = np.random.default_rng(5)
    T = f.n_tokens
    tok = torch.from_numpy(rng.integers(0, 6561, (1, T)).astype(np.int32))
    tm = torch.zeros(1, T)
    tm[:, :20] = 1
    xv = torch.randn(1, 192)
    mel_mask = tm.repeat_interleave(2, 1)[:, None]
    with torch.inference_mode():
        mu = f.encode(tok, tm, tm, None)
        tok2 = tok.clone()
        tok2[:, 20:] = 7
        mu2 = f.encode(tok2, tm, tm, None)
        assert torch.equal(mu[..., :40], mu2[..., :40]) and float(mu[..., 40:].abs().max()) == 0.0
        noise = torch.randn(1, 80, 2 * T)
        cond = torch.zeros(1, 80, 2 * T)
        spks = f.speaker(xv)
        a = f.solve(noise, mu, cond, spks, mel_mask, torch.zeros(1))
        noise2 = noise.clone()
        noise2[..., 40:] = 3.0
        b = f.solve(noise2, mu, cond, spks, mel_mask, torch.zeros(1))
    assert float((a[..., :40] - b[..., :40]).abs().max()) < 1e-5
