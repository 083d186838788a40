"""The official CosyVoice2 modules, built from a model directory (official layout, our fixture's
random weights load strictly) for benchmarks that time them beside ours in the same process.

The official code is a scratch copy outside the repo (default /tmp/cv_official, with
third_party/Matcha-TTS; see COMMON.md): never committed, only imported. Its imports need
torchaudio (which cannot load with torch 2.13, shared/reference/pitfalls.md) and a few training-
only packages; placeholder modules stand in for them while the official modules import, and are
removed again afterwards (as tests/hift/test_official.py does).

    from bench.official import OfficialCode
    off = OfficialCode.find()          # None (with .why) if the copy is absent
    flow = off.flow(model_dir)         # CausalMaskedDiffWithXvec, eval, flow.pt loaded strictly
    hift = off.hift(model_dir)         # HiFTGenerator, hift.pt loaded strictly
    llm = off.llm(model_dir)           # Qwen2LM with a Qwen2ForCausalLM from the model dir's config
"""
from __future__ import annotations

import importlib.machinery
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

DEFAULT_ROOT = "/tmp/cv_official"


def why_absent(root: str | Path) -> str | None:
    root = Path(root)
    for rel in ("cosyvoice/flow/flow.py", "cosyvoice/llm/llm.py", "cosyvoice/hifigan/generator.py",
                "third_party/Matcha-TTS/matcha"):
        if not (root / rel).exists():
            return f"official CosyVoice code not found ({root / rel} missing; unpack the mirror there with Matcha-TTS)"
    for mod in ("diffusers", "einops", "scipy", "transformers"):
        try:
            __import__(mod)
        except ImportError:
            return f"the official modules need the pip package {mod!r} (pip install {mod})"
    return None


@contextmanager
def _official_imports(root: Path):
    """sys.path + placeholder modules while the official modules import; restored afterwards."""
    placed: list[str] = []

    def stub(name, **attrs):
        if name in sys.modules:
            return
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        m.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = m
        placed.append(name)

    paths = [str(root), str(root / "third_party/Matcha-TTS")]
    sys.path[:0] = paths
    for n in ("torchaudio", "torchaudio.compliance", "torchaudio.compliance.kaldi"):
        stub(n)
    stub("conformer", ConformerBlock=object)
    stub("omegaconf", DictConfig=dict)
    stub("cosyvoice.utils.onnx", SpeechTokenExtractor=object, online_feature=None, onnx_path=None)
    stub("matcha.utils.pylogger", get_pylogger=lambda *a, **k: __import__("logging").getLogger("matcha"))
    stub("diffusers.models.lora", LoRACompatibleLinear=nn.Linear)  # plain Linear at inference
    try:
        yield
    finally:
        for p in paths:
            sys.path.remove(p)
        for n in ("torchaudio", "torchaudio.compliance", "torchaudio.compliance.kaldi"):
            if n in placed:
                sys.modules.pop(n, None)


