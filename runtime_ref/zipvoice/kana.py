"""Accent kana: the Japanese accent tokens from kana with accent marks, without OpenJTalk (the
front-end the C# runtime mirrors, unity_package/Runtime/Core/ZipVoice/ZipVoiceText.cs).

pyopenjtalk(-plus) reads kanji and finds accents in its dictionary; a game build has neither, so
the Unity runtime takes text written as *accent kana* and this module is its specification:

  - hiragana or katakana (hiragana is read as katakana), one mora at a time (longest match in
    MORA_PHONEMES: キャ before キ); ー repeats the previous mora's vowel; ン is N, ッ is cl;
  - `'` (or ＇) right after the accent nucleus mora of an accent phrase; a phrase without one is
    flat (heiban) — OpenJTalk labels flat phrases as accent = mora count, so `ハシ` and `ハシ'`
    give the same tokens;
  - `’` (U+2019, OpenJTalk's own mark in its `pron` field) right after a devoiced mora: its vowel
    is written in capitals (`デス’` -> d e s U);
  - phrases are separated by a space (ASCII or full width) or `/`;
  - punctuation (、。,.!?！？;:；：…) is a pause `pau` between phrases, nothing at the end of the
    text; a text ending in ? or ？ gets `[Q]` (the fork's question marker).

Tokens per phrase follow the rule of the OpenJTalk path (text.py `accent_level`) on the label
values OpenJTalk gives such a phrase: mora position A2 = 1…n, A1 = A2 − accent (accent = n when
flat), phrase key F = "n_accent" (the fork starts a `|` only where that key changes).

`to_accent_kana(text)` writes the accent kana of any text from pyopenjtalk's labels (host side,
e.g. to prepare the lines of a game): `accent_kana_tokens(to_accent_kana(t))` equals
`japanese_accent_tokens(t)` (tests/zv/test_kana.py).
"""
from __future__ import annotations

import re

from ..errors import RuntimeRefError

ACCENT_MARKS = "'＇"
DEVOICED_MARK = "’"
PHRASE_SEPARATORS = " 　/"
PAUSE_MARKS = "、。,.!?！？;:；：…"
QUESTION_MARKS = "?？"
_VOWELS = "aiueo"


def _build_mora_table() -> dict[str, tuple[str, ...]]:
    t: dict[str, tuple[str, ...]] = {}
    rows = {  # consonant row: kana for a i u e o (None: not in the row)
        "": "アイウエオ", "k": "カキクケコ", "g": "ガギグゲゴ", "s": "サシスセソ", "z": "ザジズゼゾ", "t": "タチツテト",
        "d": "ダヂヅデド", "n": "ナニヌネノ", "h": "ハヒフヘホ", "b": "バビブベボ", "p": "パピプペポ", "m": "マミムメモ",
        "y": "ヤ_ユ_ヨ", "r": "ラリルレロ", "w": "ワヰ_ヱヲ",
    }
    exceptions = {"シ": ("sh", "i"), "ジ": ("j", "i"), "チ": ("ch", "i"), "ツ": ("ts", "u"), "ヂ": ("j", "i"), "ヅ": ("z", "u"),
                  "フ": ("f", "u"), "ヰ": ("i",), "ヱ": ("e",), "ヲ": ("o",)}
    for c, kana in rows.items():
        for k, v in zip(kana, _VOWELS):
            if k != "_":
                t[k] = exceptions.get(k, (c, v) if c else (v,))
    # contracted sounds: the i-column kana + small ャュョ (ェ for a few)
    for k, c in {"キ": "ky", "ギ": "gy", "シ": "sh", "ジ": "j", "チ": "ch", "ヂ": "j", "ニ": "ny", "ヒ": "hy", "ビ": "by", "ピ": "py",
                 "ミ": "my", "リ": "ry"}.items():
        for small, v in zip("ャュョ", "auo"):
            t[k + small] = (c, v)
    for k, c in {"シ": "sh", "ジ": "j", "チ": "ch", "キ": "ky", "ギ": "gy", "ニ": "ny", "ヒ": "hy", "ビ": "by", "ピ": "py", "ミ": "my",
                 "リ": "ry"}.items():
        t[k + "ェ"] = (c, "e")
    # foreign-sound combinations
    for base, c, vowels in (("ファフィフェフォ", "f", "aieo"), ("ヴァヴィヴェヴォ", "v", "aieo"), ("ツァツィツェツォ", "ts", "aieo"),
                            ("ウィウェウォ", "w", "ieo"), ("ティトゥ", "t", "iu"), ("ディドゥ", "d", "iu")):
        for i, v in enumerate(vowels):
            t[base[2 * i: 2 * i + 2]] = (c, v)
    t.update({"ヴ": ("v", "u"), "イェ": ("y", "e"), "テュ": ("ty", "u"), "デュ": ("dy", "u"), "フュ": ("fy", "u"), "ヴュ": ("by", "u"),
              "ン": ("N",), "ッ": ("cl",),
              "ァ": ("a",), "ィ": ("i",), "ゥ": ("u",), "ェ": ("e",), "ォ": ("o",), "ャ": ("y", "a"), "ュ": ("y", "u"), "ョ": ("y", "o"),
              "ヮ": ("w", "a"), "ヵ": ("k", "a"), "ヶ": ("k", "e")})
    return t


