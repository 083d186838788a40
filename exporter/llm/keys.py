"""Official `llm.pt` key layout (Qwen2LM), from the architecture fact sheet §4.2."""
from __future__ import annotations

import torch

from ..config import LLMConfig
from ..keys_common import random_state_dict

LM_HEAD_KEY = "llm.model.lm_head.weight"  # present in official files, unused at inference


def official_keys(cfg: LLMConfig, *, with_lm_head: bool = True) -> dict[str, tuple[int, ...]]:
    q = cfg.qwen
    d, kv = q.hidden_size, q.num_key_value_heads * q.head_dim
    p = "llm.model.model."
    keys: dict[str, tuple[int, ...]] = {
        "llm_embedding.weight": (2, d),
        f"{p}embed_tokens.weight": (q.vocab_size, d),
    }
    for i in range(q.num_hidden_layers):
        L = f"{p}layers.{i}."
        keys.update({
            f"{L}self_attn.q_proj.weight": (d, d), f"{L}self_attn.q_proj.bias": (d,),
            f"{L}self_attn.k_proj.weight": (kv, d), f"{L}self_attn.k_proj.bias": (kv,),
            f"{L}self_attn.v_proj.weight": (kv, d), f"{L}self_attn.v_proj.bias": (kv,),
            f"{L}self_attn.o_proj.weight": (d, d),
            f"{L}mlp.gate_proj.weight": (q.intermediate_size, d),
            f"{L}mlp.up_proj.weight": (q.intermediate_size, d),
            f"{L}mlp.down_proj.weight": (d, q.intermediate_size),
            f"{L}input_layernorm.weight": (d,),
            f"{L}post_attention_layernorm.weight": (d,),
        })
    keys[f"{p}norm.weight"] = (d,)
    if with_lm_head:
        keys[LM_HEAD_KEY] = (q.vocab_size, d)
    keys["llm_decoder.weight"] = (cfg.speech_vocab, d)
    keys["llm_decoder.bias"] = (cfg.speech_vocab,)
    keys["speech_embedding.weight"] = (cfg.speech_vocab, d)
    return keys


def random_checkpoint(cfg: LLMConfig, seed: int) -> dict[str, torch.Tensor]:
    def overrides(name, shape, gen):
        if name.endswith("embed_tokens.weight") or name.endswith("speech_embedding.weight") or name == "llm_embedding.weight":
            return 0.5 * torch.randn(shape, generator=gen)
        return None

    sd = random_state_dict(official_keys(cfg), seed, overrides)
    sd[LM_HEAD_KEY] = sd["llm.model.model.embed_tokens.weight"].clone()  # tied in Qwen2.5-0.5B
    return sd