class OfficialCode:
    def __init__(self, root: str | Path = DEFAULT_ROOT):
        self.root = Path(root)

    @classmethod
    def find(cls, root: str | Path = DEFAULT_ROOT) -> "OfficialCode | None":
        return None if why_absent(root) else cls(root)

    # ---------------------------------------------------------------------------------------------
    def flow(self, md) -> nn.Module:
        with _official_imports(self.root):
            from cosyvoice.transformer.attention import RelPositionMultiHeadedAttention
            from cosyvoice.transformer.embedding import EspnetRelPositionalEncoding
            from cosyvoice.transformer.subsampling import LinearNoSubsampling
            sys.modules.setdefault("cosyvoice.utils.class_utils", types.ModuleType("cosyvoice.utils.class_utils")).__dict__.update(
                COSYVOICE_SUBSAMPLE_CLASSES={"linear": LinearNoSubsampling},
                COSYVOICE_EMB_CLASSES={"rel_pos_espnet": EspnetRelPositionalEncoding},
                COSYVOICE_ATTENTION_CLASSES={"rel_selfattn": RelPositionMultiHeadedAttention},
                COSYVOICE_ACTIVATION_CLASSES={"swish": torch.nn.SiLU})
            from cosyvoice.flow.decoder import CausalConditionalDecoder
            from cosyvoice.flow.flow import CausalMaskedDiffWithXvec
            from cosyvoice.flow.flow_matching import CausalConditionalCFM
            from cosyvoice.transformer.upsample_encoder import UpsampleConformerEncoder
        c = md.config.flow
        e, s = c.encoder, c.estimator
        enc = UpsampleConformerEncoder(
            input_size=c.input_size, output_size=e.output_size, attention_heads=e.attention_heads, linear_units=e.linear_units,
            num_blocks=e.num_blocks, dropout_rate=0.0, positional_dropout_rate=0.0, attention_dropout_rate=0.0,
            normalize_before=True, input_layer="linear", pos_enc_layer_type="rel_pos_espnet",
            selfattention_layer_type="rel_selfattn", use_cnn_module=False, macaron_style=False,
            static_chunk_size=e.static_chunk_size)
        est = CausalConditionalDecoder(
            in_channels=s.in_channels, out_channels=s.out_channels, channels=list(s.channels), dropout=0.0,
            attention_head_dim=s.attention_head_dim, n_blocks=s.n_blocks, num_mid_blocks=s.num_mid_blocks,
            num_heads=s.num_heads, act_fn="gelu", static_chunk_size=s.static_chunk_size, num_decoding_left_chunks=-1)
        cfm_params = types.SimpleNamespace(sigma_min=1e-6, solver="euler", t_scheduler=c.t_scheduler, training_cfg_rate=0.2,
                                           inference_cfg_rate=c.inference_cfg_rate, reg_loss_type="l1")
        dec = CausalConditionalCFM(in_channels=240, cfm_params=cfm_params, n_spks=1, spk_emb_dim=c.spk_emb_dim_cfm, estimator=est)
        m = CausalMaskedDiffWithXvec(
            input_size=c.input_size, output_size=c.output_size, spk_embed_dim=c.spk_embed_dim, output_type="mel",
            vocab_size=c.vocab_size, input_frame_rate=25, only_mask_loss=True, token_mel_ratio=c.token_mel_ratio,
            pre_lookahead_len=c.pre_lookahead_len, encoder=enc, decoder=dec)
        m.load_state_dict(md.load_checkpoint("flow"), strict=True)
        return m.eval()

    def hift(self, md) -> nn.Module:
        with _official_imports(self.root):
            from cosyvoice.hifigan.f0_predictor import ConvRNNF0Predictor
            from cosyvoice.hifigan.generator import HiFTGenerator
        c = md.config.hift
        m = HiFTGenerator(
            in_channels=c.in_channels, base_channels=c.base_channels, nb_harmonics=c.nb_harmonics, sampling_rate=c.sampling_rate,
            nsf_alpha=c.nsf_alpha, nsf_sigma=c.nsf_sigma, nsf_voiced_threshold=c.nsf_voiced_threshold,
            upsample_rates=list(c.upsample_rates), upsample_kernel_sizes=list(c.upsample_kernel_sizes),
            istft_params={"n_fft": c.istft_n_fft, "hop_len": c.istft_hop_len}, resblock_kernel_sizes=list(c.resblock_kernel_sizes),
            resblock_dilation_sizes=[list(d) for d in c.resblock_dilation_sizes],
            source_resblock_kernel_sizes=list(c.source_resblock_kernel_sizes),
            source_resblock_dilation_sizes=[list(d) for d in c.source_resblock_dilation_sizes],
            lrelu_slope=c.lrelu_slope, audio_limit=c.audio_limit,
            f0_predictor=ConvRNNF0Predictor(in_channels=c.f0_in_channels, cond_channels=c.f0_cond_channels))
        m.load_state_dict(md.load_checkpoint("hift"), strict=True)  # official weight-norm parametrized keys
        return m.eval()

    def llm(self, md) -> nn.Module:
        """Qwen2LM around HF Qwen2ForCausalLM built from the model dir's CosyVoice-BlankEN config
        (the official Qwen2Encoder calls from_pretrained, which needs HF weight files; the weights
        come from llm.pt instead, loaded strictly)."""
        from transformers import Qwen2Config, Qwen2ForCausalLM

        with _official_imports(self.root):
            from cosyvoice.llm.llm import Qwen2Encoder, Qwen2LM
        c = md.config.llm
        enc = Qwen2Encoder.__new__(Qwen2Encoder)
        nn.Module.__init__(enc)
        qcfg = Qwen2Config.from_pretrained(str(Path(md.root) / "CosyVoice-BlankEN"))
        qcfg._attn_implementation = "sdpa"
        enc.model = Qwen2ForCausalLM(qcfg)
        m = Qwen2LM(llm_input_size=c.llm_input_size, llm_output_size=c.llm_output_size, speech_token_size=c.speech_token_size,
                    llm=enc, sampling=None, mix_ratio=list(c.mix_ratio))
        sd = md.load_checkpoint("llm")
        missing, unexpected = m.load_state_dict(sd, strict=False)
        # tied lm_head: HF ties it to embed_tokens, so a checkpoint may or may not carry it
        missing = [k for k in missing if not k.endswith("lm_head.weight")]
        if missing or unexpected:
            raise RuntimeError(f"official Qwen2LM: missing {missing[:5]}, unexpected {unexpected[:5]}")
        return m.eval()


@torch.inference_mode()
def official_llm_run(llm, lm_input: torch.Tensor, tokens) -> tuple[float, float]:
    """The official decode loop (Qwen2LM.inference_wrapper without vllm): forward_one_step over the
    whole prompt, then one token at a time with the growing HF cache; llm_decoder + log_softmax
    each step. Tokens are fixed (not sampled) so every engine runs the same number of steps.
    Returns (prefill seconds, decode seconds)."""
    import time

    def step(x, cache):  # the official call, mask built from the current input as there
        n = x.shape[1]
        y, cache = llm.llm.forward_one_step(x, masks=torch.tril(torch.ones((1, n, n))).to(torch.bool), cache=cache)
        return llm.llm_decoder(y[:, -1]).log_softmax(dim=-1), cache

    t0 = time.perf_counter()
    logp, cache = step(lm_input, None)
    t1 = time.perf_counter()
    for tok in tokens:
        logp, cache = step(llm.speech_embedding.weight[int(tok)].reshape(1, 1, -1), cache)
    return t1 - t0, time.perf_counter() - t1
