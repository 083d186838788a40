"""STFT / inverse STFT as fixed-kernel convolutions (no complex tensors, no torch.stft/istft).

Both match `torch.stft(center=True, pad_mode='reflect')` / `torch.istft(center=True)` with the
same periodic Hann window (tested to <= 1e-5 in tests/hift/test_stft.py).

- STFT: reflect-pad n_fft/2 on both sides, then Conv1d(1 -> 2*(n_fft/2+1), k=n_fft, stride=hop)
  whose rows are window * cos(2 pi k n / N) (real parts) and -window * sin(2 pi k n / N) (imag).
- iSTFT: per-frame inverse real DFT (irfft semantics: imaginary parts of the DC and Nyquist bins
  are ignored) times the window, overlap-added by one ConvTranspose1d(2*(n_fft/2+1) -> 1,
  k=n_fft, stride=hop) with that fixed basis; then divided by the overlap-added squared window
  (constant 1.5 inside, small exact tables at both ends) and trimmed by n_fft/2 at both ends.

Both take an optional `masks` (model.LengthMasks) + `frame_len` (samples per mel frame): the
signal then really ends at sample frame_len*n inside the static T*frame_len buffer (zero past it),
and the end-dependent parts follow n: the STFT's right reflection padding is taken from the last
frame_len samples before that end and put right after it; the iSTFT's end envelope table is
applied at that end. Everything is a static-shape reshape / slice / multiply by one-hot frames.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window (= scipy.signal.get_window('hann', n, fftbins=True)), float64."""
    i = np.arange(n, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * i / n)


def stft_kernel(n_fft: int, window: np.ndarray) -> np.ndarray:
    """(2*(n_fft//2+1), 1, n_fft): rows 0..K-1 give the real parts, K..2K-1 the imaginary parts."""
    k = np.arange(n_fft // 2 + 1, dtype=np.float64)[:, None]
    n = np.arange(n_fft, dtype=np.float64)[None, :]
    ang = 2.0 * math.pi * k * n / n_fft
    return np.concatenate([window * np.cos(ang), -window * np.sin(ang)], 0)[:, None, :]


def istft_kernel(n_fft: int, window: np.ndarray) -> np.ndarray:
    """(2*(n_fft//2+1), 1, n_fft): inverse real DFT basis times the synthesis window."""
    n_bins = n_fft // 2 + 1
    k = np.arange(n_bins, dtype=np.float64)[:, None]
    n = np.arange(n_fft, dtype=np.float64)[None, :]
    ang = 2.0 * math.pi * k * n / n_fft
    scale = np.full((n_bins, 1), 2.0 / n_fft)
    scale[0] = 1.0 / n_fft
    if n_fft % 2 == 0:
        scale[-1] = 1.0 / n_fft
    real = scale * np.cos(ang)
    imag = -scale * np.sin(ang)
    imag[0] = 0.0  # irfft ignores the imaginary part of DC ...
    if n_fft % 2 == 0:
        imag[-1] = 0.0  # ... and of the Nyquist bin
    return (np.concatenate([real, imag], 0) * window[None, :])[:, None, :]


def istft_envelope(n_fft: int, hop: int, n_frames: int, window: np.ndarray) -> np.ndarray:
    """Overlap-added squared window, length hop*(n_frames-1)+n_fft (float64)."""
    env = np.zeros(hop * (n_frames - 1) + n_fft)
    for t in range(n_frames):
        env[t * hop: t * hop + n_fft] += window ** 2
    return env


class ConvSTFT(nn.Module):
    """x (B, 1, L) -> (B, 2*(n_fft/2+1), L//hop + 1): [real bins | imag bins] like
    torch.view_as_real(torch.stft(x, n_fft, hop, n_fft, window, center=True)) split and concatenated."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        # float64 constants, cast to the input dtype at use (the cast folds away in ONNX)
        self.register_buffer("kernel", torch.from_numpy(stft_kernel(n_fft, hann_window(n_fft))), persistent=False)

    def forward(self, x: torch.Tensor, masks=None, frame_len: int = 0) -> torch.Tensor:
        half = self.n_fft // 2
        if masks is None:
            x = F.pad(x, (half, half), mode="reflect")
        else:  # x (1, 1, T*frame_len), zero from sample E = frame_len*n on: reflect at E, not at the buffer end
            T = masks.T
            xf = x.reshape(1, T, frame_len)
            tail = torch.flip(xf[:, :, frame_len - 1 - half: frame_len - 1], dims=[-1])  # (1, T, half): x[E-2-k]
            tail = (tail * masks.frame_one_hot(T)).sum(dim=1, keepdim=True)  # (1, 1, half) of the last frame
            tail = F.pad(tail, (0, frame_len - half))  # (1, 1, frame_len)
            ext = torch.cat([xf, torch.zeros_like(xf[:, :1])], dim=1) + masks.frame_one_hot(T + 1, 1) * tail
            x = ext.reshape(1, 1, (T + 1) * frame_len)[:, :, : T * frame_len + half]
            x = F.pad(x, (half, 0), mode="reflect")
        return F.conv1d(x, self.kernel.to(x.dtype), stride=self.hop)


class ConvISTFT(nn.Module):
    """(real, imag) each (B, n_fft/2+1, F) -> (B, hop*(F-1)) like torch.istft(center=True)."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.window = hann_window(n_fft)
        self.register_buffer("kernel", torch.from_numpy(istft_kernel(n_fft, self.window)), persistent=False)
        # envelope over the kept samples: a constant (1.5 for Hann 16/4) except at both ends
        ref = istft_envelope(n_fft, hop, 4 * (n_fft // hop) + 1, self.window)
        kept = ref[n_fft // 2: len(ref) - n_fft // 2]
        self.env_mid = float(kept[len(kept) // 2])
        edge = next(i for i in range(len(kept)) if abs(kept[i] - self.env_mid) < 1e-12)
        self.register_buffer("env_head", torch.from_numpy(kept[:edge].copy()), persistent=False)
        self.register_buffer("env_tail", torch.from_numpy(kept[len(kept) - edge:].copy()), persistent=False)

    def forward(self, real: torch.Tensor, imag: torch.Tensor, masks=None, frame_len: int = 0) -> torch.Tensor:
        spec = torch.cat([real, imag], dim=1)  # (B, 2K, F)
        y = F.conv_transpose1d(spec, self.kernel.to(spec.dtype), stride=self.hop)  # (B, 1, hop*(F-1)+n_fft)
        half = self.n_fft // 2
        y = y[:, 0, half:-half]  # (B, hop*(F-1)) (negative ends: constant Slice parameters)
        e = self.env_head.shape[0]  # small edge tables stay exact; the rest divides by one scalar
        if masks is not None:  # frames past 120n are zero: the signal ends at E = frame_len*n
            T = masks.T
            y = torch.cat([y[:, :e] / self.env_head.to(y.dtype), y[:, e:] / self.env_mid], dim=-1)
            tail = np.zeros((1, 1, frame_len))  # envelope factor - 1 of the last frame's end samples
            tail[0, 0, frame_len - e:] = self.env_mid / self.env_tail.numpy() - 1
            fac = 1 + masks.frame_one_hot(T) * torch.from_numpy(tail).to(y.dtype)  # (1, T, frame_len), at run time
            return y * fac.reshape(1, T * frame_len)
        head = y[:, :e] / self.env_head.to(y.dtype)
        mid = y[:, e:-e] / self.env_mid
        tail = y[:, -e:] / self.env_tail.to(y.dtype)
        return torch.cat([head, mid, tail], dim=-1)
