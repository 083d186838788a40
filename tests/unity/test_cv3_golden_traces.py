"""The committed CosyVoice3 golden traces (tests/golden/cv3_pipeline_*.json, written by
tests/unity/golden_cv3.py) still describe runtime_ref's CosyVoice3Pipeline: each is replayed through
the current runtime_ref code (recorded graph outputs fed back, no onnxruntime), like the CosyVoice2
`pipeline` traces in test_golden_traces.py. The C# Core replays the same files
(tests/unity/test_csharp_core.py, Tests/Standalone~/PipelineCase.cs)."""
from __future__ import annotations

import numpy as np
import pytest

from . import golden_writer as gw
from .test_golden_traces import GOLDEN, load, replay_pipeline_bundle, traces


@pytest.mark.parametrize("name", traces("cv3_pipeline"))
def test_cv3_trace_replays_through_runtime_ref(name, tmp_path):
    import runtime_ref.pipeline as pl
    from runtime_ref.cosyvoice3 import CosyVoice3Pipeline

    t = load(name)
    p = t["params"]
    rb, voice = replay_pipeline_bundle(t, tmp_path)
    pipe = CosyVoice3Pipeline(rb)
    req = pipe.requests(p["text"], voice, p["mode"], instruct=p["instruct"])
    assert len(req) == 1 and req[0].text_ids.tolist() == p["text_ids"]
    assert req[0].llm_prompt_text_ids.tolist() == p["llm_prompt_text_ids"]
    kw = dict(mode=p["mode"], instruct=p["instruct"], seed=p["seed"], max_new_tokens=p["max_new_tokens"])
    if p["streaming"]:
        pcm = list(pipe.stream(p["text"], voice, **kw))
    else:
        syn = pipe.synthesize(p["text"], voice, **kw)
        pcm = [syn.audio]
        assert syn.tokens == [t["result"]["tokens"]]
    assert rb.k == len(t["calls"])
    assert [gw.sha256(np.ascontiguousarray(x, np.float32)) for x in pcm] == [e["sha256"] for e in t["result"]["pcm"]]
    s_gen, n_gen = pl.rng_streams(p["seed"])
    assert [int(s_gen.random() * float(1 << 53)) for _ in p["uniforms_2p53"]] == p["uniforms_2p53"]
    for d in p["noise_draws"]:  # one uniform [0, 1) table per piece (the causal vocoder's noise)
        assert gw.sha256(n_gen.random(tuple(d["shape"])).astype(np.float32)) == d["sha256"]


def test_cv3_traces_cover_modes_streaming_silences_and_stops():
    ts = {n: load(n) for n in traces("cv3_pipeline")}
    assert {t["params"]["mode"] for t in ts.values()} >= {"zero_shot", "instruct2", "sft"}
    for t in ts.values():  # the CosyVoice3 prompt: <|endofprompt|> in every LM prompt text
        eop = t["manifest"]["components"]["text"]["endofprompt_id"]
        assert eop in t["params"]["llm_prompt_text_ids"]
        assert t["manifest"]["components"]["hift"]["variant"] == "causal" and t["manifest"]["family"] == "cosyvoice3"
    streams = [t for t in ts.values() if t["params"]["streaming"]]
    assert streams and all(len(t["result"]["pcm"]) >= 2 for t in streams)
    assert max(len(t["result"]["pcm"]) for t in streams) >= 3  # hop doubling exercised
    assert {t["result"]["stop_reason"] for t in ts.values()} == {"stop_token", "max_len"}
    for t in ts.values():
        if t["result"]["stop_reason"] == "stop_token":  # stops exactly at min_len: the masked id is speech_token_size
            assert len(t["result"]["lm_tokens"]) == t["result"]["min_len"] > 0
    # the long-silence cut: a boosted run of silent tokens, more than max_silent_tokens kept out of the flow
    cut = [t for t in ts.values() if len(t["result"]["lm_tokens"]) > len(t["result"]["tokens"])]
    assert cut
    files = list(GOLDEN.glob("cv3_pipeline_*.json")) + [p for p in (GOLDEN / "cv3").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 1_250_000  # ~1.2 MB: 138 LM steps (step + cache-append calls), 7 flow mels


@pytest.mark.parametrize("name", traces("cv3_pipeline_bistream"))
def test_cv3_bistream_trace_replays_through_runtime_ref(name, tmp_path):
    """CosyVoice3Pipeline.stream_bistream with its real seeded streams against the recorded calls (same
    graph sequence and input bytes, uniforms, noise tables, tokens, PCM), the text chunks pulled as a stream."""
    import runtime_ref.pipeline as pl
    from runtime_ref.cosyvoice3 import CosyVoice3Pipeline

    t = load(name)
    p = t["params"]
    rb, voice = replay_pipeline_bundle(t, tmp_path)
    pipe = CosyVoice3Pipeline(rb)
    assert [i for c in p["text_chunks"] for i in pipe.text.encode(c)] == p["text_ids"]
    with pytest.warns(pl.TextNotSpokenWarning):  # both traces run to their cap (no EOS boost: golden_cv3.py)
        pcm = list(pipe.stream_bistream(iter(p["text_chunks"]), voice, mode=p["mode"], instruct=p["instruct"], seed=p["seed"],
                                        max_new_tokens=p["max_new_tokens"]))
    assert rb.k == len(t["calls"])
    assert [gw.sha256(np.ascontiguousarray(x, np.float32)) for x in pcm] == [e["sha256"] for e in t["result"]["pcm"]]
    s_gen, n_gen = pl.rng_streams(p["seed"])
    assert [int(s_gen.random() * float(1 << 53)) for _ in p["uniforms_2p53"]] == p["uniforms_2p53"]
    for d in p["noise_draws"]:
        assert gw.sha256(n_gen.random(tuple(d["shape"])).astype(np.float32)) == d["sha256"]


def test_cv3_bistream_traces_cover_the_prefix_mixing_and_the_end_of_text():
    """The prompt text up to <|endofprompt|> right after sos; mixing with prompt speech; fill tokens;
    the text ending while speech is decoded (task_id, then unmasked decoding); a streaming chunk."""
    ts = {n: load(n) for n in traces("cv3_pipeline_bistream")}
    assert {t["params"]["mode"] for t in ts.values()} >= {"zero_shot", "cross_lingual"}
    assert any(t["params"]["llm_prompt_speech_tokens"] for t in ts.values())
    assert any(len(t["result"]["pcm"]) >= 2 for t in ts.values())
    for t in ts.values():
        c = t["manifest"]["components"]
        assert t["manifest"]["family"] == "cosyvoice3" and c["text"]["endofprompt_id"] in t["params"]["llm_prompt_text_ids"]
        g = [x["graph"] for x in t["calls"]]
        step, text, task = c["llm"]["graphs"]["step"], c["llm"]["graphs"]["text_embedding"], c["llm"]["graphs"]["special_embedding"]
        assert g[0] == task and g.index(step) < max(i for i, x in enumerate(g) if x == text)  # text arrived while speech was decoded
    # cross-lingual: the whole text (8 ids) was read before the cap, so the end-of-text feed ran
    cl = ts["cv3_bistream_cross_lingual.json"]
    n_text_lookups = sum(1 for x in cl["calls"] if x["graph"] == cl["manifest"]["components"]["llm"]["graphs"]["text_embedding"])
    assert n_text_lookups == 1 + len(cl["params"]["text_ids"])  # the prefix, then one per id
    assert sum(p.stat().st_size for p in GOLDEN.glob("cv3_bistream_*.json")) < 700_000
