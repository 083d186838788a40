"""S3 tokenizer v2 (fact sheet §2): Whisper log-mel front-end + conv front + 6 RoPE/FSMN
attention blocks + FSQ, as plain torch ops that export cleanly (real RoPE tables, STFT as a
fixed-kernel Conv1d, masks from lengths, no data-dependent shapes).

state_dict keys equal the `s3tokenizer` port's (`encoder.conv1.weight`, …,
`quantizer._codebook.project_down.weight`); weights come from the official ONNX through
`onnx_weights.state_dict_from_onnx`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SAMPLE_RATE = 16000
N_FFT, HOP = 400, 160
MAX_SECONDS = 30
MASK_BIAS = -1.0e10


@dataclass
class S3TokenizerV2Config:
    n_mels: int = 128
    n_state: int = 1280
    n_head: int = 20
    n_layer: int = 6
    fsmn_kernel: int = 31
    attn_ln_eps: float = 1e-5  # read from the ONNX LayerNormalization nodes when mapping
    mlp_ln_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_positions: int = 2048

    @property
    def head_dim(self) -> int:
        return self.n_state // self.n_head


def conv_out_len(n: torch.Tensor | int, stride: int = 2):
    """Length after Conv1d(k3, pad 1, stride 2)."""
    return (n - 1) // stride + 1


def length_mask(length: torch.Tensor, max_len: int) -> torch.Tensor:
    """(1,) int -> (1, max_len) float 1/0 (arange is a constant, the compare is data)."""
    return (torch.arange(max_len, dtype=length.dtype).unsqueeze(0) < length.unsqueeze(-1)).float()


def rope_tables(head_dim: int, n_pos: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin (n_pos, head_dim), the head_dim/2 frequencies duplicated (rotate-half form)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    ang = torch.outer(torch.arange(n_pos).float(), inv)
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos(), ang.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class FSMNAttention(nn.Module):
    def __init__(self, cfg: S3TokenizerV2Config):
        super().__init__()
        d = cfg.n_state
        self.n_head = cfg.n_head
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.fsmn_block = nn.Conv1d(d, d, cfg.fsmn_kernel, groups=d, bias=False)
        self.pad_left = (cfg.fsmn_kernel - 1) // 2
        self.pad_right = cfg.fsmn_kernel - 1 - self.pad_left

    def forward(self, x, cos, sin, key_bias, pad_mask):
        # x (1,L,D); cos/sin (L,hd); key_bias (1,1,1,L); pad_mask (1,L,1)
        B, L, D = x.shape
        hd = D // self.n_head
        q = self.query(x).view(B, L, self.n_head, hd)
        k = self.key(x).view(B, L, self.n_head, hd)
        v = self.value(x)
        c, s = cos[:, None, :], sin[:, None, :]
        q = q * c + rotate_half(q) * s
        k = k * c + rotate_half(k) * s
        # FSMN memory on v (before the head split)
        vm = v * pad_mask
        mem = self.fsmn_block(F.pad(vm.transpose(1, 2), (self.pad_left, self.pad_right))).transpose(1, 2)
        mem = (mem + vm) * pad_mask
        scale = float(hd) ** -0.25
        q = q.transpose(1, 2) * scale  # (1,H,L,hd)
        k = k.permute(0, 2, 3, 1) * scale  # (1,H,hd,L)
        vh = v.view(B, L, self.n_head, hd).transpose(1, 2)
        w = torch.softmax(q @ k + key_bias, dim=-1)
        a = (w @ vh).transpose(1, 2).reshape(B, L, D)
        return self.out(a) + mem


class ResidualBlock(nn.Module):
    def __init__(self, cfg: S3TokenizerV2Config):
        super().__init__()
        self.attn = FSMNAttention(cfg)
        self.attn_ln = nn.LayerNorm(cfg.n_state, eps=cfg.attn_ln_eps)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_state, 4 * cfg.n_state), nn.GELU(), nn.Linear(4 * cfg.n_state, cfg.n_state))
        self.mlp_ln = nn.LayerNorm(cfg.n_state, eps=cfg.mlp_ln_eps)

    def forward(self, x, cos, sin, key_bias, pad_mask):
        x = x + self.attn(self.attn_ln(x), cos, sin, key_bias, pad_mask)
        return x + self.mlp(self.mlp_ln(x))


class AudioEncoderV2(nn.Module):
    def __init__(self, cfg: S3TokenizerV2Config):
        super().__init__()
        self.conv1 = nn.Conv1d(cfg.n_mels, cfg.n_state, 3, stride=2, padding=1)
        self.conv2 = nn.Conv1d(cfg.n_state, cfg.n_state, 3, stride=2, padding=1)
        self.blocks = nn.ModuleList(ResidualBlock(cfg) for _ in range(cfg.n_layer))
        cos, sin = rope_tables(cfg.head_dim, cfg.max_positions, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, feats: torch.Tensor, feats_len: torch.Tensor):
        # feats (1,n_mels,T), feats_len (1,) int -> hidden (1,L2,D), L2 length (1,)
        T = feats.shape[-1]
        x = F.gelu(self.conv1(feats * length_mask(feats_len, T).unsqueeze(1)))
        T1, len1 = conv_out_len(T), conv_out_len(feats_len)
        x = F.gelu(self.conv2(x * length_mask(len1, T1).unsqueeze(1)))
        T2, len2 = conv_out_len(T1), conv_out_len(len1)
        mask = length_mask(len2, T2)  # (1,L2)
        x = x.transpose(1, 2)
        key_bias = ((1.0 - mask) * MASK_BIAS)[:, None, None, :]
        pad_mask = mask.unsqueeze(-1)
        cos, sin = self.rope_cos[:T2], self.rope_sin[:T2]
        for block in self.blocks:
            x = block(x, cos, sin, key_bias, pad_mask)
        return x, len2


class FSQCodebook(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.project_down = nn.Linear(dim, 8)
        self.register_buffer("powers", torch.tensor([3.0 ** i for i in range(8)]), persistent=False)

    def forward(self, x):  # (1,L,D) -> (1,L) int32
        h = torch.round(torch.tanh(self.project_down(x)) * 0.9990000128746033) + 1.0
        return (h * self.powers).sum(-1).to(torch.int32)


class FSQVectorQuantization(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self._codebook = FSQCodebook(dim)


class S3TokenizerV2(nn.Module):
    """feats (1,128,T) + feats_len (1,) -> token ids (1, L2) int32 (-1 past the length), L2 len."""

    def __init__(self, cfg: S3TokenizerV2Config):
        super().__init__()
        self.cfg = cfg
        self.encoder = AudioEncoderV2(cfg)
        self.quantizer = FSQVectorQuantization(cfg.n_state)

    def forward(self, feats: torch.Tensor, feats_len: torch.Tensor):
        h, n_tok = self.encoder(feats, feats_len)
        ids = self.quantizer._codebook(h)
        valid = length_mask(n_tok, ids.shape[1]) > 0
        return torch.where(valid, ids, torch.full_like(ids, -1)), n_tok.to(torch.int32)


def stft_kernels(n_fft: int = N_FFT) -> torch.Tensor:
    """Real DFT of a periodic-Hann-windowed frame as a Conv1d kernel: (2*(n_fft//2+1), 1, n_fft),
    rows [cos bins; -sin bins]. Computed in float64, stored float32."""
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)
    ang = 2 * np.pi * np.outer(k, n) / n_fft
    kern = np.concatenate([np.cos(ang) * win, -np.sin(ang) * win], axis=0)
    return torch.from_numpy(kern[:, None, :].astype(np.float32))


class WhisperLogMel(nn.Module):
    """Waveform (1,N_max) + valid length (1,) -> log-mel (1,n_mels,N_max//160), frames (1,).

    Reflect padding at the true end of the signal uses a Gather with indices computed from the
    length (Gather indices may be data; shapes stay constant). The "max − 8" clamp uses only valid
    frames."""

    def __init__(self, n_mels: int = 128, max_samples: int = MAX_SECONDS * SAMPLE_RATE):
        super().__init__()
        from runtime_ref.audio import slaney_mel_filters

        self.max_samples = max_samples
        self.n_frames = max_samples // HOP
        self.register_buffer("stft_kernel", stft_kernels(), persistent=False)
        self.register_buffer("mel_filters", torch.from_numpy(slaney_mel_filters(SAMPLE_RATE, N_FFT, n_mels).astype(np.float32)), persistent=False)
        pos = torch.arange(max_samples + N_FFT) - N_FFT // 2  # sample index of each padded position
        self.register_buffer("pad_pos", pos, persistent=False)

    def forward(self, wave: torch.Tensor, length: torch.Tensor):
        n = length.to(torch.int64)
        p = self.pad_pos
        src = torch.where(p < 0, -p, p)
        src = torch.where(src >= n, 2 * (n - 1) - src, src)  # right reflect about the last sample
        src = src.clamp(0, self.max_samples - 1)
        xp = torch.gather(wave, 1, src.unsqueeze(0).expand(wave.shape[0], -1))  # (1, N+400)
        spec = F.conv1d(xp.unsqueeze(1), self.stft_kernel, stride=HOP)[:, :, : self.n_frames]  # drop last frame
        nb = spec.shape[1] // 2
        power = spec[:, :nb] ** 2 + spec[:, nb:] ** 2  # (1,201,T)
        mel = torch.matmul(self.mel_filters, power)  # (1,n_mels,T)
        log = torch.log10(torch.clamp(mel, min=1e-10))
        frames = (length // HOP).to(torch.int32)
        valid = length_mask(frames, self.n_frames).unsqueeze(1) > 0
        peak = torch.where(valid, log, torch.full_like(log, -100.0)).amax(dim=(1, 2), keepdim=True)
        log = torch.maximum(log, peak - 8.0)
        return (log + 4.0) / 4.0, frames


class SpeechTokenizerGraph(nn.Module):
    """The bundle graph: 16 kHz waveform (1, max_samples) + length (1,) int32 ->
    speech_tokens (1, max_samples//640) int32 (-1 past the end) + token_count (1,) int32."""

    def __init__(self, tokenizer: S3TokenizerV2, max_samples: int = MAX_SECONDS * SAMPLE_RATE):
        super().__init__()
        self.front = WhisperLogMel(tokenizer.cfg.n_mels, max_samples)
        self.tokenizer = tokenizer

    def forward(self, waveform: torch.Tensor, waveform_length: torch.Tensor):
        feats, frames = self.front(waveform, waveform_length)
        return self.tokenizer(feats, frames)


def max_tokens(max_samples: int) -> int:
    return conv_out_len(conv_out_len(max_samples // HOP))


def param_count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


__all__ = ["S3TokenizerV2Config", "S3TokenizerV2", "WhisperLogMel", "SpeechTokenizerGraph", "max_tokens"]
