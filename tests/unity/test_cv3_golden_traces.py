"""The committed CosyVoice3 golden traces (tests/golden/cv3_pipeline_*.json, written by
tests/unity/golden_cv3.py) still describe runtime_ref's CosyVoice3Pipeline: each is replayed through
the current runtime_ref code (recorded graph outputs fed back, no onnxruntime), like the CosyVoice2
`pipeline` traces in test_golden_traces.py. The C# Core replays the same files
(tests/unity/test_csharp_core.py, Tests/Standalone~/CosyVoice3Case.cs)."""
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
