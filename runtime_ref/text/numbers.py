"""Numbers as words: English cardinals/ordinals and Japanese kanji numerals (no dependencies)."""
from __future__ import annotations

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand")]
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                      "nine": "ninth", "twelve": "twelfth"}
EN_DIGITS = _ONES[:10]


def _en_below_1000(n: int) -> str:
    words = []
    if n >= 100:
        words.append(f"{_ONES[n // 100]} hundred")
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else ""))
    elif n or not words:
        words.append(_ONES[n])
    return " ".join(words)


def en_cardinal(n: int) -> str:
    """2026 -> 'two thousand twenty-six' (American style, no 'and'); below 10**15, else digit by digit."""
    if n < 0:
        return "minus " + en_cardinal(-n)
    if n >= 10**15:
        return " ".join(EN_DIGITS[int(d)] for d in str(n))
    if n < 1000:
        return _en_below_1000(n)
    words = []
    for value, name in _SCALES:
        if n >= value:
            words.append(f"{_en_below_1000(n // value)} {name}")
            n %= value
    if n:
        words.append(_en_below_1000(n))
    return " ".join(words)


def en_ordinal(n: int) -> str:
    """21 -> 'twenty-first'."""
    words = en_cardinal(n)
    head, sep, last = words.rpartition(" ")
    stem_head, dash, stem = last.rpartition("-")
    if stem in _ORDINAL_IRREGULAR:
        stem = _ORDINAL_IRREGULAR[stem]
    elif stem.endswith("y"):
        stem = stem[:-1] + "ieth"
    else:
        stem += "th"
    return head + sep + stem_head + dash + stem


def en_digits(s: str) -> str:
    """'05' -> 'zero five'."""
    return " ".join(EN_DIGITS[int(d)] for d in s)


_JA_DIGITS = "〇一二三四五六七八九"
_JA_SMALL = [(1000, "千"), (100, "百"), (10, "十")]
_JA_GROUPS = ["", "万", "億", "兆", "京"]


def _ja_below_10000(n: int) -> str:
    out = []
    for value, mark in _JA_SMALL:
        d = n // value
        if d:
            out.append(("" if d == 1 else _JA_DIGITS[d]) + mark)
        n %= value
    if n:
        out.append(_JA_DIGITS[n])
    return "".join(out)


def ja_cardinal(n: int) -> str:
    """2026 -> '二千二十六', 10000 -> '一万', 0 -> '零'; digit by digit from 10**20 on."""
    if n < 0:
        return "マイナス" + ja_cardinal(-n)
    if n == 0:
        return "零"
    if n >= 10**20:
        return ja_digits(str(n))
    out, g = [], 0
    while n:
        n, part = divmod(n, 10000)
        if part:
            out.append(("一" if part == 1 and g else _ja_below_10000(part)) + _JA_GROUPS[g])
        g += 1
    return "".join(reversed(out))


def ja_digits(s: str) -> str:
    """'05' -> '〇五' (digits after a decimal point, codes)."""
    return "".join(_JA_DIGITS[int(d)] for d in s)
