"""The committed golden traces (tests/golden) still describe runtime_ref: each is replayed through the
current runtime_ref code (no onnxruntime needed: recorded graph outputs are fed back), so a change in
runtime_ref's orchestration shows up here first — then regenerate with
`python -m tests.unity.golden_writer` and the C# Core must follow (tests/unity/test_csharp_core.py)."""
from __future__ import annotations

import base64
import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from runtime_ref.bundle import Bundle

from . import golden_writer as gw

GOLDEN = gw.GOLDEN


def load(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


def traces(kind: str) -> list[str]:
    return sorted(p.name for p in GOLDEN.glob("*.json") if load(p.name)["kind"] == kind)


class _Handle:
    """A recorded output without data (KV cache, unread logprobs): only its hash travels."""

    def __init__(self, sha: str, shape):
        self.sha, self.shape = sha, tuple(shape)

    def __getitem__(self, _):
        return self


class ReplayBundle:
    """Bundle stand-in: checks each run() against the trace and returns the recorded outputs."""

    host_cache_write = False  # the KV cache is hashes only: the traces' llm_cache_append calls replay

    def __init__(self, trace: dict, root: Path):
        self._b = Bundle(root, trace["manifest"])
        self.calls = trace["calls"]
        self.k = 0

    def __getattr__(self, name):  # constants, manifest, root, load_array, ...
        return getattr(self._b, name)

    def component(self, name):
        return self._b.component(name)

    def graph(self, name):
        return self._b.graph(name)

    def run(self, name, feeds, outputs=None):
        c = self.calls[self.k]
        self.k += 1
        assert c["graph"] == name, f"call {self.k - 1}: {name}, trace {c['graph']}"
        assert [i["name"] for i in c["inputs"]] == [s["name"] for s in self._b.graph(name).inputs]
        for e in c["inputs"]:
            v = feeds[e["name"]]
            if isinstance(v, _Handle):
                sha, shape = v.sha, v.shape
            else:
                a = np.ascontiguousarray(np.asarray(v).astype(gw._NP[e["dtype"]], copy=False))
                sha, shape = gw.sha256(a), a.shape
            assert list(shape) == e["shape"], f"call {self.k - 1} {name}.{e['name']}: shape {list(shape)} != {e['shape']}"
            assert sha == e["sha256"], f"call {self.k - 1} {name}.{e['name']}: bytes differ"
        out = {}
        for e in c["outputs"]:
            if "synth" in e:
                out[e["name"]] = gw.synth_spec(int(np.prod(e["shape"])), e).reshape(e["shape"])
            elif "data" in e:
                out[e["name"]] = np.frombuffer(base64.b64decode(e["data"]), dtype=gw._NP[e["dtype"]]).reshape(e["shape"]).copy()
            else:
                out[e["name"]] = _Handle(e["sha256"], e["shape"])
        return out


def replay_pipeline_bundle(t: dict, root: Path):
    """A pipeline trace's ReplayBundle in `root` (the trace's tokenizer and flow noise table copied
    in, as the bundle it was recorded from had them) and the trace's voice."""
    import shutil

    import runtime_ref.pipeline as pl

    p = t["params"]
    (root / "text").mkdir()
    for f in (GOLDEN / p["tokenizer_dir"]).iterdir():
        shutil.copyfile(f, root / "text" / f.name)
    (root / "flow").mkdir()
    shutil.copyfile(GOLDEN / p["flow_noise_file"], root / t["manifest"]["components"]["flow"]["noise_file"])
    v = np.load(GOLDEN / p["voice_file"])
    return ReplayBundle(t, root), pl.Voice.from_arrays("tiny", {k: v[k] for k in v.files})


@pytest.mark.parametrize("name", traces("llm_generate"))
def test_llm_trace_replays_through_runtime_ref(name, tmp_path):
    from runtime_ref.llm import LLM
    from runtime_ref.sampling import ReplayUniforms

    t = load(name)
    p = t["params"]
    rb = ReplayBundle(t, tmp_path)
    rng = ReplayUniforms([m / float(1 << 53) for m in p["uniforms_2p53"]])
    gen = LLM(rb).generate(p["text_ids"], p["prompt_text_ids"], p["prompt_speech_tokens"], rng=rng,
                           max_new_tokens=p["max_new_tokens"])
    assert rb.k == len(t["calls"])
    assert gen.tokens == t["result"]["tokens"] and gen.stop_reason == t["result"]["stop_reason"]
    assert gen.prompt_len == t["result"]["prompt_len"]
    assert rng.i == len(p["uniforms_2p53"])
    # the trace exercises what it claims: a multi-chunk prefill somewhere, decode steps fed back
    steps = [c for c in t["calls"] if c["graph"] == t["manifest"]["components"]["llm"]["graphs"]["step"]]
    assert len(steps) >= len(gen.tokens)


def test_llm_traces_cover_chunked_prefill_and_prompts():
    t = load("llm_generate_zero_shot.json")
    chunk = t["manifest"]["components"]["llm"]["prefill_chunk"]
    assert t["result"]["prompt_len"] > chunk  # at least two prefill chunks
    assert t["params"]["prompt_speech_tokens"] and t["params"]["prompt_text_ids"]


def test_hift_and_sampler_goldens_are_current(tmp_path):
    """Regenerating the deterministic goldens (synthetic HiFT outputs, numpy sampler) gives the same files."""
    hift_trace = load("hift_stream.json")
    b = Bundle(tmp_path, hift_trace["manifest"])
    gw.hift_golden(b, tmp_path)
    gw.sampler_golden(tmp_path)
    names = traces("hift_mel2wav") + traces("hift_stream") + ["sampler_draws.json"]
    assert len(names) >= 6
    for n in names:
        assert json.loads((tmp_path / n).read_text(encoding="utf-8")) == load(n), f"{n} is stale: rerun tests/unity/golden_writer.py"


def test_tokenizer_golden_is_current():
    from runtime_ref.text import Qwen2Tokenizer
    from runtime_ref.text.pretokenize import pretokenize

    t = load("tokenizer_ids.json")
    tok = Qwen2Tokenizer.from_dir(GOLDEN / t["tokenizer_dir"])
    assert len(t["cases"]) >= 320
    for c in t["cases"]:
        assert tok.encode(c["text"]) == c["ids"], c["text"]
        assert pretokenize(unicodedata.normalize("NFC", c["text"])) == c["pieces"], c["text"]


@pytest.mark.parametrize("name", traces("pipeline"))
def test_pipeline_trace_replays_through_runtime_ref(name, tmp_path):
    """runtime_ref.pipeline.Pipeline with its real seeded streams (nothing injected) against the
    recorded calls: same graph sequence and input bytes (the HiFT noise included, by sha256), same
    uniforms drawn, same tokens and PCM."""
    import runtime_ref.pipeline as pl

    t = load(name)
    p = t["params"]
    rb, voice = replay_pipeline_bundle(t, tmp_path)
    pipe = pl.Pipeline(rb)
    req = pipe.requests(p["text"], voice, p["mode"], instruct=p["instruct"])
    assert len(req) == 1 and req[0].text_ids.tolist() == p["text_ids"]
    assert req[0].llm_prompt_text_ids.tolist() == p["llm_prompt_text_ids"]
    if p["streaming"]:
        pcm = list(pipe.stream(p["text"], voice, mode=p["mode"], instruct=p["instruct"], seed=p["seed"], max_new_tokens=p["max_new_tokens"]))
    else:
        syn = pipe.synthesize(p["text"], voice, mode=p["mode"], instruct=p["instruct"], seed=p["seed"], max_new_tokens=p["max_new_tokens"])
        pcm = [syn.audio]
        assert syn.tokens == [t["result"]["tokens"]]
    assert rb.k == len(t["calls"])
    assert [gw.sha256(np.ascontiguousarray(x, np.float32)) for x in pcm] == [e["sha256"] for e in t["result"]["pcm"]]
    # the recorded uniforms are the sampling stream of the seed; the noise draws its noise stream
    s_gen, n_gen = pl.rng_streams(p["seed"])
    assert [int(s_gen.random() * float(1 << 53)) for _ in p["uniforms_2p53"]] == p["uniforms_2p53"]
    for d in p["noise_draws"]:
        assert gw.sha256(n_gen.standard_normal(tuple(d["shape"])).astype(np.float32)) == d["sha256"]


@pytest.mark.parametrize("name", traces("pipeline_bistream"))
def test_bistream_trace_replays_through_runtime_ref(name, tmp_path):
    """runtime_ref Pipeline.stream_bistream with its real seeded streams against the recorded calls
    (same graph sequence and input bytes, uniforms, tokens, PCM), the text chunks pulled as a stream."""
    import runtime_ref.pipeline as pl

    t = load(name)
    p = t["params"]
    rb, voice = replay_pipeline_bundle(t, tmp_path)
    pipe = pl.Pipeline(rb)
    assert [i for c in p["text_chunks"] for i in pipe.text.encode(c)] == p["text_ids"]
    with pytest.warns(pl.TextNotSpokenWarning) if t["result"]["stop_reason"] == "max_len" else _no_warning():
        pcm = list(pipe.stream_bistream(iter(p["text_chunks"]), voice, mode=p["mode"], seed=p["seed"], max_new_tokens=p["max_new_tokens"]))
    assert rb.k == len(t["calls"])
    assert [gw.sha256(np.ascontiguousarray(x, np.float32)) for x in pcm] == [e["sha256"] for e in t["result"]["pcm"]]
    s_gen, _ = pl.rng_streams(p["seed"])
    assert [int(s_gen.random() * float(1 << 53)) for _ in p["uniforms_2p53"]] == p["uniforms_2p53"]


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


def test_bistream_traces_cover_the_schedule():
    """Mixing with prompt speech, fill tokens, the end of the text right after a fill, EOS and the cap."""
    ts = {n: load(n) for n in traces("pipeline_bistream")}
    assert {t["result"]["stop_reason"] for t in ts.values()} == {"stop_token", "max_len"}
    assert any(t["params"]["llm_prompt_speech_tokens"] for t in ts.values())
    assert any(not t["params"]["llm_prompt_speech_tokens"] for t in ts.values())
    assert any(len(t["result"]["pcm"]) >= 2 for t in ts.values())  # a streaming chunk before the final one
    # text embeddings interleaved with decode steps: text arrived while speech was decoded
    for t in ts.values():
        if t["result"]["stop_reason"] == "stop_token":
            g = [c["graph"] for c in t["calls"]]
            step = t["manifest"]["components"]["llm"]["graphs"]["step"]
            text = t["manifest"]["components"]["llm"]["graphs"]["text_embedding"]
            assert g.index(step) < max(i for i, x in enumerate(g) if x == text)
    assert sum(p.stat().st_size for p in GOLDEN.glob("bistream_*.json")) < 900_000


def test_pipeline_traces_cover_modes_streaming_and_stops():
    ts = {n: load(n) for n in traces("pipeline")}
    assert {t["params"]["mode"] for t in ts.values()} == {"zero_shot", "cross_lingual", "instruct2", "sft"}
    streams = [t for t in ts.values() if t["params"]["streaming"]]
    assert streams and all(len(t["result"]["pcm"]) >= 2 for t in streams)
    assert max(len(t["result"]["pcm"]) for t in streams) >= 3  # hop doubling exercised
    reasons = {t["result"]["stop_reason"] for t in ts.values()}
    assert reasons == {"stop_token", "max_len"}
    # generation that stops on EOS stops exactly at min_len (pins the EOS mask length)
    for t in ts.values():
        if t["result"]["stop_reason"] == "stop_token":
            assert len(t["result"]["tokens"]) == t["result"]["min_len"] > 0
    # ~1.5 MB: one llm_cache_append call (hashes only) per LLM step since the "rows" cache contract
    assert sum(p.stat().st_size for p in GOLDEN.glob("pipeline_*.json")) < 1_700_000


def test_text_frontend_golden_is_current(tmp_path):
    """text_frontend.json is what runtime_ref's front-end gives today (and covers what it must)."""
    gw.text_frontend_golden(GOLDEN / "tokenizer_tiny", tmp_path)
    assert json.loads((tmp_path / "text_frontend.json").read_text(encoding="utf-8")) == load("text_frontend.json")
    t = load("text_frontend.json")
    assert {c["lang"] for c in t["cases"]} >= {"en", "ja", "zh", "ko"}
    assert any(c["normalized"] != c["text"] for c in t["cases"] if c["lang"] == "en")  # numbers/symbols read as words
    assert any(c["normalized"] != c["text"] for c in t["cases"] if c["lang"] == "ja")  # kanji numerals
    assert any(isinstance(c["pieces_12"], list) and len(c["pieces_12"]) > 2 for c in t["cases"])  # real splitting
    assert any(isinstance(c["pieces_12"], dict) for c in t["cases"])  # and its errors


def test_voice_features_golden_is_current(tmp_path):
    """voice_features.json is what runtime_ref/audio.py computes today."""
    gw.voice_features_golden(tmp_path)
    assert json.loads((tmp_path / "voice_features.json").read_text(encoding="utf-8")) == load("voice_features.json")


def test_voice_bake_trace_replays_through_runtime_ref(tmp_path):
    """runtime_ref.prompt.bake_voice today makes the same graph calls (input bytes) and, given the
    recorded graph outputs, the same voice arrays as voice_bake.json."""
    from runtime_ref import prompt

    t = load("voice_bake.json")
    sig = load(t["signal_file"])
    x = np.frombuffer(base64.b64decode(sig["signal"]["data"]), np.float32).astype(np.float64)
    rb = ReplayBundle(t, tmp_path)
    rb._b.has_graph = lambda n: n in t["manifest"]["graphs"]
    v = prompt.bake_voice(rb, x, int(sig["rate"]), text="A tiny text.")
    assert rb.k == len(t["calls"]) == 2
    r = t["result"]
    assert v["speech_tokens"].tolist() == r["speech_tokens"] and len(r["speech_tokens"]) > 10
    assert gw.sha256(v["embedding"]) == r["embedding"]["sha256"]
    assert gw.sha256(np.ascontiguousarray(v["prompt_mel"], np.float32)) == r["prompt_mel"]["sha256"]