MORA_PHONEMES: dict[str, tuple[str, ...]] = _build_mora_table()
LONG_VOWEL = "ー"


def to_katakana(text: str) -> str:
    """Hiragana (U+3041…U+3096, ゝゞ) -> katakana; everything else unchanged."""
    return "".join(chr(ord(ch) + 0x60) if "\u3041" <= ch <= "\u3096" or ch in "ゝゞ" else ch for ch in text)


def kana_table_tsv() -> str:
    """MORA_PHONEMES as the bundle's `text/kana.tsv` (kana TAB space-separated phonemes), what the
    C# runtime reads (one table, written from here)."""
    return "".join(f"{k}\t{' '.join(v)}\n" for k, v in MORA_PHONEMES.items())


def _phrases(text: str) -> list:
    """-> items: ("pau",) or ("phrase", [(phonemes, devoiced)], accent) with accent 0 = flat."""
    s = to_katakana(text)
    items: list = []
    morae: list = []
    accent = 0

    def close():
        nonlocal morae, accent
        if morae:
            items.append(("phrase", morae, accent))
        morae, accent = [], 0

    i = 0
    while i < len(s):
        ch = s[i]
        if ch in PHRASE_SEPARATORS:
            close()
            i += 1
        elif ch in PAUSE_MARKS:
            close()
            if items and items[-1] != ("pau",):
                items.append(("pau",))
            i += 1
        elif ch in ACCENT_MARKS:
            if not morae:
                raise RuntimeRefError(f"accent kana: the accent mark at {i} follows no mora in {text!r}")
            accent = len(morae)
            i += 1
        elif ch == DEVOICED_MARK:
            if not morae:
                raise RuntimeRefError(f"accent kana: the devoicing mark at {i} follows no mora in {text!r}")
            morae[-1] = (morae[-1][0], True)
            i += 1
        elif ch == LONG_VOWEL:
            prev = next((p for p in reversed(morae[-1][0]) if p.lower() in _VOWELS), None) if morae else None
            if prev is None:
                raise RuntimeRefError(f"accent kana: ー at {i} follows no vowel in {text!r}")
            morae.append(((prev.lower(),), False))
            i += 1
        else:
            two = s[i: i + 2]
            if len(two) == 2 and two in MORA_PHONEMES:
                morae.append((MORA_PHONEMES[two], False))
                i += 2
            elif ch in MORA_PHONEMES:
                morae.append((MORA_PHONEMES[ch], False))
                i += 1
            else:
                raise RuntimeRefError(f"accent kana: {ch!r} at {i} is not kana, an accent mark (' ’), a phrase separator "
                                      f"(space /) or punctuation, in {text!r} (write kanji and latin letters in kana)")
    close()
    while items and items[-1] == ("pau",):
        items.pop()
    while items and items[0] == ("pau",):
        items.pop(0)
    return items


