"""CosyVoice3's flow estimator `DiT` (official cosyvoice/flow/DiT/dit.py + modules.py) in plain torch
ops, built for a fixed mel length N. Parameter names follow the official flow.pt keys
(`decoder.estimator.*`, exporter/cosyvoice3/keys.py).

    x, mu, cond (B, 80, N); spks (B, 80); t (B,); mask (B, 1, N) 0/1; streaming (1,) 0/1
    t -> sinusoid(256) -> MLP = temb (B, dim)
    [x, cond, mu, spks] -> Linear -> + causal grouped-conv position embedding (2 × (conv k31, Mish))
    depth × DiTBlock: AdaLN-zero(temb) -> self-attention (rotary on the first dim_head channels of
                      q/k, i.e. head 0 only, as x_transformers applies it to the un-split vector) ->
                      gated residual; AdaLN -> GELU(tanh) MLP -> gated residual
    AdaLN-final(temb) -> Linear(dim, 80) -> (B, 80, N)

Masks come in as 0/1 floats: padding keys and (streaming) future chunks of 50 frames are blocked
with the official -1e10-style additive bias (the CosyVoice2 `attention_bias`), and attention outputs
of padding rows are zeroed as the official processor does, so valid frames never see padding.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..flow.model import attention_bias, chunk_mask, mish, sinusoidal_time
from .config import DiTConfig


class TimeMLP(nn.Module):
    def __init__(self, freq_dim: int, dim: int):
        super().__init__()
        self.freq_dim = freq_dim
        self.time_mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t):  # (B,) -> (B, dim)
        return self.time_mlp(sinusoidal_time(t, self.freq_dim))


class CausalConvPosEmbed(nn.Module):
    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.kernel = kernel
        self.conv1 = nn.Sequential(nn.Conv1d(dim, dim, kernel, groups=groups))
        self.conv2 = nn.Sequential(nn.Conv1d(dim, dim, kernel, groups=groups))

    def forward(self, x):  # (B, N, dim)
        h = x.transpose(1, 2)
        h = mish(self.conv1[0](F.pad(h, (self.kernel - 1, 0))))
        h = mish(self.conv2[0](F.pad(h, (self.kernel - 1, 0))))
        return h.transpose(1, 2)


class InputEmbed(nn.Module):
    def __init__(self, c: DiTConfig):
        super().__init__()
        self.proj = nn.Linear(2 * c.mel_dim + c.mu_dim + c.spk_dim, c.dim)
        self.conv_pos_embed = CausalConvPosEmbed(c.dim, c.conv_pos_kernel, c.conv_pos_groups)

    def forward(self, x, cond, mu, spks):  # (B, N, 80) ×3, (B, 80)
        B, N, _ = x.shape
        h = self.proj(torch.cat([x, cond, mu, spks.unsqueeze(1).expand(B, N, spks.shape[1])], dim=-1))
        return self.conv_pos_embed(h) + h


class Rotary(nn.Module):
    """x_transformers RotaryEmbedding: inv_freq is a persistent buffer (it is in flow.pt)."""

    def __init__(self, dim_head: int):
        super().__init__()
        self.register_buffer("inv_freq", torch.zeros(dim_head // 2))

    def cos_sin(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = torch.arange(n, dtype=torch.float32)[:, None] * self.inv_freq[None, :]  # (N, dh/2)
        freqs = torch.stack([freqs, freqs], dim=-1).reshape(n, -1)  # interleaved (f0, f0, f1, f1, ...)
        return freqs.cos(), freqs.sin()


def pair_rotation(d: int) -> torch.Tensor:
    """(d, d) R with x @ R = (-x1, x0, -x3, x2, ...) (x_transformers rotate_half, interleaved pairs);
    one ±1 per column, so the product is exact."""
    r = torch.zeros(d, d)
    i = torch.arange(0, d, 2)
    r[i + 1, i] = -1.0
    r[i, i + 1] = 1.0
    return r


class Attention(nn.Module):
    def __init__(self, c: DiTConfig):
        super().__init__()
        self.heads, self.dh = c.heads, c.dim_head
        inner = c.heads * c.dim_head
        self.to_q = nn.Linear(c.dim, inner)
        self.to_k = nn.Linear(c.dim, inner)
        self.to_v = nn.Linear(c.dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, c.dim)])
        self.register_buffer("rot", pair_rotation(c.dim_head), persistent=False)

    def rope(self, x, cos, sin):
        r = self.dh  # rotary on the first dim_head channels of the whole (B, N, heads*dh) vector
        head = x[..., :r]
        return torch.cat([head * cos + torch.matmul(head, self.rot) * sin, x[..., r:]], dim=-1)

    def forward(self, x, bias, row_mask, cos, sin):  # x (B, N, dim); bias (B, N, N); row_mask (B, N, 1)
        B, N, _ = x.shape
        q = self.rope(self.to_q(x), cos, sin).view(B, N, self.heads, self.dh).transpose(1, 2)
        k = self.rope(self.to_k(x), cos, sin).view(B, N, self.heads, self.dh).transpose(1, 2)
        v = self.to_v(x).view(B, N, self.heads, self.dh).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.dh)) + bias.unsqueeze(1)
        out = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(B, N, self.heads * self.dh)
        return self.to_out[0](out) * row_mask


class AdaNorm(nn.Module):
    """LayerNorm without affine (eps 1e-6), modulated by Linear(SiLU(temb)) chunks."""

    def __init__(self, dim: int, n_chunks: int):
        super().__init__()
        self.n_chunks, self.dim = n_chunks, dim
        self.linear = nn.Linear(dim, n_chunks * dim)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)  # no parameters

    def modulate(self, x, shift, scale):
        return self.norm(x) * (1 + scale[:, None]) + shift[:, None]

    def chunks(self, temb):  # static slices (Tensor.chunk traces to shape arithmetic)
        e = self.linear(F.silu(temb))
        return [e[:, i * self.dim:(i + 1) * self.dim] for i in range(self.n_chunks)]


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int):
        super().__init__()
        inner = dim * mult
        self.ff = nn.Sequential(nn.Sequential(nn.Linear(dim, inner)), nn.Identity(), nn.Linear(inner, dim))

    def forward(self, x):
        return self.ff[2](F.gelu(self.ff[0][0](x), approximate="tanh"))


class DiTBlock(nn.Module):
    def __init__(self, c: DiTConfig):
        super().__init__()
        self.attn_norm = AdaNorm(c.dim, 6)
        self.attn = Attention(c)
        self.ff = FeedForward(c.dim, c.ff_mult)

    def forward(self, x, temb, bias, row_mask, cos, sin):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.attn_norm.chunks(temb)
        x = x + gate_msa[:, None] * self.attn(self.attn_norm.modulate(x, shift_msa, scale_msa), bias, row_mask, cos, sin)
        return x + gate_mlp[:, None] * self.ff(self.attn_norm.modulate(x, shift_mlp, scale_mlp))  # ff_norm = same LN


class DiT(nn.Module):
    def __init__(self, c: DiTConfig, n_frames: int):
        super().__init__()
        self.cfg = c
        self.time_embed = TimeMLP(c.time_freq_dim, c.dim)
        self.input_embed = InputEmbed(c)
        self.rotary_embed = Rotary(c.dim_head)
        self.transformer_blocks = nn.ModuleList(DiTBlock(c) for _ in range(c.depth))
        self.long_skip_connection = nn.Linear(2 * c.dim, c.dim, bias=False) if c.long_skip_connection else None
        self.norm_out = AdaNorm(c.dim, 2)
        self.proj_out = nn.Linear(c.dim, c.mel_dim)
        self.register_buffer("chunk", chunk_mask(n_frames, c.static_chunk_size), persistent=False)

    def forward(self, x, mask, mu, t, spks, cond, streaming):
        # x, mu, cond (B, 80, N); mask (B, 1, N); t (B,); spks (B, 80); streaming (1,) -> (B, 80, N)
        N = x.shape[2]
        temb = self.time_embed(t)
        h = self.input_embed(x.transpose(1, 2), cond.transpose(1, 2), mu.transpose(1, 2), spks)
        residual = h
        cos, sin = self.rotary_embed.cos_sin(N)
        bias = attention_bias(mask, self.chunk, streaming)  # (B, N, N)
        row_mask = mask.transpose(1, 2)  # (B, N, 1)
        for block in self.transformer_blocks:
            h = block(h, temb, bias, row_mask, cos, sin)
        if self.long_skip_connection is not None:
            h = self.long_skip_connection(torch.cat([h, residual], dim=-1))
        scale, shift = self.norm_out.chunks(temb)
        return self.proj_out(self.norm_out.modulate(h, shift, scale)).transpose(1, 2)
