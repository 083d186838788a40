"""The ZipVoice golden traces (tests/golden/zipvoice_*.json, written by tests/unity/zipvoice_golden.py)
still describe runtime_ref: each is replayed through today's runtime_ref ZipVoicePipeline with the
recorded graph outputs fed back (no onnxruntime), and its kana table through today's accent-kana
reader. The C# Core replays the same files (tests/unity/test_csharp_core.py, ZipVoiceCase.cs)."""
from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import pytest

from . import golden_writer as gw
from .test_golden_traces import ReplayBundle

NAMES = sorted(p.name for p in gw.GOLDEN.glob("zipvoice_*.json"))


def _arr(entry: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(entry["data"]), dtype=gw._NP[entry["dtype"]]).reshape(entry["shape"]).copy()


def load(name: str) -> dict:
    return json.loads((gw.GOLDEN / name).read_text(encoding="utf-8"))


def test_traces_exist_small_and_cover_both_front_ends():
    assert NAMES == ["zipvoice_kana.json", "zipvoice_long.json"]
    ts = [load(n) for n in NAMES]
    assert {t["manifest"]["components"]["text"]["tokenizer"] for t in ts} == {"simple", "japanese_accent"}
    assert all([c["graph"].split("_")[0] for c in t["calls"]] == ["text", "fm", "vocos"] * len(t["params"]["pieces"]) for t in ts)
    assert sorted(len(t["params"]["pieces"]) for t in ts) == [1, 2]
    dirs = {load(n)["params"]["text_dir"] for n in NAMES}
    size = sum((gw.GOLDEN / n).stat().st_size for n in NAMES) + sum(f.stat().st_size for d in dirs for f in (gw.GOLDEN / d).iterdir())
    assert size < 1_000_000, size


@pytest.mark.parametrize("name", NAMES)
def test_zipvoice_trace_replays_through_runtime_ref(name, tmp_path):
    from runtime_ref.zipvoice.pipeline import ZipVoicePipeline

    t = load(name)
    p = t["params"]
    (tmp_path / "text").mkdir()
    for f in (gw.GOLDEN / p["text_dir"]).iterdir():
        shutil.copyfile(f, tmp_path / "text" / f.name)
    rb = ReplayBundle(t, tmp_path)
    pv = p["voice"]
    voice = {"prompt_features": _arr(pv["prompt_features"]), "prompt_text": np.array(pv["prompt_text"]),
             "prompt_rms": _arr(pv["prompt_rms"])[0], "prompt_ids": np.asarray(pv["prompt_ids"], np.int32)}
    pipe = ZipVoicePipeline(rb)
    assert pipe.text.ids(p["text"], kana=p["kana"]) == p["ids"]
    assert pipe.pieces(p["text"], voice, speed=p["speed"], kana=p["kana"]) == p["pieces"]
    assert pipe.text_budget(voice["prompt_features"].shape[0], len(voice["prompt_ids"]), p["speed"]) == p["budget"]
    syn = pipe.synthesize(p["text"], voice, seed=p["seed"], speed=p["speed"], kana=p["kana"])  # noise: the seed's draws
    assert rb.k == len(t["calls"]) == 3 * len(p["pieces"]) and syn.n_frames == p["n_frames"]
    assert gw.sha256(np.ascontiguousarray(syn.audio, np.float32)) == t["result"]["pcm"]["sha256"]
    rng = np.random.default_rng(p["seed"])
    assert [gw.sha256(rng.standard_normal(tuple(e["shape"])).astype(np.float32)) for e in p["noise"]] == [e["sha256"] for e in p["noise"]]


def test_kana_table_of_the_trace_is_current():
    from runtime_ref.errors import RuntimeRefError
    from runtime_ref.zipvoice.kana import accent_kana_tokens

    t = load("zipvoice_kana.json")
    rule = t["manifest"]["components"]["text"]["accent_rule"]
    cases = t["kana_cases"]
    assert len(cases) >= 30 and sum(1 for c in cases if c.get("error")) >= 4
    for c in cases:
        if c.get("error"):
            with pytest.raises(RuntimeRefError):
                accent_kana_tokens(c["kana"], rule)
        else:
            assert accent_kana_tokens(c["kana"], rule) == c["tokens"], c["kana"]
    toks = {x for c in cases for x in c.get("tokens", [])}
    assert {"[H]", "[L]", "|", "[Q]", "pau", "U", "I", "cl", "N"} <= toks  # every mark and devoicing exercised


def test_kana_table_sentences_follow_openjtalk():
    """Where pyopenjtalk is installed (the test extra installs pyopenjtalk-plus): for each sentence,
    the tokens of the accent kana to_accent_kana writes today are the OpenJTalk path's tokens (the
    stored kana may differ if a newer OpenJTalk dictionary reads a word otherwise; the C# reader is
    pinned on the stored kana -> tokens above)."""
    pytest.importorskip("pyopenjtalk", reason="pyopenjtalk-plus is not installed (pip install pyopenjtalk-plus)")
    from runtime_ref.zipvoice.kana import to_accent_kana
    from runtime_ref.zipvoice.text import japanese_accent_tokens

    t = load("zipvoice_kana.json")
    rule = t["manifest"]["components"]["text"]["accent_rule"]
    sentences = [c for c in t["kana_cases"] if "text" in c]
    assert len(sentences) >= 10
    from runtime_ref.zipvoice.kana import accent_kana_tokens

    for c in sentences:
        assert accent_kana_tokens(to_accent_kana(c["text"]), rule) == japanese_accent_tokens(c["text"], rule), c["text"]
