"""The tiny fixture tokenizer (tiny_model_dir): loading, CosyVoice2 specials, the text bundle component."""
from __future__ import annotations

import json

import numpy as np
import pytest

from runtime_ref.text import Qwen2Tokenizer, TextFrontendError, cosyvoice2_special_tokens, load_tokenizer

TEXTS = [
    "Hello, this is a tiny text to speech model.", "Numbers like 1, 2, 3 and 2026 are read aloud.",
    "你好，世界。今天天气很好。", "こんにちは、世界。", "안녕하세요.", "Unseen words: xylophone 🎉 Ωμέγα \t\n end",
    "Well [breath] I think<|endofprompt|><strong>yes</strong>[laughter]",
]


@pytest.fixture(scope="module")
def tiny_tok(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


def test_tiny_specials_follow_vocab_and_config(tiny_tok, tiny_model_dir):
    cfg = json.loads((tiny_model_dir / "CosyVoice-BlankEN" / "tokenizer_config.json").read_text())
    base = {int(k): v["content"] for k, v in cfg["added_tokens_decoder"].items()}
    n = len(tiny_tok.vocab)
    assert base == {n: "<|endoftext|>", n + 1: "<|im_start|>", n + 2: "<|im_end|>"}
    new = [t for t in cosyvoice2_special_tokens() if t not in base.values()]
    assert new[0] == "<|endofprompt|>" and len(new) == 17
    for k, t in enumerate(new):  # in the official order, right after the existing ids
        assert tiny_tok.token_to_id(t) == n + 3 + k
    assert len(tiny_tok) == n + 3 + len(new) == tiny_tok.max_id + 1


def test_tiny_ids_equal_hf_tokenizers(tiny_tok, tiny_model_dir, hf_tokenizer):
    hf = hf_tokenizer(tiny_model_dir / "CosyVoice-BlankEN", list(cosyvoice2_special_tokens()))
    for t in TEXTS:
        assert tiny_tok.encode(t) == hf.encode(t).ids, t


def test_tiny_round_trip_and_array(tiny_tok):
    for t in TEXTS:
        ids = tiny_tok.encode(t)
        assert tiny_tok.decode(ids, skip_special_tokens=False) == t
    arr = tiny_tok.encode_array(TEXTS[0])
    assert arr.dtype == np.int32 and arr.shape == (1, len(tiny_tok.encode(TEXTS[0])))
    assert "[breath]" not in tiny_tok.decode(tiny_tok.encode(TEXTS[-1]))


def test_tiny_ids_fit_llm_text_vocab(tiny_tok, tiny_md):
    assert tiny_tok.max_id < tiny_md.config.llm.qwen.vocab_size


def test_missing_and_mismatched_files(tmp_path, tiny_model_dir):
    with pytest.raises(TextFrontendError, match="no vocab.json"):
        Qwen2Tokenizer.from_dir(tmp_path)
    with pytest.raises(TextFrontendError, match="no tokenizer here"):
        load_tokenizer(tmp_path)
    src = tiny_model_dir / "CosyVoice-BlankEN"
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "b": 1}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    tok = Qwen2Tokenizer.from_dir(tmp_path, specials=None)
    with pytest.raises(TextFrontendError, match="not in vocab.json"):
        tok.encode("ab")
    (tmp_path / "merges.txt").write_text("a b c\n")
    with pytest.raises(TextFrontendError, match="two tokens"):
        Qwen2Tokenizer.from_dir(tmp_path)
    assert src.is_dir()


@pytest.fixture(scope="module")
def text_bundle(tiny_md, tmp_path_factory):
    from exporter.export import export_components
    from exporter.spec import ExportOptions

    out = tmp_path_factory.mktemp("text_bundle") / "bundle"
    manifest = export_components(tiny_md, out, ["text"], ExportOptions())
    return out, manifest


def test_text_component_in_bundle(text_bundle, tiny_tok, tiny_model_dir):
    from runtime_ref.bundle import Bundle

    out, manifest = text_bundle
    comp = manifest["components"]["text"]
    assert set(comp["files"]) == {"text/vocab.json", "text/merges.txt", "text/tokenizer_config.json", "text/special_tokens.json"}
    assert all(f in manifest["files"] for f in comp["files"])
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):  # copied byte for byte
        assert (out / "text" / name).read_bytes() == (tiny_model_dir / "CosyVoice-BlankEN" / name).read_bytes()
    assert comp["endofprompt_id"] == tiny_tok.token_to_id("<|endofprompt|>")
    assert comp["special_token_ids"] == {t: tiny_tok.token_to_id(t) for t in cosyvoice2_special_tokens()}
    assert comp["n_ids"] == len(tiny_tok) and comp["max_id"] == tiny_tok.max_id
    table = json.loads((out / "text" / "special_tokens.json").read_text())["added_tokens"]
    assert [t["id"] for t in table] == sorted(t.id for t in tiny_tok.added_tokens)
    b = Bundle.open(out)  # hash-verified
    from_bundle = load_tokenizer(b)
    for t in TEXTS:
        assert from_bundle.encode(t) == tiny_tok.encode(t)
    assert load_tokenizer(out).encode(TEXTS[-1]) == tiny_tok.encode(TEXTS[-1])


def test_bundle_table_is_what_the_runtime_uses(text_bundle, tmp_path):
    """The runtime reads the resolved table; it does not re-derive ids from the CosyVoice2 list."""
    out, _ = text_bundle
    d = tmp_path / "text"
    d.mkdir()
    for f in (out / "text").iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    table = json.loads((d / "special_tokens.json").read_text())
    table["added_tokens"] = [t for t in table["added_tokens"] if t["content"] != "[breath]"]
    (d / "special_tokens.json").write_text(json.dumps(table))
    tok = Qwen2Tokenizer.from_dir(d)
    assert "[breath]" not in tok.added_by_content and "[laughter]" in tok.added_by_content
