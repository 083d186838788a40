"""Hyper-parameters of every CosyVoice2 component, read from the official files.

`cosyvoice2.yaml` (via the safe `hyperyaml` reader) gives the LLM head, flow and HiFT settings;
`CosyVoice-BlankEN/config.json` gives the Qwen2 backbone. Defaults are the CosyVoice2-0.5B values
(../shared/reference/cosyvoice2_architecture.md), used only where the yaml is silent, exactly as
the official constructors' defaults would be.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelDirError
from .hyperyaml import Tagged


def _args(node: Any, where: str) -> dict:
    if isinstance(node, Tagged):
        return node.args if isinstance(node.args, dict) else {}
    if isinstance(node, dict):
        return node
    if node is None:
        return {}
    raise ModelDirError(f"{where}: expected a mapping or a !new: node, got {type(node).__name__}")


def _get(d: dict, key: str, default: Any, where: str, typ: type | tuple = (int, float)) -> Any:
    v = d.get(key, default)
    if v is None:
        return default
    if typ is int and isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, typ) or isinstance(v, bool) and typ is not bool:
        raise ModelDirError(f"{where}: '{key}' should be {getattr(typ, '__name__', typ)}, got {v!r}")
    return v


@dataclass
class Qwen2Config:
    """The Qwen2 backbone (CosyVoice-BlankEN/config.json)."""

    hidden_size: int = 896
    num_hidden_layers: int = 24
    num_attention_heads: int = 14
    num_key_value_heads: int = 2
    intermediate_size: int = 4864
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000.0
    vocab_size: int = 151936
    max_position_embeddings: int = 32768
    tie_word_embeddings: bool = True

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_json(cls, path: Path) -> "Qwen2Config":
        from .hyperyaml import read_utf8

        try:
            raw = json.loads(read_utf8(path))
        except json.JSONDecodeError as e:
            raise ModelDirError(f"{path}: not valid JSON (line {e.lineno}): {e.msg} (use the config.json of the official model)") from None
        except RecursionError:
            raise ModelDirError(f"{path}: nested too deeply to read (use the config.json of the official model)") from None
        where = str(path)
        if not isinstance(raw, dict):
            raise ModelDirError(f"{where}: expected a JSON object of Qwen2 hyper-parameters, got a {type(raw).__name__}")
        required = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"]
        missing = [k for k in required if k not in raw]
        if missing:
            raise ModelDirError(f"{where}: missing Qwen2 hyper-parameters: {', '.join(missing)}")
        cfg = cls(
            hidden_size=_get(raw, "hidden_size", 896, where, int),
            num_hidden_layers=_get(raw, "num_hidden_layers", 24, where, int),
            num_attention_heads=_get(raw, "num_attention_heads", 14, where, int),
            num_key_value_heads=_get(raw, "num_key_value_heads", raw.get("num_attention_heads"), where, int),
            intermediate_size=_get(raw, "intermediate_size", 4864, where, int),
            rms_norm_eps=float(_get(raw, "rms_norm_eps", 1e-6, where)),
            rope_theta=float(_get(raw, "rope_theta", 1_000_000.0, where)),
            vocab_size=_get(raw, "vocab_size", 151936, where, int),
            max_position_embeddings=_get(raw, "max_position_embeddings", 32768, where, int),
            tie_word_embeddings=bool(raw.get("tie_word_embeddings", True)),
        )
        if cfg.hidden_size % cfg.num_attention_heads or cfg.num_attention_heads % cfg.num_key_value_heads:
            raise ModelDirError(
                f"{where}: hidden_size {cfg.hidden_size}, heads {cfg.num_attention_heads} and "
                f"kv heads {cfg.num_key_value_heads} are not divisible"
            )
        return cfg

    def to_json_dict(self) -> dict:
        d = asdict(self)
        d.update({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_act": "silu"})
        return d


@dataclass
class SamplingConfig:
    top_p: float = 0.8
    top_k: int = 25
    win_size: int = 10
    tau_r: float = 0.1


@dataclass
class LLMConfig:
    """Qwen2LM (yaml `llm`) + its backbone."""

    qwen: Qwen2Config = field(default_factory=Qwen2Config)
    llm_input_size: int = 896
    llm_output_size: int = 896
    speech_token_size: int = 6561
    mix_ratio: tuple[int, int] = (5, 15)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    @property
    def eos_token(self) -> int:
        return self.speech_token_size

    @property
    def fill_token(self) -> int:
        return self.speech_token_size + 2

    @property
    def stop_token_ids(self) -> list[int]:
        return [self.speech_token_size + i for i in range(3)]

    @property
    def speech_vocab(self) -> int:
        """Rows of speech_embedding / outputs of llm_decoder: tokens + 3 specials."""
        return self.speech_token_size + 3

    @property
    def min_len_masked_token(self) -> int:
        """The score the official `sampling_ids(ignore_eos=True)` masks before min_len: index
        speech_token_size (eos in CosyVoice2)."""
        return self.speech_token_size


@dataclass
class FlowEncoderConfig:
    output_size: int = 512
    attention_heads: int = 8
    linear_units: int = 2048
    num_blocks: int = 6
    num_up_blocks: int = 4  # hard-coded in the official UpsampleConformerEncoder
    input_size: int = 512
    static_chunk_size: int = 25
    # The official encoder hard-codes 512 for the pre-lookahead and up layers (pitfalls.md);
    # for official checkpoints this equals output_size.
    pre_lookahead_channels: int = 512
    up_stride: int = 2


@dataclass
class FlowEstimatorConfig:
    in_channels: int = 320
    out_channels: int = 80
    channels: tuple[int, ...] = (256,)
    attention_head_dim: int = 64
    n_blocks: int = 4
    num_mid_blocks: int = 12
    num_heads: int = 8
    static_chunk_size: int = 50


@dataclass
class FlowConfig:
    input_size: int = 512
    output_size: int = 80
    spk_embed_dim: int = 192
    vocab_size: int = 6561
    token_mel_ratio: int = 2
    pre_lookahead_len: int = 3
    encoder: FlowEncoderConfig = field(default_factory=FlowEncoderConfig)
    estimator: FlowEstimatorConfig = field(default_factory=FlowEstimatorConfig)
    n_timesteps: int = 10
    inference_cfg_rate: float = 0.7
    t_scheduler: str = "cosine"
    spk_emb_dim_cfm: int = 80

    @property
    def chunk_tokens(self) -> int:
        """Streaming chunk in tokens (the encoder's static chunk)."""
        return self.encoder.static_chunk_size


@dataclass
class HiFTConfig:
    in_channels: int = 80
    base_channels: int = 512
    nb_harmonics: int = 8
    sampling_rate: int = 24000
    nsf_alpha: float = 0.1
    nsf_sigma: float = 0.003
    nsf_voiced_threshold: float = 10.0
    upsample_rates: tuple[int, ...] = (8, 5, 3)
    upsample_kernel_sizes: tuple[int, ...] = (16, 11, 7)
    istft_n_fft: int = 16
    istft_hop_len: int = 4
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    source_resblock_kernel_sizes: tuple[int, ...] = (7, 7, 11)
    source_resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    lrelu_slope: float = 0.1
    audio_limit: float = 0.99
    f0_in_channels: int = 80
    f0_cond_channels: int = 512

    @property
    def hop_samples(self) -> int:
        """Output samples per mel frame (480 for CosyVoice2)."""
        n = self.istft_hop_len
        for r in self.upsample_rates:
            n *= r
        return n


@dataclass
class MelConfig:
    """The flow's 24 kHz prompt mel (`feat_extractor`)."""

    n_fft: int = 1920
    num_mels: int = 80
    sampling_rate: int = 24000
    hop_size: int = 480
    win_size: int = 1920
    fmin: float = 0.0
    fmax: float | None = 8000.0
    center: bool = False


@dataclass
class CosyVoice2Config:
    sample_rate: int = 24000
    token_frame_rate: int = 25
    token_mel_ratio: int = 2
    chunk_size: int = 25
    tokenizer_version: str = "cosyvoice2"  # yaml get_tokenizer: version (the special-token list)
    llm: LLMConfig = field(default_factory=LLMConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    hift: HiFTConfig = field(default_factory=HiFTConfig)
    mel: MelConfig = field(default_factory=MelConfig)

    def to_dict(self) -> dict:
        return asdict(self)


def _tuple(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tuple(x) for x in v)
    return v


def parse_top(doc: dict, top: Any, where: str) -> None:
    """The shared top-level numbers (sample_rate, token_frame_rate, token_mel_ratio, chunk_size) and
    the text tokenizer's version (`get_tokenizer: version`, official default cosyvoice2), which
    names the special-token list the official tokenizer adds."""
    from runtime_ref.text.special_tokens import SPECIAL_TOKEN_LISTS

    top.sample_rate = _get(doc, "sample_rate", top.sample_rate, where, int)
    top.token_frame_rate = _get(doc, "token_frame_rate", top.token_frame_rate, where, int)
    top.token_mel_ratio = _get(doc, "token_mel_ratio", top.token_mel_ratio, where, int)
    top.chunk_size = _get(doc, "chunk_size", top.chunk_size, where, int)
    top.tokenizer_version = _get(_args(doc.get("get_tokenizer"), f"{where}: get_tokenizer"), "version", "cosyvoice2", where, str)
    if top.tokenizer_version not in SPECIAL_TOKEN_LISTS:
        raise ModelDirError(f"{where}: get_tokenizer version {top.tokenizer_version!r} is not supported "
                            f"(known: {', '.join(SPECIAL_TOKEN_LISTS)}); use a newer sentis-tts")


def parse_config(doc: dict, qwen: Qwen2Config, where: str) -> CosyVoice2Config:
    """Build a CosyVoice2Config from a resolved yaml document and the Qwen2 config."""
    for key in ("llm", "flow", "hift"):
        if key not in doc:
            raise ModelDirError(f"{where}: missing top-level '{key}' section")
    top = CosyVoice2Config()
    parse_top(doc, top, where)
    top.llm = parse_llm(doc["llm"], qwen, where)
    top.flow = parse_flow(doc["flow"], where)
    top.hift = parse_hift(doc["hift"], where)
    top.mel = parse_mel(doc.get("feat_extractor"), where)
    return top


def parse_llm(node: Any, qwen: Qwen2Config, where: str, cls: type = LLMConfig) -> LLMConfig:
    """The yaml `llm` node (Qwen2LM, or a subclass' config via `cls`)."""
    la = _args(node, f"{where}: llm")
    llm = cls(qwen=qwen)
    llm.llm_input_size = _get(la, "llm_input_size", qwen.hidden_size, where, int)
    llm.llm_output_size = _get(la, "llm_output_size", qwen.hidden_size, where, int)
    llm.speech_token_size = _get(la, "speech_token_size", llm.speech_token_size, where, int)
    mix = la.get("mix_ratio", list(llm.mix_ratio))
    llm.mix_ratio = tuple(int(x) for x in mix)
    sa = _args(la.get("sampling"), f"{where}: llm.sampling")
    llm.sampling = SamplingConfig(
        top_p=float(_get(sa, "top_p", 0.8, where)),
        top_k=_get(sa, "top_k", 25, where, int),
        win_size=_get(sa, "win_size", 10, where, int),
        tau_r=float(_get(sa, "tau_r", 0.1, where)),
    )
    if llm.llm_input_size != qwen.hidden_size or llm.llm_output_size != qwen.hidden_size:
        raise ModelDirError(
            f"{where}: llm_input_size/llm_output_size ({llm.llm_input_size}/{llm.llm_output_size}) "
            f"must equal the Qwen2 hidden_size {qwen.hidden_size} from config.json"
        )
    return llm


def parse_cfm(node: Any, where: str) -> tuple[dict, float, str]:
    """The flow's `decoder` (CausalConditionalCFM): (its args, inference_cfg_rate, t_scheduler)."""
    da = _args(node, f"{where}: flow.decoder")
    cfm = _args(da.get("cfm_params"), f"{where}: flow.decoder.cfm_params")
    cfm = _args(cfm.get("content", cfm), f"{where}: cfm_params.content")
    return da, float(_get(cfm, "inference_cfg_rate", 0.7, where)), str(cfm.get("t_scheduler", "cosine"))


def parse_flow(node: Any, where: str) -> FlowConfig:
    fa = _args(node, f"{where}: flow")
    flow = FlowConfig()
    flow.input_size = _get(fa, "input_size", flow.input_size, where, int)
    flow.output_size = _get(fa, "output_size", flow.output_size, where, int)
    flow.spk_embed_dim = _get(fa, "spk_embed_dim", flow.spk_embed_dim, where, int)
    flow.vocab_size = _get(fa, "vocab_size", flow.vocab_size, where, int)
    flow.token_mel_ratio = _get(fa, "token_mel_ratio", flow.token_mel_ratio, where, int)
    flow.pre_lookahead_len = _get(fa, "pre_lookahead_len", flow.pre_lookahead_len, where, int)
    ea = _args(fa.get("encoder"), f"{where}: flow.encoder")
    enc = FlowEncoderConfig()
    enc.output_size = _get(ea, "output_size", 256, where, int)  # official default is 256
    enc.attention_heads = _get(ea, "attention_heads", 4, where, int)
    enc.linear_units = _get(ea, "linear_units", 2048, where, int)
    enc.num_blocks = _get(ea, "num_blocks", 6, where, int)
    enc.input_size = _get(ea, "input_size", flow.input_size, where, int)
    enc.static_chunk_size = _get(ea, "static_chunk_size", 0, where, int)
    # our extension (not in official yamls): lets tiny fixtures shrink the hard-coded 512 width
    enc.pre_lookahead_channels = _get(ea, "pre_lookahead_channels", 512, where, int)
    enc.num_up_blocks = _get(ea, "num_up_blocks", 4, where, int)
    if not (enc.input_size == enc.output_size == enc.pre_lookahead_channels):
        raise ModelDirError(
            f"{where}: flow.encoder input_size {enc.input_size}, output_size {enc.output_size} and the lookahead/up "
            f"width {enc.pre_lookahead_channels} must be equal (the official UpsampleConformerEncoder hard-codes 512 "
            "for its lookahead and up layers and feeds its up-sampled output through an embed built with input_size)"
        )
    flow.encoder = enc
    da, flow.inference_cfg_rate, flow.t_scheduler = parse_cfm(fa.get("decoder"), where)
    flow.spk_emb_dim_cfm = _get(da, "spk_emb_dim", 80, where, int)
    sa = _args(da.get("estimator"), f"{where}: flow.decoder.estimator")
    est = FlowEstimatorConfig()
    est.in_channels = _get(sa, "in_channels", 320, where, int)
    est.out_channels = _get(sa, "out_channels", 80, where, int)
    est.channels = tuple(int(c) for c in sa.get("channels", [256, 256]))
    est.attention_head_dim = _get(sa, "attention_head_dim", 64, where, int)
    est.n_blocks = _get(sa, "n_blocks", 1, where, int)
    est.num_mid_blocks = _get(sa, "num_mid_blocks", 2, where, int)
    est.num_heads = _get(sa, "num_heads", 4, where, int)
    est.static_chunk_size = _get(sa, "static_chunk_size", 50, where, int)
    flow.estimator = est
    return flow


def parse_hift(node: Any, where: str, cls: type = HiFTConfig) -> HiFTConfig:
    """The yaml `hift` node (HiFTGenerator, or a subclass' config via `cls`)."""
    ha = _args(node, f"{where}: hift")
    h = cls()
    for name in ("in_channels", "base_channels", "nb_harmonics", "sampling_rate"):
        setattr(h, name, _get(ha, name, getattr(h, name), where, int))
    for name in ("nsf_alpha", "nsf_sigma", "nsf_voiced_threshold", "lrelu_slope", "audio_limit"):
        setattr(h, name, float(_get(ha, name, getattr(h, name), where)))
    for name in (
        "upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes", "resblock_dilation_sizes",
        "source_resblock_kernel_sizes", "source_resblock_dilation_sizes",
    ):
        if name in ha:
            setattr(h, name, _tuple(ha[name]))
    ist = _args(ha.get("istft_params"), f"{where}: hift.istft_params")
    h.istft_n_fft = _get(ist, "n_fft", h.istft_n_fft, where, int)
    h.istft_hop_len = _get(ist, "hop_len", h.istft_hop_len, where, int)
    fp = _args(ha.get("f0_predictor"), f"{where}: hift.f0_predictor")
    h.f0_in_channels = _get(fp, "in_channels", h.f0_in_channels, where, int)
    h.f0_cond_channels = _get(fp, "cond_channels", h.f0_cond_channels, where, int)
    return h


def parse_mel(node: Any, where: str) -> MelConfig:
    """The prompt mel (`feat_extractor`)."""
    ma = _args(node, f"{where}: feat_extractor")
    mel = MelConfig()
    for name in ("n_fft", "num_mels", "sampling_rate", "hop_size", "win_size"):
        setattr(mel, name, _get(ma, name, getattr(mel, name), where, int))
    mel.fmin = float(_get(ma, "fmin", mel.fmin, where))
    fmax = ma.get("fmax", mel.fmax)
    mel.fmax = None if fmax is None else float(fmax)
    mel.center = bool(ma.get("center", mel.center))
    return mel
