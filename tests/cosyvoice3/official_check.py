"""Official CosyVoice3 modules vs ours on the same random weights (run as a script, in a subprocess,
because the official modules import torchaudio and need placeholder modules while they import).

    python tests/cosyvoice3/official_check.py OFFICIAL_ROOT WORK_DIR SECTION...

OFFICIAL_ROOT: an unpacked official CosyVoice checkout (with third_party/Matcha-TTS), never inside
this repo. Needs pip packages transformers, x-transformers==2.11.24 (+ einops, einx, loguru), scipy.
Prints one JSON object {section: {figure: value}} on the last line. Sections: keys, llm, flow, hift, e2e, bistream.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared official oracle
import numpy as np  # noqa: E402
import official_oracle as oo  # noqa: E402
import torch  # noqa: E402

ROOT, WORK = sys.argv[1], Path(sys.argv[2])
SECTIONS = sys.argv[3:] or ["keys", "llm", "flow", "hift", "e2e", "bistream"]
oo.install(ROOT)  # the official copy + placeholder modules for the whole run
torch.set_num_threads(2)
RESULTS: dict = {}


# ---------------------------------------------------------------------------------------------
def official_llm(cfg):
    from transformers import Qwen2Config as HFConfig
    from cosyvoice.llm.llm import CosyVoice3LM
    from cosyvoice.utils.common import ras_sampling

    q = cfg.qwen
    hf = HFConfig(hidden_size=q.hidden_size, num_hidden_layers=q.num_hidden_layers, num_attention_heads=q.num_attention_heads,
                  num_key_value_heads=q.num_key_value_heads, intermediate_size=q.intermediate_size, rms_norm_eps=q.rms_norm_eps,
                  rope_theta=q.rope_theta, vocab_size=q.vocab_size, max_position_embeddings=q.max_position_embeddings,
                  tie_word_embeddings=q.tie_word_embeddings, attn_implementation="eager")
    enc = oo.qwen2_encoder(hf)  # with the KV-cache mask spelled out for transformers 5
    # inference_bistream reads the cache length the transformers-4 way (cache[0][0].size(2)); the
    # cache goes back to the official code behind a view that answers that
    step = enc.forward_one_step

    class LegacyView:
        def __init__(self, c):
            self.c = c

        def __getitem__(self, i):
            return (torch.empty(1, 1, self.c.get_seq_length(), 1),)

    def forward_one_step(xs, masks, cache=None):
        y, new = step(xs, masks, cache.c if isinstance(cache, LegacyView) else cache)
        return y, LegacyView(new)

    enc.forward_one_step = forward_one_step
    s = cfg.sampling

    def sampling(scores, decoded, k):
        return ras_sampling(scores, decoded, k, top_p=s.top_p, top_k=s.top_k, win_size=s.win_size, tau_r=s.tau_r)

    return CosyVoice3LM(q.hidden_size, q.hidden_size, cfg.speech_token_size, enc, sampling, mix_ratio=list(cfg.mix_ratio))


def official_flow(cfg):
    from cosyvoice.flow.DiT.dit import DiT
    from cosyvoice.flow.flow import CausalMaskedDiffWithDiT
    from cosyvoice.flow.flow_matching import CausalConditionalCFM
    from cosyvoice.transformer.upsample_encoder import PreLookaheadLayer

    e = cfg.estimator
    est = DiT(dim=e.dim, depth=e.depth, heads=e.heads, dim_head=e.dim_head, ff_mult=e.ff_mult, mel_dim=e.mel_dim, mu_dim=e.mu_dim,
              spk_dim=e.spk_dim, out_channels=e.out_channels, static_chunk_size=e.static_chunk_size, num_decoding_left_chunks=-1)
    dec = CausalConditionalCFM(in_channels=240, cfm_params=oo.cfm_params(cfg), n_spks=1, spk_emb_dim=80, estimator=est)
    pre = PreLookaheadLayer(in_channels=cfg.input_size, channels=cfg.pre_lookahead_channels, pre_lookahead_len=cfg.pre_lookahead_len)
    return CausalMaskedDiffWithDiT(input_size=cfg.input_size, output_size=cfg.output_size, spk_embed_dim=cfg.spk_embed_dim,
                                   output_type="mel", vocab_size=cfg.vocab_size, input_frame_rate=25, only_mask_loss=True,
                                   token_mel_ratio=cfg.token_mel_ratio, pre_lookahead_len=cfg.pre_lookahead_len,
                                   pre_lookahead_layer=pre, decoder=dec)


def official_hift(c):
    from cosyvoice.hifigan.f0_predictor import CausalConvRNNF0Predictor
    from cosyvoice.hifigan.generator import CausalHiFTGenerator

    return CausalHiFTGenerator(
        **oo.hift_kwargs(c), conv_pre_look_right=c.conv_pre_look_right,
        f0_predictor=CausalConvRNNF0Predictor(in_channels=c.f0_in_channels, cond_channels=c.f0_cond_channels))


def model_dir(vocab_size=None):
    """The tiny fixture; with `vocab_size`, its Qwen2 text table widened (and llm.pt redrawn) so the
    official code's hard-coded <|endofprompt|> id 151646 is a valid row."""
    from exporter.cosyvoice3.fixture import build_model_dir
    from exporter.cosyvoice3.keys import llm_random_checkpoint
    from exporter.cosyvoice3.modeldir import CosyVoice3ModelDir
    from exporter.checkpoint import save_state_dict

    root = WORK / ("md" if vocab_size is None else f"md_v{vocab_size}")
    if not root.exists():
        build_model_dir(root, size="tiny", seed=3)
        if vocab_size:
            p = root / "CosyVoice-BlankEN" / "config.json"
            c = json.loads(p.read_text())
            c["vocab_size"] = vocab_size
            p.write_text(json.dumps(c))
            md = CosyVoice3ModelDir.open(root)
            save_state_dict(llm_random_checkpoint(md.config.llm, seed=11), root / "llm.pt")
    return CosyVoice3ModelDir.open(root)


