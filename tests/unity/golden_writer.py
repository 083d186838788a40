"""Golden traces of runtime_ref, replayed by the C# Core of the Unity package (tests/unity).

    python -m tests.unity.golden_writer --out tests/golden          # rewrite every golden file

Trace format `sentis-tts-trace/1` (one JSON file per scenario, see docs/unity.md):

    {"format": "sentis-tts-trace/1", "kind": "<scenario kind>", "description": "...",
     "manifest": {"graphs": {...}, "components": {...}, "constants": {...}},   # subset of the bundle's
     "params":   {...},                                                         # scenario inputs
     "outputs":  "recorded" | "synthetic",
     "calls":    [{"graph": name,
                   "inputs":  [{"name", "dtype", "shape", "sha256"}],
                   "outputs": [{"name", "dtype", "shape", "sha256", "data"?: base64 little-endian}]}],
     "result":   {...}}                                                         # what the host produced

Every input hash is the sha256 of the little-endian bytes the graph receives (after the bundle's
dtype cast). `recorded` traces hold real onnxruntime outputs of the tiny bundle; `data` is stored
only for the outputs the host reads back (embeddings during prefill, the logprobs it samples from),
the KV-cache outputs are hashes only (they never leave the backend in the C# runner). `synthetic`
traces (HiFT) replace every graph output by `synth(n, seed)` below — the orchestration around the
graph (chunk plan, slicing, phase carry, source cache, cross-fade) is what they pin, and a replay
runner in any language computes the same outputs without storing megabytes of audio.

`pipeline` traces (runtime_ref.pipeline.Pipeline, see PipelineRecorder) mix both: an output entry
may carry `"synth": seed` (+ `"set": [[index, value], ...]`) instead of data, and the HiFT `noise`
input entry carries `"noise_slice": {"draw", "start", "count"}` or `{"segments": [[draw, start, count], ...]}` (which elements of which recorded
noise draw it holds, zeros after) next to its real sha256.

    python -m tests.unity.golden_writer --only-pipeline BUNDLE    # only pipeline_*, from an exported bundle
    python -m tests.unity.golden_writer --only-bistream BUNDLE    # only bistream_*, from an exported bundle
    python -m tests.unity.golden_writer --only-text               # only text_frontend.json

Adding a scenario is a new `kind` written here plus, on the C# side, one entry in the scenario
table of the test program.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np

FORMAT = "sentis-tts-trace/1"
GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CORPUS = Path(__file__).resolve().parents[1] / "text" / "corpus.jsonl"
_NP = {"float32": np.float32, "int32": np.int32}


# -- helpers shared with the replay ---------------------------------------------------------------
def sha256(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()


def b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()).decode("ascii")


def dtype_name(arr: np.ndarray) -> str:
    return {np.dtype(np.float32): "float32", np.dtype(np.int32): "int32"}[arr.dtype]


def synth(n: int, seed: int) -> np.ndarray:
    """n float32 values in [-0.5, 0.5), exactly representable: ((i*1103515245 + seed*2654435761 + 12345)
    mod 2^24) / 2^24 - 0.5. The C# replay computes the same bits with 64-bit integers."""
    i = np.arange(n, dtype=np.int64)
    v = (i * 1103515245 + seed * 2654435761 + 12345) % (1 << 24)
    return v.astype(np.float32) / np.float32(1 << 24) - np.float32(0.5)


def tensor_entry(name: str, arr: np.ndarray, *, data: bool = False) -> dict:
    e = {"name": name, "dtype": dtype_name(arr), "shape": [int(d) for d in arr.shape], "sha256": sha256(arr)}
    if data:
        e["data"] = b64(arr)
    return e


def manifest_subset(manifest: dict, components: list[str]) -> dict:
    graphs = {}
    comps = {c: manifest["components"][c] for c in components}
    for n, g in manifest["graphs"].items():
        if g.get("component") in components:
            graphs[n] = {k: g[k] for k in ("component", "file", "inputs", "outputs") if k in g}
    return {"schema_version": manifest.get("schema_version"), "constants": manifest["constants"],
            "components": comps, "graphs": graphs}


