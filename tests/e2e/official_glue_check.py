"""runtime_ref.Pipeline (onnxruntime bundle) vs the official CosyVoice2Model.tts glue, stream=False
and stream=True, on the same tiny official-layout model: the official LLM (Qwen2LM over
transformers' Qwen2ForCausalLM), flow (CausalMaskedDiffWithXvec) and HiFT (HiFTGenerator) are
built by the official classes from the model dir's config and loaded by CosyVoice2Model.load from
its llm.pt / flow.pt / hift.pt. Greedy sampling on both sides; the HiFT Gaussian noise is zero on
both sides (the official randn_like calls return zeros; ours draws from a zero stream).

Run as a script (tests/e2e/test_official_glue.py does, in a subprocess, because it stubs modules):
    python tests/e2e/official_glue_check.py OFFICIAL_ROOT MODEL_DIR BUNDLE_DIR VOICE
OFFICIAL_ROOT: an unpacked official CosyVoice checkout with third_party/Matcha-TTS (never inside
this repo); needs transformers, diffusers, einops. Prints one line per comparison; exits 1 if a
figure is out of bounds: identical tokens, every streaming piece >= 40 dB SNR, the same piece sizes.
"""
import importlib.machinery
import sys
import types

ROOT, MODEL_DIR, BUNDLE_DIR, VOICE = sys.argv[1:5]
sys.path[:0] = [ROOT, ROOT + "/third_party/Matcha-TTS"]


