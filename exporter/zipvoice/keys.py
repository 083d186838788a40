"""Official ZipVoice `model.pt` and Vocos `pytorch_model.bin` key -> shape tables, written from
the official constructors' structure (TTSZipformer / Zipformer2EncoderLayer / VocosBackbone /
ISTFTHead), independently of our nn.Modules, plus seeded random weights scaled like a trained
model (bypass scales near 0.5, BiasNorm log-scale near 1: weights drawn without regard to these
make the Zipformer's activations explode, which tests nothing).
"""
from __future__ import annotations

import torch

from ..keys_common import random_state_dict
from .config import VocosConfig, ZipformerConfig, ZipVoiceModelConfig


def _linear(p: str, n_out: int, n_in: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
    k = {f"{p}.weight": (n_out, n_in)}
    if bias:
        k[f"{p}.bias"] = (n_out,)
    return k


def _layer(p: str, c: ZipformerConfig, kernel: int) -> dict[str, tuple[int, ...]]:
    d, h = c.dim, c.num_heads
    k = {f"{p}.bypass.bypass_scale": (d,), f"{p}.bypass_mid.bypass_scale": (d,)}
    k.update(_linear(f"{p}.self_attn_weights.in_proj", (2 * c.query_head_dim + c.pos_head_dim) * h, d))
    k.update(_linear(f"{p}.self_attn_weights.linear_pos", h * c.pos_head_dim, c.pos_dim, bias=False))
    for a in ("self_attn1", "self_attn2"):
        k.update(_linear(f"{p}.{a}.in_proj", h * c.value_head_dim, d))
        k.update(_linear(f"{p}.{a}.out_proj", d, h * c.value_head_dim))
    for i, hidden in ((1, c.feedforward_dim * 3 // 4), (2, c.feedforward_dim), (3, c.feedforward_dim * 5 // 4)):
        k.update(_linear(f"{p}.feed_forward{i}.in_proj", hidden, d))
        k.update(_linear(f"{p}.feed_forward{i}.out_proj", d, hidden))
    na = 3 * d // 4
    k.update(_linear(f"{p}.nonlin_attention.in_proj", 3 * na, d))
    k.update(_linear(f"{p}.nonlin_attention.out_proj", d, na))
    for i in (1, 2):
        k.update(_linear(f"{p}.conv_module{i}.in_proj", 2 * d, d))
        k[f"{p}.conv_module{i}.depthwise_conv.weight"] = (d, 1, kernel)
        k[f"{p}.conv_module{i}.depthwise_conv.bias"] = (d,)
        k.update(_linear(f"{p}.conv_module{i}.out_proj", d, d))
    k[f"{p}.norm.log_scale"] = ()
    k[f"{p}.norm.bias"] = (d,)
    return k


def zipformer_keys(p: str, c: ZipformerConfig) -> dict[str, tuple[int, ...]]:
    k = {}
    k.update(_linear(f"{p}.in_proj", c.dim, c.in_dim))
    k.update(_linear(f"{p}.out_proj", c.out_dim, c.dim))
    for i, (ds, n, kern) in enumerate(zip(c.downsampling_factor, c.num_layers, c.cnn_module_kernel)):
        s = f"{p}.encoders.{i}" + (".encoder" if ds != 1 else "")
        if ds != 1:
            k[f"{p}.encoders.{i}.downsample.bias"] = (ds,)
            k[f"{p}.encoders.{i}.out_combiner.bypass_scale"] = (c.dim,)
        if c.time_embed_dim > 0:
            k.update(_linear(f"{s}.time_emb.1", c.dim, c.time_embed_dim))
        for j in range(n):
            k.update(_layer(f"{s}.layers.{j}", c, kern))
    if c.time_embed_dim > 0:
        k.update(_linear(f"{p}.time_embed.0", 2 * c.time_embed_dim, c.time_embed_dim))
        k.update(_linear(f"{p}.time_embed.2", c.time_embed_dim, 2 * c.time_embed_dim))
    if c.guidance_scale_embed_dim > 0:
        k.update(_linear(f"{p}.guidance_scale_embed", c.time_embed_dim, c.guidance_scale_embed_dim, bias=False))
    return k


def official_keys(c: ZipVoiceModelConfig, distill: bool) -> dict[str, tuple[int, ...]]:
    k = {"embed.weight": (c.vocab_size, c.text_embed_dim)}
    k.update(zipformer_keys("fm_decoder", c.fm_decoder(distill)))
    k.update(zipformer_keys("text_encoder", c.text_encoder()))
    return k


def vocos_keys(v: VocosConfig) -> dict[str, tuple[int, ...]]:
    k = {"backbone.embed.weight": (v.dim, v.input_channels, 7), "backbone.embed.bias": (v.dim,),
         "backbone.norm.weight": (v.dim,), "backbone.norm.bias": (v.dim,)}
    for i in range(v.num_layers):
        p = f"backbone.convnext.{i}"
        k.update({f"{p}.dwconv.weight": (v.dim, 1, 7), f"{p}.dwconv.bias": (v.dim,),
                  f"{p}.norm.weight": (v.dim,), f"{p}.norm.bias": (v.dim,), f"{p}.gamma": (v.dim,)})
        k.update(_linear(f"{p}.pwconv1", v.intermediate_dim, v.dim))
        k.update(_linear(f"{p}.pwconv2", v.dim, v.intermediate_dim))
    k.update({"backbone.final_layer_norm.weight": (v.dim,), "backbone.final_layer_norm.bias": (v.dim,)})
    k.update(_linear("head.out", v.n_fft + 2, v.dim))
    # buffers the published file carries (torchaudio MelSpectrogram of the feature extractor, ISTFT window)
    k.update({"feature_extractor.mel_spec.spectrogram.window": (v.n_fft,),
              "feature_extractor.mel_spec.mel_scale.fb": (v.n_fft // 2 + 1, v.n_mels), "head.istft.window": (v.n_fft,)})
    return k


def _zipvoice_override(name: str, shape, gen: torch.Generator):
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "bypass_scale":
        return 0.5 + 0.05 * torch.randn(shape, generator=gen)
    if leaf == "log_scale":
        return torch.tensor(1.0) + 0.05 * torch.randn((), generator=gen)
    if name.endswith("downsample.bias"):
        return 0.1 * torch.randn(shape, generator=gen)
    if name == "embed.weight":
        return torch.randn(shape, generator=gen)
    if name.endswith("out_proj.weight") or name.endswith("guidance_scale_embed.weight"):
        # official initial_scale 0.05-0.1 on output projections keeps the residual stream bounded
        return 0.1 * torch.randn(shape, generator=gen) / shape[1] ** 0.5
    return None


def random_checkpoint(c: ZipVoiceModelConfig, distill: bool, seed: int) -> dict[str, torch.Tensor]:
    return random_state_dict(official_keys(c, distill), seed, _zipvoice_override)


def _vocos_buffers(v: VocosConfig) -> dict[str, torch.Tensor]:
    from runtime_ref.audio import hann_periodic
    from runtime_ref.zipvoice.fbank import mel_filterbank

    win = torch.from_numpy(hann_periodic(v.n_fft)).float()
    fb = torch.from_numpy(mel_filterbank(v.sample_rate, v.n_fft, v.n_mels)).float()
    return {"feature_extractor.mel_spec.spectrogram.window": win, "feature_extractor.mel_spec.mel_scale.fb": fb,
            "head.istft.window": win.clone()}


def _vocos_override(name: str, shape, gen: torch.Generator):
    if name.endswith(".gamma"):
        return 0.125 + 0.02 * torch.randn(shape, generator=gen)  # layer_scale_init_value = 1 / num_layers
    if name.startswith("backbone.") and "norm" in name and name.endswith(".weight"):
        return 1.0 + 0.1 * torch.randn(shape, generator=gen)
    if name == "head.out.weight":
        return 0.5 * torch.randn(shape, generator=gen) / shape[1] ** 0.5
    return None


def random_vocos(v: VocosConfig, seed: int) -> dict[str, torch.Tensor]:
    sd = random_state_dict(vocos_keys(v), seed, _vocos_override)
    sd.update(_vocos_buffers(v))
    return sd
