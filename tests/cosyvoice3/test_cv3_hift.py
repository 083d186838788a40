"""CausalHiFT (CosyVoice3 vocoder) on the shared HiFT blocks: causality (a frame's samples do not
depend on later mel frames beyond the look-right), finalize=False lengths, exported graph checked
and in parity."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def cv3_hift(cv3_md):
    from exporter.cosyvoice3.hift import build_causal_hift

    return build_causal_hift(cv3_md.config.hift, cv3_md.load_checkpoint("hift"))


def test_causal_lookahead_and_chunk_lengths(cv3_hift):
    from exporter.hift.export import example_mel

    mel = torch.from_numpy(example_mel(40, seed=1))
    noise = torch.rand(1, 480 * 40, 9, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        full = cv3_hift(mel, noise, True)
        chunk = cv3_hift(mel, noise, False)
        mel2 = mel.clone()
        mel2[..., 30:] += 1.0
        full2 = cv3_hift(mel2, noise, True)
    assert full.shape == (1, 480 * 40) and chunk.shape == (1, 480 * 32)
    # frames 0..29 changed nothing before frame 30 - 4 (conv_pre looks 4 frames right; the
    # reflect-padded STFT/iSTFT reach 8 samples back)
    keep = 480 * (30 - 4) - 8
    assert float((full[:, :keep] - full2[:, :keep]).abs().max()) == 0.0
    assert float((full[:, keep + 480:] - full2[:, keep + 480:]).abs().max()) > 1e-4
    # a chunk (finalize=False) equals the final pass on the samples it emits, up to the iSTFT tail
    assert float((chunk[:, :-8] - full[:, :chunk.shape[1] - 8]).abs().max()) < 1e-5


def test_exported_graph_checked_and_in_parity(cv3_md, tmp_path):
    from exporter.export import export_components
    from exporter.spec import ExportOptions

    m = export_components(cv3_md, tmp_path / "b", ["hift"], ExportOptions(hift_frames=48))
    g = m["graphs"]["hift"]
    assert g["checker"]["ok"] and m["components"]["hift"]["variant"] == "causal"
    assert all(v <= g["parity"]["atol"][k] for k, v in g["parity"]["max_abs"].items()), g["parity"]
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["family"] == "cosyvoice3"