def write_json(path: Path, obj: dict) -> None:
    """Top-level keys one per line, list items (cases, calls) one per line: small, diffable."""
    def dump(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

    lines = []
    for k, v in obj.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            body = ",\n  ".join(dump(x) for x in v)
            lines.append(f"{dump(k)}:[\n  {body}]")
        else:
            lines.append(f"{dump(k)}:{dump(v)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")


# -- the bundle ------------------------------------------------------------------------------------
def build_tiny_bundle(work: Path) -> Path:
    """Tiny model dir (seed 0) -> bundle with the llm, hift and text components."""
    from exporter.export import export_components
    from exporter.fixtures import build_model_dir
    from exporter.modeldir import ModelDir
    from exporter.spec import ExportOptions

    md = build_model_dir(work / "model", size="tiny", seed=0)
    out = work / "bundle"
    export_components(ModelDir.open(md), out, ["llm", "hift", "text"], ExportOptions(parity=False))
    return out


# The traces hold the graph calls of the Unity runtime, which writes the LLM's KV rows with the
# llm_cache_append graph (Sentis keeps the cache on the device); runtime_ref's own Bundle writes
# them in place on the host instead (bit-identical, tests/llm/test_llm_export.py). The recorders
# (and the replays in test_golden_traces.py) therefore say host_cache_write = False.
class RecordingBundle:
    """Proxy of runtime_ref.bundle.Bundle whose `run` records every call (names, shapes, hashes)."""

    host_cache_write = False

    def __init__(self, bundle, host_read: set[str]):
        self._b = bundle
        self.calls: list[dict] = []
        self.host_read = host_read

    def __getattr__(self, name):
        return getattr(self._b, name)

    def run(self, name, feeds, outputs=None):
        g = self._b.graph(name)
        cast = {}
        for spec in g.inputs:
            a = np.asarray(feeds[spec["name"]])
            cast[spec["name"]] = np.ascontiguousarray(a.astype(_NP[spec["dtype"]], copy=False))
        res = self._b.run(name, dict(cast), outputs)
        self.calls.append({"graph": name,
                           "inputs": [tensor_entry(s["name"], cast[s["name"]]) for s in g.inputs],
                           "outputs": [tensor_entry(o, np.ascontiguousarray(v), data=o in self.host_read)
                                       for o, v in res.items()]})
        return res


def _drop_unread_logprobs(calls: list[dict], step_graph: str) -> None:
    """A step's logprobs are read only when the next call is not another prefill chunk."""
    for k, c in enumerate(calls):
        if c["graph"] != step_graph:
            continue
        nxt = calls[k + 1]["graph"] if k + 1 < len(calls) else None
        if nxt == step_graph:
            for o in c["outputs"]:
                o.pop("data", None)


# -- scenarios ----------------------------------------------------------------------------------
def tokenizer_golden(bundle_dir: Path, out: Path) -> None:
    import unicodedata

    from runtime_ref.text import Qwen2Tokenizer
    from runtime_ref.text.pretokenize import pretokenize

    tok = Qwen2Tokenizer.from_dir(bundle_dir / "text")
    lines = [json.loads(s) for s in CORPUS.read_text(encoding="utf-8").splitlines() if s.strip()]
    lines += ["<|endofprompt|>Hello[breath] there.", "You are a helpful assistant.<|endofprompt|>希望你以后能够做的比我还好呦。",
              "[laughter]ha[laughter] <strong>loud</strong>[noise][noise]", "<|im_start|><|im_end|><|endoftext|>",
              "[breath [breath]] <|endofprompt|", "",
              "'Sam 'Stop' 'LLama 'REd 'VEry 'Dog 'Tom 'Max I'Mx we'ſs", "a\u3000\u3000b\u2028\n \n\t x  \r\n", "x\U0001F600y 1\u0663\u00bd"]
    tdir = out / "tokenizer_tiny"
    tdir.mkdir(parents=True, exist_ok=True)
    for f in ("vocab.json", "merges.txt", "special_tokens.json"):
        shutil.copyfile(bundle_dir / "text" / f, tdir / f)
    write_json(out / "tokenizer_ids.json", {
        "format": FORMAT, "kind": "tokenizer",
        "description": "runtime_ref.text.Qwen2Tokenizer.encode (ids) and pretokenize(NFC(text)) (pieces) of tests/text/corpus.jsonl (+ special-token lines) "
                       "with the tiny bundle's tokenizer (files in tokenizer_tiny/)",
        "tokenizer_dir": "tokenizer_tiny",
        "cases": [{"text": s, "ids": tok.encode(s), "pieces": pretokenize(unicodedata.normalize("NFC", s))} for s in lines]})


# number/symbol/splitting cases the corpus lacks (English, Japanese kana + numerals, tags, long runs)
TEXT_EXTRA = [
    "At 10:30, $5 and 7:05 or 23:00.", "It costs $1.01, €2.50, £0.99 and ¥300; 3.5% of 1,234,567 is -4.", "The 21st, 2nd, 3rd, 12th, 100th and 1000000th.",
    "Call 007 or 0.25 now & then: 1+1=2 @ 3 p.m.", "１２３ and ％ in full width.", "A number too big: 12345678901234567890.",
    "いまは10:30です。ねだんは$5、3.5%です。", "きょうは2026ねん、0.25と-4と1,234です。", "すうじ１２３、１００００と100000000。",
    "Hello[breath] there.<strong>Loud</strong> words [laughter] here.", "Wait... what?! Really!!! \"Yes.\" (Fine.) Done",
    "One sentence without an end, then a clause, and another clause, and a third, and a fourth one here",
    "これはとてもながいぶんしょうで、くぎりがすくないので、もじのあいだできることになります",
    "这是一个很长的句子没有标点符号所以需要在字之间切开才能放进预算里面",
    "   ", "...!!!", "Verylongwordwithoutanyblanksthatcannotbecutatallbecauseitisoneword",
]


def text_frontend_golden(tokenizer_dir: Path, out: Path) -> None:
    """runtime_ref's text front-end on the corpus + TEXT_EXTRA: language, normalize_text
    (japanese_reading=False: C# takes kana or pre-baked readings), split pieces at two budgets,
    and text_token_budget on a few bundle shapes."""
    from runtime_ref.text import Qwen2Tokenizer
    from runtime_ref.text.errors import TextFrontendError
    from runtime_ref.text.frontend import TextFrontend
    from runtime_ref.text.normalize import detect_language, normalize_text
    from runtime_ref.text.split import text_token_budget

    tok = Qwen2Tokenizer.from_dir(tokenizer_dir)
    fe = TextFrontend(tok, japanese_reading=False)
    lines = [json.loads(s) for s in CORPUS.read_text(encoding="utf-8").splitlines() if s.strip()] + TEXT_EXTRA
    cases = []
    for t in lines:
        c = {"text": t, "lang": detect_language(t), "normalized": normalize_text(t, japanese_reading=False)}
        for budget in (12, 40):
            try:
                c[f"pieces_{budget}"] = [p.text for p in fe.pieces(t, budget)]
            except TextFrontendError as e:
                c[f"pieces_{budget}"] = {"error": str(e).split("'")[0].split(" (")[0].strip()}  # the kind, not the quoted text
        cases.append(c)
    budgets = []
    for cap, flow, pt, ps, r in ((2048, 750, 0, 0, 10.0), (2048, 750, 30, 250, 10.0), (160, 96, 5, 13, 20.0), (2048, 750, 12, 300, 20.0)):
        budgets.append({"max_cache_len": cap, "max_flow_tokens": flow, "prompt_text_tokens": pt, "prompt_speech_tokens": ps,
                        "speech_tokens_per_text_token": r, "budget": text_token_budget(cap, flow, prompt_text_tokens=pt, prompt_speech_tokens=ps,
                                                                                        speech_tokens_per_text_token=r)})
    write_json(out / "text_frontend.json", {
        "format": FORMAT, "kind": "text_frontend",
        "description": "runtime_ref.text: detect_language, normalize_text(japanese_reading=False), TextFrontend.pieces at budgets 12 and 40 "
                       "(tiny tokenizer), text_token_budget; corpus tests/text/corpus.jsonl + extra number/tag/splitting cases",
        "tokenizer_dir": "tokenizer_tiny", "cases": cases, "budgets": budgets})


def voice_features_golden(out: Path) -> None:
    """runtime_ref/audio.py host features of voice making on a seeded 1.2 s 22.05 kHz signal: resample
    to 16 and 24 kHz, Kaldi fbank (+CMN) of the 16 kHz signal, flow mel of the 24 kHz one."""
    from runtime_ref import audio

    rng = np.random.default_rng(5)
    sr, n = 22050, int(1.2 * 22050)
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * (150 + 400 * t) * t) + 0.1 * np.sin(2 * np.pi * 1234.5 * t) + 0.02 * rng.standard_normal(n)
    x = (x * np.minimum(1.0, t / 0.05)).astype(np.float32)  # a short fade-in
    wav16 = audio.resample(x.astype(np.float64), sr, 16000).astype(np.float32)
    wav24 = audio.resample(x.astype(np.float64), sr, 24000).astype(np.float32)
    fb = audio.kaldi_fbank(wav16)
    mel = audio.flow_mel(wav24)
    write_json(out / "voice_features.json", {
        "format": FORMAT, "kind": "voice_features",
        "description": "runtime_ref.audio: resample 22050 -> 16000 / 24000, kaldi_fbank(wav16) (CAM++ input, CMN), flow_mel(wav24) "
                       "(prompt mel) on a seeded chirp; the speech tokenizer's Whisper log-mel is inside its graph",
        "rate": sr, "tolerance": 1e-4,
        "signal": tensor_entry("signal", x, data=True), "wav16": tensor_entry("wav16", wav16, data=True),
        "wav24": tensor_entry("wav24", wav24, data=True), "fbank": tensor_entry("fbank", fb, data=True),
        "flow_mel": tensor_entry("flow_mel", mel, data=True)})


