"""ZipVoice model directories in the published layout with seeded random weights (no weights can
be downloaded here): `model.json`, `tokens.txt`, `model.pt` (`{"model": state_dict}`, as the
training scripts save it) or `model.safetensors`, and `vocos/config.yaml` + `pytorch_model.bin`.

- `tiny`: small dims (a few MB) for tests and `sentis-tts demo --family zipvoice`;
- `full`: the published ZipVoice dims (≈123 M parameters with Vocos) for benchmarks.
`variant="zipvoice_distill"` adds the distilled decoder's guidance-scale embedding;
`tokenizer="japanese_accent"` writes a token table with pyopenjtalk phonemes and the accent
marks [H] [L] | [Q] (the Japanese fork's front-end) instead of characters.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..checkpoint import save_state_dict
from ..fixtures import staged_dir
from .config import VocosConfig, ZipVoiceModelConfig
from .keys import random_checkpoint, random_vocos

SIZES = {
    "tiny": dict(model=dict(fm_decoder_downsampling_factor=[1, 2, 4, 2, 1], fm_decoder_num_layers=[1, 1, 1, 1, 1],
                            fm_decoder_cnn_module_kernel=[15, 7, 5, 7, 15], fm_decoder_feedforward_dim=96,
                            fm_decoder_num_heads=4, fm_decoder_dim=64, text_encoder_num_layers=2,
                            text_encoder_feedforward_dim=64, text_encoder_cnn_module_kernel=9, text_encoder_num_heads=4,
                            text_encoder_dim=48, time_embed_dim=32, text_embed_dim=48, query_head_dim=8,
                            value_head_dim=4, pos_head_dim=4, pos_dim=16, feat_dim=100),
                 vocos=dict(dim=64, intermediate_dim=96, num_layers=2)),
    # the published k2-fsa/ZipVoice model.json values (= ZipVoice.__init__ defaults) and vocos-mel-24khz
    "full": dict(model=dict(fm_decoder_downsampling_factor=[1, 2, 4, 2, 1], fm_decoder_num_layers=[2, 2, 4, 4, 4],
                            fm_decoder_cnn_module_kernel=[31, 15, 7, 15, 31], fm_decoder_feedforward_dim=1536,
                            fm_decoder_num_heads=4, fm_decoder_dim=512, text_encoder_num_layers=4,
                            text_encoder_feedforward_dim=512, text_encoder_cnn_module_kernel=9, text_encoder_num_heads=4,
                            text_encoder_dim=192, time_embed_dim=192, text_embed_dim=192, query_head_dim=32,
                            value_head_dim=12, pos_head_dim=4, pos_dim=48, feat_dim=100),
                 vocos=dict(dim=512, intermediate_dim=1536, num_layers=8)),
}

CHAR_TOKENS = list(" abcdefghijklmnopqrstuvwxyz'") + list(",.!?;:") + list("あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんっー")
# pyopenjtalk phoneme inventory + accent marks
JAPANESE_TOKENS = ["[H]", "[L]", "|", "[Q]", "pau", "a", "i", "u", "e", "o", "A", "I", "U", "E", "O", "N", "cl", "k", "ky",
                   "g", "gy", "s", "sh", "z", "j", "t", "ch", "ts", "d", "dy", "ty", "n", "ny", "h", "hy", "f", "b", "by",
                   "p", "py", "m", "my", "y", "r", "ry", "w", "v"]


def vocos_yaml(v: VocosConfig) -> str:
    return f"""feature_extractor:
  class_path: vocos.feature_extractors.MelSpectrogramFeatures
  init_args:
    sample_rate: {v.sample_rate}
    n_fft: {v.n_fft}
    hop_length: {v.hop_length}
    n_mels: {v.n_mels}
    padding: center

backbone:
  class_path: vocos.models.VocosBackbone
  init_args:
    input_channels: {v.input_channels}
    dim: {v.dim}
    intermediate_dim: {v.intermediate_dim}
    num_layers: {v.num_layers}

head:
  class_path: vocos.heads.ISTFTHead
  init_args:
    dim: {v.dim}
    n_fft: {v.n_fft}
    hop_length: {v.hop_length}
    padding: center
"""


def build_model_dir(dst: str | Path, size: str = "tiny", seed: int = 0, *, fmt: str = "pt", variant: str = "zipvoice",
                    tokenizer: str = "simple", overwrite: bool = False) -> Path:
    """Write a complete ZipVoice model directory (temp dir, then rename). Returns its path."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}")
    if variant not in ("zipvoice", "zipvoice_distill"):
        raise ValueError("variant must be zipvoice or zipvoice_distill")
    with staged_dir(dst, overwrite) as tmp:
        s = SIZES[size]
        symbols = ["_"] + (JAPANESE_TOKENS if tokenizer == "japanese_accent" else CHAR_TOKENS)
        (tmp / "tokens.txt").write_text("".join(f"{t}\t{i}\n" for i, t in enumerate(symbols)), encoding="utf-8")
        doc = {"model": s["model"], "feature": {"type": "vocos", "sampling_rate": 24000, "frame_shift": 256 / 24000,
                                                "num_mel_bins": 100}}
        (tmp / "model.json").write_text(json.dumps(doc, indent=2) + "\n")
        cfg = ZipVoiceModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in s["model"].items()},
                                  vocab_size=len(symbols), pad_id=0)
        sd = random_checkpoint(cfg, variant == "zipvoice_distill", seed)
        if fmt == "safetensors":
            save_state_dict(sd, tmp / "model.safetensors")
        else:
            torch.save({"model": sd}, tmp / "model.pt")
        v = VocosConfig(**s["vocos"])
        (tmp / "vocos").mkdir()
        (tmp / "vocos" / "config.yaml").write_text(vocos_yaml(v))
        torch.save(random_vocos(v, seed + 1), tmp / "vocos" / "pytorch_model.bin")
    return Path(dst)
