"""Our Qwen2 BPE vs oracles nobody here wrote, on the real Qwen2 vocabulary (151643 tokens)."""
from __future__ import annotations

import unicodedata

import pytest

from runtime_ref.text import Qwen2Tokenizer, cosyvoice2_special_tokens


def test_derived_files_have_qwen2_sizes(ours_qwen):
    assert len(ours_qwen.vocab) == 151643
    assert len(ours_qwen.ranks) == 151387  # one merge per multi-byte token, as in Qwen2's merges.txt
    assert ours_qwen.vocab["Ġworld"] == 1879 and ours_qwen.vocab["Hello"] == 9707


def test_corpus_ids_equal_quicktok(qwen_tokenizer_dir, quicktok_qwen, corpus):
    """Base Qwen2 tokenizer (no CosyVoice additions): exact ids for every corpus line, and for the
    whole corpus as one text (newlines between lines)."""
    ours = Qwen2Tokenizer.from_dir(qwen_tokenizer_dir, specials=None)
    bad = []
    for line in corpus:
        want = list(quicktok_qwen.encode(line, allowed_special="all"))
        got = ours.encode(line)
        if got != want:
            bad.append((line, got[:20], want[:20]))
    assert not bad, f"{len(bad)} of {len(corpus)} lines differ; first: {bad[0]}"
    whole = "\n".join(corpus)
    assert ours.encode(whole) == list(quicktok_qwen.encode(whole, allowed_special="all"))


def test_corpus_ids_equal_hf_tokenizers_with_cosyvoice2_specials(hf_qwen, ours_qwen, corpus):
    """With the CosyVoice2 special tokens ([breath], <|endofprompt|>, ...): ids, and the ids
    assigned to the added tokens, equal Hugging Face `tokenizers`."""
    hf = hf_qwen
    for tok in cosyvoice2_special_tokens():
        assert ours_qwen.token_to_id(tok) == hf.token_to_id(tok), tok
    assert ours_qwen.token_to_id("<|endofprompt|>") == 151646
    assert ours_qwen.token_to_id("[mn]") == 151646 + 16
    bad = [(line, ours_qwen.encode(line), hf.encode(line).ids) for line in corpus if ours_qwen.encode(line) != hf.encode(line).ids]
    assert not bad, f"{len(bad)} of {len(corpus)} lines differ; first: {bad[0]}"
    whole = "\n".join(corpus)
    assert ours_qwen.encode(whole) == hf.encode(whole).ids


def test_control_tags_are_single_ids(ours_qwen):
    ids = ours_qwen.encode("Well [breath] I<|endofprompt|><strong>yes</strong>[laughter]")
    for tag in ("[breath]", "<|endofprompt|>", "<strong>", "</strong>", "[laughter]"):
        assert ours_qwen.token_to_id(tag) in ids
    # near misses are ordinary text
    near = ours_qwen.encode("[ breath ] [BREATH] <|endofprompt| >")
    assert not set(near) & {t.id for t in ours_qwen.added_tokens}


def test_round_trip_decode(ours_qwen, hf_qwen, corpus):
    hf = hf_qwen
    specials = [t.content for t in ours_qwen.added_tokens]
    for line in corpus:
        ids = ours_qwen.encode(line)
        assert ours_qwen.decode(ids, skip_special_tokens=False) == unicodedata.normalize("NFC", line)
        plain = ours_qwen.decode(ids)  # specials skipped, like CosyVoice2Tokenizer.decode
        assert plain == hf.decode(ids, skip_special_tokens=True), line
        assert not any(s in plain for s in specials) or any(s in unicodedata.normalize("NFC", line) for s in specials)


def test_decode_partial_utf8_is_replaced(ours_qwen):
    ids = ours_qwen.encode("\U00020001")  # a rare CJK Extension B character: several byte tokens
    assert len(ids) > 1
    assert ours_qwen.decode(ids[:1]) == "\ufffd"


def test_transformers_official_path(qwen_tokenizer_dir, ours_qwen, corpus):
    """The official CosyVoice2Tokenizer does AutoTokenizer.from_pretrained(dir) + add_special_tokens;
    run that exact call sequence (transformers is an optional extra oracle)."""
    transformers = pytest.importorskip("transformers", reason="transformers not installed; the tokenizers oracle above covers the same engine")
    import json

    from runtime_ref.text.special_tokens import COSYVOICE2_SPECIAL_TOKENS_FILE

    spec = json.loads(COSYVOICE2_SPECIAL_TOKENS_FILE.read_text(encoding="utf-8"))
    tok = transformers.AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))
    tok.add_special_tokens({k: spec[k] for k in ("eos_token", "pad_token", "additional_special_tokens")})
    for line in corpus[::4]:
        assert ours_qwen.encode(line) == tok([line])["input_ids"][0], line
    for t in cosyvoice2_special_tokens():
        assert ours_qwen.token_to_id(t) == tok.convert_tokens_to_ids(t)
