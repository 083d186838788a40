"""The official CosyVoice modules as oracles, built from our configs: one place for what every
official-code comparison needs (tests/*/official*.py, bench/official.py).

The official code is a scratch copy outside the repo (an unpacked checkout with
third_party/Matcha-TTS, e.g. /tmp/cv_official; COMMON: never committed, only imported). Its imports
need torchaudio, which cannot load with torch 2.13 (shared/reference/pitfalls.md), and a few
training-only packages; `official_imports` puts spec-carrying placeholder modules in sys.modules
while the official modules import (a plain placeholder without __spec__ breaks transformers'
find_spec probes) and takes them out again; the subprocess scripts `install` them for the whole
run instead (the official glue imports more modules as it runs).

    import official_oracle as oo                 # tests/ is on sys.path (pytest rootdir; scripts add it)
    oo.why_absent(root)                          # None, or why the official code cannot be used
    with oo.official_imports(root):
        hift = oo.official_hift(md.config.hift)  # HiFTGenerator, weights not loaded
        flow = oo.official_flow(md.config.flow)  # CausalMaskedDiffWithXvec
        llm = oo.official_qwen2lm(md)            # Qwen2LM over HF Qwen2ForCausalLM (model dir's config)

Builders return modules with the official classes' own random init; callers load the checkpoint
(strict) themselves or through `load`.
"""
from __future__ import annotations

import importlib.machinery
import logging
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

TORCHAUDIO = ("torchaudio", "torchaudio.compliance", "torchaudio.compliance.kaldi")
REQUIRED_FILES = ("cosyvoice/flow/flow.py", "cosyvoice/llm/llm.py", "cosyvoice/hifigan/generator.py",
                  "third_party/Matcha-TTS/matcha")


def why_absent(root: str | Path, files=REQUIRED_FILES, packages=("diffusers", "einops", "scipy", "transformers")) -> str | None:
    """None when the official copy at `root` and the pip packages its modules import are there,
    else one line saying what is missing (a skip reason)."""
    root = Path(root)
    for rel in files:
        if not (root / rel).exists():
            return f"official CosyVoice code not found ({root / rel} missing; unpack the mirror there with Matcha-TTS)"
    for mod in packages:
        try:
            __import__(mod)
        except ImportError:
            return f"the official modules need the pip package {mod!r} (pip install {mod})"
    return None


def placeholder(name: str, **attrs) -> types.ModuleType:
    """A module object with a spec, registered as sys.modules[name]."""
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    m.__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules[name] = m
    return m


def _placeholders() -> dict[str, dict]:
    return {
        **{n: {} for n in TORCHAUDIO},
        "conformer": {"ConformerBlock": object},
        "omegaconf": {"DictConfig": dict},
        "cosyvoice.utils.onnx": {"SpeechTokenExtractor": object, "online_feature": None, "onnx_path": None},
        "matcha.utils.pylogger": {"get_pylogger": lambda *a, **k: logging.getLogger("matcha")},
        "diffusers.models.lora": {"LoRACompatibleLinear": nn.Linear},  # plain Linear at inference (no LoRA)
    }


def install(root: str | Path) -> tuple[list[str], list[str]]:
    """Put the official copy on sys.path and the placeholder modules in sys.modules (those not
    there yet), for the rest of the process (the subprocess scripts); returns (paths, placed)."""
    root = Path(root)
    paths = [str(root), str(root / "third_party/Matcha-TTS")]
    sys.path[:0] = paths
    placed = []
    for name, attrs in _placeholders().items():
        if name not in sys.modules:
            placeholder(name, **attrs)
            placed.append(name)
    return paths, placed


@contextmanager
def official_imports(root: str | Path):
    """`install` while the official modules import; on exit the paths and the placeholders it
    placed are removed again (later imports in the same process, e.g. transformers'
    `find_spec('torchaudio')` probes, must not see them; the official modules already imported
    keep what they bound)."""
    paths, placed = install(root)
    try:
        yield
    finally:
        for p in paths:
            sys.path.remove(p)
        for n in placed:
            sys.modules.pop(n, None)


