"""Vocos (gemelo-ai/vocos `VocosBackbone` + `ISTFTHead`, the mel-24 kHz vocoder ZipVoice uses),
plain torch, official `pytorch_model.bin` layout, one static graph at a fixed frame count.

features (1, n_mels, F) + frame_count n -> waveform (1, hop·(F-1)); the first hop·(n-1) samples
are what the official `vocos.decode(features[..., :n])` returns (torch.istft(center=True)):

- frames ≥ n are zeroed before every convolution (the official convs see zero padding there);
- the iSTFT is the shared conv basis of exporter/hift/stft.py (no DFT ops), overlap-added by a
  ConvTranspose1d; the window-square envelope is overlap-added from the valid-frame mask the same
  way, so the normalisation near the last valid frame is that of an n-frame signal, at every n.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..hift.stft import hann_window, istft_kernel
from .config import VocosConfig


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.pwconv2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:  # x (B, C, F), valid (B, 1, F)
        y = self.dwconv(x * valid).transpose(1, 2)
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class Backbone(nn.Module):
    def __init__(self, v: VocosConfig):
        super().__init__()
        self.embed = nn.Conv1d(v.input_channels, v.dim, 7, padding=3)
        self.norm = nn.LayerNorm(v.dim, eps=1e-6)
        self.convnext = nn.ModuleList(ConvNeXtBlock(v.dim, v.intermediate_dim) for _ in range(v.num_layers))
        self.final_layer_norm = nn.LayerNorm(v.dim, eps=1e-6)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:  # -> (B, F, C)
        x = self.norm(self.embed(x * valid).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x, valid)
        return self.final_layer_norm(x.transpose(1, 2))


class MaskedISTFT(nn.Module):
    """(real, imag) (B, K, F) of which the first n frames are valid -> (B, hop·(F-1)), equal to
    torch.istft(center=True) of the n valid frames on its hop·(n-1) samples, zero after them."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        win = hann_window(n_fft)
        self.register_buffer("kernel", torch.from_numpy(istft_kernel(n_fft, win)).float(), persistent=False)
        self.register_buffer("win_sq", torch.from_numpy(win ** 2).float()[None, None], persistent=False)

    def forward(self, real: torch.Tensor, imag: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        spec = torch.cat([real, imag], dim=1) * valid  # (B, 2K, F)
        y = F.conv_transpose1d(spec, self.kernel, stride=self.hop)[:, 0]  # (B, hop·(F-1) + n_fft)
        env = F.conv_transpose1d(valid, self.win_sq, stride=self.hop)[:, 0]
        half = self.n_fft // 2
        y, env = y[:, half:-half], env[:, half:-half]
        n_samples = (valid.sum(dim=-1) - 1) * self.hop  # (B, 1): hop·(n-1)
        ok = torch.arange(y.shape[1], dtype=y.dtype)[None, :] < n_samples
        return torch.where(ok, y / torch.where(ok, env, torch.ones_like(env)), torch.zeros_like(y))


class ISTFTHead(nn.Module):
    def __init__(self, v: VocosConfig):
        super().__init__()
        self.out = nn.Linear(v.dim, v.n_fft + 2)
        self.istft = MaskedISTFT(v.n_fft, v.hop_length)
        self.istft.register_buffer("window", torch.zeros(v.n_fft))  # the official file's ISTFT window buffer

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mag, phase = self.out(x).transpose(1, 2).chunk(2, dim=1)  # (B, K, F) each
        mag = torch.clip(torch.exp(mag), max=1e2)
        return self.istft(mag * torch.cos(phase), mag * torch.sin(phase), valid)


class FeatureBuffers(nn.Module):
    """The feature extractor's torchaudio buffers in the official file (window, mel filters); the
    prompt features are computed on the host (runtime_ref/zipvoice/fbank.py), not in this graph."""

    def __init__(self, v: VocosConfig):
        super().__init__()
        self.mel_spec = nn.Module()
        self.mel_spec.spectrogram = nn.Module()
        self.mel_spec.spectrogram.register_buffer("window", torch.zeros(v.n_fft))
        self.mel_spec.mel_scale = nn.Module()
        self.mel_spec.mel_scale.register_buffer("fb", torch.zeros(v.n_fft // 2 + 1, v.n_mels))


class Vocos(nn.Module):
    def __init__(self, v: VocosConfig):
        super().__init__()
        self.v = v
        self.feature_extractor = FeatureBuffers(v)
        self.backbone = Backbone(v)
        self.head = ISTFTHead(v)

    def forward(self, features: torch.Tensor, frame_count: torch.Tensor) -> torch.Tensor:
        """features (B, n_mels, F), frame_count (B,) -> (B, hop·(F-1))."""
        valid = (torch.arange(features.shape[2], dtype=frame_count.dtype)[None, :] < frame_count[:, None])
        valid = valid.to(features.dtype)[:, None, :]  # (B, 1, F)
        return self.head(self.backbone(features, valid), valid)
