"""The Zipformer of ZipVoice (official `TTSZipformer`), in plain torch, inference only, with the
official state_dict layout (the parameter names below are the checkpoint's).

Batch-first (B, T, C) throughout. `mask` is (B, T) bool, True = padding (the official
`padding_mask`): padded keys get -1000 before the softmax and padded frames are zeroed before each
depthwise convolution, so a sequence padded to a fixed bucket computes exactly what the official
module computes at its true length. Downsampled stacks repeat the last *valid* frame into the
padding before averaging (the official code repeats the last frame of its exact-length input),
so the boundary group is the same too. Training-only parts (balancers, whitening, dropout,
layer skipping) are identities at inference and have no parameters.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ZipformerConfig


def swoosh_l(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(x - 4.0) - 0.08 * x - 0.035


def swoosh_r(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(x - 1.0) - 0.08 * x - 0.313261687


class SwooshR(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swoosh_r(x)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """t (B,) -> (B, dim): [cos(t f), sin(t f)] with f = exp(-ln(max_period) * i / half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def rel_position_encoding(T: int, dim: int, length_factor: float = 1.0) -> torch.Tensor:
    """(2T-1, dim) compact relative positional encoding, row r = offset r - (T-1) (official
    CompactRelPositionalEncoding: log-compressed offset, atan, Fourier features, last column 1
    for a bias)."""
    x = torch.arange(-(T - 1), T, dtype=torch.float32)[:, None]
    freqs = 1 + torch.arange(dim // 2, dtype=torch.float32)
    c = dim ** 0.5
    x_c = c * x.sign() * ((x.abs() + c).log() - math.log(c))
    x_atan = (x_c / (length_factor * dim / (2.0 * math.pi))).atan()
    pe = torch.zeros(x.shape[0], dim)
    pe[:, 0::2] = (x_atan * freqs).cos()
    pe[:, 1::2] = (x_atan * freqs).sin()
    pe[:, -1] = 1.0
    return pe


def rel_shift(pos_scores: torch.Tensor) -> torch.Tensor:
    """(..., T, 2T-1) -> (..., T, T) with out[i, j] = pos_scores[i, (T-1) - i + j] (offset j - i).
    Flattened, that element sits at (T-1) + i·(2T-2) + j: one slice and two reshapes, no index
    tensor (an explicit gather index would be an H·B·T·T constant in every layer)."""
    *lead, T, W = pos_scores.shape
    flat = pos_scores.reshape(*lead, T * W)[..., T - 1: T - 1 + T * (W - 1)]
    return flat.reshape(*lead, T, W - 1)[..., :T]


class BiasNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scales = torch.mean((x - self.bias) ** 2, dim=-1, keepdim=True) ** -0.5 * self.log_scale.exp()
        return x * scales


class Bypass(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.bypass_scale = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x_orig: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x_orig + (x - x_orig) * self.bypass_scale


class AttentionWeights(nn.Module):
    """RelPositionMultiheadAttentionWeights: (B, T, C) -> (H, B, T, T) softmax weights."""

    def __init__(self, dim: int, pos_dim: int, heads: int, query_head_dim: int, pos_head_dim: int):
        super().__init__()
        self.heads, self.qd, self.pd = heads, query_head_dim, pos_head_dim
        self.in_proj = nn.Linear(dim, (2 * query_head_dim + pos_head_dim) * heads)
        self.linear_pos = nn.Linear(pos_dim, heads * pos_head_dim, bias=False)
        # (H, 1, pd, 2T-1) precomputed for one length (export, see freeze_positions)
        self.register_buffer("pos_cache", None)  # a None buffer is not in the state_dict (official layout kept)

    def positions(self, pos_emb: torch.Tensor, T: int) -> torch.Tensor:
        """(H, 1, pd, 2T-1): the projected relative-position table (weights only: the same in every
        solver step, so an export precomputes it once in exactly this shape, see PositionCache —
        any op applied to it would be folded into a new constant per call)."""
        if self.pos_cache is not None and self.pos_cache.shape[-1] == 2 * T - 1:
            return self.pos_cache
        return self.linear_pos(pos_emb).reshape(2 * T - 1, self.heads, self.pd).permute(1, 2, 0)[:, None]

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, T, _ = x.shape
        H, qd, pd = self.heads, self.qd, self.pd
        x = self.in_proj(x)
        q = x[..., : H * qd].reshape(B, T, H, qd).permute(2, 0, 1, 3)  # (H, B, T, qd)
        k = x[..., H * qd: 2 * H * qd].reshape(B, T, H, qd).permute(2, 0, 3, 1)  # (H, B, qd, T)
        p = x[..., 2 * H * qd:].reshape(B, T, H, pd).permute(2, 0, 1, 3)  # (H, B, T, pd)
        scores = torch.matmul(q, k)  # (H, B, T, T)
        pos_scores = torch.matmul(p, self.positions(pos_emb, T))  # (H, B, T, 2T-1); column r = offset r - (T-1)
        scores = scores + rel_shift(pos_scores)
        if mask is not None:
            scores = scores.masked_fill(mask[None, :, None, :], -1000.0)
        return scores.softmax(dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, value_head_dim: int):
        super().__init__()
        self.in_proj = nn.Linear(dim, heads * value_head_dim)
        self.out_proj = nn.Linear(heads * value_head_dim, dim)

    def forward(self, x: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        H = attn.shape[0]
        v = self.in_proj(x).reshape(B, T, H, -1).permute(2, 0, 1, 3)  # (H, B, T, vd)
        y = torch.matmul(attn, v).permute(1, 2, 0, 3).reshape(B, T, -1)
        return self.out_proj(y)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.in_proj = nn.Linear(dim, hidden)
        self.out_proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(swoosh_l(self.in_proj(x)))


class NonlinAttention(nn.Module):
    """Gated features mixed by the first head's attention weights."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.in_proj = nn.Linear(dim, 3 * hidden)
        self.out_proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, attn1: torch.Tensor) -> torch.Tensor:
        s, v, y = self.in_proj(x).chunk(3, dim=-1)  # (B, T, hidden) each
        v = v * torch.tanh(s)
        v = torch.matmul(attn1[0], v)  # (B, T, T) @ (B, T, hidden)
        return self.out_proj(v * y)


class ConvModule(nn.Module):
    def __init__(self, dim: int, kernel: int):
        super().__init__()
        self.in_proj = nn.Linear(dim, 2 * dim)
        self.depthwise_conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x, s = self.in_proj(x).chunk(2, dim=-1)
        x = x * torch.sigmoid(s)
        if mask is not None:
            x = x.masked_fill(mask[..., None], 0.0)
        x = self.depthwise_conv(x.transpose(1, 2)).transpose(1, 2)
        return self.out_proj(swoosh_r(x))


class ZipformerLayer(nn.Module):
    def __init__(self, c: ZipformerConfig, kernel: int):
        super().__init__()
        d = c.dim
        self.bypass = Bypass(d)
        self.bypass_mid = Bypass(d)
        self.self_attn_weights = AttentionWeights(d, c.pos_dim, c.num_heads, c.query_head_dim, c.pos_head_dim)
        self.self_attn1 = SelfAttention(d, c.num_heads, c.value_head_dim)
        self.self_attn2 = SelfAttention(d, c.num_heads, c.value_head_dim)
        self.feed_forward1 = FeedForward(d, (c.feedforward_dim * 3) // 4)
        self.feed_forward2 = FeedForward(d, c.feedforward_dim)
        self.feed_forward3 = FeedForward(d, (c.feedforward_dim * 5) // 4)
        self.nonlin_attention = NonlinAttention(d, 3 * d // 4)
        self.conv_module1 = ConvModule(d, kernel)
        self.conv_module2 = ConvModule(d, kernel)
        self.norm = BiasNorm(d)

    def forward(self, x, pos_emb, time_emb, mask):
        x_orig = x
        attn = self.self_attn_weights(x, pos_emb, mask)
        if time_emb is not None:
            x = x + time_emb
        x = x + self.feed_forward1(x)
        x = x + self.nonlin_attention(x, attn[0:1])
        x = x + self.self_attn1(x, attn)
        if time_emb is not None:
            x = x + time_emb
        x = x + self.conv_module1(x, mask)
        x = x + self.feed_forward2(x)
        x = self.bypass_mid(x_orig, x)
        x = x + self.self_attn2(x, attn)
        if time_emb is not None:
            x = x + time_emb
        x = x + self.conv_module2(x, mask)
        x = x + self.feed_forward3(x)
        return self.bypass(x_orig, self.norm(x))


class ZipformerStack(nn.Module):
    """Zipformer2Encoder: layers sharing one positional encoding (and time embedding)."""

    def __init__(self, c: ZipformerConfig, n_layers: int, kernel: int):
        super().__init__()
        self.pos_dim = c.pos_dim
        self.time_emb = nn.Sequential(SwooshR(), nn.Linear(c.time_embed_dim, c.dim)) if c.time_embed_dim > 0 else None
        self.layers = nn.ModuleList(ZipformerLayer(c, kernel) for _ in range(n_layers))

    def pos_emb(self, T: int) -> torch.Tensor:
        """The (2T-1, pos_dim) table, kept as a buffer so an exported graph holds it once for all
        layers and solver steps."""
        if getattr(self, "pe", None) is None or self.pe.shape[0] != 2 * T - 1:
            self.register_buffer("pe", rel_position_encoding(T, self.pos_dim), persistent=False)
        return self.pe

    def forward(self, x, time_emb, mask):
        pos_emb = self.pos_emb(x.shape[1]).to(x.dtype)
        t = self.time_emb(time_emb)[:, None, :] if self.time_emb is not None else None  # (B, 1, C)
        for layer in self.layers:
            x = layer(x, pos_emb, t, mask)
        return x


class Downsample(nn.Module):
    """SimpleDownsample: softmax-weighted average of `ds` consecutive frames."""

    def __init__(self, ds: int):
        super().__init__()
        self.ds = ds
        self.bias = nn.Parameter(torch.zeros(ds))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        pad = -T % self.ds
        if pad:
            x = torch.cat([x, x[:, -1:].expand(B, pad, C)], dim=1)
        x = x.reshape(B, (T + pad) // self.ds, self.ds, C)
        return (x * self.bias.softmax(0)[:, None]).sum(dim=2)


class DownsampledStack(nn.Module):
    def __init__(self, c: ZipformerConfig, n_layers: int, kernel: int, ds: int):
        super().__init__()
        self.ds = ds
        self.downsample = Downsample(ds)
        self.encoder = ZipformerStack(c, n_layers, kernel)
        self.out_combiner = Bypass(c.dim)

    def forward(self, x, time_emb, mask, n_valid):
        x_orig = x
        T = x.shape[1]
        if n_valid is not None:  # padding takes the last valid frame, as at the exact length
            idx = torch.minimum(torch.arange(T, dtype=n_valid.dtype), n_valid - 1)
            x = x.index_select(1, idx)
        y = self.downsample(x)
        y = self.encoder(y, time_emb, None if mask is None else mask[:, :: self.ds])
        B, Td, C = y.shape
        y = y[:, :, None].expand(B, Td, self.ds, C).reshape(B, Td * self.ds, C)[:, :T]  # SimpleUpsample
        return self.out_combiner(x_orig, y)


class Zipformer(nn.Module):
    """TTSZipformer: in_proj -> stacks (U-Net of downsampling factors) -> out_proj."""

    def __init__(self, c: ZipformerConfig):
        super().__init__()
        self.c = c
        self.in_proj = nn.Linear(c.in_dim, c.dim)
        self.out_proj = nn.Linear(c.dim, c.out_dim)
        self.encoders = nn.ModuleList(
            ZipformerStack(c, n, k) if ds == 1 else DownsampledStack(c, n, k, ds)
            for ds, n, k in zip(c.downsampling_factor, c.num_layers, c.cnn_module_kernel))
        if c.time_embed_dim > 0:
            self.time_embed = nn.Sequential(nn.Linear(c.time_embed_dim, 2 * c.time_embed_dim), SwooshR(),
                                            nn.Linear(2 * c.time_embed_dim, c.time_embed_dim))
        if c.guidance_scale_embed_dim > 0:
            self.guidance_scale_embed = nn.Linear(c.guidance_scale_embed_dim, c.time_embed_dim, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, n_valid: torch.Tensor | None = None,
                t: torch.Tensor | None = None, guidance_scale: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, in_dim); mask (B, T) True = padding; n_valid (1,) valid frames (needed with a
        padded mask when a stack downsamples); t, guidance_scale (B,) -> (B, T, out_dim)."""
        x = self.in_proj(x)
        time_emb = None
        if t is not None:
            time_emb = timestep_embedding(t, self.c.time_embed_dim)
            if guidance_scale is not None:
                time_emb = time_emb + self.guidance_scale_embed(timestep_embedding(guidance_scale, self.c.guidance_scale_embed_dim))
            time_emb = self.time_embed(time_emb)
        for enc in self.encoders:
            x = enc(x, time_emb, mask, n_valid) if isinstance(enc, DownsampledStack) else enc(x, time_emb, mask)
        return self.out_proj(x)


def freeze_positions(zipformer: Zipformer, T: int) -> Zipformer:
    """Export helper, in place: every attention layer gets its projected position table for input
    length T as a buffer, so a graph that runs the Zipformer many times (the unrolled solve)
    holds each table once (computed on the fly, it is folded into one constant per call)."""
    with torch.no_grad():
        for ds, enc in zip(zipformer.c.downsampling_factor, zipformer.encoders):
            stack = enc.encoder if isinstance(enc, DownsampledStack) else enc
            Ts = -(-T // ds)
            pe = rel_position_encoding(Ts, stack.pos_dim)
            for layer in stack.layers:
                attn = layer.self_attn_weights
                attn.pos_cache = None
                attn.pos_cache = attn.positions(pe, Ts).detach().clone()
    return zipformer