def shapes(sd):
    return {k: tuple(v.shape) for k, v in sd.items()}


# ---------------------------------------------------------------------------------------------
def section_keys():
    from exporter.cosyvoice3.keys import flow_keys, hift_keys, llm_keys

    md = model_dir()
    c = md.config
    out = {}
    for name, off, ours in [("llm", official_llm(c.llm), llm_keys(c.llm)), ("flow", official_flow(c.flow), flow_keys(c.flow)),
                            ("hift", official_hift(c.hift), hift_keys(c.hift))]:
        theirs = shapes(off.state_dict())
        out[name] = {"equal": theirs == ours, "n": len(theirs),
                     "only_official": sorted(set(theirs) - set(ours))[:5], "only_ours": sorted(set(ours) - set(theirs))[:5],
                     "shape_diff": [k for k in theirs if k in ours and theirs[k] != ours[k]][:5]}
    return out


class InverseCDF:
    """torch.Tensor.multinomial(1) replaced by the runtime's inverse-CDF draw on given uniforms."""

    def __init__(self, uniforms):
        self.u = list(uniforms)
        self.i = 0

    def __call__(self, probs):
        cdf = torch.cumsum(probs.double(), 0)
        u = self.u[self.i] if self.i < len(self.u) else 0.5  # past our draws: the sequences already differ
        self.i += 1
        j = int(torch.searchsorted(cdf, torch.tensor([u * float(cdf[-1])], dtype=torch.float64), right=True)[0])
        return torch.tensor([min(j, probs.numel() - 1)])


