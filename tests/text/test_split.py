"""Splitting to a token budget: limits respected, nothing dropped, clear errors."""
from __future__ import annotations

import re

import pytest

from runtime_ref.text import TextFrontend, TextFrontendError, split_sentences, split_text, text_token_budget

EN = ("The quick brown fox jumps over the lazy dog. Unity developers want voices that run on the player's machine! "
      "Sentis imports ONNX graphs; the exporter writes them with fixed shapes and checks parity. Short one. "
      "This is a very long sentence without any end punctuation that just keeps going and going with many words in it "
      "so that it has to be cut at blanks because nothing else is available here")
ZH = "今天天气很好我们去公园散步吧然后去吃饭再看一场电影最后回家休息明天还要上班所以早点睡觉。你好，世界！"


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from runtime_ref.text import load_tokenizer

    return load_tokenizer(tiny_model_dir)


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


@pytest.mark.parametrize("max_tokens", [12, 25, 40, 500])
def test_pieces_fit_and_keep_all_text(tok, max_tokens):
    for text in (EN, ZH, EN + " [breath] " + ZH):
        pieces = split_text(text, tok.count, max_tokens)
        assert pieces and all(tok.count(p) <= max_tokens for p in pieces)
        assert _squash("".join(pieces)) == _squash(text)  # nothing dropped, nothing truncated
    if max_tokens == 500:  # a budget far above the text: sentences stay whole
        assert all(p.endswith((".", "!", "here")) for p in split_text(EN, tok.count, max_tokens))


def test_target_and_merge(tok):
    pieces = split_text(EN, tok.count, 200, target_tokens=30, min_tokens=10)
    assert len(pieces) >= 3
    assert all(tok.count(p) <= 200 for p in pieces)
    # a short tail is merged into the previous piece
    pieces = split_text("This sentence is long enough to stand on its own two feet. Ok.", tok.count, 100, target_tokens=10, min_tokens=5)
    assert pieces[-1].endswith("Ok.") and len(pieces) >= 1 and not pieces[-1] == "Ok."


def test_tags_are_never_cut(tok):
    text = "一二三四五六七八九十[breath]一二三四五六七八九十<|endofprompt|>一二三"
    pieces = split_text(text, tok.count, 6)
    joined = "|".join(pieces)
    assert "[breath]" in joined and "<|endofprompt|>" in joined
    assert all(tok.count(p) <= 6 for p in pieces)


def test_sentences():
    assert split_sentences("他说：“你好。”然后走了。Mr. Smith paid 3.5 dollars. Ok") == [
        "他说：", "“你好。”", "然后走了。", "Mr.", " Smith paid 3.5 dollars.", " Ok"]
    assert split_sentences("What?! Really!!! Yes...") == ["What?!", " Really!!!", " Yes..."]


def test_unsplittable_unit_is_a_clear_error(tok):
    with pytest.raises(TextFrontendError, match=r"cannot split 'Supercalifragilistic.*\d+ tokens\) to fit the 5-token limit") as e:
        split_text("ok Supercalifragilisticexpialidocious ok", tok.count, 5)
    assert "\n" not in str(e.value)
    with pytest.raises(TextFrontendError, match="no room for text"):
        split_text("hello", tok.count, 0)


def test_punctuation_only_pieces_are_dropped(tok):
    assert split_text("Hello. ... !!! World.", tok.count, 50, target_tokens=2, min_tokens=1, merge_tokens=0) == ["Hello. ... !!!", "World."]
    assert split_text("!!! ... Hello", tok.count, 50, target_tokens=2, min_tokens=1) == ["Hello"]
    assert split_text("... !!!", tok.count, 50) == []


def test_text_token_budget():
    # LLM: 2 + 10 + 75 + L + 20 L <= 2000 ; flow: 75 + 20 L <= 1000
    assert text_token_budget(2000, 1000, prompt_text_tokens=10, prompt_speech_tokens=75) == min((2000 - 87) // 21, (1000 - 75) // 20)
    assert text_token_budget(2000, 1000, speech_tokens_per_text_token=5) == min(1998 // 6, 200)
    with pytest.raises(TextFrontendError, match="no room for text"):
        text_token_budget(100, 100, prompt_speech_tokens=100)


def test_frontend_pieces(tok):
    fe = TextFrontend(tok)
    pieces = fe.pieces("In 2026 the price was $3.50. " * 6, 30)
    assert all(len(p.ids) <= 30 and p.ids == tok.encode(p.text) for p in pieces)
    assert "two thousand twenty-six" in pieces[0].text and "$" not in "".join(p.text for p in pieces)
    assert pieces[0].array().shape == (1, len(pieces[0].ids))
    # control tokens: not normalised, one piece when it fits
    (p,) = fe.pieces("speak slowly<|endofprompt|>In 2026", 30)
    assert p.text == "speak slowly<|endofprompt|>In 2026" and tok.token_to_id("<|endofprompt|>") in p.ids
    with pytest.raises(TextFrontendError, match="empty"):
        fe.pieces("   ", 30)
