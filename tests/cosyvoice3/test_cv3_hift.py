"""CausalHiFT (CosyVoice3 vocoder) on the shared HiFT blocks: causality (a frame's samples do not
depend on later mel frames beyond the look-right), finalize=False lengths, chunked vocoding exact
(the measured context), the exported graph checked and in parity, runtime_ref's chunked vocoder on it."""
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

    m = export_components(cv3_md, tmp_path / "b", ["hift"], ExportOptions(hift_frames=64))
    g = m["graphs"]["hift_64"]
    assert m["components"]["hift"]["graphs"] == {"64": "hift_64"}
    assert g["checker"]["ok"] and m["components"]["hift"]["variant"] == "causal"
    assert all(v <= g["parity"]["atol"][k] for k, v in g["parity"]["max_abs"].items()), g["parity"]
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["family"] == "cosyvoice3"


def chunked_torch(model, mel, noise, *, T, context, look, steps):
    """runtime_ref's chunk plan (causal_chunk_plan) driven with the torch module: the mel arrives
    in `steps` (frame counts; the last one final), as a stream does."""
    from runtime_ref.cosyvoice3 import causal_chunk_plan

    hop, H = model.hop, model.n_harm
    out, phase, emitted, M = [], None, 0, 0
    for i, M in enumerate(steps):
        for start, n, end in causal_chunk_plan(emitted, M, T, context, look, i == len(steps) - 1):
            m = torch.zeros(1, mel.shape[1], T, dtype=mel.dtype)
            m[:, :, :n] = mel[:, :, start:start + n]
            z = torch.zeros(1, hop * T, H, dtype=mel.dtype)
            z[:, :hop * n] = noise[:, hop * start:hop * (start + n)]
            ref = torch.zeros(1, T, 1, dtype=mel.dtype)
            if emitted:
                ref[0, emitted - 1 - start] = 1.0
            w, ph = model.vocode_chunk(m, z, phase if emitted else torch.zeros(1, 1, H, dtype=mel.dtype), ref,
                                       torch.tensor([n], dtype=torch.int32))
            out.append(w[0, hop * (emitted - start):hop * (end - start)])
            phase, emitted = ph[:, end - 1 - start:end - start], end
    return torch.cat(out)


@pytest.mark.parametrize("steps", [(333,), (50, 120, 121, 200, 333), (9, 333)], ids=["whole", "stream", "short-first"])
def test_chunked_vocoding_is_the_whole_pass(cv3_md, steps):
    """float64, f0 ~300-400 Hz: chunks of T=96 frames with the measured context emit exactly what the
    whole-utterance finalize pass gives (to float64 rounding), streamed or not, at the utterance's
    end too; with 2 frames less context they do not."""
    from exporter.cosyvoice3.hift import build_causal_hift, lookahead_frames, measure_context_frames
    from exporter.hift.export import example_mel

    cfg = cv3_md.config.hift
    sd = {k: v.double() for k, v in cv3_md.load_checkpoint("hift").items()}
    model = build_causal_hift(cfg, sd, dtype=torch.float64)
    model.phase_bits = None
    model.f0_predictor.classifier.bias.data.fill_(300.0)
    context, look = measure_context_frames(cfg), lookahead_frames(cfg)
    assert (context, look) == (37, 8)  # the official architecture: source reach 29 + f0 reach 8; 3 + 4 + 1
    M = steps[-1]
    mel = torch.from_numpy(example_mel(M, seed=1)).double()
    noise = torch.rand(1, 480 * M, cfg.nb_harmonics + 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        whole = model(mel, noise, True)[0]
        got = chunked_torch(model, mel, noise, T=96, context=context, look=look, steps=steps)
        short = chunked_torch(model, mel, noise, T=96, context=context - 6, look=look, steps=steps)
    assert got.shape == whole.shape
    assert float((got - whole).abs().max()) < 1e-10 * float(whole.abs().max())
    assert float((short - whole).abs().max()) > 1e-8 * float(whole.abs().max())


def test_runtime_vocoder_on_the_graph(cv3_md, tmp_path):
    """runtime_ref's CausalVocoder (onnxruntime, float32, graphs of 64 and 96 frames) against the
    float32 torch module's whole pass, non-streaming and streaming; each call on the smallest graph."""
    from exporter.export import export_components
    from exporter.hift.export import example_mel
    from exporter.spec import ExportOptions
    from runtime_ref.bundle import Bundle
    from runtime_ref.cosyvoice3 import CausalVocoder

    export_components(cv3_md, tmp_path / "b", ["hift"], ExportOptions(hift_frames=(96, 64), parity=False))
    voc = CausalVocoder(Bundle.open(tmp_path / "b"))
    assert voc.graphs == [(64, "hift_64"), (96, "hift_96")] and voc.T == 96
    from exporter.cosyvoice3.hift import build_causal_hift

    model = build_causal_hift(cv3_md.config.hift, cv3_md.load_checkpoint("hift"))
    M = 70
    mel = example_mel(M, seed=3)
    state = voc.start(np.random.default_rng(5))
    wav = voc.mel2wav(mel, np.random.default_rng(5))
    assert voc.calls == {"hift_96": 1}  # 70 frames: one call, on the smallest graph that holds it
    table = np.random.default_rng(5).random((480 * M, 9)).astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(mel), torch.from_numpy(table)[None], True)[0].numpy()
    assert wav.shape == ref.shape
    assert np.abs(wav - ref).max() / np.sqrt(np.mean(ref ** 2)) < 1e-2
    first = voc.vocode(mel[:, :, :30], state, final=False)
    assert first.size == 480 * 22 and voc.calls == {"hift_96": 1, "hift_64": 1}  # frames 0..30 emit 0..22 on the small graph
    streamed = np.concatenate([first, voc.vocode(mel, state, final=True)])
    assert voc.calls == {"hift_96": 2, "hift_64": 1}  # frames 0..70 emit the rest
    # (the two graph sizes round the f0 differently in float32, integrated by the phase: ~1e-3)
    assert np.abs(streamed - wav).max() / np.sqrt(np.mean(ref ** 2)) < 1e-2