def accent_kana_tokens(text: str, rule: str | None = None) -> list[str]:
    from .text import ACCENT_HIGH, ACCENT_LOW, DEFAULT_ACCENT_RULE, PHRASE_BOUNDARY, QUESTION, accent_level

    rule = rule or DEFAULT_ACCENT_RULE
    out: list[str] = []
    key = level = None
    for item in _phrases(text):
        if item[0] == "pau":
            out.append("pau")
            key = level = None
            continue
        _, morae, accent = item
        n = len(morae)
        acc = accent or n
        phrase_key = f"{n}_{acc}"
        if key is not None and phrase_key != key:
            out.append(PHRASE_BOUNDARY)
            level = None  # (as the fork: the level carries over a boundary it does not mark)
        for a2, (phones, devoiced) in enumerate(morae, start=1):
            new = accent_level(a2 - acc, a2, rule)
            if new != level:
                out.append(ACCENT_HIGH if new == "H" else ACCENT_LOW)
                level = new
            for p in phones:
                out.append(p.upper() if devoiced and p in _VOWELS else p)
        key = phrase_key
    if text.rstrip().endswith(tuple(QUESTION_MARKS)):
        out.append(QUESTION)
    return out


# -- the host-side writer (pyopenjtalk) -------------------------------------------------------
_PHONES_TO_KANA: dict[tuple[str, ...], str] = {}
for _k, _v in MORA_PHONEMES.items():  # the first spelling of each phoneme group (the table lists basic kana first)
    _PHONES_TO_KANA.setdefault(_v, _k)
_A2 = re.compile(r"/A:[^+]+\+(\d+)\+")
_F = re.compile(r"/F:((\d+)_(\d+)[^/]*)")
_P = re.compile(r"-([^+]+)\+")


def to_accent_kana(text: str) -> str:
    """Accent kana of `text` from pyopenjtalk's full-context labels (needs pyopenjtalk-plus)."""
    from .text import _pyopenjtalk

    pyopenjtalk = _pyopenjtalk()
    parts: list[str] = []
    phrase: list[str] = []
    mora: list[str] = []
    state = {"a2": None, "f": None, "acc": 0, "n": 0}

    def end_mora():
        if mora:
            devoiced = any(p in "AIUEO" for p in mora)
            key = tuple(p.lower() if p in "AIUEO" else p for p in mora)
            kana = _PHONES_TO_KANA.get(key)
            if kana is None:
                raise RuntimeRefError(f"to_accent_kana: no kana for the mora {' '.join(mora)} of {text!r}")
            phrase.append(kana + (DEVOICED_MARK if devoiced else ""))
            if state["acc"] and len(phrase) == state["acc"] and state["acc"] < state["n"]:
                phrase.append("'")
            mora.clear()

    def end_phrase():
        end_mora()
        if phrase:
            parts.append("".join(phrase))
            phrase.clear()
        state["a2"] = state["f"] = None

    for label in pyopenjtalk.extract_fullcontext(text):
        ph = _P.search(label).group(1)
        if ph == "sil":
            continue
        if ph == "pau":
            end_phrase()
            parts.append("、")
            continue
        a2, f = _A2.search(label).group(1), _F.search(label)
        if state["f"] is not None and (f.group(1) != state["f"] or int(a2) < int(state["a2"])):
            end_phrase()  # a new accent phrase: another F field, or the mora position starts again
        if state["f"] is None:
            state["n"], state["acc"] = int(f.group(2)), int(f.group(3))
        if a2 != state["a2"]:
            end_mora()  # the phonemes of one mora share its position A2
        mora.append(ph)
        state["a2"], state["f"] = a2, f.group(1)
    end_phrase()
    out = " ".join(p for p in parts).replace(" 、 ", "、")
    if text.rstrip().endswith(tuple(QUESTION_MARKS)):
        out += "？"
    return out