def register_flow_classes() -> None:
    """The official cosyvoice.utils.class_utils pulls in training modules; the flow encoder needs
    only its four class tables (call inside `official_imports`)."""
    from cosyvoice.transformer.attention import RelPositionMultiHeadedAttention
    from cosyvoice.transformer.embedding import EspnetRelPositionalEncoding
    from cosyvoice.transformer.subsampling import LinearNoSubsampling

    if "COSYVOICE_SUBSAMPLE_CLASSES" in getattr(sys.modules.get("cosyvoice.utils.class_utils"), "__dict__", {}):
        return
    placeholder("cosyvoice.utils.class_utils", COSYVOICE_SUBSAMPLE_CLASSES={"linear": LinearNoSubsampling},
                COSYVOICE_EMB_CLASSES={"rel_pos_espnet": EspnetRelPositionalEncoding},
                COSYVOICE_ATTENTION_CLASSES={"rel_selfattn": RelPositionMultiHeadedAttention},
                COSYVOICE_ACTIVATION_CLASSES={"swish": torch.nn.SiLU})


# ------------------------------------------------------------------------------------------------
def hift_kwargs(c) -> dict:
    """HiFTGenerator / CausalHiFTGenerator constructor arguments from our HiFTConfig (without the
    f0 predictor and the causal generator's extra arguments)."""
    return dict(
        in_channels=c.in_channels, base_channels=c.base_channels, nb_harmonics=c.nb_harmonics, sampling_rate=c.sampling_rate,
        nsf_alpha=c.nsf_alpha, nsf_sigma=c.nsf_sigma, nsf_voiced_threshold=c.nsf_voiced_threshold,
        upsample_rates=list(c.upsample_rates), upsample_kernel_sizes=list(c.upsample_kernel_sizes),
        istft_params={"n_fft": c.istft_n_fft, "hop_len": c.istft_hop_len}, resblock_kernel_sizes=list(c.resblock_kernel_sizes),
        resblock_dilation_sizes=[list(d) for d in c.resblock_dilation_sizes],
        source_resblock_kernel_sizes=list(c.source_resblock_kernel_sizes),
        source_resblock_dilation_sizes=[list(d) for d in c.source_resblock_dilation_sizes],
        lrelu_slope=c.lrelu_slope, audio_limit=c.audio_limit)


def official_hift(c) -> nn.Module:
    """The CosyVoice2 HiFTGenerator with its ConvRNNF0Predictor (call inside `official_imports`)."""
    from cosyvoice.hifigan.f0_predictor import ConvRNNF0Predictor
    from cosyvoice.hifigan.generator import HiFTGenerator

    return HiFTGenerator(**hift_kwargs(c),
                         f0_predictor=ConvRNNF0Predictor(in_channels=c.f0_in_channels, cond_channels=c.f0_cond_channels))


def cfm_params(c) -> types.SimpleNamespace:
    """The CausalConditionalCFM `cfm_params` (inference fields from our flow config)."""
    return types.SimpleNamespace(sigma_min=1e-6, solver="euler", t_scheduler=c.t_scheduler, training_cfg_rate=0.2,
                                 inference_cfg_rate=c.inference_cfg_rate, reg_loss_type="l1")


