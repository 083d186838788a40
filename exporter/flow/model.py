"""CosyVoice2 flow (`CausalMaskedDiffWithXvec`) re-implemented for export at a fixed length.

Module and parameter names mirror the official `flow.pt` layout so the checkpoint loads strictly
(see keys.py). Everything works on ONE padded sequence of fixed length:

    T tokens (prompt + new, zero-padded)  ->  encoder  ->  mu (1, 80, N = 2T)
    noise (1, 80, N)  -> 10 Euler steps of the CFG-paired estimator ->  mel (1, 80, N)

Padding never leaks into valid frames: the only right-looking operation (the pre-lookahead conv)
sees zeros past the valid tokens, every other conv is causal, and attention keys past the valid
length get a -1e10 bias. Masks are built inside the graph from float 0/1 vectors and a `streaming`
flag (0/1) that blends in the static chunk masks (25 tokens / 50 frames), so one graph serves both
the non-streaming and the streaming path without If nodes.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import FlowConfig

MASK_BIAS = -1.0e10  # the official mask_to_bias value


# ---------------------------------------------------------------------------------------------
# small helpers


def mish(x: torch.Tensor) -> torch.Tensor:
    """x * tanh(softplus(x)) as x * n / (n + 2), n = e^x (e^x + 2): the same function (max-abs 7e-7
    vs float64 Mish over [-100, 100], like the Softplus/Tanh form), 2.4x faster in onnxruntime
    (Softplus is not vectorised there; Exp is). The Mish op needs opset 18 / Sentis 2.2. Above
    x = 20, tanh(softplus(x)) is 1 in float32, so the clamp only keeps e^x finite."""
    e = torch.exp(torch.clamp(x, max=20.0))
    n = e * (e + 2.0)
    return x * (n / (n + 2.0))


class Mish(nn.Module):
    def forward(self, x):
        return mish(x)


class Transpose12(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)


def rel_pos_table(length: int, d: int) -> torch.Tensor:
    """ESPnet rel-pos sinusoids for a sequence of `length`: (1, 2*length-1, d); row k is relative
    position length-1-k; even dims sin, odd dims cos (same float32 arithmetic as the official table)."""
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * -(math.log(10000.0) / d))
    pos = torch.arange(length - 1, -length, -1, dtype=torch.float32).unsqueeze(1)
    ang = pos * div
    pe = torch.stack([torch.sin(ang), torch.cos(ang)], dim=-1).reshape(2 * length - 1, d)
    return pe.unsqueeze(0)


def chunk_mask(length: int, chunk: int) -> torch.Tensor:
    """(length, length) float: key j visible to query i iff j < (i // chunk + 1) * chunk."""
    i = torch.arange(length).unsqueeze(1)
    j = torch.arange(length).unsqueeze(0)
    return (j < (i // chunk + 1) * chunk).float()


def attention_bias(key_valid: torch.Tensor, chunk: torch.Tensor, streaming: torch.Tensor) -> torch.Tensor:
    """key_valid (B, 1, L) 0/1, chunk (L, L) 0/1 constant, streaming (1,) 0/1 -> bias (B, L, L):
    0 where visible, -1e10 where masked (padding keys; future chunks when streaming)."""
    blocked_by_chunk = streaming.view(1, 1, 1) * (1.0 - chunk).unsqueeze(0)  # (1, L, L)
    allowed = key_valid * (1.0 - blocked_by_chunk)  # (B, L, L)
    return (1.0 - allowed) * MASK_BIAS


# ---------------------------------------------------------------------------------------------
# encoder: UpsampleConformerEncoder


class LinearEmbed(nn.Module):
    """Linear + LayerNorm, then x * sqrt(d) (the rel-pos module's scaling)."""

    def __init__(self, idim: int, d: int):
        super().__init__()
        self.out = nn.Sequential(nn.Linear(idim, d), nn.LayerNorm(d, eps=1e-5))
        self.xscale = math.sqrt(d)

    def forward(self, x):
        return self.out(x) * self.xscale


class RelPosSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.linear_q = nn.Linear(d, d)
        self.linear_k = nn.Linear(d, d)
        self.linear_v = nn.Linear(d, d)
        self.linear_out = nn.Linear(d, d)
        self.linear_pos = nn.Linear(d, d, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(heads, self.dk))
        self.pos_bias_v = nn.Parameter(torch.zeros(heads, self.dk))

    def forward(self, x, bias, pos_emb):
        # x (1, L, d), bias (1, L, L), pos_emb (1, 2L-1, d)
        B, L, d = x.shape
        q = self.linear_q(x).view(B, L, self.h, self.dk)
        k = self.linear_k(x).view(B, L, self.h, self.dk).transpose(1, 2)  # (B, h, L, dk)
        v = self.linear_v(x).view(B, L, self.h, self.dk).transpose(1, 2)
        p = self.linear_pos(pos_emb).view(1, 2 * L - 1, self.h, self.dk).transpose(1, 2)  # (1, h, 2L-1, dk)
        q_u = (q + self.pos_bias_u).transpose(1, 2)
        q_v = (q + self.pos_bias_v).transpose(1, 2)
        ac = torch.matmul(q_u, k.transpose(-2, -1))  # (B, h, L, L)
        bd = torch.matmul(q_v, p.transpose(-2, -1))  # (B, h, L, 2L-1)
        # relative shift: bd'[i, j] = bd[i, L-1-i+j] (relative position i-j), static-shape reshapes
        bd = F.pad(bd, (1, 0))  # (B, h, L, 2L)
        bd = bd.view(B, self.h, 2 * L, L)[:, :, 1:]  # (B, h, 2L-1, L)
        bd = bd.reshape(B, self.h, L, 2 * L - 1)[:, :, :, :L]
        scores = (ac + bd) / math.sqrt(self.dk) + bias.unsqueeze(1)
        attn = torch.softmax(scores, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(B, L, d)
        return self.linear_out(out)


class FeedForward(nn.Module):
    def __init__(self, d: int, units: int):
        super().__init__()
        self.w_1 = nn.Linear(d, units)
        self.w_2 = nn.Linear(units, d)

    def forward(self, x):
        return self.w_2(F.silu(self.w_1(x)))


class ConformerLayer(nn.Module):
    """Pre-norm conformer layer without macaron FFN and conv module."""

    def __init__(self, d: int, heads: int, units: int):
        super().__init__()
        self.self_attn = RelPosSelfAttention(d, heads)
        self.feed_forward = FeedForward(d, units)
        self.norm_mha = nn.LayerNorm(d, eps=1e-12)
        self.norm_ff = nn.LayerNorm(d, eps=1e-12)

    def forward(self, x, bias, pos_emb):
        x = x + self.self_attn(self.norm_mha(x), bias, pos_emb)
        return x + self.feed_forward(self.norm_ff(x))


class PreLookahead(nn.Module):
    def __init__(self, channels: int, lookahead: int, hidden: int | None = None):
        # hidden: conv1's output width (CosyVoice3's PreLookaheadLayer: 80 -> 1024 -> 80); default channels
        super().__init__()
        self.lookahead = lookahead
        hidden = channels if hidden is None else hidden
        self.conv1 = nn.Conv1d(channels, hidden, lookahead + 1)
        self.conv2 = nn.Conv1d(hidden, channels, 3)

    def forward(self, x, conv_in):
        # x (1, L, C) residual input; conv_in (1, L, C) = x with zeros past the valid tokens
        # (or the lookahead context tokens' embeddings, streaming)
        h = F.pad(conv_in.transpose(1, 2), (0, self.lookahead))
        h = F.leaky_relu(self.conv1(h), 0.01)
        h = self.conv2(F.pad(h, (2, 0)))
        return h.transpose(1, 2) + x


class Upsample2x(nn.Module):
    """Nearest x2 in time (as repeat/reshape, no Resize), left zero-pad 4, Conv1d k5."""

    def __init__(self, channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv1d(channels, channels, 2 * stride + 1)

    def forward(self, x):  # (1, C, L) -> (1, C, 2L)
        B, C, L = x.shape
        x = x.unsqueeze(-1).expand(B, C, L, self.stride).reshape(B, C, L * self.stride)
        return self.conv(F.pad(x, (2 * self.stride, 0)))


class UpsampleConformerEncoder(nn.Module):
    def __init__(self, cfg: FlowConfig, n_tokens: int):
        super().__init__()
        e = cfg.encoder
        d = e.output_size
        self.embed = LinearEmbed(cfg.input_size, d)
        self.pre_lookahead_layer = PreLookahead(e.pre_lookahead_channels, cfg.pre_lookahead_len)
        self.encoders = nn.ModuleList([ConformerLayer(d, e.attention_heads, e.linear_units) for _ in range(e.num_blocks)])
        self.up_layer = Upsample2x(e.pre_lookahead_channels, e.up_stride)
        self.up_embed = LinearEmbed(d, d)
        self.up_encoders = nn.ModuleList([ConformerLayer(d, e.attention_heads, e.linear_units) for _ in range(e.num_up_blocks)])
        self.after_norm = nn.LayerNorm(d, eps=1e-5)
        L, S = n_tokens, e.up_stride
        # constants of the fixed-length graph (not in the state_dict)
        self.register_buffer("pos_tok", rel_pos_table(L, d), persistent=False)
        self.register_buffer("pos_up", rel_pos_table(S * L, d), persistent=False)
        self.register_buffer("chunk_tok", chunk_mask(L, e.static_chunk_size), persistent=False)
        self.register_buffer("chunk_up", chunk_mask(S * L, e.static_chunk_size * S), persistent=False)

    def forward(self, emb, token_mask, conv_mask, streaming):
        # emb (1, L, idim); token_mask (1, L) encoder tokens; conv_mask (1, L) = token_mask + lookahead context
        x = self.embed(emb)
        x = self.pre_lookahead_layer(x, x * conv_mask.unsqueeze(-1))
        bias = attention_bias(token_mask.unsqueeze(1), self.chunk_tok, streaming)
        for layer in self.encoders:
            x = layer(x, bias, self.pos_tok)
        x = self.up_layer(x.transpose(1, 2)).transpose(1, 2)  # (1, 2L, d)
        x = self.up_embed(x)
        S = self.up_layer.stride
        B, L = token_mask.shape
        mel_mask = token_mask.unsqueeze(-1).expand(B, L, S).reshape(B, 1, L * S)
        bias = attention_bias(mel_mask, self.chunk_up, streaming)
        for layer in self.up_encoders:
            x = layer(x, bias, self.pos_up)
        return self.after_norm(x)


# ---------------------------------------------------------------------------------------------
# estimator: CausalConditionalDecoder


class CausalConv1d(nn.Conv1d):
    def forward(self, x):
        return super().forward(F.pad(x, (self.kernel_size[0] - 1, 0)))


class CausalBlock1D(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        # indices 0 and 2 carry the parameters (official Sequential: conv, T, LN, T, Mish)
        self.block = nn.Sequential(CausalConv1d(cin, cout, 3), Transpose12(), nn.LayerNorm(cout), Transpose12(), Mish())

    def forward(self, x, mask):
        return self.block(x * mask) * mask


class CausalResnetBlock1D(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int):
        super().__init__()
        self.mlp = nn.Sequential(Mish(), nn.Linear(temb, cout))
        self.block1 = CausalBlock1D(cin, cout)
        self.block2 = CausalBlock1D(cout, cout)
        self.res_conv = nn.Conv1d(cin, cout, 1)

    def forward(self, x, mask, temb):
        h = self.block1(x, mask) + self.mlp(temb).unsqueeze(-1)
        return self.block2(h, mask) + self.res_conv(x * mask)


class Attention(nn.Module):
    def __init__(self, c: int, heads: int, head_dim: int):
        super().__init__()
        self.h, self.dh = heads, head_dim
        inner = heads * head_dim
        self.to_q = nn.Linear(c, inner, bias=False)
        self.to_k = nn.Linear(c, inner, bias=False)
        self.to_v = nn.Linear(c, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, c)])

    def forward(self, x, bias):  # x (B, T, c), bias (B, T, T)
        B, T, _ = x.shape
        q = self.to_q(x).view(B, T, self.h, self.dh).transpose(1, 2)
        k = self.to_k(x).view(B, T, self.h, self.dh).transpose(1, 2)
        v = self.to_v(x).view(B, T, self.h, self.dh).transpose(1, 2)
        if torch.onnx.is_in_onnx_export():  # the graph: MatMul, Softmax, MatMul (Sentis has no fused attention)
            scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.dh)) + bias.unsqueeze(1)
            out = torch.matmul(torch.softmax(scores, dim=-1), v)
        else:
            # eager (the export's parity reference, our PyTorch pipeline): the same function through
            # PyTorch's fused kernel, as the official diffusers attention computes it; ~1.5x faster
            # estimator calls (bench/results.md), and the parity then compares the graph with a
            # second implementation of the attention
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(1))
        return self.to_out[0](out.transpose(1, 2).reshape(B, T, self.h * self.dh))


class GeluProj(nn.Module):
    def __init__(self, c: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(c, inner)

    def forward(self, x):
        return F.gelu(self.proj(x))  # exact (erf) GELU


class TransformerBlock(nn.Module):
    """diffusers-style BasicTransformerBlock, self-attention only."""

    def __init__(self, c: int, heads: int, head_dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(c)
        self.attn1 = Attention(c, heads, head_dim)
        self.norm3 = nn.LayerNorm(c)
        self.ff = nn.Module()
        self.ff.net = nn.ModuleList([GeluProj(c, 4 * c), nn.Identity(), nn.Linear(4 * c, c)])

    def forward(self, x, bias):
        x = x + self.attn1(self.norm1(x), bias)
        h = self.norm3(x)
        for m in self.ff.net:
            h = m(h)
        return x + h


class TimestepEmbedding(nn.Module):
    def __init__(self, cin: int, temb: int):
        super().__init__()
        self.linear_1 = nn.Linear(cin, temb)
        self.linear_2 = nn.Linear(temb, temb)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


def sinusoidal_time(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) -> (B, dim): [sin(1000 t f), cos(1000 t f)], f_i = exp(-i ln(1e4) / (dim/2 - 1))."""
    half = dim // 2
    f = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000) / (half - 1)))
    ang = 1000.0 * t.unsqueeze(1) * f.unsqueeze(0)
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class CausalConditionalDecoder(nn.Module):
    def __init__(self, cfg: FlowConfig, n_frames: int):
        super().__init__()
        s = cfg.estimator
        self.in_channels = s.in_channels
        temb = 4 * s.channels[0]
        self.time_mlp = TimestepEmbedding(s.in_channels, temb)

        def tblocks(c):
            return nn.ModuleList([TransformerBlock(c, s.num_heads, s.attention_head_dim) for _ in range(s.n_blocks)])

        # one level per channel entry; CosyVoice2 has one, so "down"/"up" samplers are stride-1 causal convs
        if len(s.channels) != 1:
            raise ValueError("only single-level estimators (channels of length 1) are supported, as in CosyVoice2")
        c = s.channels[0]
        self.down_blocks = nn.ModuleList([nn.ModuleList([CausalResnetBlock1D(s.in_channels, c, temb), tblocks(c), CausalConv1d(c, c, 3)])])
        self.mid_blocks = nn.ModuleList([nn.ModuleList([CausalResnetBlock1D(c, c, temb), tblocks(c)]) for _ in range(s.num_mid_blocks)])
        self.up_blocks = nn.ModuleList([nn.ModuleList([CausalResnetBlock1D(2 * c, c, temb), tblocks(c), CausalConv1d(c, c, 3)])])
        self.final_block = CausalBlock1D(c, c)
        self.final_proj = nn.Conv1d(c, s.out_channels, 1)
        self.register_buffer("chunk", chunk_mask(n_frames, s.static_chunk_size), persistent=False)

    def forward(self, x, mask, mu, t, spks, cond, streaming):
        # x, mu, cond (B, 80, N); mask (B, 1, N); t (B,); spks (B, 80); streaming (1,)
        temb = self.time_mlp(sinusoidal_time(t, self.in_channels))
        B, _, N = x.shape
        h = torch.cat([x, mu, spks.unsqueeze(-1).expand(B, spks.shape[1], N), cond], dim=1)
        bias = attention_bias(mask, self.chunk, streaming)  # same mask at every level

        def transformer(h, blocks):
            h = h.transpose(1, 2)
            for blk in blocks:
                h = blk(h, bias)
            return h.transpose(1, 2)

        resnet, blocks, down = self.down_blocks[0]
        h = transformer(resnet(h, mask, temb), blocks)
        skip = h
        h = down(h * mask)
        for resnet, blocks in self.mid_blocks:
            h = transformer(resnet(h, mask, temb), blocks)
        resnet, blocks, up = self.up_blocks[0]
        h = transformer(resnet(torch.cat([h, skip], dim=1), mask, temb), blocks)
        h = up(h * mask)
        h = self.final_block(h, mask)
        return self.final_proj(h * mask) * mask


# ---------------------------------------------------------------------------------------------
# the whole flow


def cosine_t_span(n_steps: int) -> torch.Tensor:
    t = torch.linspace(0, 1, n_steps + 1, dtype=torch.float32, device="cpu")
    return 1 - torch.cos(t * 0.5 * torch.pi)


def euler_schedule(n_steps: int) -> tuple[list[float], list[float]]:
    """(t_k, dt_k) for k = 0..n-1 with the official float32 recurrence (t += dt; dt = t_span[k+1] - t)."""
    span = cosine_t_span(n_steps)  # on CPU even under a meta-device context
    t, dt = span[0].clone(), span[1] - span[0]
    ts, dts = [], []
    for k in range(1, n_steps + 1):
        ts.append(float(t))
        dts.append(float(dt))
        t = t + dt
        if k < n_steps:
            dt = span[k + 1] - t
    return ts, dts


def official_noise(n_frames: int = 15000) -> torch.Tensor:
    """The official solver's fixed noise: seed 0, randn(1, 80, 15000) on CPU; first n_frames."""
    gen = torch.Generator().manual_seed(0)  # == torch.manual_seed(0) + randn on the default CPU generator
    return torch.randn(1, 80, 15000, generator=gen)[:, :, :n_frames].contiguous()


class Flow(nn.Module):
    """All of flow.pt, built for T tokens / N = 2T mel frames."""

    def __init__(self, cfg: FlowConfig, n_frames: int):
        super().__init__()
        if n_frames % cfg.token_mel_ratio:
            raise ValueError(f"mel length {n_frames} must be a multiple of {cfg.token_mel_ratio}")
        self.cfg = cfg
        self.n_frames = n_frames
        self.n_tokens = n_frames // cfg.token_mel_ratio
        self.input_embedding = nn.Embedding(cfg.vocab_size, cfg.input_size)
        self.spk_embed_affine_layer = nn.Linear(cfg.spk_embed_dim, cfg.output_size)
        self.build_encoder(cfg)
        self.decoder = nn.Module()
        self.decoder.estimator = self.build_estimator(cfg, n_frames)
        ts, dts = euler_schedule(cfg.n_timesteps)
        self.t_steps, self.dt_steps = ts, dts

    # a family's flow (e.g. CosyVoice3's DiTFlow) overrides these two and `encode`
    def build_encoder(self, cfg) -> None:
        self.encoder = UpsampleConformerEncoder(cfg, self.n_tokens)
        self.encoder_proj = nn.Linear(cfg.encoder.output_size, cfg.output_size)

    def build_estimator(self, cfg, n_frames: int) -> nn.Module:
        return CausalConditionalDecoder(cfg, n_frames)

    # -- encoder side -----------------------------------------------------------------------
    def speaker(self, xvec):  # (1, 192) -> (1, 80)
        norm = torch.sqrt(torch.sum(xvec * xvec, dim=1, keepdim=True)).clamp_min(1e-12)
        return self.spk_embed_affine_layer(xvec / norm)

    def encode(self, tokens, token_mask, conv_mask, streaming):
        # tokens (1, T) int; masks (1, T) float -> mu (1, 80, N)
        # token ids are validated (0..vocab-1) by the caller; padding ids are 0 and masked here
        emb = self.input_embedding(tokens) * conv_mask.unsqueeze(-1)
        h = self.encoder(emb, token_mask, conv_mask, streaming)
        return self.encoder_proj(h).transpose(1, 2)

    # -- decoder side ----------------------------------------------------------------------
    def velocity(self, x, t, mu, cond, spks, mel_mask, streaming):
        """CFG-combined velocity: the estimator on the pair (conditional, unconditional)."""
        est = self.decoder.estimator
        zeros = torch.zeros_like(mu)
        v = est(
            torch.cat([x, x], 0), torch.cat([mel_mask, mel_mask], 0), torch.cat([mu, zeros], 0),
            torch.cat([t, t], 0), torch.cat([spks, torch.zeros_like(spks)], 0), torch.cat([cond, zeros], 0), streaming,
        )
        rate = self.cfg.inference_cfg_rate
        return (1.0 + rate) * v[:1] - rate * v[1:]

    def solve(self, noise, mu, cond, spks, mel_mask, streaming):
        """The official 10-step Euler solve, unrolled (t, dt are constants)."""
        x = noise
        for t, dt in zip(self.t_steps, self.dt_steps):
            tt = torch.full((1,), t, dtype=torch.float32)
            x = x + dt * self.velocity(x, tt, mu, cond, spks, mel_mask, streaming)
        return x

    def resized(self, n_frames: int) -> "Flow":
        """The same weights built for another mel length."""
        other = type(self)(self.cfg, n_frames).eval()
        other.load_state_dict(self.state_dict(), strict=True)
        return other


@torch.inference_mode()
def token2mel_torch(flow: Flow, prompt_tokens, tokens, prompt_mel, xvec, *, streaming=False, finalize=True) -> torch.Tensor:
    """Our PyTorch path, like the official `CausalMaskedDiffWithXvec.inference` (batch 1): built for
    exactly P+N tokens (no padding when finalize=True). prompt_tokens (1,P), tokens (1,N) int;
    prompt_mel (1,F,80); xvec (1,192) -> mel (1,80,frames) of the new tokens."""
    cfg = flow.cfg
    all_tokens = torch.cat([torch.as_tensor(prompt_tokens), torch.as_tensor(tokens)], 1).to(torch.int32)
    n_all = all_tokens.shape[1]
    n_enc = n_all if finalize else n_all - cfg.pre_lookahead_len
    n = n_all * cfg.token_mel_ratio
    f = flow if flow.n_frames == n else flow.resized(n)
    M = n_enc * cfg.token_mel_ratio
    token_mask = torch.zeros(1, n_all)
    token_mask[:, :n_enc] = 1
    conv_mask = torch.ones(1, n_all)
    st = torch.tensor([1.0 if streaming else 0.0])
    mu = f.encode(all_tokens, token_mask, conv_mask, st)
    spks = f.speaker(torch.as_tensor(xvec, dtype=torch.float32).reshape(1, -1))
    prompt_mel = torch.as_tensor(prompt_mel, dtype=torch.float32)
    F_ = prompt_mel.shape[1]
    cond = torch.zeros(1, cfg.output_size, n)
    cond[:, :, :F_] = prompt_mel[0].T
    mel_mask = torch.zeros(1, 1, n)
    mel_mask[..., :M] = 1
    mel = f.solve(official_noise(n), mu, cond, spks, mel_mask, st)
    return mel[:, :, F_:M]
