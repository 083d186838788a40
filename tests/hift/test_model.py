"""Our PyTorch HiFT: loading, weight-norm folding, sine source details, chunked == whole."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from exporter.checkpoint import CheckpointError
from exporter.hift.export import example_mel
from exporter.hift.keys import WN_G, WN_V, official_keys
from exporter.hift.model import build_hift, fold_weight_norm
from runtime_ref.hift import HiFTVocoder

from .conftest import snr_db, torch_runner


def test_fold_weight_norm_matches_parametrization(tiny_md):
    sd = tiny_md.load_checkpoint("hift")
    folded = fold_weight_norm(sd)
    # ConvTranspose1d: g is over dim 0 = input channels
    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.ConvTranspose1d(*sd[f"ups.0.{WN_V}"].shape[:2], sd[f"ups.0.{WN_V}"].shape[2]))
    conv.parametrizations.weight.original0.data.copy_(sd[f"ups.0.{WN_G}"])
    conv.parametrizations.weight.original1.data.copy_(sd[f"ups.0.{WN_V}"])
    assert torch.equal(conv.weight, folded["ups.0.weight"])
    assert not any(k.endswith((WN_G, WN_V)) for k in folded)
    assert len(folded) == len(sd) - sum(k.endswith(WN_G) for k in sd)


def test_strict_loading_rejects_wrong_keys(tiny_md):
    cfg = tiny_md.config.hift
    sd = tiny_md.load_checkpoint("hift")
    assert set(sd) == set(official_keys(cfg))
    bad = dict(sd)
    bad.pop("conv_post.bias")
    bad["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="conv_post.bias"):
        build_hift(cfg, bad)


def test_phase_upsampling_equals_interpolate(hift_model):
    """The reshape-based x480 phase upsampling == F.interpolate(linear, half-pixel) (float64)."""
    m = hift_model
    T = 7
    g = torch.Generator().manual_seed(0)
    step = torch.rand(1, T, 9, generator=g, dtype=torch.float64) * 40
    cum = torch.cumsum(step, dim=1)  # unwrapped frame phase (cycles)
    ours = m.sample_phase(cum, step)
    ref = F.interpolate(cum.transpose(1, 2), scale_factor=480, mode="linear").transpose(1, 2)
    assert ours.shape == ref.shape == (1, 480 * T, 9)
    assert (ours - ref).abs().max() <= 1e-9


def test_output_shapes_and_ranges(hift_model):
    T = 20
    mel = torch.from_numpy(example_mel(T, 0))
    noise = torch.randn(1, 480 * T, 9)
    with torch.no_grad():
        w, s, p = hift_model.vocode(mel, noise)
    assert w.shape == (1, 480 * T) and s.shape == (1, 1, 480 * T) and p.shape == (1, T, 9)
    assert w.abs().max() <= 0.99 and w.std() > 1e-3
    assert (p >= 0).all() and (p < 1).all()


def test_phase_ref_pins_phase(hift_model):
    T = 16
    mel = torch.from_numpy(example_mel(T, 1))
    noise = torch.randn(1, 480 * T, 9)
    pin = torch.rand(1, 1, 9)
    ref = torch.zeros(1, T, 1)
    ref[0, 5] = 1
    z = torch.zeros(1, 1, 3840)
    with torch.no_grad():
        _, _, p0 = hift_model(mel, noise, torch.zeros(1, 1, 9), torch.zeros(1, T, 1), z, torch.zeros(1, 1, 1))
        _, _, p1 = hift_model(mel, noise, pin, ref, z, torch.zeros(1, 1, 9)[:, :, :1])
    assert torch.allclose(p1[0, 5], pin[0, 0], atol=1e-6)
    d = torch.remainder(p1 - p0 - (pin - p0[:, 5:6]), 1.0)  # constant offset everywhere
    assert torch.minimum(d, 1 - d).max() <= 1e-5


def test_cache_source_overwrites_start(hift_model):
    T = 12
    mel = torch.from_numpy(example_mel(T, 2))
    cache = 0.5 * torch.randn(1, 1, 3840)
    with torch.no_grad():
        _, s, _ = hift_model.vocode(mel, torch.randn(1, 480 * T, 9), cache_source=cache)
    assert torch.equal(s[:, :, :3840], cache)


@pytest.mark.parametrize("frames,context", [(64, 12)])
def test_chunked_equals_whole_pytorch(hift_model, frames, context):
    """runtime_ref chunking (PyTorch module as the runner) vs one whole-utterance PyTorch call."""
    N = 230
    mel = example_mel(N, 5)
    noise = np.random.default_rng(5).standard_normal((1, 480 * N, 9)).astype(np.float32)
    with torch.no_grad():
        ref = hift_model.vocode(torch.from_numpy(mel), torch.from_numpy(noise))[0].numpy()
    v = HiFTVocoder(torch_runner(hift_model), frames=frames, context=context)
    got, _ = v.mel2wav(mel, noise)
    assert v.calls == len(v.plan(N)) >= 4
    err = np.abs(got - ref).max()
    print(f"chunked vs whole (T={frames}, context {context}): max-abs {err:.3g}, SNR {snr_db(ref, got):.1f} dB")
    assert err <= 1e-3 and snr_db(ref, got) >= 40


def test_chunk_plan_covers_every_frame():
    v = HiFTVocoder(lambda f: f, frames=64, context=12)
    for n in (65, 100, 200, 1001):
        plan = v.plan(n)
        assert plan[0][:2] == (0, 0) and plan[-1][2] == n and plan[-1][0] == n - 64
        for (a, e0, e1), (a2, f0, _) in zip(plan, plan[1:]):
            assert e1 == f0 and e0 - a >= (12 if e0 else 0) and a + 64 - e1 >= 12


@pytest.fixture(scope="module")
def hift_f64(tiny_md):
    from exporter.checkpoint import load_into
    from exporter.hift.model import HiFT

    m = HiFT(tiny_md.config.hift).double()
    load_into(m, fold_weight_norm({k: v.double() for k, v in tiny_md.load_checkpoint("hift").items()}), source="hift.pt")
    return m.eval()


@pytest.mark.parametrize("n", [1, 2, 7, 30, 63])
def test_exact_length_in_a_padded_graph(hift_f64, n):
    """A T=64 call with n_frames=n and random garbage past n == a call on exactly n frames (the
    official semantics: every layer zero-padded at the n-frame end, STFT reflection and iSTFT
    envelope at that end), and zero past n. float64, so any leak past the end shows."""
    T = 64
    g = torch.Generator().manual_seed(n)
    mel = torch.from_numpy(example_mel(n, 30 + n)).double()
    noise = torch.randn(1, 480 * n, 9, generator=g, dtype=torch.float64)
    cache = 0.1 * torch.randn(1, 1, 3840, generator=g, dtype=torch.float64) if n >= 8 else None
    pad_mel = torch.cat([mel, 3 * torch.randn(1, 80, T - n, generator=g, dtype=torch.float64) - 5], dim=2)
    pad_noise = torch.cat([noise, torch.randn(1, 480 * (T - n), 9, generator=g, dtype=torch.float64)], dim=1)
    with torch.no_grad():
        w, s, p = hift_f64.vocode(mel, noise, cache_source=cache)
        wp, sp, pp = hift_f64.vocode(pad_mel, pad_noise, cache_source=cache, n_frames=n)
    errs = [(w - wp[:, :480 * n]).abs().max().item(), (s - sp[..., :480 * n]).abs().max().item(),
            (p - pp[:, :n]).abs().max().item()]
    print(f"n={n}: exact-length in T={T} vs exact call: wav {errs[0]:.2g}, source {errs[1]:.2g}, phase {errs[2]:.2g}")
    assert max(errs) <= 1e-9
    assert wp[:, 480 * n:].abs().max() == 0 and sp[..., 480 * n:].abs().max() == 0 and pp[:, n:].abs().max() == 0
    # the old approach (edge padding, n_frames = T) really differs at the end: this test can fail
    edge = torch.cat([mel, mel[:, :, -1:].expand(1, 80, T - n)], dim=2)
    with torch.no_grad():
        we = hift_f64.vocode(edge, torch.cat([noise, torch.zeros(1, 480 * (T - n), 9, dtype=torch.float64)], 1),
                             cache_source=cache)[0]
    assert (w - we[:, :480 * n]).abs().max() > 1e-4
