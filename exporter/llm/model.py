"""Qwen2LM (CosyVoice2's speech-token language model) in plain torch ops.

Layout mirrors the official `llm.pt` keys exactly (fact sheet §4.2):

    llm_embedding        (2, d)       row 0 = sos, row 1 = task_id
    llm.model.model.*    Qwen2 backbone (official nesting: Qwen2Encoder.model = HF
                         Qwen2ForCausalLM, whose .model is the Qwen2Model)
    llm_decoder          Linear(d, speech_vocab)  speech-token head
    speech_embedding     (speech_vocab, d)

The HF `lm_head` (`llm.model.lm_head.weight`) is not part of this module: CosyVoice2 reads the
backbone's last hidden state and scores it with `llm_decoder`; Qwen2.5-0.5B ties lm_head to
embed_tokens, so the official file stores a (151936, 896) copy that inference never reads. We
drop it explicitly when loading (`ignore_unexpected=[LM_HEAD_KEY]`).

Two computation paths over the same weights:
- `Qwen2Model.forward(x)`: ordinary full-sequence causal forward (what HF computes; used to
  cross-check against transformers and as the no-cache reference for the cache path).
- `Qwen2Model.step_rows(x, cache, position)`: the exported path (cache contract "rows"). A
  fixed-capacity KV cache (1, kv_heads, capacity, head_dim) per layer, read only: query t attends
  to the cache slots j < position and to the new rows 0..t; the T new keys/values come out as
  rows (1, kv_heads, T, head_dim). `append_rows` (its own weightless graph) writes them at
  positions [position, position+T) with one-hot arithmetic (no NonZero / boolean indexing /
  data-dependent shapes). So a decode step's big graph never copies the cache, and the one full
  write per step is the append graph's output, which a runtime passes on without copying.
  `Qwen2Model.step` = both (the reference for the pair).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import LLMConfig, Qwen2Config
from .keys import LM_HEAD_KEY

MASK_VALUE = -1e9  # additive mask; every query row always sees slot 0, so no row is all-masked


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()  # computed in fp32 like HF Qwen2RMSNorm
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """positions (T,) int -> cos, sin (T, head_dim), HF rotate-half layout (freqs repeated twice)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]  # (T, hd/2)
    emb = torch.cat([freqs, freqs], dim=-1)  # (T, hd)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + rotate_half(x) * sin