def section_llm():
    from exporter.export import export_components
    from exporter.spec import ExportOptions
    from runtime_ref.llm import LLM
    from runtime_ref.sampling import PCG64Uniforms, ReplayUniforms

    EOP = 151646  # the official code's hard-coded <|endofprompt|>
    md = model_dir(vocab_size=151936)
    cfg = md.config.llm
    off = official_llm(cfg)
    off.load_state_dict(md.load_checkpoint("llm"), strict=True)
    off.eval()
    bundle = WORK / "bundle_llm"
    if not bundle.exists():
        export_components(md, bundle, ["llm"], ExportOptions(max_cache_len=256, prefill_chunk=16))
    rt = LLM.open(bundle)
    rng = np.random.default_rng(5)
    out = {"logits_max_abs": 0.0, "greedy_equal": [], "ras_equal": [], "n_tokens": []}
    for case, (n_prompt_text, n_text, n_prompt_speech) in enumerate([(4, 7, 20), (0, 3, 0), (9, 8, 33)]):
        prompt_text = list(rng.integers(0, 500, n_prompt_text)) + [EOP]
        text = list(rng.integers(0, 500, n_text))
        prompt_speech = list(rng.integers(0, cfg.speech_token_size, n_prompt_speech))
        # logits after the prompt: the official lm_input through the official backbone + head
        t = torch.tensor([prompt_text + text])
        with torch.inference_mode():
            e = off.speech_embedding.weight
            seq = torch.cat([e[off.sos][None, None], off.llm.model.model.embed_tokens(t), e[off.task_id][None, None],
                             off.speech_embedding(torch.tensor([prompt_speech], dtype=torch.long)) if prompt_speech
                             else torch.zeros(1, 0, e.shape[1])], 1)
            y, _ = off.llm.forward_one_step(seq, masks=torch.tril(torch.ones(1, seq.shape[1], seq.shape[1])).bool())
            theirs = off.llm_decoder(y[:, -1]).log_softmax(-1)[0].numpy()
        ours, _, _ = rt.prefill(rt.lm_input(text, prompt_text, prompt_speech))
        out["logits_max_abs"] = max(out["logits_max_abs"], float(np.abs(ours - theirs).max()))

        def official_tokens(sampling):
            old = off.sampling
            off.sampling = sampling
            try:
                return [int(x) for x in off.inference(
                    text=torch.tensor([text]), text_len=torch.tensor([len(text)]), prompt_text=torch.tensor([prompt_text]),
                    prompt_text_len=torch.tensor([len(prompt_text)]), prompt_speech_token=torch.tensor([prompt_speech], dtype=torch.long).reshape(1, -1),
                    prompt_speech_token_len=torch.tensor([len(prompt_speech)]), embedding=torch.zeros(1, 192))]
            finally:
                off.sampling = old

        greedy_off = official_tokens(lambda s, d, k: int(s.argmax()))
        greedy_ours = rt.generate(text, prompt_text, prompt_speech, sampler="greedy").tokens
        out["greedy_equal"].append(greedy_off == greedy_ours)
        src = PCG64Uniforms(100 + case)
        ras_ours = rt.generate(text, prompt_text, prompt_speech, rng=src).tokens
        draw = InverseCDF(src.drawn)
        orig = torch.Tensor.multinomial
        torch.Tensor.multinomial = lambda probs, n=1, replacement=False: draw(probs)
        try:
            ras_off = official_tokens(off.sampling)
        finally:
            torch.Tensor.multinomial = orig
        out["ras_equal"].append(ras_off == ras_ours)
        out["n_tokens"].append([len(greedy_ours), len(ras_ours), len(ras_off)])
        print(case, "greedy", greedy_off[:12], greedy_ours[:12], "ras", ras_off[:12], ras_ours[:12], file=sys.stderr)
    return out


