"""Official `hift.pt` key layout (HiFTGenerator, weight-norm parametrizations), fact sheet §7.3."""
from __future__ import annotations

import torch

from ..config import HiFTConfig
from ..keys_common import random_state_dict

WN_G = "parametrizations.weight.original0"
WN_V = "parametrizations.weight.original1"


def _wn(p: str, v_shape: tuple[int, ...], transpose: bool = False) -> dict[str, tuple[int, ...]]:
    """Weight-normed conv: g over dim 0 (= input channels for ConvTranspose1d), v, bias."""
    g_shape = (v_shape[0], 1, 1)
    bias = v_shape[1] if transpose else v_shape[0]
    return {f"{p}bias": (bias,), f"{p}{WN_G}": g_shape, f"{p}{WN_V}": v_shape}


def _resblock(p: str, ch: int, k: int, n_dil: int) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for j in range(n_dil):
        out.update(_wn(f"{p}convs1.{j}.", (ch, ch, k)))
    for j in range(n_dil):
        out.update(_wn(f"{p}convs2.{j}.", (ch, ch, k)))
    for j in range(n_dil):
        out[f"{p}activations1.{j}.alpha"] = (ch,)
    for j in range(n_dil):
        out[f"{p}activations2.{j}.alpha"] = (ch,)
    return out


def official_keys(cfg: HiFTConfig) -> dict[str, tuple[int, ...]]:
    n_bins = cfg.istft_n_fft // 2 + 1
    k: dict[str, tuple[int, ...]] = {
        "m_source.l_linear.weight": (1, cfg.nb_harmonics + 1),
        "m_source.l_linear.bias": (1,),
    }
    k.update(_wn("conv_pre.", (cfg.base_channels, cfg.in_channels, 7)))
    ch = cfg.base_channels
    for i, (u, ks) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
        k.update(_wn(f"ups.{i}.", (ch, ch // 2, ks), transpose=True))
        ch //= 2
    # source downsampling convs (not weight-normed)
    # cumulative downsampling of the source STFT to each stage's rate: [1]+rates[::-1][:-1], cumprod, reversed
    down_strides, cum = [], 1
    for r in [1] + list(cfg.upsample_rates[::-1][:-1]):
        cum *= r
        down_strides.append(cum)
    down_strides = down_strides[::-1]
    ch = cfg.base_channels
    for i, (u, sk, sd) in enumerate(zip(down_strides, cfg.source_resblock_kernel_sizes, cfg.source_resblock_dilation_sizes)):
        ch //= 2
        kernel = 1 if u == 1 else u * 2
        k[f"source_downs.{i}.weight"] = (ch, n_bins * 2, kernel)
        k[f"source_downs.{i}.bias"] = (ch,)
        k.update(_resblock(f"source_resblocks.{i}.", ch, sk, len(sd)))
    ch = cfg.base_channels
    n = 0
    for i in range(len(cfg.upsample_rates)):
        ch //= 2
        for ks, ds in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
            k.update(_resblock(f"resblocks.{n}.", ch, ks, len(ds)))
            n += 1
    k.update(_wn("conv_post.", (n_bins * 2, ch, 7)))
    c = cfg.f0_cond_channels
    for i, idx in enumerate((0, 2, 4, 6, 8)):
        k.update(_wn(f"f0_predictor.condnet.{idx}.", (c, cfg.f0_in_channels if i == 0 else c, 3)))
    k["f0_predictor.classifier.weight"] = (1, c)
    k["f0_predictor.classifier.bias"] = (1,)
    return k


def random_checkpoint(cfg: HiFTConfig, seed: int) -> dict[str, torch.Tensor]:
    def overrides(name, shape, gen):
        if name.endswith(".alpha"):
            return 0.5 + torch.rand(shape, generator=gen)  # Snake alpha > 0
        if name.endswith(WN_G):
            return 0.5 + 0.5 * torch.rand(shape, generator=gen)
        if name == "f0_predictor.classifier.bias":
            return torch.full(shape, 350.0)
        if name == "f0_predictor.classifier.weight":  # f0 = |w.h + 350|: median ~300 Hz, 5..95 % ~250..360,
            return 100.0 * torch.randn(shape, generator=gen)  # ~180..470 Hz on smooth mels (voiced, realistic)
        return None

    return random_state_dict(official_keys(cfg), seed, overrides)