def voice_bake_golden(work: Path, out: Path) -> None:
    """runtime_ref.prompt.bake_voice on the tiny model's speech_tokenizer + campplus graphs (recorded
    calls, outputs as data) from the voice_features signal: what the C# VoiceBuilder must reproduce."""
    from exporter.export import export_components
    from exporter.fixtures import build_model_dir
    from exporter.modeldir import ModelDir
    from exporter.spec import ExportOptions
    from runtime_ref import prompt
    from runtime_ref.bundle import Bundle

    md = work / "model" if (work / "model").exists() else build_model_dir(work / "model", size="tiny", seed=0)
    bdir = work / "prompt_bundle"
    export_components(ModelDir.open(md), bdir, ["speech_tokenizer", "campplus"], ExportOptions(parity=False))
    b = Bundle.open(bdir)
    rec = RecordingBundle(b, {"speech_tokens", "token_count", "embedding"})
    feats = json.loads((out / "voice_features.json").read_text(encoding="utf-8"))
    x = np.frombuffer(base64.b64decode(feats["signal"]["data"]), np.float32)
    v = prompt.bake_voice(rec, x.astype(np.float64), int(feats["rate"]), text="A tiny text.")
    write_json(out / "voice_bake.json", {
        "format": FORMAT, "kind": "voice_bake",
        "description": "runtime_ref.prompt.bake_voice (resample, speech_tokenizer graph, Kaldi fbank + campplus graph, flow mel, "
                       "alignment) on the tiny model's graphs; the signal of voice_features.json",
        "manifest": manifest_subset(b.manifest, ["speech_tokenizer", "campplus"]), "signal_file": "voice_features.json",
        "outputs": "recorded", "calls": rec.calls, "tolerance": 1e-4,
        "result": {"embedding": tensor_entry("embedding", v["embedding"], data=True),
                   "speech_tokens": v["speech_tokens"].tolist(),
                   "prompt_mel": tensor_entry("prompt_mel", np.ascontiguousarray(v["prompt_mel"], np.float32), data=True)}})