def section_flow():
    """Official CausalMaskedDiffWithDiT.inference (exact length) vs our PyTorch token2mel and the
    exported bundle through runtime_ref (buckets 64/128 mel frames: padding inside the graphs), in
    the non-streaming, streaming-chunk (finalize=False) and streaming-final modes."""
    from exporter.checkpoint import load_into
    from exporter.cosyvoice3.flow import DiTFlow
    from exporter.export import export_components
    from exporter.flow.model import token2mel_torch
    from exporter.spec import ExportOptions
    from runtime_ref.bundle import Bundle
    from runtime_ref.flow import token2mel

    md = model_dir()
    cfg = md.config.flow
    off = official_flow(cfg)
    off.load_state_dict(md.load_checkpoint("flow"), strict=True)
    off.eval()
    ours = load_into(DiTFlow(cfg, 64).eval(), md.load_checkpoint("flow"), source="flow.pt")
    bundle = WORK / "bundle_flow"
    if not bundle.exists():
        export_components(md, bundle, ["flow"], ExportOptions(flow_lens=(64, 128)))
    b = Bundle.open(bundle)
    rng = np.random.default_rng(9)
    out = {}
    for name, (P, N, streaming, finalize) in {"nonstream_P0_N1": (0, 1, False, True), "nonstream_P7_N19": (7, 19, False, True),
                                               "stream_chunk_P10_N31": (10, 31, True, False),
                                               "stream_final_P10_N45": (10, 45, True, True),
                                               "nonstream_P25_N39_bucket_edge": (25, 39, False, True)}.items():
        pt = rng.integers(0, cfg.vocab_size, (1, P))
        tk = rng.integers(0, cfg.vocab_size, (1, N))
        n_enc = P + N - (0 if finalize else cfg.pre_lookahead_len)
        pm = (rng.standard_normal((1, 2 * P, 80)) * 2 - 5).astype(np.float32)
        xv = rng.standard_normal((1, 192)).astype(np.float32)
        with torch.inference_mode():
            theirs, _ = off.inference(torch.from_numpy(tk), torch.tensor([N]), torch.from_numpy(pt), torch.tensor([P]),
                                      torch.from_numpy(pm), torch.tensor([2 * P]), torch.from_numpy(xv), streaming=streaming,
                                      finalize=finalize)
        theirs = theirs.numpy()
        mine = token2mel_torch(ours, pt, tk, pm, xv, streaming=streaming, finalize=finalize).numpy()
        rt = token2mel(b, pt, tk, pm, xv, streaming=streaming, finalize=finalize)
        assert theirs.shape == mine.shape == rt.shape == (1, 80, 2 * n_enc - 2 * P), (theirs.shape, mine.shape, rt.shape)
        out[name] = {"torch_max_abs": float(np.abs(mine - theirs).max()), "bundle_max_abs": float(np.abs(rt - theirs).max()),
                     "mel_abs_max": float(np.abs(theirs).max())}
    return out


def snr_db(ref, x):
    ref, x = np.asarray(ref, np.float64), np.asarray(x, np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - x) ** 2), 1e-300)))


