"""runtime_ref's CosyVoice3 pipeline on a tiny exported bundle: family dispatch from the manifest,
the <|endofprompt|> prompt format, non-streaming and streaming synthesis (official CosyVoice3
schedule: whole-mel re-vocoding, emitted samples never change), the silent-token rule."""
from __future__ import annotations

import numpy as np
import pytest

from runtime_ref.cosyvoice3 import drop_long_silences


@pytest.fixture(scope="module")
def cv3_bundle(cv3_md, tmp_path_factory):
    from exporter.export import export_components
    from exporter.spec import ExportOptions

    out = tmp_path_factory.mktemp("cv3_e2e") / "bundle"
    export_components(cv3_md, out, ["llm", "flow", "hift", "text"],
                      ExportOptions(max_cache_len=256, prefill_chunk=16, flow_lens=(128,)))
    return out


@pytest.fixture(scope="module")
def voice():
    from runtime_ref.pipeline import Voice

    rng = np.random.default_rng(0)
    return Voice("v", rng.standard_normal(192).astype(np.float32), rng.integers(0, 6561, 12).astype(np.int32),
                 (rng.standard_normal((24, 80)) - 5).astype(np.float32), prompt_text="Hello there.")


def test_silent_runs_are_cut_after_five():
    toks = [7, 1, 2, 1, 2, 1, 2, 1, 9, 1]
    assert list(drop_long_silences(toks, [1, 2], 5)) == [7, 1, 2, 1, 2, 1, 9, 1]


def test_family_pipeline_and_prompt_format(cv3_bundle, voice):
    from runtime_ref.families import open_pipeline

    p = open_pipeline(cv3_bundle)
    assert type(p).__name__ == "CosyVoice3Pipeline" and (p.vocoder.T, p.vocoder.context, p.vocoder.lookahead) == (256, 37, 8)
    eop = p.text.encode("<|endofprompt|>")
    assert len(eop) == 1
    for mode, kw in (("zero_shot", {}), ("cross_lingual", {}), ("instruct2", {"instruct": "Speak slowly."})):
        _, llm_text, llm_speech, f_tok, _ = p.prompts(voice, mode, **kw)
        assert eop[0] in llm_text.tolist(), mode
        assert (llm_speech.size > 0) == (mode == "zero_shot") and f_tok.size == 12
    _, zs, _, _, _ = p.prompts(voice, "zero_shot")
    assert zs.tolist() == p.text.encode("You are a helpful assistant.<|endofprompt|>" + p.text.normalize("Hello there."))


def test_synthesize_and_stream(cv3_bundle, voice):
    from runtime_ref.families import open_pipeline

    p = open_pipeline(cv3_bundle)
    r = p.synthesize("The quick brown fox.", voice, seed=1, max_new_tokens=50)
    assert r.audio.size == 480 * 2 * len(r.tokens[0]) and np.isfinite(r.audio).all() and np.abs(r.audio).max() > 1e-3
    chunks = list(p.stream("The quick brown fox.", voice, seed=1, max_new_tokens=50))
    assert len(chunks) >= 2 and sum(c.size for c in chunks) == r.audio.size  # same tokens (same seed), same length


def test_special_tokens_come_from_the_yaml_tokenizer_version(cv3_bundle):
    """cosyvoice3.yaml names get_tokenizer version cosyvoice3: the bundle's tokenizer has the
    CosyVoice3Tokenizer additions (phoneme tokens, <|endofsystem|>) as single ids, listed in the manifest."""
    import json

    from runtime_ref.families import open_pipeline
    from runtime_ref.text.special_tokens import special_token_list

    text = json.loads((cv3_bundle / "manifest.json").read_text())["components"]["text"]
    assert text["special_tokens"] == "cosyvoice3" and list(text["special_token_ids"]) == list(special_token_list("cosyvoice3"))
    assert len(text["special_token_ids"]) > 250 and len(set(text["special_token_ids"].values())) == len(text["special_token_ids"])
    p = open_pipeline(cv3_bundle)
    ids = p.text.encode("[AA1][zh]<|endofsystem|>[ǜ]")
    assert ids == [text["special_token_ids"][t] for t in ("[AA1]", "[zh]", "<|endofsystem|>", "[ǜ]")]


def test_bistream(cv3_bundle, voice):
    """Bistream on the shared schedule with CosyVoice3's prompt prefix (official CosyVoice3LM:
    prompt text up to <|endofprompt|> fed right after sos); token parity with the official
    inference_bistream is tests/cosyvoice3/test_cv3_official.py."""
    from runtime_ref.families import open_pipeline

    p = open_pipeline(cv3_bundle)
    req = p.requests("Hi.", voice, "zero_shot")[0]
    prefix, rest = p.bistream_prompt(req)
    eop = p.text.encode("<|endofprompt|>")[0]
    assert prefix[-1] == eop and eop not in rest.tolist() and prefix.tolist() + rest.tolist() == req.llm_prompt_text_ids.tolist()
    # random weights often sample one of the 200 special ids, which the official loop refuses (ValueError)
    # and so do we (one clear error); some seeds give speech
    from runtime_ref.errors import RuntimeRefError

    spoken = []
    for seed in range(8):
        try:
            chunks = list(p.stream_bistream(iter(["The quick ", "brown fox."]), voice, seed=seed, max_new_tokens=30))
        except RuntimeRefError as e:
            assert "the model produced special token" in str(e)
            continue
        assert chunks and all(np.isfinite(c).all() for c in chunks)
        spoken.append(sum(c.size for c in chunks))
        break
    assert spoken and spoken[0] > 0
