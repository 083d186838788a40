"""Normalisation: English and Japanese numbers/symbols, control-token skip, Japanese reading mode."""
from __future__ import annotations

import pytest

from runtime_ref.text import TextFrontendError, detect_language, normalize_text
from runtime_ref.text.numbers import en_cardinal, en_ordinal, ja_cardinal


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (13, "thirteen"), (21, "twenty-one"), (100, "one hundred"), (105, "one hundred five"),
    (2026, "two thousand twenty-six"), (10000, "ten thousand"), (1234567, "one million two hundred thirty-four thousand five hundred sixty-seven"),
    (2000000000, "two billion"), (-4, "minus four"),
])
def test_en_cardinal(n, words):
    assert en_cardinal(n) == words


@pytest.mark.parametrize("n, words", [(1, "first"), (2, "second"), (3, "third"), (12, "twelfth"), (20, "twentieth"),
                                      (21, "twenty-first"), (100, "one hundredth")])
def test_en_ordinal(n, words):
    assert en_ordinal(n) == words


@pytest.mark.parametrize("text, want", [
    ("In 2026 we ship.", "In two thousand twenty-six we ship."),
    ("It grew 3.5% to 1,234 users.", "It grew three point five percent to one thousand two hundred thirty-four users."),
    ("Pay $3.50, $1 or $20.", "Pay three dollars and fifty cents, one dollar or twenty dollars."),
    ("€0.99 and £5", "ninety-nine cents and five pounds"),
    ("pi is 3.14", "pi is three point one four"),
    ("the 21st time, at 7:05 or 10:00", "the twenty-first time, at seven oh five or ten o'clock"),
    ("It is -4 outside, code 007.", "It is minus four outside, code zero zero seven."),
    ("Tom & Jerry: 2+2=4", "Tom and Jerry: two plus two equals four"),
    ("１２３ full-width", "one hundred twenty-three full-width"),
])
def test_english_normalisation(text, want):
    assert normalize_text(text, "en") == want


@pytest.mark.parametrize("n, kanji", [(0, "零"), (10, "十"), (11, "十一"), (100, "百"), (1000, "千"), (2026, "二千二十六"),
                                      (10000, "一万"), (12345, "一万二千三百四十五"), (100000000, "一億"), (300000005, "三億五")])
def test_ja_cardinal(n, kanji):
    assert ja_cardinal(n) == kanji


@pytest.mark.parametrize("text, want", [
    ("2026年に行きました。", "二千二十六年に行きました。"),
    ("価格は1,000円、3.5%です。", "価格は千円、三点五パーセントです。"),
    ("$5とお釣り", "五ドルとお釣り"),
    ("7:30に会いましょう", "七時三十分に会いましょう"),
])
def test_japanese_numbers(text, want):
    assert normalize_text(text, "ja", japanese_reading=False) == want


def test_control_tokens_skip_normalisation():
    text = "用四川话说<|endofprompt|>在 2026 年 [breath] 3.5%"
    assert normalize_text(text) == text
    assert normalize_text("In 2026 [breath] we ship") == "In two thousand twenty-six [breath] we ship"


def test_detect_language():
    assert detect_language("Hello 2026") == "en"
    assert detect_language("今天天气很好") == "zh"
    assert detect_language("今日はいい天気") == "ja"
    assert detect_language("안녕하세요") == "ko"


def test_chinese_light_cleanup():
    assert normalize_text("你好 世界 hello world （测试），") == "你好世界hello world测试。"


def test_japanese_reading_mode():
    pytest.importorskip("pyopenjtalk", reason="Japanese reading mode needs pyopenjtalk-plus (pip install -e '.[ja]'); its error path is tested below")
    out = normalize_text("私の名前は山田です。2026年に東京へ行きます。")
    assert out == "わたしのなまえはやまだです。にせんにじゅうろくねんにとうきょうへいきます。"
    assert not any("\u4e00" <= c <= "\u9fff" for c in out)
    # kana, Latin letters and punctuation are kept; the reading mode can be switched off
    assert normalize_text("Unityで日本語を話す") == "Unityでにほんごをはなす"
    assert normalize_text("日本語を話す", "ja", japanese_reading=False) == "日本語を話す"


def test_japanese_reading_mode_without_pyopenjtalk(monkeypatch):
    import sys

    from runtime_ref.text import japanese

    japanese._openjtalk.cache_clear()
    monkeypatch.setitem(sys.modules, "pyopenjtalk", None)
    try:
        with pytest.raises(TextFrontendError, match=r"pyopenjtalk-plus.*japanese_reading=False"):
            normalize_text("日本語を話す", "ja")
        assert not japanese.available()
        assert normalize_text("2026年です", "ja", japanese_reading=False) == "二千二十六年です"  # the rest works
    finally:
        japanese._openjtalk.cache_clear()
