"""Conv STFT / iSTFT vs torch.stft / torch.istft with the same periodic Hann window."""
import numpy as np
import pytest
import torch

from exporter.hift.stft import ConvISTFT, ConvSTFT, hann_window


def test_hann_is_periodic_scipy_window():
    scipy_signal = pytest.importorskip("scipy.signal", reason="scipy not installed: cannot compare with get_window")
    assert np.allclose(hann_window(16), scipy_signal.get_window("hann", 16, fftbins=True), atol=1e-12)


@pytest.mark.parametrize("n", [480 * 2, 480 * 13 + 4])
def test_stft_matches_torch(n):
    torch.manual_seed(n)
    x = torch.randn(1, n)
    w = torch.from_numpy(hann_window(16)).float()
    ref = torch.view_as_real(torch.stft(x, 16, 4, 16, window=w, return_complex=True))
    got = ConvSTFT(16, 4)(x[:, None])
    assert got.shape == (1, 18, n // 4 + 1)
    assert (got[:, :9] - ref[..., 0]).abs().max() <= 1e-5
    assert (got[:, 9:] - ref[..., 1]).abs().max() <= 1e-5


@pytest.mark.parametrize("frames", [5, 9, 481])
def test_istft_matches_torch(frames):
    torch.manual_seed(frames)
    re, im = torch.randn(1, 9, frames) * 3, torch.randn(1, 9, frames) * 3
    w = torch.from_numpy(hann_window(16)).float()
    ref = torch.istft(torch.complex(re, im), 16, 4, 16, window=w)
    got = ConvISTFT(16, 4)(re, im)
    assert got.shape == ref.shape == (1, 4 * (frames - 1))
    assert (got - ref).abs().max() <= 1e-5


def test_stft_istft_round_trip():
    x = torch.randn(1, 1, 480 * 4)
    spec = ConvSTFT(16, 4)(x)
    y = ConvISTFT(16, 4)(spec[:, :9], spec[:, 9:])
    assert (y - x[:, 0]).abs().max() <= 1e-5
