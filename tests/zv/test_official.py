"""Our ZipVoice modules and bundle vs the official k2-fsa/ZipVoice and gemelo-ai/vocos modules on
the same random weights (the tiny fixture loaded into both). Needs the official copies at
/tmp/zipvoice_official and /tmp/vocos_official; without them these tests skip (the always-running
tests compare the bundle with our PyTorch modules)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from . import official

ZV, VOCOS = official.ZV, official.VOCOS
pytestmark = pytest.mark.skipif(not (ZV / "zipvoice/models/zipvoice.py").is_file(),
                                reason="official ZipVoice copy not at /tmp/zipvoice_official (git archive of k2-fsa/ZipVoice)")


@pytest.fixture(scope="module")
def zv_official():
    return official.import_zipvoice()


@pytest.fixture(scope="module")
def vocos_official():
    if not (VOCOS / "vocos/heads.py").is_file():
        pytest.skip("official Vocos copy not at /tmp/vocos_official (git archive of gemelo-ai/vocos)")
    return official.import_vocos()


def _official_model(zv_official, md):
    return official.official_model(zv_official, md)


@pytest.fixture(scope="module", params=["zipvoice", "zipvoice_distill"])
def pair(request, zv_official, zv_md, zv_distill_dir):
    from exporter.zipvoice.model import load_model
    from exporter.zipvoice.modeldir import ZipVoiceModelDir

    md = zv_md if request.param == "zipvoice" else ZipVoiceModelDir.open(zv_distill_dir)
    return md, _official_model(zv_official, md), load_model(md)


@pytest.mark.parametrize("n", [1, 2, 7, 30])
def test_text_encoder(pair, zv_official, n):
    md, off, ours = pair
    make_pad_mask = zv_official[2]
    g = torch.Generator().manual_seed(n)
    toks = torch.randint(1, md.config.model.vocab_size, (1, n), generator=g)
    padded = torch.cat([toks, torch.full((1, 1), md.config.model.pad_id)], 1)  # official pad_labels appends one pad
    with torch.inference_mode():
        ref = off.text_encoder(x=off.embed(padded), t=None, padding_mask=make_pad_mask(torch.tensor([n]), n + 1))
        bucket = torch.full((1, 40), md.config.model.pad_id)
        bucket[0, :n] = toks[0]
        got = ours.encode_text(bucket, torch.tensor([n]))[:, : n + 1]
    assert (ref - got).abs().max().item() <= 1e-4


@pytest.mark.parametrize("T,bucket", [(1, 8), (5, 8), (37, 64), (64, 64), (101, 128)])
@pytest.mark.parametrize("t", [0.2, 0.5, 0.8])
def test_one_decoder_step(pair, T, bucket, t):
    """One velocity evaluation with the official guidance handling (DiffusionModel /
    DistillDiffusionModel), our decoder on a padded bucket."""
    md, off, ours = pair
    g = torch.Generator().manual_seed(T)
    x, tc, sc = (torch.randn(1, T, 100, generator=g) for _ in range(3))
    gs = md.config.guidance_scale
    with torch.inference_mode():
        ref = off.solver.model(t=torch.tensor(t), x=x, text_condition=tc, speech_condition=sc,
                               padding_mask=torch.zeros(1, T, dtype=torch.bool), guidance_scale=gs)
        pad = lambda a: torch.cat([a, torch.randn(1, bucket - T, 100, generator=g)], 1)  # noqa: E731 (garbage padding)
        got = ours.velocity(torch.tensor([t]), pad(x), pad(tc), pad(sc), torch.tensor([T]), torch.tensor([gs]))[:, :T]
    assert (ref - got).abs().max().item() <= 1e-4 * max(1.0, ref.abs().max().item())


@pytest.mark.parametrize("T", [9, 60])
def test_whole_solve(pair, T):
    """The whole Euler solve vs the official EulerSolver.sample (t_shift 0.5, the variant's steps)."""
    from runtime_ref.zipvoice.solve import time_steps

    md, off, ours = pair
    c = md.config
    g = torch.Generator().manual_seed(100 + T)
    x0, tc = torch.randn(1, T, 100, generator=g), torch.randn(1, T, 100, generator=g)
    sc = torch.randn(1, T, 100, generator=g) * 0.3
    sc[:, T // 3:] = 0
    with torch.inference_mode():
        ref = off.solver.sample(x=x0, text_condition=tc, speech_condition=sc, padding_mask=torch.zeros(1, T, dtype=torch.bool),
                                num_step=c.num_step, guidance_scale=c.guidance_scale, t_shift=c.t_shift)
        got = ours.solve(x0, tc, sc, torch.tensor([T]), torch.from_numpy(time_steps(c.num_step, c.t_shift)),
                         torch.tensor([c.guidance_scale]))
    assert (ref - got).abs().max().item() <= 1e-4 * max(1.0, ref.abs().max().item())


@pytest.mark.parametrize("n", [2, 3, 17, 64])
def test_vocos_waveform(vocos_official, zv_md, n):
    from exporter.zipvoice.vocos import Vocos

    v = zv_md.config.vocos
    sd = zv_md.load_vocos()
    bb, hd = official.official_vocos(vocos_official, zv_md)
    ours = Vocos(v).eval()
    ours.load_state_dict(sd, strict=True)
    feats = torch.randn(1, v.n_mels, 64, generator=torch.Generator().manual_seed(n)) * 2 - 4
    with torch.inference_mode():
        ref = hd(bb(feats[..., :n]))
        got = ours(feats, torch.tensor([n]))
    assert got.shape[1] >= ref.shape[1] == v.hop_length * (n - 1)
    assert (ref - got[:, : ref.shape[1]]).abs().max().item() <= 1e-5
    assert got[:, ref.shape[1]:].abs().max().item() == 0.0 if got.shape[1] > ref.shape[1] else True


def test_end_to_end_vs_official_sample(zv_official, vocos_official, zv_md, zv_bundle):
    """Official ZipVoice.sample (duration 'predict', its own torch.randn noise, reproduced here
    by seeding) + official Vocos decode vs runtime_ref on the bundle with that noise."""
    from runtime_ref.bundle import Bundle
    from runtime_ref.zipvoice.pipeline import ZipVoicePipeline
    from runtime_ref.zipvoice.voice import bake_voice

    from exporter.reference_pipeline import snr_db
    from .conftest import STEPS, short_prompt

    off = _official_model(zv_official, zv_md)
    bundle = Bundle.open(zv_bundle[0])
    pipe = ZipVoicePipeline(bundle)
    voice = bake_voice(bundle, short_prompt(), 24000, text="this is a test voice.")
    text = "hi there."
    prompt_ids, ids = pipe.text.ids(str(voice["prompt_text"])), pipe.text.ids(text)
    c = zv_md.config
    pf = torch.from_numpy(voice["prompt_features"])[None] * c.feat_scale
    torch.manual_seed(7)
    with torch.inference_mode():
        feats, feats_lens, _, _ = off.sample(tokens=[ids], prompt_tokens=[prompt_ids], prompt_features=pf,
                                             prompt_features_lens=torch.tensor([pf.shape[1]]), speed=1.0, t_shift=c.t_shift,
                                             duration="predict", num_step=STEPS, guidance_scale=c.guidance_scale)
    n_total = pf.shape[1] + int(feats_lens[0])
    torch.manual_seed(7)
    noise = torch.randn(1, n_total, 100)[0].numpy()  # the draw inside sample()
    ref_feats = (feats[0] / c.feat_scale).numpy()
    bb, hd = official.official_vocos(vocos_official, zv_md)
    with torch.inference_mode():
        ref_wav = hd(bb(torch.from_numpy(ref_feats.T)[None])).clamp(-1, 1)[0].numpy()
    rms = float(voice["prompt_rms"])
    if rms < c.target_rms:
        ref_wav = ref_wav * rms / c.target_rms
    ours = pipe.synthesize(text, voice, noise=noise)
    assert ours.n_frames == n_total
    err, snr = float(np.abs(ours.features - ref_feats).max()), snr_db(ref_wav, ours.audio)
    print(f"official e2e: {n_total} frames, features max-abs {err:.2e}, waveform SNR {snr:.1f} dB")
    assert err <= 1e-3 and snr >= 40


def test_cross_fade_concat_vs_official():
    """The joins of a long text: runtime_ref's cross_fade_concat vs the official one (0.1 s at 24 kHz)."""
    from runtime_ref.zipvoice.pipeline import cross_fade_concat

    infer = official.import_infer_utils()
    rng = np.random.default_rng(0)
    chunks = [rng.standard_normal(n).astype(np.float32) for n in (7000, 1500, 9000, 2400)]
    ref = infer.cross_fade_concat([torch.from_numpy(c)[None] for c in chunks], fade_duration=0.1, sample_rate=24000)[0].numpy()
    got = cross_fade_concat(chunks, int(0.1 * 24000))
    assert got.shape == ref.shape and np.abs(got - ref).max() <= 1e-6
