"""Our HiFT vs the official HiFTGenerator on the same weights with its Gaussian noise replaced
by ours. Needs a copy of the official repo at /tmp/cv_official_hift (see docs/components/hift.md);
the always-running tests compare against our own module and the ONNX graph."""
from pathlib import Path

import official_oracle as oo
import pytest
import torch

OFFICIAL = Path("/tmp/cv_official_hift")
pytestmark = pytest.mark.skipif(not (OFFICIAL / "cosyvoice/hifigan/generator.py").is_file(),
                                reason="official CosyVoice copy not at /tmp/cv_official_hift (git archive of the mirror)")


@pytest.fixture(scope="module")
def official(tiny_md):
    pytest.importorskip("scipy", reason="the official generator imports scipy.signal")
    with oo.official_imports(OFFICIAL):
        m = oo.official_hift(tiny_md.config.hift)
    return oo.load(m, tiny_md.load_checkpoint("hift"))  # official parametrized keys


def run_official(model, mel, noise, seed, cache_source=None):
    orig = torch.randn_like

    def fake(x, *a, **k):  # SineGen2's draw gets our noise; the discarded noise branch gets zeros
        return noise.clone().to(x.dtype) if x.shape == noise.shape else torch.zeros_like(x)

    torch.randn_like = fake
    try:
        torch.manual_seed(seed)  # drives the (inert) uniform initial phase
        args = () if cache_source is None else (cache_source,)
        return model.inference(mel, *args)
    finally:
        torch.randn_like = orig


@pytest.mark.parametrize("T", [16, 100])
def test_float64_equal_and_random_initial_phase_inert(official, tiny_md, T):
    from exporter.checkpoint import load_into
    from exporter.hift.model import HiFT, fold_weight_norm

    off = official.double()
    off.stft_window = off.stft_window.double()
    ours = HiFT(tiny_md.config.hift).double()
    load_into(ours, fold_weight_norm({k: v.double() for k, v in tiny_md.load_checkpoint("hift").items()}), source="hift.pt")
    ours.phase_bits = None  # plain cumsum: the exact math, for this proof
    g = torch.Generator().manual_seed(T)
    mel = torch.randn(1, 80, T, generator=g, dtype=torch.float64) * 2 - 4
    noise = torch.randn(1, 480 * T, 9, generator=g, dtype=torch.float64)
    w1, s1 = run_official(off, mel, noise, seed=1)
    w2, _ = run_official(off, mel, noise, seed=2)
    assert torch.equal(w1, w2), "the official random initial phase changed the output"
    with torch.no_grad():
        w, s, _ = ours.vocode(mel, noise)
    print(f"T={T} float64: wav max-abs {(w - w1).abs().max():.3g}, source {(s - s1).abs().max():.3g}")
    assert (s - s1).abs().max() <= 1e-8 and (w - w1).abs().max() <= 1e-7
    official.float()
    official.stft_window = official.stft_window.float()


@pytest.mark.parametrize("T", [16, 64])
def test_float32_close(official, hift_model, T):
    """fp32: the official unbounded fp32 phase (2*pi*480*cumsum) loses precision as T grows; ours
    keeps it wrapped. Differences are reported and bounded loosely."""
    off = official.float()
    off.stft_window = off.stft_window.float()
    g = torch.Generator().manual_seed(T)
    mel = torch.randn(1, 80, T, generator=g) * 2 - 4
    noise = torch.randn(1, 480 * T, 9, generator=g)
    cache = 0.3 * torch.randn(1, 1, 3840, generator=g)
    w1, s1 = run_official(off, mel, noise, seed=0, cache_source=cache)
    with torch.no_grad():
        w, s, _ = hift_model.vocode(mel, noise, cache_source=cache)
    err = (w - w1).abs().max().item()
    print(f"T={T} float32 (with cache_source): wav max-abs {err:.3g}, source {(s - s1).abs().max():.3g}")
    assert err <= 1e-3


@pytest.fixture(scope="module")
def official64(official):
    """The official module in float64: the exact math (its float32 phase drifts by itself, see docs)."""
    off = official.double()
    off.stft_window = off.stft_window.double()
    yield off
    official.float()
    official.stft_window = official.stft_window.float()


LENGTHS = [1, 7, 30, 60, 63, 64, 127, 128, 300]  # bucket edges of both graph sizes; > T is chunked


@pytest.fixture(scope="module")
def hift_bundle_128(tiny_md, tmp_path_factory):
    """The default graph size T=128 (only built where the official code is, i.e. not in CI)."""
    from exporter.export import export_components
    from exporter.spec import ExportOptions
    from runtime_ref.bundle import Bundle

    out = tmp_path_factory.mktemp("hift128") / "bundle"
    export_components(tiny_md, out, ["hift"], ExportOptions(hift_frames=128, parity=False))
    return Bundle.open(out)


@pytest.mark.parametrize("T", [64, 128])
@pytest.mark.parametrize("n", LENGTHS)
def test_runtime_ref_equals_official_at_every_length(official64, request, T, n):
    """runtime_ref (onnxruntime, one T-frame graph: exact-length call for n <= T, chunk plan
    above) vs the official HiFTGenerator on exactly n frames with identical noise, with and
    without cache_source."""
    import numpy as np

    from exporter.hift.export import example_mel
    from runtime_ref.hift import HiFTVocoder

    from .conftest import snr_db

    v = HiFTVocoder.from_bundle(request.getfixturevalue("hift_bundle" if T == 64 else "hift_bundle_128"))
    mel = example_mel(n, 100 + n)
    noise = np.random.default_rng(n).standard_normal((1, 480 * n, 9)).astype(np.float32)
    caches = [None] + ([(0.1 * np.random.default_rng(7).standard_normal((1, 1, 3840))).astype(np.float32)] if n >= 8 else [])
    with torch.inference_mode():
        f0 = official64.f0_predictor(torch.from_numpy(mel).double())
    for cache in caches:
        ref, ref_s = run_official(official64, torch.from_numpy(mel).double(), torch.from_numpy(noise).double(), seed=0,
                                  cache_source=None if cache is None else torch.from_numpy(cache).double())
        ref, ref_s = ref.numpy(), ref_s.numpy()
        got, src = v.mel2wav(mel, noise, cache_source=cache)
        snr, tail = snr_db(ref, got), snr_db(ref[:, -4800:], got[:, -4800:])
        print(f"T={T} n={n} cache_source={cache is not None} f0 {float(f0.min()):.0f}..{float(f0.max()):.0f} Hz: "
              f"SNR {snr:.1f} dB (last 10 frames {tail:.1f}), max-abs {np.abs(ref - got).max():.2g}, "
              f"source SNR {snr_db(ref_s, src):.1f} dB")
        assert got.shape == ref.shape and snr >= 60
