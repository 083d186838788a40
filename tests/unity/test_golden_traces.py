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

    def __init__(self, trace: dict, root: Path):
        self._b = Bundle(root, trace["manifest"])
        self.calls = trace["calls"]
        self.k = 0

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
            if "data" in e:
                out[e["name"]] = np.frombuffer(base64.b64decode(e["data"]), dtype=gw._NP[e["dtype"]]).reshape(e["shape"]).copy()
            else:
                out[e["name"]] = _Handle(e["sha256"], e["shape"])
        return out


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