def section_hift():
    """Official CausalHiFTGenerator.inference vs ours with the official uniform noise table as our
    `noise` input: float64 both (the exact math; our phase as a plain cumsum; the official STFT/iSTFT
    window is a float32 constant, `get_window(...).astype(np.float32)`, so float64 is also run with
    that window computed in float64: `f64_exact_window_max_abs`), and float32 official vs
    our float32 module (integer-exact phase) and the exported graph, finalize True and False, with
    f0 up to ~500 Hz."""
    from exporter.cosyvoice3.hift import build_causal_hift
    from exporter.cosyvoice3.hift_export import build as hift_build
    from exporter.export import export_graph
    from exporter.hift.export import example_mel
    from exporter.hift.stft import hann_window
    from exporter.spec import ExportOptions
    import onnxruntime as ort

    md = model_dir()
    c = md.config.hift
    sd = md.load_checkpoint("hift")
    off = official_hift(c)
    off.load_state_dict(sd, strict=True)
    off.eval()
    table = off.m_source.l_sin_gen.sine_waves
    out = {}
    ours = build_causal_hift(c, sd)
    # float64 end to end: weight norm folded from the float64 g, v into a float64 module (a float32
    # module would round the folded weights to float32: a 1e-5 Hz f0 error at 350 Hz, 6e-6 in the waveform)
    ours64 = build_causal_hift(c, {k: v.double() for k, v in sd.items()}, dtype=torch.float64)
    ours64.phase_bits = None
    off64 = official_hift(c)
    off64.load_state_dict(sd, strict=True)
    off64 = off64.double().eval()
    off64.stft_window = off64.stft_window.double()  # the official float32 Hann window, widened
    off64.m_source.l_sin_gen.sine_waves = table.double()
    exact_window = torch.from_numpy(hann_window(c.istft_n_fft))  # the same window computed in float64
    for T, finalize, f0_bias in [(1, True, None), (17, True, None), (40, False, None), (64, True, 480.0), (64, False, 480.0)]:
        mel = torch.from_numpy(example_mel(T, seed=T))
        if f0_bias is not None:  # push f0 up to ~500 Hz (classifier bias), the realistic upper range
            saved = [m.f0_predictor.classifier.bias.detach().clone() for m in (off, off64, ours, ours64)]
            for m in (off, off64, ours, ours64):
                m.f0_predictor.classifier.bias.data.fill_(f0_bias)
        with torch.inference_mode():
            w_off64, _ = off64.inference(mel.double(), finalize=finalize)
            f32_window = off64.stft_window
            off64.stft_window = exact_window
            w_off64x, _ = off64.inference(mel.double(), finalize=finalize)
            off64.stft_window = f32_window
            w64 = ours64(mel.double(), table[:, :480 * T].double(), finalize)
            w_off, _ = off.inference(mel, finalize=finalize)
            w32 = ours(mel, table[:, :480 * T], finalize)
            f0 = off.f0_predictor(mel.double(), finalize=finalize)
        key = f"T{T}_{'final' if finalize else 'chunk'}" + ("_f0hi" if f0_bias else "")
        out[key] = {"n": int(w_off.shape[1]), "f64_max_abs": float((w64 - w_off64).abs().max()),
                    "f64_exact_window_max_abs": float((w64 - w_off64x).abs().max()),
                    "f32_max_abs": float((w32 - w_off).abs().max()), "f32_snr_db": snr_db(w_off, w32),
                    "f0_max_hz": float(f0.max())}
        if f0_bias is not None:  # back to the checkpoint's bias (the exported graph below has it)
            for m, b in zip((off, off64, ours, ours64), saved):
                m.f0_predictor.classifier.bias.data.copy_(b)
    # the exported graph (T = 64 frames, finalize) against the official float32 module
    bundle = WORK / "bundle_hift"
    bundle.mkdir(exist_ok=True)
    ce = hift_build(md, ExportOptions(hift_frames=64))
    spec = ce.graphs[0]
    res = export_graph(spec, bundle, ExportOptions(hift_frames=64))
    sess = ort.InferenceSession(str(bundle / spec.file), providers=["CPUExecutionProvider"])
    T = 64
    mel = example_mel(T, seed=99)
    H = c.nb_harmonics + 1
    (w_onnx,) = sess.run(["waveform"], {"mel": mel, "noise": table[:, :480 * T].numpy(), "phase_in": np.zeros((1, 1, H), np.float32),
                                        "phase_ref": np.zeros((1, T, 1), np.float32), "n_frames": np.array([T], np.int32)})
    with torch.inference_mode():
        w_off, _ = off.inference(torch.from_numpy(mel), finalize=True)
        w_off64, _ = off64.inference(torch.from_numpy(mel).double(), finalize=True)
    # vs the official float64 run (the exact math; the official float32 run adds its own phase
    # cumsum drift, ~1e-4 at 360 Hz over 64 frames) and vs the official float32 run
    out["graph_T64"] = {"max_abs": float(np.abs(w_onnx - w_off.numpy()).max()), "snr_db": snr_db(w_off.numpy(), w_onnx),
                        "f64_max_abs": float(np.abs(w_onnx - w_off64.numpy()).max()), "f64_snr_db": snr_db(w_off64.numpy(), w_onnx),
                        "checker_ok": bool(res.entry["checker"]["ok"])}
    return out


