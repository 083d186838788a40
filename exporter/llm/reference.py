"""Torch-side references (tests, the end-to-end PyTorch pipeline): the official generation loop recomputed from scratch
every step with the full causal forward (no KV cache at all), and the official ras_sampling
structure (torch softmax, stable sort, python accumulation loop) where each multinomial draw is
replaced by inverse-CDF sampling on an injected uniform, so it consumes the same uniforms as
runtime_ref.sampling."""
from __future__ import annotations

import torch

from .model import Qwen2LM


def _draw(probs: torch.Tensor, u: float) -> int:
    cdf = torch.cumsum(probs.double(), 0)
    i = int(torch.searchsorted(cdf, torch.tensor([u * float(cdf[-1])], dtype=torch.float64), right=True)[0])
    return min(i, probs.numel() - 1)


def torch_nucleus(scores: torch.Tensor, top_p: float, top_k: int, rng) -> int:
    prob, indices, cum = [], [], 0.0
    sorted_value, sorted_idx = scores.softmax(dim=0).sort(descending=True, stable=True)
    for i in range(len(sorted_idx)):
        if cum < top_p and len(prob) < top_k:
            cum += sorted_value[i]
            prob.append(sorted_value[i])
            indices.append(sorted_idx[i])
        else:
            break
    return int(indices[_draw(torch.stack(prob), rng.uniform())])


def torch_ras(scores: torch.Tensor, decoded: list[int], params, rng) -> int:
    top = torch_nucleus(scores, params.top_p, params.top_k, rng)
    rep = int((torch.tensor(decoded[-params.win_size:], dtype=torch.long) == top).sum()) if decoded else 0
    if rep >= params.win_size * params.tau_r:
        scores = scores.clone()
        scores[top] = -float("inf")
        top = _draw(scores.softmax(dim=0), rng.uniform())
    return top


@torch.inference_mode()
def torch_generate(model: Qwen2LM, text, prompt_text, prompt_speech, *, sampler, params=None, rng=None,
                   max_new_tokens: int, min_ratio=2.0, max_ratio=20.0):
    """Official loop, no cache: returns (tokens, per-step masked logprobs)."""
    cfg = model.cfg
    ids = torch.tensor(list(prompt_text) + list(text), dtype=torch.long)
    seq = model.lm_input(ids, torch.tensor(list(prompt_speech), dtype=torch.long))
    min_len = int(len(text) * min_ratio)
    max_len = min(int(len(text) * max_ratio), max_new_tokens)
    tokens, logps = [], []
    for i in range(max_len):
        h = model.backbone(seq)
        logp = model.logprobs(h[:, -1])[0]
        if i < min_len:
            logp[cfg.min_len_masked_token] = -float("inf")
        logps.append(logp.clone())
        tok = int(logp.argmax()) if sampler == "greedy" else torch_ras(logp, tokens, params, rng)
        if tok in cfg.stop_token_ids:
            break
        tokens.append(tok)
        seq = torch.cat([seq, model.speech_embedding.weight[tok][None, None]], dim=1)
    return tokens, logps