def official_flow(c, input_frame_rate: int = 25) -> nn.Module:
    """The CosyVoice2 CausalMaskedDiffWithXvec (UpsampleConformerEncoder + CausalConditionalCFM over
    CausalConditionalDecoder) from our FlowConfig (call inside `official_imports`)."""
    register_flow_classes()
    from cosyvoice.flow.decoder import CausalConditionalDecoder
    from cosyvoice.flow.flow import CausalMaskedDiffWithXvec
    from cosyvoice.flow.flow_matching import CausalConditionalCFM
    from cosyvoice.transformer.upsample_encoder import UpsampleConformerEncoder

    e, s = c.encoder, c.estimator
    enc = UpsampleConformerEncoder(
        input_size=e.input_size, output_size=e.output_size, attention_heads=e.attention_heads, linear_units=e.linear_units,
        num_blocks=e.num_blocks, dropout_rate=0.0, positional_dropout_rate=0.0, attention_dropout_rate=0.0,
        normalize_before=True, input_layer="linear", pos_enc_layer_type="rel_pos_espnet",
        selfattention_layer_type="rel_selfattn", use_cnn_module=False, macaron_style=False,
        static_chunk_size=e.static_chunk_size)
    est = CausalConditionalDecoder(
        in_channels=s.in_channels, out_channels=s.out_channels, channels=list(s.channels), dropout=0.0,
        attention_head_dim=s.attention_head_dim, n_blocks=s.n_blocks, num_mid_blocks=s.num_mid_blocks,
        num_heads=s.num_heads, act_fn="gelu", static_chunk_size=s.static_chunk_size, num_decoding_left_chunks=-1)
    dec = CausalConditionalCFM(in_channels=240, cfm_params=cfm_params(c), n_spks=1, spk_emb_dim=c.spk_emb_dim_cfm, estimator=est)
    return CausalMaskedDiffWithXvec(
        input_size=c.input_size, output_size=c.output_size, spk_embed_dim=c.spk_embed_dim, output_type="mel",
        vocab_size=c.vocab_size, input_frame_rate=input_frame_rate, only_mask_loss=True, token_mel_ratio=c.token_mel_ratio,
        pre_lookahead_len=c.pre_lookahead_len, encoder=enc, decoder=dec)


def qwen2_encoder(hf_config) -> nn.Module:
    """The official Qwen2Encoder around a randomly initialised HF Qwen2ForCausalLM (its __init__
    calls from_pretrained, which wants HF weight files; the checkpoint supplies the weights).

    The official decode loop passes the last row of its (1, L, L) mask: with a KV cache that is a
    (1, new) mask shorter than past + new, which the pinned transformers 4.51 reads as "attend to
    everything cached"; transformers >= 5 reads it literally (attend to `new` positions only). On
    >= 5, forward_one_step is given the all-ones (1, past + new) row, the same intent spelled out."""
    from cosyvoice.llm.llm import Qwen2Encoder
    from transformers import Qwen2ForCausalLM
    import transformers

    enc = Qwen2Encoder.__new__(Qwen2Encoder)
    nn.Module.__init__(enc)
    enc.model = Qwen2ForCausalLM(hf_config)
    if int(transformers.__version__.split(".")[0]) >= 5:
        step = enc.forward_one_step

        def forward_one_step(xs, masks, cache=None):
            past = 0 if cache is None else int(cache.get_seq_length())
            return step(xs, torch.ones(1, xs.shape[1], past + xs.shape[1], dtype=torch.bool), cache)

        enc.forward_one_step = forward_one_step
    return enc


def official_qwen2lm(md, sampling=None, attn_implementation: str | None = None) -> nn.Module:
    """The CosyVoice2 Qwen2LM over the model dir's CosyVoice-BlankEN Qwen2 config (call inside
    `official_imports`); `sampling(scores, decoded, k)` as the official constructor takes it."""
    from cosyvoice.llm.llm import Qwen2LM
    from transformers import Qwen2Config

    hf = Qwen2Config.from_pretrained(str(Path(md.root) / "CosyVoice-BlankEN"))
    if attn_implementation:
        hf._attn_implementation = attn_implementation
    c = md.config.llm
    return Qwen2LM(c.llm_input_size, c.llm_output_size, c.speech_token_size, qwen2_encoder(hf), sampling=sampling,
                   length_normalized_loss=True, lsm_weight=0, mix_ratio=list(c.mix_ratio))


def load(module: nn.Module, state_dict: dict, *, tied: tuple[str, ...] = ()) -> nn.Module:
    """Strict load, except keys ending in one of `tied` may be absent (HF ties lm_head to
    embed_tokens, so a checkpoint may or may not carry it); eval mode."""
    missing, unexpected = module.load_state_dict(state_dict, strict=not tied)
    missing = [k for k in missing if not k.endswith(tied)] if tied else missing
    if missing or unexpected:
        raise RuntimeError(f"{type(module).__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return module.eval()