class Attention(nn.Module):
    def __init__(self, cfg: Qwen2Config):
        super().__init__()
        d, hd = cfg.hidden_size, cfg.head_dim
        self.n_heads, self.n_kv, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, hd
        self.theta = cfg.rope_theta
        self.q_proj = nn.Linear(d, self.n_heads * hd, bias=True)
        self.k_proj = nn.Linear(d, self.n_kv * hd, bias=True)
        self.v_proj = nn.Linear(d, self.n_kv * hd, bias=True)
        self.o_proj = nn.Linear(self.n_heads * hd, d, bias=False)

    def _qkv(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        v = self.v_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def _attend(self, q, k, v, mask):
        """q (1, H, T, hd); k, v (1, KV, S, hd); mask (T, S) additive -> (1, T, H*hd).

        GQA without repeating K/V: query heads h = kv*G + g share kv head `kv` (HF repeat_kv
        order), so fold the G query heads of a group into the query axis: (1, KV, G*T, hd)."""
        B, H, T, hd = q.shape
        G = H // self.n_kv
        qg = q.reshape(B, self.n_kv, G * T, hd)
        scores = torch.matmul(qg, k.transpose(-1, -2)) * (hd ** -0.5)  # (1, KV, G*T, S)
        scores = scores.view(B, self.n_kv, G, T, -1) + mask
        probs = scores.softmax(dim=-1).view(B, self.n_kv, G * T, -1)
        out = torch.matmul(probs, v)  # (1, KV, G*T, hd)
        return out.view(B, H, T, hd).transpose(1, 2).reshape(B, T, H * hd)

    def forward(self, x, cos, sin, mask):
        q, k, v = self._qkv(x, cos, sin)
        return self.o_proj(self._attend(q, k, v, mask))

    def step_rows(self, x, cos, sin, past_mask, new_mask, k_cache, v_cache):
        """Attention over the read-only cache (slots masked by past_mask (T, S)) and the T new rows
        (new_mask (T, T), causal); the cache is not written. Returns (out, k_new, v_new), the new
        rows (1, KV, T, hd) for append_rows."""
        q, k, v = self._qkv(x, cos, sin)
        B, H, T, hd = q.shape
        G, S = H // self.n_kv, k_cache.shape[2]
        qg = q.reshape(B, self.n_kv, G * T, hd)
        s_past = (torch.matmul(qg, k_cache.transpose(-1, -2)) * (hd ** -0.5)).view(B, self.n_kv, G, T, S) + past_mask
        s_new = (torch.matmul(qg, k.transpose(-1, -2)) * (hd ** -0.5)).view(B, self.n_kv, G, T, T) + new_mask
        probs = torch.cat([s_past, s_new], dim=-1).softmax(dim=-1).view(B, self.n_kv, G * T, S + T)
        out = torch.matmul(probs[..., :S], v_cache) + torch.matmul(probs[..., S:], v)  # (1, KV, G*T, hd)
        out = out.view(B, H, T, hd).transpose(1, 2).reshape(B, T, H * hd)
        return self.o_proj(out), k, v


def write_keep(T: int, S: int, position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """write (S, T) one-hot of slots position..position+T-1 (slots >= S dropped), keep (S, 1) = 1 - any(write)."""
    pos = position.reshape(1).to(torch.int32) + torch.arange(T, dtype=torch.int32)  # (T,)
    slots = torch.arange(S, dtype=torch.int32)
    write = (slots[:, None] == pos[None, :]).float()  # (S, T)
    return write, 1.0 - write.sum(dim=1, keepdim=True)


def append_rows(cache: torch.Tensor, rows: torch.Tensor, position: torch.Tensor, wk=None) -> torch.Tensor:
    """cache (1, KV, S, hd) with rows (1, KV, T, hd) written at slots position..position+T-1 (rows that
    would land at slots >= S are dropped): cache*keep + write@rows — exact, each slot gets one term;
    no ScatterND, no data-dependent shape. `wk`: write_keep(...) shared by all layers."""
    write, keep = wk if wk is not None else write_keep(rows.shape[2], cache.shape[2], position)
    return cache * keep + torch.matmul(write, rows)


class MLP(nn.Module):
    def __init__(self, cfg: Qwen2Config):
        super().__init__()
        d, m = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = nn.Linear(d, m, bias=False)
        self.up_proj = nn.Linear(d, m, bias=False)
        self.down_proj = nn.Linear(m, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: Qwen2Config):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))

    def step_rows(self, x, cos, sin, past_mask, new_mask, k_cache, v_cache):
        a, k, v = self.self_attn.step_rows(self.input_layernorm(x), cos, sin, past_mask, new_mask, k_cache, v_cache)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), k, v


class Qwen2Model(nn.Module):
    """The Qwen2 backbone (HF Qwen2Model keys). Output = hidden state after the final norm."""

    def __init__(self, cfg: Qwen2Config):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (1, T, d) input embeddings -> (1, T, d); plain causal attention, positions 0..T-1."""
        T = x.shape[1]
        pos = torch.arange(T)
        cos, sin = rope_cos_sin(pos, self.cfg.head_dim, self.cfg.rope_theta)
        mask = torch.where(pos[None, :] <= pos[:, None], 0.0, MASK_VALUE)  # (T, T)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x)

    def step_rows(self, x: torch.Tensor, cache: list[torch.Tensor], position: torch.Tensor):
        """x (1, T, d) new embeddings at positions position..position+T-1 (position: (1,) int);
        cache: [k0, v0, k1, v1, ...] each (1, KV, S, hd), read only: slots < position are the
        past, the rest is ignored. Returns hidden (1, T, d) and the new rows [k0, v0, ...] each
        (1, KV, T, hd) — the exported step graph (the cache is written by append_rows)."""
        T, S = x.shape[1], cache[0].shape[2]
        pos = position.reshape(1).to(torch.int32) + torch.arange(T, dtype=torch.int32)  # (T,)
        slots = torch.arange(S, dtype=torch.int32)  # (S,)
        cos, sin = rope_cos_sin(pos, self.cfg.head_dim, self.cfg.rope_theta)
        past_mask = torch.where(slots[None, :] < position.reshape(1).to(torch.int32), 0.0, MASK_VALUE).expand(T, S)  # (T, S)
        ar = torch.arange(T)
        new_mask = torch.where(ar[None, :] <= ar[:, None], 0.0, MASK_VALUE)  # (T, T) causal
        rows = []
        for i, layer in enumerate(self.layers):
            x, k, v = layer.step_rows(x, cos, sin, past_mask, new_mask, cache[2 * i], cache[2 * i + 1])
            rows += [k, v]
        return self.norm(x), rows

    def step(self, x: torch.Tensor, cache: list[torch.Tensor], position: torch.Tensor):
        """step_rows + append_rows: hidden (1, T, d) and the updated cache. Rows that would land at
        slots >= S are dropped (the caller keeps position+valid <= S)."""
        h, rows = self.step_rows(x, cache, position)
        wk = write_keep(x.shape[1], cache[0].shape[2], position)
        return h, [append_rows(c, r, position, wk) for c, r in zip(cache, rows)]


class _Nest(nn.Module):
    """Holds `model` so keys nest like the official Qwen2Encoder -> Qwen2ForCausalLM -> Qwen2Model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model


