"""The PyTorch Qwen2LM: official key layout, cache path == full forward, and an independent
cross-check of the backbone against transformers' Qwen2 on the same random weights."""
from __future__ import annotations

import contextlib
import sys

import pytest
import torch

from exporter.checkpoint import load_into
from exporter.config import LLMConfig, Qwen2Config
from exporter.errors import CheckpointError
from exporter.llm.keys import LM_HEAD_KEY, official_keys, random_checkpoint
from exporter.llm.model import Qwen2LM


def test_state_dict_is_official_layout_minus_lm_head(llm_model, tiny_md):
    cfg = tiny_md.config.llm
    ours = {k: tuple(v.shape) for k, v in llm_model.state_dict().items()}
    assert ours == official_keys(cfg, with_lm_head=False)
    assert LM_HEAD_KEY in tiny_md.load_checkpoint("llm")  # the file has it; we drop it explicitly


def test_strict_load_names_missing_key(tiny_md):
    sd = tiny_md.load_checkpoint("llm")
    del sd["llm.model.model.layers.0.self_attn.q_proj.bias"]
    with pytest.raises(CheckpointError, match="q_proj.bias"):
        load_into(Qwen2LM(tiny_md.config.llm), sd, source="llm.pt", ignore_unexpected=[LM_HEAD_KEY])


@torch.inference_mode()
@pytest.mark.parametrize("splits", [(40,), (16, 16, 8), (1, 15, 16, 3, 1, 1, 1, 2)])
def test_cached_steps_equal_full_forward(llm_model, splits):
    torch.manual_seed(0)
    L = sum(splits)
    x = torch.randn(1, L, llm_model.cfg.qwen.hidden_size)
    full = llm_model.backbone(x)
    cache, pos, outs = llm_model.new_cache(48), 0, []
    # fill the cache with junk first: slots >= position must never be read
    cache = [torch.randn_like(c) for c in cache]
    for T in splits:
        h, cache = llm_model.backbone.step(x[:, pos:pos + T], cache, torch.tensor([pos], dtype=torch.int32))
        outs.append(h)
        pos += T
    err = (torch.cat(outs, 1) - full).abs().max().item()
    assert err <= 1e-5, err


@contextlib.contextmanager
def _without_placeholder_torchaudio():
    """transformers probes importlib.util.find_spec('torchaudio'); other tests may have put a
    placeholder torchaudio module (no __spec__) in sys.modules, which makes that probe raise.
    Hide such a placeholder while transformers is used and put it back afterwards."""
    placeholder = sys.modules.get("torchaudio")
    hide = placeholder is not None and getattr(placeholder, "__spec__", None) is None
    if hide:
        del sys.modules["torchaudio"]
    try:
        yield
    finally:
        if hide:
            sys.modules["torchaudio"] = placeholder


def _hf_compare(qcfg: Qwen2Config, sd: dict, L: int) -> float:
    with _without_placeholder_torchaudio():
        return _hf_compare_inner(qcfg, sd, L)


def _hf_compare_inner(qcfg: Qwen2Config, sd: dict, L: int) -> float:
    transformers = pytest.importorskip("transformers", reason="transformers (test extra) not installed: HF cross-check needs it")
    from exporter.llm.model import Qwen2Model

    ours = Qwen2Model(qcfg).eval()
    ours.load_state_dict(sd, strict=True)
    hc = transformers.Qwen2Config(
        hidden_size=qcfg.hidden_size, num_hidden_layers=qcfg.num_hidden_layers,
        num_attention_heads=qcfg.num_attention_heads, num_key_value_heads=qcfg.num_key_value_heads,
        intermediate_size=qcfg.intermediate_size, rms_norm_eps=qcfg.rms_norm_eps, rope_theta=qcfg.rope_theta,
        vocab_size=qcfg.vocab_size, max_position_embeddings=qcfg.max_position_embeddings, hidden_act="silu",
        attn_implementation="eager")
    hf = transformers.Qwen2Model(hc).eval()
    hf.load_state_dict(sd, strict=True)
    x = torch.randn(1, L, qcfg.hidden_size, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        a = ours(x)
        b = hf(inputs_embeds=x).last_hidden_state
    return (a - b).abs().max().item()


def test_backbone_matches_transformers_qwen2_tiny(tiny_md):
    cfg = tiny_md.config.llm
    pre = "llm.model.model."
    sd = {k[len(pre):]: v for k, v in tiny_md.load_checkpoint("llm").items() if k.startswith(pre)}
    assert _hf_compare(cfg.qwen, sd, 70) <= 1e-5


def test_backbone_matches_transformers_qwen2_full_head_layout():
    """Real head layout (14 query heads over 2 KV heads, groups of 7; head_dim 64), 2 layers,
    positions far from 0 so the RoPE theta matters."""
    q = Qwen2Config(hidden_size=896, num_hidden_layers=2, num_attention_heads=14, num_key_value_heads=2,
                    intermediate_size=256, vocab_size=32)
    cfg = LLMConfig(qwen=q, llm_input_size=896, llm_output_size=896, speech_token_size=13)
    pre = "llm.model.model."
    sd = {k[len(pre):]: v for k, v in random_checkpoint(cfg, seed=3).items() if k.startswith(pre)}
    assert _hf_compare(q, sd, 300) <= 1e-5
