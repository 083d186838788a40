"""Official CosyVoice3 checkpoint key -> shape tables (llm.pt, flow.pt, hift.pt), written from the
official classes' state_dict layout (CosyVoice3LM, CausalMaskedDiffWithDiT + DiT,
CausalHiFTGenerator + CausalConvRNNF0Predictor), independently of our nn.Modules.
tests/cosyvoice3 check them against the official modules' state_dict where that code is present.

The LM and vocoder tables are the CosyVoice2 tables with what the CosyVoice3 classes change."""
from __future__ import annotations

import torch

from ..hift.keys import WN_G, WN_V, official_keys as hift2_keys, random_checkpoint as hift2_random
from ..keys_common import random_state_dict
from ..llm.keys import LM_HEAD_KEY, official_keys as llm2_keys
from .config import CausalHiFTConfig, CosyVoice3LLMConfig, DiTFlowConfig


# ---- llm.pt (CosyVoice3LM) -----------------------------------------------------------------------
def llm_keys(cfg: CosyVoice3LLMConfig, *, with_lm_head: bool = True) -> dict[str, tuple[int, ...]]:
    """Qwen2LM's table (speech rows = cfg.speech_vocab = speech_token_size + 200) without
    `llm_embedding` (sos/task are speech_embedding rows) and without `llm_decoder.bias`."""
    keys = llm2_keys(cfg, with_lm_head=with_lm_head)
    del keys["llm_embedding.weight"], keys["llm_decoder.bias"]
    return keys


def llm_random_checkpoint(cfg: CosyVoice3LLMConfig, seed: int) -> dict[str, torch.Tensor]:
    def overrides(name, shape, gen):
        if name.endswith("embed_tokens.weight") or name.endswith("speech_embedding.weight"):
            return 0.5 * torch.randn(shape, generator=gen)
        return None

    sd = random_state_dict(llm_keys(cfg), seed, overrides)
    sd[LM_HEAD_KEY] = sd["llm.model.model.embed_tokens.weight"].clone()  # tied in Qwen2.5-0.5B
    return sd


# ---- flow.pt (CausalMaskedDiffWithDiT) --------------------------------------------------------------
ROTARY_KEY = "decoder.estimator.rotary_embed.inv_freq"  # a persistent buffer of x_transformers' RotaryEmbedding


