"""Official CosyVoice2 flow modules vs exporter.flow.model on the same random weights.

Run as a script (tests/flow/test_flow_official.py does, in a subprocess, because it stubs modules):
    python tests/flow/official_check.py /tmp/cv_official_flow
where that folder is an unpacked official CosyVoice checkout with Matcha-TTS in
third_party/Matcha-TTS (never inside this repo). Needs pip packages diffusers and einops.
Prints one line per comparison; exits 1 if a figure is out of tolerance.
"""
import sys, types, importlib
ROOT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/cv_official_flow"
sys.path[:0] = [ROOT, ROOT + "/third_party/Matcha-TTS"]
def stub(name, **attrs):
    m = types.ModuleType(name); m.__dict__.update(attrs); sys.modules[name] = m; return m
import torch, torch.nn as nn, numpy as np
import importlib.machinery
for n in ["torchaudio", "torchaudio.compliance", "torchaudio.compliance.kaldi"]: stub(n).__spec__ = importlib.machinery.ModuleSpec(n, None)
stub("conformer", ConformerBlock=object)
stub("omegaconf", DictConfig=dict)
stub("cosyvoice.utils.onnx", SpeechTokenExtractor=object, online_feature=None, onnx_path=None)
stub("matcha.utils.pylogger", get_pylogger=lambda *a, **k: __import__("logging").getLogger("m"))
stub("diffusers.models.lora", LoRACompatibleLinear=nn.Linear)  # plain Linear at inference (no LoRA)
from cosyvoice.transformer.subsampling import LinearNoSubsampling
from cosyvoice.transformer.embedding import EspnetRelPositionalEncoding
from cosyvoice.transformer.attention import RelPositionMultiHeadedAttention
from cosyvoice.transformer.activation import Swish
stub("cosyvoice.utils.class_utils", COSYVOICE_SUBSAMPLE_CLASSES={"linear": LinearNoSubsampling},
     COSYVOICE_EMB_CLASSES={"rel_pos_espnet": EspnetRelPositionalEncoding},
     COSYVOICE_ATTENTION_CLASSES={"rel_selfattn": RelPositionMultiHeadedAttention},
     COSYVOICE_ACTIVATION_CLASSES={"swish": torch.nn.SiLU})
from cosyvoice.transformer.upsample_encoder import UpsampleConformerEncoder
from cosyvoice.flow.decoder import CausalConditionalDecoder
from cosyvoice.flow.flow_matching import CausalConditionalCFM
from cosyvoice.flow.flow import CausalMaskedDiffWithXvec

from exporter.config import FlowConfig, FlowEncoderConfig, FlowEstimatorConfig
from exporter.flow.keys import random_checkpoint, official_keys
from exporter.flow.model import Flow, token2mel_torch
from exporter.checkpoint import load_into

torch.set_num_threads(2)
# a runnable small config (official up_embed uses input_size, so input_size must equal 512)
cfg = FlowConfig(input_size=512, encoder=FlowEncoderConfig(num_blocks=2, linear_units=256),
                 estimator=FlowEstimatorConfig(channels=(64,), attention_head_dim=16, n_blocks=2, num_mid_blocks=2, num_heads=2))
enc = UpsampleConformerEncoder(input_size=512, output_size=512, attention_heads=8, linear_units=256, num_blocks=2,
                               dropout_rate=0.0, positional_dropout_rate=0.0, attention_dropout_rate=0.0, normalize_before=True,
                               input_layer="linear", pos_enc_layer_type="rel_pos_espnet", selfattention_layer_type="rel_selfattn",
                               use_cnn_module=False, macaron_style=False, static_chunk_size=25)
est = CausalConditionalDecoder(in_channels=320, out_channels=80, channels=[64], dropout=0.0, attention_head_dim=16, n_blocks=2,
                               num_mid_blocks=2, num_heads=2, act_fn="gelu", static_chunk_size=50, num_decoding_left_chunks=-1)
cfm_params = types.SimpleNamespace(sigma_min=1e-6, solver="euler", t_scheduler="cosine", training_cfg_rate=0.2, inference_cfg_rate=0.7, reg_loss_type="l1")
dec = CausalConditionalCFM(in_channels=240, cfm_params=cfm_params, n_spks=1, spk_emb_dim=80, estimator=est)
off = CausalMaskedDiffWithXvec(input_size=512, output_size=80, spk_embed_dim=192, output_type="mel", vocab_size=6561,
                               input_frame_rate=25, only_mask_loss=True, token_mel_ratio=2, pre_lookahead_len=3,
                               encoder=enc, decoder=dec).eval()
sd = random_checkpoint(cfg, seed=7)
off_keys = {k: tuple(v.shape) for k, v in off.state_dict().items()}
tab = official_keys(cfg)
print("official module keys == keys.py table:", off_keys == tab, len(off_keys), len(tab))
bad = [] if off_keys == tab else ["keys"]
if off_keys != tab:
    print(" only official:", sorted(set(off_keys) - set(tab))[:10]); print(" only table:", sorted(set(tab) - set(off_keys))[:10])
    print(" shape diffs:", [(k, off_keys[k], tab[k]) for k in set(off_keys) & set(tab) if off_keys[k] != tab[k]][:10])
off.load_state_dict(sd, strict=True)
rng = np.random.default_rng(0)
P, N = 20, 57
pt = torch.from_numpy(rng.integers(0, 6561, (1, P))).int(); tk = torch.from_numpy(rng.integers(0, 6561, (1, N))).int()
pm = torch.from_numpy(rng.standard_normal((1, 2 * P, 80)).astype(np.float32) - 5); xv = torch.randn(1, 192)
ours = Flow(cfg, 2 * (P + N)).eval(); load_into(ours, sd, source="random")
for streaming, finalize in [(False, True), (True, False), (True, True)]:
    with torch.inference_mode():
        ref, _ = off.inference(tk, torch.tensor([N]), pt, torch.tensor([P]), pm, torch.tensor([2 * P]), xv, streaming=streaming, finalize=finalize)
    got = token2mel_torch(ours, pt, tk, pm, xv, streaming=streaming, finalize=finalize)
    err = float((ref - got).abs().max())
    bad += [f"mel {streaming}/{finalize}"] if not err <= 1e-4 else []
    print(f"streaming={streaming} finalize={finalize}: mel {tuple(ref.shape)} max-abs {float((ref - got).abs().max()):.3g} (|ref| max {float(ref.abs().max()):.3g})")
# estimator one call, batch 2, random inputs, streaming on/off
T = 150
x, mu, cond = torch.randn(2, 80, T), torch.randn(2, 80, T), torch.randn(2, 80, T)
mask = torch.ones(2, 1, T); t = torch.tensor([0.3, 0.3]); spks = torch.randn(2, 80)
o_est = Flow(cfg, T).eval(); load_into(o_est, sd, source="random")
for s in (False, True):
    with torch.inference_mode():
        r = est(x, mask, mu, t, spks, cond, streaming=s)
        g = o_est.decoder.estimator(x, mask, mu, t, spks, cond, torch.tensor([float(s)]))
    bad += [f"estimator {s}"] if not float((r - g).abs().max()) <= 1e-4 else []
    print(f"estimator streaming={s}: max-abs {float((r - g).abs().max()):.3g} (|ref| max {float(r.abs().max()):.3g})")
print("FAILED: " + ", ".join(bad) if bad else "OK")
sys.exit(1 if bad else 0)