def sampler_golden(out: Path) -> None:
    from runtime_ref.sampling import RasParams, ReplayUniforms, nucleus_sampling, ras_sampling, random_sampling

    rng = np.random.default_rng(1234)
    cases = []
    for k in range(48):
        v = 6564 if k in (5, 30) else [7, 25, 64, 300, 1000][k % 5]
        scores = (rng.standard_normal(v) * [0.5, 2.0, 6.0][k % 3]).astype(np.float32)
        scores = (scores - np.log(np.exp(scores.astype(np.float64)).sum())).astype(np.float32)  # log-probs
        if k % 4 == 1:
            scores[int(rng.integers(v))] = -np.inf
        if k % 7 == 3:  # ties
            scores[: v // 2] = scores[0]
        params = RasParams(top_p=[0.8, 0.5, 0.95, 1.0][k % 4], top_k=[25, 3, 1, 50][(k // 4) % 4], win_size=10, tau_r=0.1)
        top = int(np.argmax(scores))
        decoded = [int(x) for x in rng.integers(0, v, size=int(rng.integers(0, 14)))]
        if k % 3 == 0:
            decoded += [top] * int(rng.integers(1, 4))  # provoke the repetition-aware redraw
        # 53-bit uniforms u = m / 2^53 (exact in JSON as integers)
        mants = [int(x) for x in rng.integers(0, 1 << 53, size=4, dtype=np.int64)]
        us = [m / float(1 << 53) for m in mants]
        method = ["ras", "nucleus", "random"][0 if k % 6 else (k // 6) % 3]
        r = ReplayUniforms(us)
        if method == "ras":
            tok = ras_sampling(scores, decoded, params, r)
        elif method == "nucleus":
            tok = nucleus_sampling(scores, params.top_p, params.top_k, r)
        else:
            tok = random_sampling(scores, r)
        cases.append({"method": method, "scores": b64(scores), "n": v, "decoded": decoded,
                      "top_p": params.top_p, "top_k": params.top_k, "win_size": params.win_size, "tau_r": params.tau_r,
                      "uniforms_2p53": mants, "uniforms_used": r.i, "token": int(tok)})
    # ties exactly at top_p: the float32 cumulative probability before a token equals top_p, so the
    # official `cum < top_p` (not `<=`) decides whether that token joins the nucleus; u near 1 picks
    # the last candidate, which differs between the two
    from runtime_ref.sampling import softmax

    # Scores take a few levels whose numpy float32 exp equals the correctly rounded exp (numpy's SIMD
    # exp is not correctly rounded for many inputs — a tie at top_p would then hinge on the exp
    # implementation, not on the comparison; C# uses Math.Exp rounded to float).
    tie_rng = np.random.default_rng(99)
    grid = -(np.arange(0, 64) / 16).astype(np.float32)
    same = np.exp(np.repeat(grid, 64)) == np.exp(np.repeat(grid, 64).astype(np.float64)).astype(np.float32)
    levels = grid[same.reshape(-1, 64).all(axis=1)][:12]
    for k, v in enumerate([10, 64, 300, 6564]):
        scores = np.zeros(v, np.float32) if v <= 64 else tie_rng.choice(levels, v).astype(np.float32)
        scores[0] = 0.0
        assert np.array_equal(np.exp(scores), np.exp(scores.astype(np.float64)).astype(np.float32))
        probs = softmax(scores)
        order = np.argsort(-probs, kind="stable")
        before = np.concatenate([np.zeros(1, np.float32), np.cumsum(probs[order], dtype=np.float32)[:-1]])
        j = 3 + k
        top_p = float(before[j])
        mants = [int(0.999 * float(1 << 53)), int(0.25 * float(1 << 53))]
        for method in ("nucleus", "ras"):
            r = ReplayUniforms([m / float(1 << 53) for m in mants])
            params = RasParams(top_p=top_p, top_k=50, win_size=10, tau_r=0.1)
            tok = nucleus_sampling(scores, top_p, 50, r) if method == "nucleus" else ras_sampling(scores, [], params, r)
            assert tok == int(order[j - 1]), (k, method, tok)  # `<` keeps j candidates: the last is order[j-1]
            cases.append({"method": method, "scores": b64(scores), "n": v, "decoded": [], "top_p": top_p, "top_k": 50,
                          "win_size": 10, "tau_r": 0.1, "uniforms_2p53": mants, "uniforms_used": r.i, "token": int(tok),
                          "note": f"cumulative probability before sorted token {j} == top_p"})
    write_json(out / "sampler_draws.json", {
        "format": FORMAT, "kind": "sampler",
        "description": "runtime_ref.sampling draws for given log-probs (float32 base64) and uniforms (u = m / 2^53)",
        "cases": cases})


class _CountingUniforms:
    def __init__(self, seed: int):
        self.gen = np.random.Generator(np.random.PCG64(seed))
        self.drawn: list[int] = []

    def uniform(self) -> float:
        m = int(self.gen.integers(0, 1 << 53, dtype=np.int64))
        self.drawn.append(m)
        return m / float(1 << 53)


def llm_golden(bundle, out: Path) -> None:
    from runtime_ref.llm import LLM
    from runtime_ref.text import Qwen2Tokenizer

    tok = Qwen2Tokenizer.from_dir(Path(bundle.root) / "text")
    c = bundle.component("llm")
    host_read = {o["name"] for gname in (c["graphs"]["text_embedding"], c["graphs"]["speech_embedding"],
                                         c["graphs"]["special_embedding"]) for o in bundle.graph(gname).outputs}
    host_read.add("logprobs")
    scenarios = [
        ("llm_generate_sft", dict(text="Hello, this is a test.", prompt_text="", prompt_speech=[], seed=1, max_new_tokens=6)),
        ("llm_generate_zero_shot", dict(text="It speaks words.", prompt_text="A tiny text to speech model, offline, in a game.",
                                        prompt_speech=[int(x) for x in np.random.default_rng(7).integers(0, 6561, 24)],
                                        seed=2, max_new_tokens=4)),
    ]
    for name, p in scenarios:
        rec = RecordingBundle(bundle, host_read)
        llm = LLM(rec)
        text_ids, prompt_ids = tok.encode(p["text"]), tok.encode(p["prompt_text"])
        rng = _CountingUniforms(p["seed"])
        gen = llm.generate(text_ids, prompt_ids, p["prompt_speech"], rng=rng, max_new_tokens=p["max_new_tokens"])
        _drop_unread_logprobs(rec.calls, c["graphs"]["step"])
        write_json(out / f"{name}.json", {
            "format": FORMAT, "kind": "llm_generate",
            "description": "runtime_ref.llm.LLM.generate on the tiny bundle (onnxruntime), RAS sampling",
            "manifest": manifest_subset(bundle.manifest, ["llm"]),
            "params": {"text_ids": [int(x) for x in text_ids], "prompt_text_ids": [int(x) for x in prompt_ids],
                       "prompt_speech_tokens": p["prompt_speech"], "max_new_tokens": p["max_new_tokens"],
                       "sampler": "ras", "uniforms_2p53": rng.drawn},
            "outputs": "recorded", "calls": rec.calls,
            "result": {"tokens": gen.tokens, "stop_reason": gen.stop_reason, "prompt_len": gen.prompt_len}})


class SyntheticHiFT:
    """The `run` callable of runtime_ref.hift.HiFTVocoder: records the call, returns synth outputs."""

    def __init__(self, graph: dict):
        self.graph = graph
        self.calls: list[dict] = []

    def __call__(self, feeds: dict) -> dict:
        k = len(self.calls)
        ins = [tensor_entry(s["name"], np.ascontiguousarray(feeds[s["name"]], dtype=_NP[s["dtype"]]))
               for s in self.graph["inputs"]]
        outs, entries = {}, []
        for j, o in enumerate(self.graph["outputs"]):
            shape = tuple(int(d) for d in o["shape"])
            outs[o["name"]] = synth(int(np.prod(shape)), 1000 + 3 * k + j).reshape(shape)
            entries.append(tensor_entry(o["name"], outs[o["name"]]))
        self.calls.append({"graph": self.graph["name"], "inputs": ins, "outputs": entries})
        return outs


def hift_golden(bundle, out: Path) -> None:
    from runtime_ref.hift import HiFTVocoder

    c = bundle.component("hift")
    gname = c.get("graph", "hift")
    g = dict(bundle.graph(gname).entry, name=gname)
    n_mels, hop, H = g["inputs"][0]["shape"][1], c["hop_samples"], c["harmonics"]

    def vocoder(rec):
        v = HiFTVocoder.from_bundle(bundle)
        v._run = rec
        return v

    def mel_of(n, seed):
        return (synth(n_mels * n, seed) * np.float32(8.0)).reshape(1, n_mels, n)

    def noise_of(n, seed):
        return synth(hop * n * H, seed).reshape(1, hop * n, H)

    for name, frames, with_cache in (("hift_mel2wav_short", 50, False), ("hift_mel2wav_long", 300, False),
                                     ("hift_mel2wav_cache", 231, True)):
        rec = SyntheticHiFT(g)
        cache = synth(c["streaming"]["source_cache_len"], 77).reshape(1, 1, -1) if with_cache else None
        wav, src = vocoder(rec).mel2wav(mel_of(frames, 11), noise_of(frames, 12), cache_source=cache)
        write_json(out / f"{name}.json", {
            "format": FORMAT, "kind": "hift_mel2wav",
            "description": "runtime_ref.hift.HiFTVocoder.mel2wav (whole utterance, overlapping chunks, phase carry); "
                           "graph outputs synthetic",
            "manifest": manifest_subset(bundle.manifest, ["hift"]),
            "params": {"frames": frames, "mel_seed": 11, "mel_scale": 8.0, "noise_seed": 12,
                       "cache_source_seed": 77 if with_cache else None},
            "outputs": "synthetic", "synthetic_seed_base": 1000, "calls": rec.calls,
            "result": {"waveform": tensor_entry("waveform", wav), "source": tensor_entry("source", src)}})

    for name, sizes in (("hift_stream", [40, 50, 50, 37]), ("hift_stream_single", [30])):
        rec = SyntheticHiFT(g)
        counter = iter(range(100, 200))
        pieces = list(vocoder(rec).stream_official([mel_of(n, 20 + i) for i, n in enumerate(sizes)],
                                                   noise_fn=lambda n: noise_of(n, next(counter))))
        write_json(out / f"{name}.json", {
            "format": FORMAT, "kind": "hift_stream",
            "description": "runtime_ref.hift.HiFTVocoder.stream_official (official mel/source cache + Hamming "
                           "cross-fade); graph outputs synthetic",
            "manifest": manifest_subset(bundle.manifest, ["hift"]),
            "params": {"chunk_frames": sizes, "mel_seed_base": 20, "mel_scale": 8.0, "noise_seed_base": 100},
            "outputs": "synthetic", "synthetic_seed_base": 1000, "calls": rec.calls,
            "result": {"pieces": [tensor_entry(f"piece{i}", p) for i, p in enumerate(pieces)]}})


def voice_golden(out: Path) -> None:
    """A voice file in the layout of runtime_ref.prompt (np.savez: embedding, speech_tokens, prompt_mel,
    prompt_text, prompt_text_ids) and what the C# reader must find in it."""
    from runtime_ref.prompt import voice_bytes

    rng = np.random.default_rng(5)
    voice = {"embedding": rng.standard_normal(192).astype(np.float32),
             "speech_tokens": rng.integers(0, 6561, 13).astype(np.int32),
             "prompt_mel": rng.standard_normal((26, 80)).astype(np.float32),
             "prompt_text": np.array("Prompt text, façade 希望."),
             "prompt_text_ids": np.arange(7, dtype=np.int32)}
    (out / "voice_tiny.npz").write_bytes(voice_bytes(voice))
    write_json(out / "voice_tiny.json", {
        "format": FORMAT, "kind": "voice", "description": "voice_tiny.npz written with runtime_ref.prompt.voice_bytes",
        "expect": {"embedding_sha256": sha256(voice["embedding"]), "speech_tokens": voice["speech_tokens"].tolist(),
                   "prompt_mel_frames": 26, "prompt_mel_channels": 80, "prompt_mel_sha256": sha256(voice["prompt_mel"]),
                   "prompt_text": str(voice["prompt_text"]), "prompt_text_ids": voice["prompt_text_ids"].tolist()}})


# -- full pipeline (runtime_ref.pipeline.Pipeline) ----------------------------------------------
PIPELINE_FLOW_LENS = (96, 192)
NOISE_TAG_STRIDE = 1 << 20  # noise draw k, element i is replayed in C# as the float 1 + k * 2^20 + i
LOGPROB_SEED_BASE, HIFT_SEED_BASE, EOS_BOOST, OTHER_STOP = 5000, 1000, 16.0, -8.0
PIPELINE_SCENARIOS = [
    # name, mode, text, instruct, seed, max_new_tokens, streaming, eos_boost
    # (a piece is at most ~8 tiny-tokenizer ids here: the front-end sizes pieces at 10 speech tokens
    # per text token for the 96-token flow room; eos_boost=True stops exactly at min_len = 2 * ids)
    ("pipeline_zero_shot", "zero_shot", "A short line.", None, 3, 40, False, True),
    ("pipeline_cross_lingual", "cross_lingual", "It speaks words.", None, 4, 30, False, True),
    ("pipeline_instruct2", "instruct2", "Say it.", "Speak slowly.", 5, 8, False, True),
    ("pipeline_sft", "sft", "Good day.", None, 6, 50, False, True),
    ("pipeline_stream_zero_shot", "zero_shot", "A short line.", None, 7, 45, True, False),
    ("pipeline_stream_sft", "sft", "Hello there.", None, 8, None, True, False),
]


def build_pipeline_bundle(work: Path) -> Path:
    """Tiny model dir (seed 0) -> bundle with llm, flow (mel buckets 96 and 192), hift and text."""
    from exporter.export import export_components
    from exporter.fixtures import build_model_dir
    from exporter.modeldir import ModelDir
    from exporter.spec import ExportOptions

    md = work / "model" if (work / "model").exists() else build_model_dir(work / "model", size="tiny", seed=0)  # same as build_tiny_bundle's
    out = work / "pipeline_bundle"
    export_components(ModelDir.open(md), out, ["llm", "flow", "hift", "text"],
                      ExportOptions(parity=False, flow_lens=PIPELINE_FLOW_LENS))
    return out


class _RecordedUniforms:
    """Proxy of the sampling Generator: hands out the real PCG64 values, records u * 2^53 (exact)."""

    def __init__(self, gen: np.random.Generator):
        self.gen, self.drawn = gen, []

    def random(self):
        u = float(self.gen.random())
        m = int(u * float(1 << 53))
        assert m / float(1 << 53) == u
        self.drawn.append(m)
        return u


class _RecordedNoise:
    """Proxy of the vocoder-noise Generator: hands out the real standard normals, keeps each draw."""

    def __init__(self, gen: np.random.Generator):
        self.gen, self.draws = gen, []

    def standard_normal(self, size=None):
        x = self.gen.standard_normal(size)
        self.draws.append(np.asarray(x).astype(np.float32))
        return x


@contextmanager
def recorded_streams(rec, noise_proxy=None):
    """While active, runtime_ref.pipeline.rng_streams hands out recording proxies of the seed's two
    child streams (sampling uniforms, vocoder noise: `noise_proxy`, default _RecordedNoise) and the
    recorder `rec` sees the noise proxy. Yields a dict that gets them as "u" and "n" once drawn."""
    import runtime_ref.pipeline as pl

    real, proxies = pl.rng_streams, {}

    def streams(s):
        a, b = real(s)
        proxies["u"], proxies["n"] = _RecordedUniforms(a), (noise_proxy or _RecordedNoise)(b)
        rec.noise = proxies["n"]
        return proxies["u"], proxies["n"]

    pl.rng_streams = streams
    try:
        yield proxies
    finally:
        pl.rng_streams = real


def record_tokens(obj, attr: str) -> list[int]:
    """Wrap the token iterator method obj.attr so that every token it yields is also appended to the
    returned list."""
    tokens: list[int] = []
    inner = getattr(obj, attr)

    def recording(*a, **k):
        for t in inner(*a, **k):
            tokens.append(int(t))
            yield t

    setattr(obj, attr, recording)
    return tokens


def synth_spec(n: int, spec: dict) -> np.ndarray:
    v = synth(n, spec["synth"])
    for i, val in spec.get("set", []):
        v[i] = np.float32(val)
    return v


class PipelineRecorder:
    """Bundle proxy for runtime_ref.pipeline.Pipeline: runs the real graphs with onnxruntime and
    records every call, except that (a) the LLM step's `logprobs` handed back to runtime_ref are
    synthetic (uniform-ish synth values, EOS boosted so generation stops exactly at min_len, the
    other stop ids lowered) — real log-probs are 6564 floats per step, too big for the golden
    files and already pinned by the llm_generate traces — and (b) the HiFT graph is not run: its
    outputs are synth values (as in the hift_* traces). The HiFT noise input stays the real
    standard normal drawn by runtime_ref; the trace records where each noise input comes from
    (draw k, element offset, count, rest zero) so a replay can check it without the values."""

    host_cache_write = False  # the Unity runtime's calls: llm_cache_append per step (see RecordingBundle)

    def __init__(self, bundle, noise: _RecordedNoise, *, eos_boost: bool = True):
        self._b, self.noise, self.eos_boost = bundle, noise, eos_boost
        self.calls: list[dict] = []
        c = bundle.component("llm")
        self.step_graph = c["graphs"]["step"]
        self.eos, self.stops, self.vocab = int(c["eos_token"]), [int(x) for x in c["stop_token_ids"]], int(c["speech_vocab"])
        h = bundle.component("hift")  # CosyVoice3: one causal graph per size
        self.hift_graphs = set(h["graphs"].values()) if "graphs" in h else {h.get("graph", "hift")}
        self.host_read = {o["name"] for g in ("text_embedding", "speech_embedding", "special_embedding")
                          for o in bundle.graph(c["graphs"][g]).outputs} | {"mel"}
        self.n_hift = 0

    def __getattr__(self, name):
        return getattr(self._b, name)

    def _noise_slice(self, x: np.ndarray) -> dict:
        """Where the noise input comes from: {draw, start, count} of the last draw, or (a table that
        grew over several draws: CosyVoice3's) {segments: [[draw, start, count], ...]} of the draws
        in order; zeros after."""
        k = len(self.noise.draws) - 1
        d = self.noise.draws[k].reshape(-1)
        flat = x.reshape(-1)
        for s in np.flatnonzero(d == flat[0]):
            c = min(flat.size, d.size - int(s))
            if np.array_equal(d[s:s + c], flat[:c]) and not flat[c:].any():
                return {"draw": k, "start": int(s), "count": int(c)}
        draws = [dr.reshape(-1) for dr in self.noise.draws]
        table, c = np.concatenate(draws), int(np.flatnonzero(flat)[-1]) + 1
        firsts = np.cumsum([0] + [dr.size for dr in draws])
        for s in np.flatnonzero(table == flat[0]):
            if np.array_equal(table[s:s + c], flat[:c]):
                segs, at = [], int(s)
                while at < s + c:
                    j = int(np.searchsorted(firsts, at, side="right")) - 1
                    n = min(int(s) + c, int(firsts[j + 1])) - at
                    segs.append([j, at - int(firsts[j]), n])
                    at += n
                return {"segments": segs}
        raise AssertionError("hift noise input is not a slice of the noise draws")

    def run(self, name, feeds, outputs=None):
        g = self._b.graph(name)
        cast = {s["name"]: np.ascontiguousarray(np.asarray(feeds[s["name"]]).astype(_NP[s["dtype"]], copy=False)) for s in g.inputs}
        ins = [tensor_entry(s["name"], cast[s["name"]]) for s in g.inputs]
        entries, res = [], {}
        if name in self.hift_graphs:
            ins[[s["name"] for s in g.inputs].index("noise")]["noise_slice"] = self._noise_slice(cast["noise"])
            for j, o in enumerate(g.outputs):
                shape = tuple(int(d) for d in o["shape"])
                spec = {"synth": HIFT_SEED_BASE + 3 * self.n_hift + j}
                res[o["name"]] = synth_spec(int(np.prod(shape)), spec).reshape(shape)
                entries.append(dict(tensor_entry(o["name"], res[o["name"]]), **spec))
            self.n_hift += 1
        else:
            res = self._b.run(name, dict(cast))
            for o, v in list(res.items()):
                v = np.ascontiguousarray(v)
                if name == self.step_graph and o == "logprobs":
                    spec = {"synth": LOGPROB_SEED_BASE + len(self.calls),
                            "set": [[t, EOS_BOOST if t == self.eos and self.eos_boost else OTHER_STOP] for t in self.stops]}
                    v = synth_spec(v.size, spec).reshape(v.shape)
                    res[o] = v
                    entries.append(dict(tensor_entry(o, v), **spec))
                else:
                    entries.append(tensor_entry(o, v, data=o in self.host_read))
        self.calls.append({"graph": name, "inputs": ins, "outputs": entries})
        return res if outputs is None else {k: res[k] for k in outputs}


def pipeline_golden(bundle, out: Path) -> None:
    import runtime_ref.pipeline as pl

    voice_npz = np.load(out / "voice_tiny.npz")
    voice = pl.Voice.from_arrays("tiny", {k: voice_npz[k] for k in voice_npz.files})
    comp = bundle.component("flow")
    noise_table = bundle.load_array(comp["noise_file"]).astype(np.float32)
    np.save(out / "flow_noise_tiny.npy", noise_table)
    with open(out / "tokenizer_tiny" / "vocab.json", "rb") as f:
        assert f.read() == (Path(bundle.root) / "text" / "vocab.json").read_bytes(), "pipeline bundle tokenizer != tokenizer_tiny"
    for name, mode, text, instruct, seed, max_new, streaming, eos_boost in PIPELINE_SCENARIOS:
        rec = PipelineRecorder(bundle, _RecordedNoise(None), eos_boost=eos_boost)
        with recorded_streams(rec) as proxies:
            pipe = pl.Pipeline(rec)
            tokens = record_tokens(pipe, "iter_tokens_for")
            reqs = pipe.requests(text, voice, mode, instruct=instruct)
            assert len(reqs) == 1 and reqs[0].text == text, f"{name}: text must be one already-normalised piece"
            req = reqs[0]
            rec.calls.clear()
            if streaming:
                gen = pipe.stream(text, voice, mode=mode, instruct=instruct, seed=seed, max_new_tokens=max_new)
                first = next(gen)  # rng_streams runs at the first next()
                chunks = [first] + list(gen)
            else:
                syn = pipe.synthesize(text, voice, mode=mode, instruct=instruct, seed=seed, max_new_tokens=max_new)
                chunks = [syn.audio]
        u, nz = proxies["u"], proxies["n"]
        max_len = min(int(req.text_ids.size * pipe.llm.max_ratio), pipe.token_cap(req, max_new))
        write_json(out / f"{name}.json", {
            "format": FORMAT, "kind": "pipeline",
            "description": f"runtime_ref.pipeline.Pipeline.{'stream' if streaming else 'synthesize'} on the tiny bundle "
                           "(llm, flow buckets 96/192, hift, text; onnxruntime), voice voice_tiny.npz; step logprobs and HiFT "
                           "outputs synthetic (see tests/unity/golden_writer.py PipelineRecorder); sampling uniforms and "
                           "HiFT noise draws are the real PCG64 child streams of the seed",
            "manifest": manifest_subset(bundle.manifest, ["llm", "flow", "hift", "text"]),
            "params": {"mode": mode, "text": text, "instruct": instruct, "seed": seed, "max_new_tokens": max_new,
                       "token_cap": pipe.token_cap(req, max_new), "streaming": streaming, "voice_file": "voice_tiny.npz",
                       "flow_noise_file": "flow_noise_tiny.npy", "tokenizer_dir": "tokenizer_tiny",
                       "text_ids": req.text_ids.tolist(), "llm_prompt_text_ids": req.llm_prompt_text_ids.tolist(),
                       "llm_prompt_speech_tokens": req.llm_prompt_speech.tolist(),
                       "uniforms_2p53": u.drawn, "noise_tag_stride": NOISE_TAG_STRIDE,
                       "noise_draws": [tensor_entry(f"noise{i}", d) for i, d in enumerate(nz.draws)]},
            "outputs": "recorded+synthetic", "calls": rec.calls,
            "result": {"tokens": tokens, "stop_reason": "max_len" if len(tokens) >= max_len else "stop_token",
                       "min_len": int(req.text_ids.size * pipe.llm.min_ratio), "pcm": [tensor_entry(f"pcm{i}", np.ascontiguousarray(c, np.float32)) for i, c in enumerate(chunks)]}})


# bistream (runtime_ref.pipeline.Pipeline.stream_bistream): text arriving in chunks while the LLM decodes
BISTREAM_SCENARIOS = [
    # name, mode, text chunks, seed, max_new_tokens, eos_boost
    # zero_shot (voice_tiny: 7 prompt text ids, 13 prompt speech tokens): 5 text rows mixed with the 13
    # prompt speech rows, a fill after 2 tokens, then one fill per 15 tokens (5 text rows each, 4
    # times); the stream ends right after a fill (the official quirk: the rows fed before the fill are
    # fed again with the rest of the text + task_id); EOS boosted, so decoding stops at the first step
    # after the text ended: 62 tokens, a streaming chunk at 40
    ("bistream_zero_shot", "zero_shot", ["Once upon ", "a time, ", "a sea."], 9, None, True),
    # sft: no prompt (sos + 5 text rows first); stopped by max_new_tokens while text streams
    ("bistream_sft_capped", "sft", ["Hello ", "there, my ", "friend of ", "old."], 10, 20, True),
    # cross_lingual, text shorter than one group of 5 rows: nothing is decoded until the text ends,
    # then sos + text + task_id and unmasked decoding (EOS not boosted: runs to the cap)
    ("bistream_short", "cross_lingual", ["Hi", "."], 11, 12, False),
]


def bistream_golden(bundle, out: Path) -> None:
    """Pipeline.stream_bistream traces (kind `pipeline_bistream`): recorded like the pipeline traces
    (PipelineRecorder: synthetic step logprobs with EOS boosted, synthetic HiFT outputs, the real
    PCG64 streams), with the text chunks as params. The token sequence and graph calls do not depend
    on when the chunks arrive (the schedule pulls text only when it needs it), so a replay may push
    them at any time."""
    import runtime_ref.pipeline as pl

    voice_npz = np.load(out / "voice_tiny.npz")
    voice = pl.Voice.from_arrays("tiny", {k: voice_npz[k] for k in voice_npz.files})
    for name, mode, chunks, seed, max_new, eos_boost in BISTREAM_SCENARIOS:
        rec = PipelineRecorder(bundle, _RecordedNoise(None), eos_boost=eos_boost)
        with recorded_streams(rec) as proxies:
            pipe = pl.Pipeline(rec)
            tokens = record_tokens(pipe, "bistream_tokens_for")
            _, llm_text, llm_speech, f_tok, _ = pipe.prompts(voice, mode)
            req = pl.PieceRequest("<stream>", np.zeros(0, np.int32), llm_text, llm_speech, f_tok, None, voice.embedding)
            cap = pipe.token_cap(req, max_new)
            rec.calls.clear()
            pcm = list(pipe.stream_bistream(iter(chunks), voice, mode=mode, seed=seed, max_new_tokens=max_new))
        u, nz = proxies["u"], proxies["n"]
        write_json(out / f"{name}.json", {
            "format": FORMAT, "kind": "pipeline_bistream",
            "description": "runtime_ref.pipeline.Pipeline.stream_bistream on the tiny pipeline bundle (as the pipeline_* traces: step "
                           "logprobs and HiFT outputs synthetic, EOS boosted; real PCG64 streams); text_chunks arrive as a stream",
            "manifest": manifest_subset(bundle.manifest, ["llm", "flow", "hift", "text"]),
            "params": {"mode": mode, "text_chunks": chunks, "seed": seed, "max_new_tokens": max_new, "token_cap": cap,
                       "streaming": True, "voice_file": "voice_tiny.npz", "flow_noise_file": "flow_noise_tiny.npy",
                       "tokenizer_dir": "tokenizer_tiny", "text_ids": [i for c in chunks for i in pipe.text.encode(c)],
                       "llm_prompt_text_ids": np.asarray(llm_text).tolist(), "llm_prompt_speech_tokens": np.asarray(llm_speech).tolist(),
                       "uniforms_2p53": u.drawn, "noise_tag_stride": NOISE_TAG_STRIDE,
                       "noise_draws": [tensor_entry(f"noise{i}", d) for i, d in enumerate(nz.draws)]},
            "outputs": "recorded+synthetic", "calls": rec.calls,
            "result": {"tokens": tokens, "stop_reason": "max_len" if len(tokens) >= cap else "stop_token",
                       "pcm": [tensor_entry(f"pcm{i}", np.ascontiguousarray(c, np.float32)) for i, c in enumerate(pcm)]}})


def write_all(out: Path, work: Path) -> None:
    from runtime_ref.bundle import Bundle

    bundle_dir = build_tiny_bundle(work)
    bundle = Bundle.open(bundle_dir)
    tokenizer_golden(bundle_dir, out)
    text_frontend_golden(out / "tokenizer_tiny", out)
    voice_features_golden(out)
    voice_bake_golden(work, out)
    sampler_golden(out)
    voice_golden(out)
    llm_golden(bundle, out)
    hift_golden(bundle, out)
    pb = Bundle.open(build_pipeline_bundle(work))
    pipeline_golden(pb, out)
    bistream_golden(pb, out)


if __name__ == "__main__":
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=GOLDEN)
    ap.add_argument("--only-text", action="store_true", help="rewrite only text_frontend.json (from tokenizer_tiny/) and voice_features.json")
    ap.add_argument("--only-pipeline", type=Path, metavar="BUNDLE",
                    help="rewrite only the pipeline_* traces, from this already exported pipeline bundle")
    ap.add_argument("--only-bistream", type=Path, metavar="BUNDLE",
                    help="rewrite only the bistream_* traces, from this already exported pipeline bundle")
    a = ap.parse_args()
    if a.only_text:
        text_frontend_golden(a.out / "tokenizer_tiny", a.out)
        voice_features_golden(a.out)
        with tempfile.TemporaryDirectory() as t:
            voice_bake_golden(Path(t), a.out)
    elif a.only_pipeline:
        from runtime_ref.bundle import Bundle

        pipeline_golden(Bundle.open(a.only_pipeline), a.out)
    elif a.only_bistream:
        from runtime_ref.bundle import Bundle

        bistream_golden(Bundle.open(a.only_bistream), a.out)
    else:
        with tempfile.TemporaryDirectory() as t:
            write_all(a.out, Path(t))
    print(f"golden traces written to {a.out}")
