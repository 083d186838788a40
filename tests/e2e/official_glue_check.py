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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared official oracle
import numpy as np  # noqa: E402
import official_oracle as oo  # noqa: E402
import torch  # noqa: E402

ROOT, MODEL_DIR, BUNDLE_DIR, VOICE = sys.argv[1:5]
oo.install(ROOT)  # for the whole run: CosyVoice2Model imports more modules as it runs
oo.register_flow_classes()
from cosyvoice.cli.model import CosyVoice2Model  # noqa: E402

import runtime_ref.pipeline as rp  # noqa: E402
from exporter.modeldir import ModelDir  # noqa: E402
from exporter.reference_pipeline import snr_db  # noqa: E402

torch.set_num_threads(2)
TEXT = "Good day."
md = ModelDir.open(MODEL_DIR)
cfg = md.config


def official_model() -> CosyVoice2Model:
    """The official three modules, built from the model dir's config, loaded by CosyVoice2Model.load."""
    llm = oo.official_qwen2lm(md, sampling=lambda scores, decoded, k: int(scores.argmax()))  # greedy (eos masked by sampling_ids)
    m = CosyVoice2Model(llm, oo.official_flow(cfg.flow, cfg.token_frame_rate), oo.official_hift(cfg.hift))
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