class Qwen2LM(nn.Module):
    SOS, TASK_ID = 0, 1  # rows of llm_embedding

    def __init__(self, cfg: LLMConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.qwen.hidden_size
        self.llm_embedding = nn.Embedding(2, d)
        self.llm = _Nest(_Nest(Qwen2Model(cfg.qwen)))
        self.llm_decoder = nn.Linear(d, cfg.speech_vocab)
        self.speech_embedding = nn.Embedding(cfg.speech_vocab, d)

    @property
    def backbone(self) -> Qwen2Model:
        return self.llm.model.model

    @classmethod
    def from_state_dict(cls, cfg: LLMConfig, sd, source: str = "llm.pt") -> "Qwen2LM":
        from ..checkpoint import load_into

        with torch.device("meta"):  # no random init: every parameter is overwritten by the strict load
            m = cls(cfg)
        m = m.to_empty(device="cpu")  # untouched pages: the load below assigns the checkpoint's tensors
        # lm_head is HF's tied text-vocabulary head: CosyVoice2 never uses it (see module docstring)
        load_into(m, sd, source=source, ignore_unexpected=[LM_HEAD_KEY], assign=True)
        return m.eval()

    def new_cache(self, capacity: int) -> list[torch.Tensor]:
        q = self.cfg.qwen
        shape = (1, q.num_key_value_heads, capacity, q.head_dim)
        return [torch.zeros(shape) for _ in range(2 * q.num_hidden_layers)]

    def logprobs(self, hidden_last: torch.Tensor) -> torch.Tensor:
        """(1, d) -> (1, speech_vocab) log-softmax over the speech vocabulary."""
        return self.llm_decoder(hidden_last).log_softmax(dim=-1)

    def step_rows(self, embeds: torch.Tensor, cache: list[torch.Tensor], position: torch.Tensor, valid_len: torch.Tensor):
        """One cached forward over a read-only cache: logprobs of the last valid row (index
        valid_len-1) + the new K/V rows (the exported llm_step)."""
        h, rows = self.backbone.step_rows(embeds, cache, position)
        last = torch.index_select(h[0], 0, (valid_len.reshape(1) - 1).long())  # (1, d)
        return self.logprobs(last), rows

    def step(self, embeds: torch.Tensor, cache: list[torch.Tensor], position: torch.Tensor, valid_len: torch.Tensor):
        """step_rows + append_rows (llm_step then llm_cache_append): logprobs + the new cache."""
        logp, rows = self.step_rows(embeds, cache, position, valid_len)
        wk = write_keep(embeds.shape[1], cache[0].shape[2], position)
        return logp, [append_rows(c, r, position, wk) for c, r in zip(cache, rows)]

    def lm_input(self, text_ids: torch.Tensor, prompt_speech: torch.Tensor) -> torch.Tensor:
        """[sos, text (prompt text + text), task_id, prompt speech tokens] -> (1, L, d)."""
        e = self.llm_embedding.weight
        parts = [e[self.SOS][None], self.backbone.embed_tokens(text_ids.long()), e[self.TASK_ID][None],
                 self.speech_embedding(prompt_speech.long())]
        return torch.cat(parts, dim=0)[None]
