"""ZipVoice hyper-parameters as the official inference script reads them: `model.json`
(`{"model": {...ZipVoice(**kwargs)}, "feature": {"type": "vocos", "sampling_rate": …}}`),
`tokens.txt` (`token<TAB>id` per line; vocab_size = number of lines, pad_id = id of `_`), the
variant (ZipVoice or ZipVoice-Distill: the distilled fm decoder has a guidance-scale embedding,
read from the checkpoint keys), and the Vocos `config.yaml` (feature extractor, backbone, head).

Defaults are the official constructors' (`ZipVoice.__init__`, `VocosBackbone`, `ISTFTHead`),
so a model.json that omits a key reads as the official code would build it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ModelDirError

# official inference defaults per variant (infer_zipvoice.py `model_defaults`)
VARIANT_DEFAULTS = {
    "zipvoice": {"num_step": 16, "guidance_scale": 1.0},
    "zipvoice_distill": {"num_step": 8, "guidance_scale": 3.0},
}


@dataclass
class ZipformerConfig:
    """One TTSZipformer stack list (text encoder: one stack; fm decoder: a U-Net of stacks)."""

    in_dim: int
    out_dim: int
    downsampling_factor: tuple[int, ...]
    num_layers: tuple[int, ...]
    cnn_module_kernel: tuple[int, ...]
    dim: int
    feedforward_dim: int
    num_heads: int
    query_head_dim: int
    pos_head_dim: int
    value_head_dim: int
    pos_dim: int
    time_embed_dim: int = -1  # -1: no time embedding (text encoder)
    guidance_scale_embed_dim: int = -1  # -1: no guidance embedding (all but the distilled decoder)


@dataclass
class ZipVoiceModelConfig:
    fm_decoder_downsampling_factor: tuple[int, ...] = (1, 2, 4, 2, 1)
    fm_decoder_num_layers: tuple[int, ...] = (2, 2, 4, 4, 4)
    fm_decoder_cnn_module_kernel: tuple[int, ...] = (31, 15, 7, 15, 31)
    fm_decoder_feedforward_dim: int = 1536
    fm_decoder_num_heads: int = 4
    fm_decoder_dim: int = 512
    text_encoder_num_layers: int = 4
    text_encoder_feedforward_dim: int = 512
    text_encoder_cnn_module_kernel: int = 9
    text_encoder_num_heads: int = 4
    text_encoder_dim: int = 192
    time_embed_dim: int = 192
    text_embed_dim: int = 192
    query_head_dim: int = 32
    value_head_dim: int = 12
    pos_head_dim: int = 4
    pos_dim: int = 48
    feat_dim: int = 100
    vocab_size: int = 26
    pad_id: int = 0

    def text_encoder(self) -> ZipformerConfig:
        return ZipformerConfig(
            in_dim=self.text_embed_dim, out_dim=self.feat_dim, downsampling_factor=(1,),
            num_layers=(self.text_encoder_num_layers,), cnn_module_kernel=(self.text_encoder_cnn_module_kernel,),
            dim=self.text_encoder_dim, feedforward_dim=self.text_encoder_feedforward_dim,
            num_heads=self.text_encoder_num_heads, query_head_dim=self.query_head_dim,
            pos_head_dim=self.pos_head_dim, value_head_dim=self.value_head_dim, pos_dim=self.pos_dim)

    def fm_decoder(self, distill: bool) -> ZipformerConfig:
        n = len(self.fm_decoder_downsampling_factor)

        def per_stack(v):
            v = (v,) if isinstance(v, int) else tuple(v)
            return v * n if len(v) == 1 else v

        return ZipformerConfig(
            in_dim=self.feat_dim * 3, out_dim=self.feat_dim,
            downsampling_factor=tuple(self.fm_decoder_downsampling_factor),
            num_layers=per_stack(self.fm_decoder_num_layers), cnn_module_kernel=per_stack(self.fm_decoder_cnn_module_kernel),
            dim=self.fm_decoder_dim, feedforward_dim=self.fm_decoder_feedforward_dim, num_heads=self.fm_decoder_num_heads,
            query_head_dim=self.query_head_dim, pos_head_dim=self.pos_head_dim, value_head_dim=self.value_head_dim,
            pos_dim=self.pos_dim, time_embed_dim=self.time_embed_dim,
            guidance_scale_embed_dim=192 if distill else -1)  # TTSZipformer's guidance_scale_embed_dim default


@dataclass
class VocosConfig:
    """vocos.feature_extractors.MelSpectrogramFeatures + VocosBackbone + ISTFTHead (config.yaml)."""

    sample_rate: int = 24000
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 100
    padding: str = "center"
    input_channels: int = 100
    dim: int = 512
    intermediate_dim: int = 1536
    num_layers: int = 8
    layer_scale_init_value: float | None = None


@dataclass
class ZipVoiceConfig:
    variant: str  # "zipvoice" | "zipvoice_distill"
    model: ZipVoiceModelConfig
    vocos: VocosConfig
    sampling_rate: int = 24000
    feature_type: str = "vocos"
    tokenizer: str = "simple"  # "simple" (characters) | "japanese_accent" (pyopenjtalk-plus accent tokens)
    num_step: int = 16
    guidance_scale: float = 1.0
    t_shift: float = 0.5
    feat_scale: float = 0.1
    target_rms: float = 0.1
    tokens: dict[str, int] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("tokens")
        d["n_tokens"] = len(self.tokens)
        return d


def read_tokens(path: Path) -> dict[str, int]:
    """tokens.txt: `token<TAB>id` per line (SimpleTokenizer/EmiliaTokenizer format). A token may be
    a space (the line then starts with the tab)."""
    out: dict[str, int] = {}
    from ..hyperyaml import read_utf8

    for n, line in enumerate(read_utf8(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 2 or not parts[1].strip().lstrip("-").isdigit():
            raise ModelDirError(f"{path}:{n}: expected 'token<TAB>id', got {line[:40]!r}")
        if parts[0] in out:
            raise ModelDirError(f"{path}:{n}: token {parts[0]!r} appears twice")
        out[parts[0]] = int(parts[1])
    if "_" not in out:
        raise ModelDirError(f"{path}: no padding token '_' (the official tokenizers take pad_id from it)")
    return out


def detect_tokenizer(tokens: dict[str, int]) -> str:
    """The front-end the token table was made for: accent marks [H]/[L] = the Japanese
    pyopenjtalk-plus accent tokenizer; otherwise characters (SimpleTokenizer)."""
    return "japanese_accent" if "[H]" in tokens and "[L]" in tokens else "simple"


def parse_model_json(doc: dict, where: str) -> tuple[ZipVoiceModelConfig, dict]:
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        raise ModelDirError(f"{where}: expected {{\"model\": {{…}}, \"feature\": {{…}}}} (the official model.json)")
    known = set(ZipVoiceModelConfig.__dataclass_fields__) - {"vocab_size", "pad_id"}
    unknown = sorted(set(doc["model"]) - known)
    if unknown:
        raise ModelDirError(f"{where}: unknown model key(s) {', '.join(unknown)} (ZipVoice takes: {', '.join(sorted(known))})")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in doc["model"].items()}
    feature = doc.get("feature", {})
    if feature.get("type", "vocos") != "vocos":
        raise ModelDirError(f"{where}: feature type {feature.get('type')!r} is not supported (the official inference takes 'vocos')")
    return ZipVoiceModelConfig(**kw), feature


def parse_vocos_yaml(path: Path) -> VocosConfig:
    from ..hyperyaml import read_utf8, safe_plain_yaml

    doc = safe_plain_yaml(read_utf8(path), str(path))  # bounded: aliases, expansion, nesting
    if not isinstance(doc, dict):
        raise ModelDirError(f"{path}: expected a mapping (the official vocos config.yaml)")
    c = VocosConfig()
    fe = (doc.get("feature_extractor") or {}).get("init_args", {})
    bb = (doc.get("backbone") or {}).get("init_args", {})
    hd = (doc.get("head") or {}).get("init_args", {})
    for cls, want in ((doc.get("backbone") or {}).get("class_path"), "VocosBackbone"), ((doc.get("head") or {}).get("class_path"), "ISTFTHead"):
        if cls is not None and not str(cls).endswith(want):
            raise ModelDirError(f"{path}: {cls} is not supported (sentis-tts reads Vocos with {want})")
    if bb.get("adanorm_num_embeddings"):
        raise ModelDirError(f"{path}: an AdaLayerNorm backbone (adanorm_num_embeddings) is not supported; use the mel Vocos")
    c.sample_rate = int(fe.get("sample_rate", c.sample_rate))
    c.n_fft = int(hd.get("n_fft", fe.get("n_fft", c.n_fft)))
    c.hop_length = int(hd.get("hop_length", fe.get("hop_length", c.hop_length)))
    c.n_mels = int(fe.get("n_mels", c.n_mels))
    c.padding = str(hd.get("padding", c.padding))
    c.input_channels = int(bb.get("input_channels", c.input_channels))
    c.dim = int(bb.get("dim", c.dim))
    c.intermediate_dim = int(bb.get("intermediate_dim", c.intermediate_dim))
    c.num_layers = int(bb.get("num_layers", c.num_layers))
    c.layer_scale_init_value = bb.get("layer_scale_init_value")
    if c.padding != "center":
        raise ModelDirError(f"{path}: ISTFT padding {c.padding!r} is not supported (the mel Vocos uses 'center')")
    return c
