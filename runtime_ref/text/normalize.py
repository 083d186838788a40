"""Text normalisation before tokenisation: language guess, numbers and symbols read as words.

- Text containing `<|` ... `|>` (explicit control tokens) is left untouched, like the official
  frontend does (`text_normalize` skips its frontend then).
- English: numbers (2026, 1,234, 3.5, -4, 21st, 7:05), percent, currency ($ € £ ¥) and a few symbols
  (& + = @) become words.
- Japanese: Arabic numerals become kanji numerals (2026 -> 二千二十六, 3.5 -> 三点五), % and currency
  become katakana words; then, by default, kanji are rewritten as kana readings (japanese.py,
  needs pyopenjtalk-plus), because the model would otherwise read kanji with Chinese readings.
- Chinese: only the official light clean-up (no blanks between CJK characters, ² ³ as words,
  brackets removed). Chinese number reading (wetext/ttsfrd in the official code) is not done.
- Korean / other: whitespace clean-up only.
"""
from __future__ import annotations

import re

from .numbers import en_cardinal, en_digits, en_ordinal, ja_cardinal, ja_digits

_FULLWIDTH = {ord("０") + i: ord("0") + i for i in range(10)}
_FULLWIDTH.update({ord("％"): ord("%"), ord("＄"): ord("$"), ord("￥"): ord("¥"), ord("．"): ord("."), ord("，"): ord(",")})

_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")

LANGUAGES = ("en", "ja", "zh", "ko")


def detect_language(text: str) -> str:
    """'ja' if there is any kana, else 'zh' if there are CJK ideographs, else 'ko' for Hangul, else 'en'."""
    if _KANA.search(text):
        return "ja"
    if _HAN.search(text):
        return "zh"
    if _HANGUL.search(text):
        return "ko"
    return "en"


def has_control_tokens(text: str) -> bool:
    """True when the text spells control tokens (`<|...|>`): then no normalisation is done."""
    return "<|" in text and "|>" in text


# a number: optional sign (only at a word start), digits with optional thousands commas, optional decimals
_NUM = r"(?P<sign>(?<![\w.,])-)?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?"
_CURRENCY = re.compile(r"(?P<cur>[$€£¥])\s?" + _NUM.replace("(?P<sign>(?<![\\w.,])-)?", ""))
_PERCENT = re.compile(_NUM + r"\s?%")
_ORDINAL = re.compile(r"\b(?P<int>\d+)(?P<suf>st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER = re.compile(_NUM)
_TIME = re.compile(r"(?<![\d:])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?![\d:])")

_EN_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
                "£": ("pound", "pounds", "penny", "pence"), "¥": ("yen", "yen", None, None)}
_EN_SYMBOLS = {"&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "%": " percent "}
_JA_CURRENCY = {"$": "ドル", "€": "ユーロ", "£": "ポンド", "¥": "円"}
_JA_SYMBOLS = {"%": "パーセント", "&": "アンド", "+": "プラス", "=": "イコール"}


def _int_value(s: str) -> int:
    return int(s.replace(",", ""))


def _en_number(m: re.Match) -> str:
    i = m.group("int")
    if len(i) > 1 and i[0] == "0" and "," not in i:  # codes, leading zeros: digit by digit
        words = en_digits(i)
    else:
        words = en_cardinal(_int_value(i))
    if m.group("frac"):
        words += " point " + en_digits(m.group("frac"))
    if m.groupdict().get("sign"):
        words = "minus " + words
    return words


def _en_currency(m: re.Match) -> str:
    one, many, sub_one, sub_many = _EN_CURRENCY[m.group("cur")]
    whole = _int_value(m.group("int"))
    frac = m.group("frac")
    if frac and len(frac) == 2 and sub_one:
        cents = int(frac)
        parts = []
        if whole:
            parts.append(f"{en_cardinal(whole)} {one if whole == 1 else many}")
        if cents or not whole:
            parts.append(f"{en_cardinal(cents)} {sub_one if cents == 1 else sub_many}")
        return " and ".join(parts)
    return f"{_en_number(m)} {one if whole == 1 and not frac else many}"


def _en_time(m: re.Match) -> str:
    h, mi = int(m.group("h")), int(m.group("m"))
    if mi == 0:
        return f"{en_cardinal(h)} o'clock"
    return f"{en_cardinal(h)} {'oh ' if mi < 10 else ''}{en_cardinal(mi)}"


def normalize_english(text: str) -> str:
    text = text.translate(_FULLWIDTH)
    text = _TIME.sub(_en_time, text)
    text = _CURRENCY.sub(_en_currency, text)
    text = _PERCENT.sub(lambda m: _en_number(m) + " percent", text)
    text = _ORDINAL.sub(lambda m: en_ordinal(int(m.group("int"))), text)
    text = _NUMBER.sub(_en_number, text)
    for sym, word in _EN_SYMBOLS.items():
        text = text.replace(sym, word)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def _ja_number(m: re.Match) -> str:
    i = m.group("int")
    words = ja_digits(i) if len(i) > 1 and i[0] == "0" and "," not in i else ja_cardinal(_int_value(i))
    if m.group("frac"):
        words += "点" + ja_digits(m.group("frac"))
    if m.groupdict().get("sign"):
        words = "マイナス" + words
    return words


def normalize_japanese_numbers(text: str) -> str:
    """Digits -> kanji numerals, % and currency -> katakana words (no reading conversion)."""
    text = text.translate(_FULLWIDTH)
    text = _TIME.sub(lambda m: ja_cardinal(int(m.group("h"))) + "時" + (ja_cardinal(int(m.group("m"))) + "分" if int(m.group("m")) else ""), text)
    text = _CURRENCY.sub(lambda m: _ja_number(m) + _JA_CURRENCY[m.group("cur")], text)
    text = _PERCENT.sub(lambda m: _ja_number(m) + "パーセント", text)
    text = _NUMBER.sub(_ja_number, text)
    for sym, word in _JA_SYMBOLS.items():
        text = text.replace(sym, word)
    return text


def normalize_chinese(text: str) -> str:
    """The official light clean-up for Chinese text (numbers are left as digits)."""
    text = text.replace("\n", "")
    text = re.sub(r"(?<![\x21-\x7e]) +|(?<=[\x21-\x7e]) +(?![\x21-\x7e])", "", text)  # keep blanks only between ASCII words
    text = text.replace("²", "平方").replace("³", "立方")
    for ch in "（）【】`":
        text = text.replace(ch, "")
    text = text.replace("——", " ").replace(" - ", "，")
    return re.sub(r"[，,、]+$", "。", text)


def normalize_text(text: str, lang: str | None = None, *, japanese_reading: bool = True) -> str:
    """Normalise `text` for synthesis. `lang`: None = detect_language(text). For Japanese,
    `japanese_reading` rewrites kanji as kana readings (requires pyopenjtalk-plus)."""
    if has_control_tokens(text) or not text.strip():
        return text
    text = text.strip()
    lang = lang or detect_language(text)
    if lang == "en":
        return normalize_english(text)
    if lang == "ja":
        text = normalize_japanese_numbers(text)
        if japanese_reading:
            from .japanese import kanji_to_kana

            text = kanji_to_kana(text)
        return text
    if lang == "zh":
        return normalize_chinese(text)
    return re.sub(r"[ \t]{2,}", " ", text)