def stub(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    m.__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules[name] = m
    return m


import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

for n in ["torchaudio", "torchaudio.compliance", "torchaudio.compliance.kaldi"]:
    stub(n)
stub("conformer", ConformerBlock=object)
stub("omegaconf", DictConfig=dict)
stub("cosyvoice.utils.onnx", SpeechTokenExtractor=object, online_feature=None, onnx_path=None)
stub("matcha.utils.pylogger", get_pylogger=lambda *a, **k: __import__("logging").getLogger("m"))
stub("diffusers.models.lora", LoRACompatibleLinear=nn.Linear)  # plain Linear at inference (no LoRA)
from cosyvoice.transformer.activation import Swish  # noqa: E402,F401
from cosyvoice.transformer.attention import RelPositionMultiHeadedAttention  # noqa: E402
from cosyvoice.transformer.embedding import EspnetRelPositionalEncoding  # noqa: E402
from cosyvoice.transformer.subsampling import LinearNoSubsampling  # noqa: E402

stub("cosyvoice.utils.class_utils", COSYVOICE_SUBSAMPLE_CLASSES={"linear": LinearNoSubsampling},
     COSYVOICE_EMB_CLASSES={"rel_pos_espnet": EspnetRelPositionalEncoding},
     COSYVOICE_ATTENTION_CLASSES={"rel_selfattn": RelPositionMultiHeadedAttention},
     COSYVOICE_ACTIVATION_CLASSES={"swish": torch.nn.SiLU})
from transformers import Qwen2Config as HFQwen2Config, Qwen2ForCausalLM  # noqa: E402

from cosyvoice.cli.model import CosyVoice2Model  # noqa: E402
from cosyvoice.flow.decoder import CausalConditionalDecoder  # noqa: E402
from cosyvoice.flow.flow import CausalMaskedDiffWithXvec  # noqa: E402
from cosyvoice.flow.flow_matching import CausalConditionalCFM  # noqa: E402
from cosyvoice.hifigan.f0_predictor import ConvRNNF0Predictor  # noqa: E402
from cosyvoice.hifigan.generator import HiFTGenerator  # noqa: E402
from cosyvoice.llm.llm import Qwen2Encoder, Qwen2LM  # noqa: E402
from cosyvoice.transformer.upsample_encoder import UpsampleConformerEncoder  # noqa: E402

import runtime_ref.pipeline as rp  # noqa: E402
from exporter.modeldir import ModelDir  # noqa: E402
from exporter.reference_pipeline import snr_db  # noqa: E402

torch.set_num_threads(2)
TEXT = "Good day."
md = ModelDir.open(MODEL_DIR)
cfg = md.config


def official_model() -> CosyVoice2Model:
    """The official three modules, built from the model dir's config, loaded by CosyVoice2Model.load."""
    lc, fc, hc = cfg.llm, cfg.flow, cfg.hift
    enc = Qwen2Encoder.__new__(Qwen2Encoder)  # its __init__ wants pretrained weights; the checkpoint has them
    nn.Module.__init__(enc)
    enc.model = Qwen2ForCausalLM(HFQwen2Config.from_pretrained(str(md.root / "CosyVoice-BlankEN")))
    real_step = enc.forward_one_step

    def forward_one_step(xs, masks, cache=None):
        # The official code (pinned to transformers 4.51) passes the last row of its (1, L, L) mask,
        # i.e. a (1, 1) all-ones mask for every cached step, which 4.51 reads as "attend to all";
        # transformers 5 reads it literally (attend to 1 position). Same intent, spelled in full:
        past = 0 if cache is None else int(cache.get_seq_length())
        full = torch.ones(1, past + xs.shape[1], past + xs.shape[1], dtype=torch.bool)
        return real_step(xs, full, cache)

    if int(__import__("transformers").__version__.split(".")[0]) >= 5:
        enc.forward_one_step = forward_one_step
    llm = Qwen2LM(lc.llm_input_size, lc.llm_output_size, lc.speech_token_size, enc,
                  sampling=lambda scores, decoded, k: int(scores.argmax()),  # greedy (eos masked by sampling_ids)
                  length_normalized_loss=True, lsm_weight=0, mix_ratio=list(lc.mix_ratio))
    e, s = fc.encoder, fc.estimator
    encoder = UpsampleConformerEncoder(input_size=e.input_size, output_size=e.output_size, attention_heads=e.attention_heads,
                                       linear_units=e.linear_units, num_blocks=e.num_blocks, dropout_rate=0.0,
                                       positional_dropout_rate=0.0, attention_dropout_rate=0.0, normalize_before=True,
                                       input_layer="linear", pos_enc_layer_type="rel_pos_espnet",
                                       selfattention_layer_type="rel_selfattn", use_cnn_module=False, macaron_style=False,
                                       static_chunk_size=e.static_chunk_size)
    est = CausalConditionalDecoder(in_channels=s.in_channels, out_channels=s.out_channels, channels=list(s.channels),
                                   dropout=0.0, attention_head_dim=s.attention_head_dim, n_blocks=s.n_blocks,
                                   num_mid_blocks=s.num_mid_blocks, num_heads=s.num_heads, act_fn="gelu",
                                   static_chunk_size=s.static_chunk_size, num_decoding_left_chunks=-1)
    cfm_params = types.SimpleNamespace(sigma_min=1e-6, solver="euler", t_scheduler=fc.t_scheduler, training_cfg_rate=0.2,
                                       inference_cfg_rate=fc.inference_cfg_rate, reg_loss_type="l1")
    dec = CausalConditionalCFM(in_channels=240, cfm_params=cfm_params, n_spks=1, spk_emb_dim=fc.spk_emb_dim_cfm, estimator=est)
    flow = CausalMaskedDiffWithXvec(input_size=fc.input_size, output_size=fc.output_size, spk_embed_dim=fc.spk_embed_dim,
                                    output_type="mel", vocab_size=fc.vocab_size, input_frame_rate=cfg.token_frame_rate,
                                    only_mask_loss=True, token_mel_ratio=fc.token_mel_ratio,
                                    pre_lookahead_len=fc.pre_lookahead_len, encoder=encoder, decoder=dec)
    hift = HiFTGenerator(
        in_channels=hc.in_channels, base_channels=hc.base_channels, nb_harmonics=hc.nb_harmonics, sampling_rate=hc.sampling_rate,
        nsf_alpha=hc.nsf_alpha, nsf_sigma=hc.nsf_sigma, nsf_voiced_threshold=hc.nsf_voiced_threshold,
        upsample_rates=list(hc.upsample_rates), upsample_kernel_sizes=list(hc.upsample_kernel_sizes),
        istft_params={"n_fft": hc.istft_n_fft, "hop_len": hc.istft_hop_len}, resblock_kernel_sizes=list(hc.resblock_kernel_sizes),
        resblock_dilation_sizes=[list(d) for d in hc.resblock_dilation_sizes],
        source_resblock_kernel_sizes=list(hc.source_resblock_kernel_sizes),
        source_resblock_dilation_sizes=[list(d) for d in hc.source_resblock_dilation_sizes],
        lrelu_slope=hc.lrelu_slope, audio_limit=hc.audio_limit,
        f0_predictor=ConvRNNF0Predictor(in_channels=hc.f0_in_channels, cond_channels=hc.f0_cond_channels))
    m = CosyVoice2Model(llm, flow, hift)
    m.load(str(md.checkpoint_path("llm")), str(md.checkpoint_path("flow")), str(md.checkpoint_path("hift")))
    return m


class ZeroNormal:
    """Our vocoder noise stream, zeroed (the official randn_like is zeroed below)."""

    def standard_normal(self, shape):
        return np.zeros(shape, np.float32)


def run_official(req, stream: bool) -> tuple[list[int], list[np.ndarray]]:
    m = official_model()  # fresh: the official stream grows token_hop_len on the instance
    i32 = lambda a: torch.from_numpy(np.asarray(a, np.int64)).to(torch.int32)[None]  # noqa: E731
    emb = torch.from_numpy(req.embedding)[None]
    orig = torch.randn_like
    torch.randn_like = lambda x, *a, **k: torch.zeros_like(x)  # HiFT sine noise and noise branch (the flow uses its fixed table)
    tokens: list[int] = []
    real_job = m.llm_job

    def llm_job(*a):
        real_job(*a)
        tokens.extend(m.tts_speech_token_dict[a[-1]])

    m.llm_job = llm_job
    try:
        out = [p["tts_speech"].numpy()[0] for p in m.tts(
            text=i32(req.text_ids), flow_embedding=emb, llm_embedding=emb, prompt_text=i32(req.llm_prompt_text_ids),
            llm_prompt_speech_token=i32(req.llm_prompt_speech), flow_prompt_speech_token=i32(req.flow_prompt_tokens),
            prompt_speech_feat=torch.from_numpy(req.flow_prompt_mel)[None], stream=stream)]
    finally:
        torch.randn_like = orig
    return tokens, out


pipe = rp.Pipeline.open(BUNDLE_DIR)
voice = pipe.voice(VOICE)
reqs = pipe.requests(TEXT, voice, "zero_shot")
assert len(reqs) == 1, f"{TEXT!r} should be one piece, got {len(reqs)}"
req = reqs[0]
real_streams = rp.rng_streams
rp.rng_streams = lambda seed: (real_streams(seed)[0], ZeroNormal())
bad: list[str] = []
try:
    for stream in (False, True):
        ref_tokens, ref = run_official(req, stream)
        if stream:
            got = list(pipe.stream(TEXT, voice, mode="zero_shot", sampler="greedy"))
            syn = pipe.synthesize(TEXT, voice, mode="zero_shot", sampler="greedy")
            tokens = syn.tokens[0]
        else:
            syn = pipe.synthesize(TEXT, voice, mode="zero_shot", sampler="greedy")
            got, tokens = [syn.audio], syn.tokens[0]
        cap = pipe.token_cap(req, None)
        same = tokens == ref_tokens
        print(f"stream={stream}: {len(ref_tokens)} official tokens (cap {cap}), identical: {same}")
        if not same:
            k = next((i for i, (a, b) in enumerate(zip(tokens, ref_tokens)) if a != b), min(len(tokens), len(ref_tokens)))
            print(f"  first difference at {k}: ours {tokens[k:k + 5]} ({len(tokens)}), official {ref_tokens[k:k + 5]}")
        if not same or len(ref_tokens) >= cap:
            bad.append(f"tokens stream={stream}")
        sizes, ref_sizes = [g.size for g in got], [r.size for r in ref]
        print(f"  pieces: ours {sizes}, official {ref_sizes}")
        if sizes != ref_sizes:
            bad.append(f"piece sizes stream={stream}")
            continue
        for i, (g, r) in enumerate(zip(got, ref)):
            snr = snr_db(r, g)
            print(f"  piece {i}: {r.size} samples, SNR {snr:.1f} dB, max-abs {np.abs(r - g).max():.2g}")
            if not snr >= 40:
                bad.append(f"piece {i} stream={stream}: {snr:.1f} dB")
finally:
    rp.rng_streams = real_streams
print("FAILED: " + ", ".join(bad) if bad else "OK")
sys.exit(1 if bad else 0)
