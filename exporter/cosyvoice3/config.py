"""Hyper-parameters of Fun-CosyVoice3-0.5B, read from `cosyvoice3.yaml` (safe reader) and
`CosyVoice-BlankEN/config.json`.

What differs from CosyVoice2 (official cosyvoice/llm/llm.py, flow/flow.py, flow/DiT, hifigan):
- LM `CosyVoice3LM`: no `llm_embedding`; sos / eos / task_id / fill are speech_embedding rows
  speech_token_size + 0/1/2/3 of a (speech_token_size + 200)-row table; `llm_decoder` has no bias;
  every id >= speech_token_size stops decoding (200 stop ids).
- flow `CausalMaskedDiffWithDiT`: token embedding (80 wide) -> PreLookaheadLayer (80 -> 1024 -> 80)
  -> repeat x token_mel_ratio = mu; estimator `DiT` (dim 1024, depth 22, 16 heads × 64).
- vocoder `CausalHiFTGenerator` + `CausalConvRNNF0Predictor`: causal convs, `conv_pre_look_right`.

The yaml's class paths are recorded (`classes`) and checked: a CosyVoice3 yaml whose llm/flow/hift
name other classes is refused in one line instead of being exported with the wrong code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import (
    HiFTConfig, LLMConfig, MelConfig, Qwen2Config, _args, _get, parse_cfm, parse_hift, parse_llm, parse_mel, parse_top,
)
from ..errors import ModelDirError
from ..hyperyaml import Tagged

N_SPECIAL = 200  # speech_token_size + 200 rows / outputs (official CosyVoice3LM)
CLASSES = {
    "llm": "cosyvoice.llm.llm.CosyVoice3LM",
    "flow": "cosyvoice.flow.flow.CausalMaskedDiffWithDiT",
    "hift": "cosyvoice.hifigan.generator.CausalHiFTGenerator",
    "flow.decoder": "cosyvoice.flow.flow_matching.CausalConditionalCFM",
    "flow.decoder.estimator": "cosyvoice.flow.DiT.dit.DiT",
    "flow.pre_lookahead_layer": "cosyvoice.transformer.upsample_encoder.PreLookaheadLayer",
    "hift.f0_predictor": "cosyvoice.hifigan.f0_predictor.CausalConvRNNF0Predictor",
}


@dataclass
class CosyVoice3LLMConfig(LLMConfig):
    """CosyVoice3LM: the specials live in speech_embedding (rows speech_token_size + 0..3)."""

    @property
    def sos_token(self) -> int:
        return self.speech_token_size

    @property
    def eos_token(self) -> int:
        return self.speech_token_size + 1

    @property
    def task_token(self) -> int:
        return self.speech_token_size + 2

    @property
    def fill_token(self) -> int:
        return self.speech_token_size + 3

    @property
    def stop_token_ids(self) -> list[int]:
        return [self.speech_token_size + i for i in range(N_SPECIAL)]

    @property
    def speech_vocab(self) -> int:
        return self.speech_token_size + N_SPECIAL

    @property
    def min_len_masked_token(self) -> int:
        """The id the official `sampling_ids(ignore_eos=True)` masks: index speech_token_size (in
        CosyVoice3 that is sos, not eos — the official behaviour, kept)."""
        return self.speech_token_size


@dataclass
class DiTConfig:
    dim: int = 1024
    depth: int = 22
    heads: int = 16
    dim_head: int = 64
    ff_mult: int = 2
    mel_dim: int = 80
    mu_dim: int = 80
    spk_dim: int = 80
    out_channels: int = 80
    static_chunk_size: int = 50  # mel frames (chunk_size * token_mel_ratio)
    long_skip_connection: bool = False
    conv_pos_kernel: int = 31  # CausalConvPositionEmbedding (official defaults)
    conv_pos_groups: int = 16
    time_freq_dim: int = 256  # TimestepEmbedding freq_embed_dim


@dataclass
class DiTFlowConfig:
    """CausalMaskedDiffWithDiT + CausalConditionalCFM."""

    input_size: int = 80
    output_size: int = 80
    spk_embed_dim: int = 192
    vocab_size: int = 6561
    token_mel_ratio: int = 2
    pre_lookahead_len: int = 3
    pre_lookahead_channels: int = 1024
    estimator: DiTConfig = field(default_factory=DiTConfig)
    n_timesteps: int = 10
    inference_cfg_rate: float = 0.7
    t_scheduler: str = "cosine"
    chunk_tokens: int = 25  # streaming chunk in tokens (static_chunk_size / token_mel_ratio)


@dataclass
class CausalHiFTConfig(HiFTConfig):
    conv_pre_look_right: int = 4
    f0_first_kernel: int = 4  # CausalConvRNNF0Predictor condnet.0 (right-causal, kernel 4)


@dataclass
class CosyVoice3Config:
    sample_rate: int = 24000
    token_frame_rate: int = 25
    token_mel_ratio: int = 2
    chunk_size: int = 25
    tokenizer_version: str = "cosyvoice2"  # yaml get_tokenizer: version (cosyvoice3 in the official yaml)
    llm: CosyVoice3LLMConfig = field(default_factory=CosyVoice3LLMConfig)
    flow: DiTFlowConfig = field(default_factory=DiTFlowConfig)
    hift: CausalHiFTConfig = field(default_factory=CausalHiFTConfig)
    mel: MelConfig = field(default_factory=lambda: MelConfig(fmax=None))
    classes: dict[str, str] = field(default_factory=dict)  # yaml node -> class path (recorded, checked)

    def to_dict(self) -> dict:
        return asdict(self)


def _class_of(doc: dict, dotted: str) -> str | None:
    node: Any = doc
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, (dict, Tagged)) else None
    return node.target if isinstance(node, Tagged) else None


def record_classes(doc: dict, where: str) -> dict[str, str]:
    """The class path of every node sentis-tts builds; refuse a yaml naming other classes."""
    found = {k: _class_of(doc, k) for k in CLASSES}
    wrong = [f"{k}: {v or 'no !new: tag'} (expected {CLASSES[k]})" for k, v in found.items() if v != CLASSES[k]]
    if wrong:
        raise ModelDirError(f"{where}: not a CosyVoice3 configuration — " + "; ".join(wrong))
    return {k: v for k, v in found.items() if v}


def parse_dit_flow(node: Any, where: str) -> DiTFlowConfig:
    fa = _args(node, f"{where}: flow")
    f = DiTFlowConfig()
    for name in ("input_size", "output_size", "spk_embed_dim", "vocab_size", "token_mel_ratio", "pre_lookahead_len"):
        setattr(f, name, _get(fa, name, getattr(f, name), where, int))
    pa = _args(fa.get("pre_lookahead_layer"), f"{where}: flow.pre_lookahead_layer")
    f.pre_lookahead_channels = _get(pa, "channels", f.pre_lookahead_channels, where, int)
    if _get(pa, "in_channels", f.input_size, where, int) != f.input_size:
        raise ModelDirError(f"{where}: flow.pre_lookahead_layer.in_channels must equal flow.input_size {f.input_size}")
    if _get(pa, "pre_lookahead_len", f.pre_lookahead_len, where, int) != f.pre_lookahead_len:
        raise ModelDirError(f"{where}: flow.pre_lookahead_layer.pre_lookahead_len must equal flow.pre_lookahead_len")
    da, f.inference_cfg_rate, f.t_scheduler = parse_cfm(fa.get("decoder"), where)
    ea = _args(da.get("estimator"), f"{where}: flow.decoder.estimator")
    e = DiTConfig()
    for name in ("dim", "depth", "heads", "dim_head", "ff_mult", "mel_dim", "out_channels", "static_chunk_size"):
        setattr(e, name, _get(ea, name, getattr(e, name), where, int))
    e.mu_dim = _get(ea, "mu_dim", e.mel_dim, where, int)
    e.spk_dim = _get(ea, "spk_dim", e.spk_dim, where, int)
    e.long_skip_connection = bool(ea.get("long_skip_connection", False))
    if e.mu_dim != f.output_size or e.mel_dim != f.output_size or e.spk_dim != f.output_size:
        raise ModelDirError(f"{where}: DiT mel_dim/mu_dim/spk_dim ({e.mel_dim}/{e.mu_dim}/{e.spk_dim}) must equal flow.output_size {f.output_size}")
    if f.input_size != f.output_size:
        raise ModelDirError(f"{where}: flow.input_size {f.input_size} must equal output_size {f.output_size} (mu is the lookahead output)")
    if e.static_chunk_size % f.token_mel_ratio:
        raise ModelDirError(f"{where}: DiT static_chunk_size {e.static_chunk_size} is not a multiple of token_mel_ratio")
    f.estimator = e
    f.chunk_tokens = e.static_chunk_size // f.token_mel_ratio
    return f


def parse_config(doc: dict, qwen: Qwen2Config, where: str) -> CosyVoice3Config:
    for key in ("llm", "flow", "hift"):
        if key not in doc:
            raise ModelDirError(f"{where}: missing top-level '{key}' section")
    top = CosyVoice3Config()
    top.classes = record_classes(doc, where)
    parse_top(doc, top, where)
    top.llm = parse_llm(doc["llm"], qwen, where, cls=CosyVoice3LLMConfig)
    top.flow = parse_dit_flow(doc["flow"], where)
    top.hift = parse_hift(doc["hift"], where, cls=CausalHiFTConfig)
    top.hift.conv_pre_look_right = _get(_args(doc["hift"], where), "conv_pre_look_right", 4, where, int)
    top.mel = parse_mel(doc.get("feat_extractor"), where)
    return top