def section_e2e():
    """The official CosyVoice3Model.tts glue (LM thread, flow, causal HiFT, streaming schedule and
    mel re-vocoding) on the official modules vs runtime_ref's CosyVoice3Pipeline on the exported
    bundle, same weights, same sampling uniforms, the official vocoder noise table; non-streaming and
    streaming. The text front-end is bypassed (token ids given), so the official hard-coded
    <|endofprompt|> id 151646 can be used."""
    from cosyvoice.cli.model import CosyVoice3Model
    from exporter.export import export_components
    from exporter.spec import ExportOptions
    from runtime_ref.cosyvoice3 import CosyVoice3Pipeline, drop_long_silences
    from runtime_ref.bundle import Bundle
    from runtime_ref.pipeline import PieceRequest
    from runtime_ref.sampling import PCG64Uniforms

    md = model_dir(vocab_size=151936)
    c = md.config
    bundle = WORK / "bundle_e2e"
    if not bundle.exists():
        export_components(md, bundle, ["llm", "flow", "hift", "text"],
                          ExportOptions(max_cache_len=512, prefill_chunk=16, flow_lens=(160,)))
    p = CosyVoice3Pipeline(Bundle.open(bundle))
    rng = np.random.default_rng(21)
    P = 14
    text = [int(x) for x in rng.integers(0, 500, 9)]
    prompt_text = [int(x) for x in rng.integers(0, 500, 5)] + [151646] + [int(x) for x in rng.integers(0, 500, 4)]
    prompt_speech = rng.integers(0, 6561, P).astype(np.int32)
    prompt_mel = (rng.standard_normal((2 * P, 80)) * 1.5 - 5).astype(np.float32)
    xvec = rng.standard_normal(192).astype(np.float32)
    req = PieceRequest("<ids>", np.array(text, np.int32), np.array(prompt_text, np.int32), prompt_speech, prompt_speech,
                       prompt_mel, xvec)
    out = {}
    for stream in (False, True):
        off_llm = official_llm(c.llm)
        off_llm.load_state_dict(md.load_checkpoint("llm"), strict=True)
        off_flow = official_flow(c.flow)
        off_flow.load_state_dict(md.load_checkpoint("flow"), strict=True)
        off_hift = official_hift(c.hift)
        off_hift.load_state_dict(md.load_checkpoint("hift"), strict=True)
        model = CosyVoice3Model(off_llm.eval(), off_flow.eval(), off_hift.eval())
        table = off_hift.m_source.l_sin_gen.sine_waves
        # the official fixed table as our noise (the class's start: the instance's is replaced)
        p.vocoder.start = lambda _rng, _v=p.vocoder, _t=table[0, :480 * 2048].numpy(): type(_v).start(_v, None, _t)
        src = PCG64Uniforms(300 + int(stream))
        cap = 60  # P + cap tokens fit the 160-frame flow bucket
        lm_tokens = list(p.llm.iter_tokens(req.text_ids, req.llm_prompt_text_ids, req.llm_prompt_speech, rng=src,
                                           max_new_tokens=cap))
        toks = list(drop_long_silences(lm_tokens, p.llm.meta["silent_tokens"], 5))
        if stream:
            ours = np.concatenate(list(p._stream_piece(req, iter(toks), None, first_hop=25, max_hop=100)))
        else:
            ours = p.mel2wav(p.token2mel(req, toks), None)
        # official: same uniforms for its multinomial draws, max_len capped like ours
        draw = InverseCDF(src.drawn)
        seen = []
        inference = off_llm.inference

        def capped(*a, **k):
            for i, t in enumerate(inference(*a, **k)):
                if i >= cap:
                    return
                seen.append(int(t))
                yield t

        off_llm.inference = capped
        orig = torch.Tensor.multinomial
        torch.Tensor.multinomial = lambda probs, n=1, replacement=False: draw(probs)
        try:
            theirs = torch.cat([o["tts_speech"] for o in model.tts(
                text=torch.tensor([text]), flow_embedding=torch.from_numpy(xvec)[None], llm_embedding=torch.from_numpy(xvec)[None],
                prompt_text=torch.tensor([prompt_text]), llm_prompt_speech_token=torch.from_numpy(prompt_speech)[None].long(),
                flow_prompt_speech_token=torch.from_numpy(prompt_speech)[None], prompt_speech_feat=torch.from_numpy(prompt_mel)[None],
                stream=stream)], dim=1)[0].numpy()
        finally:
            torch.Tensor.multinomial = orig
        n = min(len(theirs), len(ours))
        out["stream" if stream else "nonstream"] = {
            "tokens_equal": seen == lm_tokens, "n_tokens": len(lm_tokens), "n_flow_tokens": len(toks),
            "samples": [len(theirs), len(ours)], "snr_db": snr_db(theirs[:n], ours[:n]),
            "max_abs": float(np.abs(theirs[:n] - ours[:n]).max())}
    return out


class RecordingGenerator:
    """np.random.Generator stand-in for runtime_ref's sampling stream: real PCG64 uniforms, recorded."""

    def __init__(self, seed):
        self.gen, self.drawn = np.random.default_rng(seed), []

    def random(self):
        u = float(self.gen.random())
        self.drawn.append(u)
        return u