def flow_keys(cfg: DiTFlowConfig) -> dict[str, tuple[int, ...]]:
    e = cfg.estimator
    d, inner, ff = e.dim, e.heads * e.dim_head, e.dim * e.ff_mult
    k: dict[str, tuple[int, ...]] = {
        "input_embedding.weight": (cfg.vocab_size, cfg.input_size),
        "spk_embed_affine_layer.weight": (cfg.output_size, cfg.spk_embed_dim),
        "spk_embed_affine_layer.bias": (cfg.output_size,),
        "pre_lookahead_layer.conv1.weight": (cfg.pre_lookahead_channels, cfg.input_size, cfg.pre_lookahead_len + 1),
        "pre_lookahead_layer.conv1.bias": (cfg.pre_lookahead_channels,),
        "pre_lookahead_layer.conv2.weight": (cfg.input_size, cfg.pre_lookahead_channels, 3),
        "pre_lookahead_layer.conv2.bias": (cfg.input_size,),
    }
    p = "decoder.estimator."
    k.update({
        f"{p}time_embed.time_mlp.0.weight": (d, e.time_freq_dim), f"{p}time_embed.time_mlp.0.bias": (d,),
        f"{p}time_embed.time_mlp.2.weight": (d, d), f"{p}time_embed.time_mlp.2.bias": (d,),
        f"{p}input_embed.proj.weight": (d, 2 * e.mel_dim + e.mu_dim + e.spk_dim), f"{p}input_embed.proj.bias": (d,),
        f"{p}input_embed.conv_pos_embed.conv1.0.weight": (d, d // e.conv_pos_groups, e.conv_pos_kernel),
        f"{p}input_embed.conv_pos_embed.conv1.0.bias": (d,),
        f"{p}input_embed.conv_pos_embed.conv2.0.weight": (d, d // e.conv_pos_groups, e.conv_pos_kernel),
        f"{p}input_embed.conv_pos_embed.conv2.0.bias": (d,),
        ROTARY_KEY: (e.dim_head // 2,),
    })
    for i in range(e.depth):
        b = f"{p}transformer_blocks.{i}."
        k.update({
            f"{b}attn_norm.linear.weight": (6 * d, d), f"{b}attn_norm.linear.bias": (6 * d,),
            f"{b}attn.to_q.weight": (inner, d), f"{b}attn.to_q.bias": (inner,),
            f"{b}attn.to_k.weight": (inner, d), f"{b}attn.to_k.bias": (inner,),
            f"{b}attn.to_v.weight": (inner, d), f"{b}attn.to_v.bias": (inner,),
            f"{b}attn.to_out.0.weight": (d, inner), f"{b}attn.to_out.0.bias": (d,),
            f"{b}ff.ff.0.0.weight": (ff, d), f"{b}ff.ff.0.0.bias": (ff,),
            f"{b}ff.ff.2.weight": (d, ff), f"{b}ff.ff.2.bias": (d,),
        })
    if e.long_skip_connection:
        k[f"{p}long_skip_connection.weight"] = (d, 2 * d)
    k.update({f"{p}norm_out.linear.weight": (2 * d, d), f"{p}norm_out.linear.bias": (2 * d,),
              f"{p}proj_out.weight": (e.mel_dim, d), f"{p}proj_out.bias": (e.mel_dim,)})
    return k


def rotary_inv_freq(dim_head: int) -> torch.Tensor:
    """The value x_transformers stores in RotaryEmbedding.inv_freq (base 10000)."""
    return 1.0 / (10000.0 ** (torch.arange(0, dim_head, 2).float() / dim_head))


def flow_random_checkpoint(cfg: DiTFlowConfig, seed: int) -> dict[str, torch.Tensor]:
    def overrides(name, shape, gen):
        if name == ROTARY_KEY:
            return rotary_inv_freq(cfg.estimator.dim_head)
        if name == "input_embedding.weight":
            return torch.randn(shape, generator=gen)
        if name.endswith("linear.weight") and ("attn_norm" in name or "norm_out" in name):
            return 0.3 * torch.randn(shape, generator=gen) / shape[1] ** 0.5  # modulations around 1
        return None

    return random_state_dict(flow_keys(cfg), seed, overrides)


# ---- hift.pt (CausalHiFTGenerator) ------------------------------------------------------------------
def hift_keys(cfg: CausalHiFTConfig) -> dict[str, tuple[int, ...]]:
    """HiFTGenerator's table, where CausalHiFTGenerator differs: conv_pre has kernel
    conv_pre_look_right + 1; the up-samplers are (nearest x u + causal Conv1d), so their weights are
    Conv1d (out, in, k) with weight-norm g over the output channels; f0 condnet.0 has kernel 4."""
    k = hift2_keys(cfg)
    k[f"conv_pre.{WN_V}"] = (cfg.base_channels, cfg.in_channels, cfg.conv_pre_look_right + 1)
    ch = cfg.base_channels
    for i, ks in enumerate(cfg.upsample_kernel_sizes):
        k[f"ups.{i}.{WN_V}"] = (ch // 2, ch, ks)
        k[f"ups.{i}.{WN_G}"] = (ch // 2, 1, 1)
        k[f"ups.{i}.bias"] = (ch // 2,)
        ch //= 2
    k[f"f0_predictor.condnet.0.{WN_V}"] = (cfg.f0_cond_channels, cfg.f0_in_channels, cfg.f0_first_kernel)
    return k


def hift_random_checkpoint(cfg: CausalHiFTConfig, seed: int) -> dict[str, torch.Tensor]:
    base = hift2_random(cfg, seed)  # the CosyVoice2 value conventions (Snake alpha, g, f0 bias) ...
    keys = hift_keys(cfg)
    gen = torch.Generator().manual_seed(seed + 1000)
    out = {}
    for name, shape in keys.items():  # ... with the keys whose shape CausalHiFT changes redrawn
        t = base[name]
        if tuple(t.shape) != tuple(shape):
            fan_in = max(1, int(torch.tensor(shape[1:]).prod())) if len(shape) > 1 else 1
            t = (0.5 + 0.5 * torch.rand(shape, generator=gen)) if name.endswith(WN_G) else torch.randn(shape, generator=gen) / fan_in ** 0.5
        out[name] = t.float().contiguous()
    return calibrate_f0(cfg, out)


F0_CENTRE_HZ, F0_SPREAD_HZ = 300.0, 50.0


def calibrate_f0(cfg: CausalHiFTConfig, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Scale and centre the random f0 classifier so that f0 = |w.h + b| is ~300 +- 50 Hz (mean, std)
    on smooth mels, about the CosyVoice2 fixture's range (~180..470 Hz: voiced, realistic): the
    redrawn causal condnet gives features of another scale and mean at each channel count
    (uncalibrated, the full-size fixture's f0 reached 2700 Hz)."""
    from ..hift.export import example_mel
    from .hift import build_causal_hift

    model = build_causal_hift(cfg, sd)
    with torch.inference_mode():
        h = model.f0_predictor.features(torch.from_numpy(example_mel(200, seed=0, n_mels=cfg.in_channels)))
        wh = h @ sd["f0_predictor.classifier.weight"].T
    w = sd["f0_predictor.classifier.weight"] * (F0_SPREAD_HZ / float(wh.std()))
    out = dict(sd)
    out["f0_predictor.classifier.weight"] = w.contiguous()
    out["f0_predictor.classifier.bias"] = torch.full_like(sd["f0_predictor.classifier.bias"], F0_CENTRE_HZ - float((h @ w.T).mean()))
    return out
