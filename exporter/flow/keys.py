"""Official `flow.pt` key layout (CausalMaskedDiffWithXvec), from the fact sheet §5.4 and §6.4."""
from __future__ import annotations

import torch

from ..config import FlowConfig
from ..keys_common import random_state_dict


def _conformer_layer(p: str, d: int, heads: int, units: int) -> dict[str, tuple[int, ...]]:
    dk = d // heads
    k = {}
    for n in ("q", "k", "v", "out"):
        k[f"{p}self_attn.linear_{n}.weight"] = (d, d)
        k[f"{p}self_attn.linear_{n}.bias"] = (d,)
    k[f"{p}self_attn.linear_pos.weight"] = (d, d)
    k[f"{p}self_attn.pos_bias_u"] = (heads, dk)
    k[f"{p}self_attn.pos_bias_v"] = (heads, dk)
    k[f"{p}feed_forward.w_1.weight"] = (units, d)
    k[f"{p}feed_forward.w_1.bias"] = (units,)
    k[f"{p}feed_forward.w_2.weight"] = (d, units)
    k[f"{p}feed_forward.w_2.bias"] = (d,)
    for n in ("norm_mha", "norm_ff"):
        k[f"{p}{n}.weight"] = (d,)
        k[f"{p}{n}.bias"] = (d,)
    return k


def _resnet(p: str, cin: int, cout: int, temb: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{p}mlp.1.weight": (cout, temb), f"{p}mlp.1.bias": (cout,),
        f"{p}block1.block.0.weight": (cout, cin, 3), f"{p}block1.block.0.bias": (cout,),
        f"{p}block1.block.2.weight": (cout,), f"{p}block1.block.2.bias": (cout,),
        f"{p}block2.block.0.weight": (cout, cout, 3), f"{p}block2.block.0.bias": (cout,),
        f"{p}block2.block.2.weight": (cout,), f"{p}block2.block.2.bias": (cout,),
        f"{p}res_conv.weight": (cout, cin, 1), f"{p}res_conv.bias": (cout,),
    }


def _tblock(p: str, c: int, inner: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{p}norm1.weight": (c,), f"{p}norm1.bias": (c,),
        f"{p}attn1.to_q.weight": (inner, c), f"{p}attn1.to_k.weight": (inner, c), f"{p}attn1.to_v.weight": (inner, c),
        f"{p}attn1.to_out.0.weight": (c, inner), f"{p}attn1.to_out.0.bias": (c,),
        f"{p}norm3.weight": (c,), f"{p}norm3.bias": (c,),
        f"{p}ff.net.0.proj.weight": (4 * c, c), f"{p}ff.net.0.proj.bias": (4 * c,),
        f"{p}ff.net.2.weight": (c, 4 * c), f"{p}ff.net.2.bias": (c,),
    }


def official_keys(cfg: FlowConfig) -> dict[str, tuple[int, ...]]:
    e, s = cfg.encoder, cfg.estimator
    d, pc = e.output_size, e.pre_lookahead_channels
    k: dict[str, tuple[int, ...]] = {
        "input_embedding.weight": (cfg.vocab_size, cfg.input_size),
        "spk_embed_affine_layer.weight": (cfg.output_size, cfg.spk_embed_dim),
        "spk_embed_affine_layer.bias": (cfg.output_size,),
        "encoder.embed.out.0.weight": (d, e.input_size), "encoder.embed.out.0.bias": (d,),
        "encoder.embed.out.1.weight": (d,), "encoder.embed.out.1.bias": (d,),
        "encoder.pre_lookahead_layer.conv1.weight": (pc, pc, cfg.pre_lookahead_len + 1),
        "encoder.pre_lookahead_layer.conv1.bias": (pc,),
        "encoder.pre_lookahead_layer.conv2.weight": (pc, pc, 3),
        "encoder.pre_lookahead_layer.conv2.bias": (pc,),
    }
    for i in range(e.num_blocks):
        k.update(_conformer_layer(f"encoder.encoders.{i}.", d, e.attention_heads, e.linear_units))
    k["encoder.up_layer.conv.weight"] = (pc, pc, e.up_stride * 2 + 1)
    k["encoder.up_layer.conv.bias"] = (pc,)
    k.update({
        "encoder.up_embed.out.0.weight": (d, d), "encoder.up_embed.out.0.bias": (d,),
        "encoder.up_embed.out.1.weight": (d,), "encoder.up_embed.out.1.bias": (d,),
    })
    for i in range(e.num_up_blocks):
        k.update(_conformer_layer(f"encoder.up_encoders.{i}.", d, e.attention_heads, e.linear_units))
    k["encoder.after_norm.weight"] = (d,)
    k["encoder.after_norm.bias"] = (d,)
    k["encoder_proj.weight"] = (cfg.output_size, d)
    k["encoder_proj.bias"] = (cfg.output_size,)

    p = "decoder.estimator."
    c0 = s.channels[0]
    temb = 4 * c0
    inner = s.num_heads * s.attention_head_dim
    k[f"{p}time_mlp.linear_1.weight"] = (temb, s.in_channels)
    k[f"{p}time_mlp.linear_1.bias"] = (temb,)
    k[f"{p}time_mlp.linear_2.weight"] = (temb, temb)
    k[f"{p}time_mlp.linear_2.bias"] = (temb,)
    # one down level per channel entry; the last has a non-strided causal conv "downsample"
    cin = s.in_channels
    for i, c in enumerate(s.channels):
        k.update(_resnet(f"{p}down_blocks.{i}.0.", cin, c, temb))
        for j in range(s.n_blocks):
            k.update(_tblock(f"{p}down_blocks.{i}.1.{j}.", c, inner))
        k[f"{p}down_blocks.{i}.2.weight"] = (c, c, 3)
        k[f"{p}down_blocks.{i}.2.bias"] = (c,)
        cin = c
    for i in range(s.num_mid_blocks):
        k.update(_resnet(f"{p}mid_blocks.{i}.0.", s.channels[-1], s.channels[-1], temb))
        for j in range(s.n_blocks):
            k.update(_tblock(f"{p}mid_blocks.{i}.1.{j}.", s.channels[-1], inner))
    rev = list(s.channels[::-1]) + [s.channels[0]]
    for i in range(len(s.channels)):
        cin_up, cout_up = rev[i] * 2, rev[i + 1]
        k.update(_resnet(f"{p}up_blocks.{i}.0.", cin_up, cout_up, temb))
        for j in range(s.n_blocks):
            k.update(_tblock(f"{p}up_blocks.{i}.1.{j}.", cout_up, inner))
        k[f"{p}up_blocks.{i}.2.weight"] = (cout_up, cout_up, 3)
        k[f"{p}up_blocks.{i}.2.bias"] = (cout_up,)
    last = s.channels[0]
    k[f"{p}final_block.block.0.weight"] = (last, last, 3)
    k[f"{p}final_block.block.0.bias"] = (last,)
    k[f"{p}final_block.block.2.weight"] = (last,)
    k[f"{p}final_block.block.2.bias"] = (last,)
    k[f"{p}final_proj.weight"] = (s.out_channels, last, 1)
    k[f"{p}final_proj.bias"] = (s.out_channels,)
    return k


def random_checkpoint(cfg: FlowConfig, seed: int) -> dict[str, torch.Tensor]:
    def overrides(name, shape, gen):
        if name == "input_embedding.weight":
            return torch.randn(shape, generator=gen)
        return None

    return random_state_dict(official_keys(cfg), seed, overrides)