def section_bistream():
    """Official CosyVoice3LM.inference_bistream (text ids arriving one by one, prompt prefix up to
    <|endofprompt|>, fill tokens, the CosyVoice3 eos/fill ids) vs runtime_ref CosyVoice3Pipeline's
    bistream (bistream_tokens_for: the shared runtime_ref/bistream.py schedule) on the exported
    bundle, greedy and seeded RAS (same uniforms), with and without prompt speech. The official
    final decode has no length limit: both sides stop after `cap` tokens."""
    from exporter.export import export_components
    from exporter.spec import ExportOptions
    from runtime_ref.bundle import Bundle
    from runtime_ref.cosyvoice3 import CosyVoice3Pipeline
    from runtime_ref.pipeline import ENDOFPROMPT, PieceRequest

    import shutil

    from exporter.checkpoint import save_state_dict
    from exporter.cosyvoice3.modeldir import CosyVoice3ModelDir

    EOP, cap = 151646, 60
    # random weights would often pick one of the 200 special ids while text streams, which both
    # sides refuse (official: ValueError); their llm_decoder rows set to zero keep the runs long
    root = WORK / "md_bistream"
    if not root.exists():
        shutil.copytree(model_dir(vocab_size=151936).root, root)
        md = CosyVoice3ModelDir.open(root)
        sd = dict(md.load_checkpoint("llm"))
        w = sd["llm_decoder.weight"].clone()
        w[md.config.llm.speech_token_size:] = 0
        sd["llm_decoder.weight"] = w
        save_state_dict(sd, root / "llm.pt")
    md = CosyVoice3ModelDir.open(root)
    bundle = WORK / "bundle_bistream"
    if not bundle.exists():
        export_components(md, bundle, ["llm", "flow", "hift", "text"],
                          ExportOptions(max_cache_len=512, prefill_chunk=16, flow_lens=(160,)))
    p = CosyVoice3Pipeline(Bundle.open(bundle))
    tok = p.text.tokenizer
    real_id = tok.token_to_id
    tok.token_to_id = lambda t: EOP if t == ENDOFPROMPT else real_id(t)  # the official code hard-codes 151646
    off = official_llm(md.config.llm)
    off.load_state_dict(md.load_checkpoint("llm"), strict=True)
    off.eval()
    rng = np.random.default_rng(31)
    out = {"greedy_equal": [], "ras_equal": [], "n_tokens": []}
    for case, (n_sys, n_transcript, n_speech) in enumerate([(4, 6, 20), (5, 0, 0), (3, 9, 33)]):
        prompt_text = [int(x) for x in rng.integers(0, 500, n_sys)] + [EOP] + [int(x) for x in rng.integers(0, 500, n_transcript)]
        prompt_speech = [int(x) for x in rng.integers(0, 6561, n_speech)]
        text = [int(x) for x in rng.integers(0, 500, 14)]
        req = PieceRequest("<ids>", np.zeros(0, np.int32), np.array(prompt_text, np.int32), np.array(prompt_speech, np.int32),
                           np.array(prompt_speech, np.int32), np.zeros((2 * n_speech, 80), np.float32), np.zeros(192, np.float32))
        for sampler in ("greedy", "ras"):
            src = RecordingGenerator(400 + case)
            ours = list(p.bistream_tokens_for(req, iter(text), src, sampler=sampler, max_new_tokens=cap))
            old, orig = off.sampling, torch.Tensor.multinomial
            if sampler == "greedy":
                off.sampling = lambda s, d, k: int(s.argmax())
            else:
                draw = InverseCDF(src.drawn)
                torch.Tensor.multinomial = lambda probs, n=1, replacement=False: draw(probs)
            theirs = []
            try:
                for t in off.inference_bistream(text=(torch.tensor([[x]]) for x in text), prompt_text=torch.tensor([prompt_text]),
                                                prompt_text_len=torch.tensor([len(prompt_text)]),
                                                prompt_speech_token=torch.tensor([prompt_speech], dtype=torch.long).reshape(1, -1),
                                                prompt_speech_token_len=torch.tensor([len(prompt_speech)]), embedding=torch.zeros(1, 192)):
                    theirs.append(int(t))
                    if len(theirs) >= cap:
                        break
            finally:
                off.sampling, torch.Tensor.multinomial = old, orig
            out["greedy_equal" if sampler == "greedy" else "ras_equal"].append(theirs == ours)
            out["n_tokens"].append([len(theirs), len(ours)])
            print(case, sampler, theirs[:10], ours[:10], file=sys.stderr)
    return out


for sec in SECTIONS:
    RESULTS[sec] = globals()[f"section_{sec}"]()
print(json.dumps(RESULTS))
