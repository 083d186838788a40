"""ZipVoice text front-ends (no torch): tokens.txt lookup after the tokenizer the table was made
for, as the official `SimpleTokenizer` / the Japanese fork's accent tokenizer do; out-of-table
tokens are skipped (official `tokens_to_token_ids`).

- simple: every character is a token (no normalisation);
- japanese_accent: pyopenjtalk(-plus) full-context labels -> phonemes with pitch marks: `[H]` /
  `[L]` before a mora run whose pitch level changes (`accent_level`), `|` where the accent-phrase
  key F1_F2 changes, `pau` for pauses, and `[Q]` at the end of a question (text ending in ? or ？).
  Needs `pip install pyopenjtalk-plus`. Kana with accent marks (no OpenJTalk, what the Unity
  runtime reads): kana.py.

The pitch rule is the Japanese fork's (ayutaz/ZipVoice, branch feature/japanese-support, G2P "v3",
2026-01-07, the one its current checkpoints are trained with): with A1 = mora position relative to
the accent nucleus and A2 = mora position in the accent phrase (1 = first),
  A2 = 1 and A1 < 0 -> low (the first mora of a phrase is low unless it carries the nucleus);
  A1 ≤ 0 -> high (up to and including the nucleus); A1 > 0 -> low.
Its history: v1 had A1 < 0 -> high (nucleus low), v2 A1 ≤ 0 -> high (the issue's wording), v3
added the first-mora rule. `ACCENT_RULES` keeps the three; a bundle's text component names the one
it was trained with (`accent_rule`, default "v3").
"""
from __future__ import annotations

import re

from ..errors import RuntimeRefError

PUNCTUATION = frozenset(";:,.!?；：，。！？")  # official infer.py `punctuation`
ACCENT_HIGH, ACCENT_LOW, PHRASE_BOUNDARY, QUESTION = "[H]", "[L]", "|", "[Q]"
ACCENT_RULES = {
    "v1": lambda a1, a2: "H" if a1 < 0 else "L",
    "v2": lambda a1, a2: "H" if a1 <= 0 else "L",
    "v3": lambda a1, a2: "L" if a2 == 1 and a1 < 0 else ("H" if a1 <= 0 else "L"),
}
DEFAULT_ACCENT_RULE = "v3"


def accent_level(a1: int, a2: int, rule: str = DEFAULT_ACCENT_RULE) -> str:
    """"H" or "L" for a mora with label values A1 (relative to the nucleus) and A2 (position, 1-based)."""
    return ACCENT_RULES[rule](a1, a2)


_PHONE = re.compile(r"-([^+]+)\+")
_A12 = re.compile(r"/A:([0-9\-]+|xx)\+([0-9]+|xx)\+")
_F = re.compile(r"/F:([^/]*)")


def add_punctuation(text: str) -> str:
    """Official `add_punctuation`: strip, and end with '.' unless the text ends in punctuation."""
    text = text.strip()
    return text if text and text[-1] in PUNCTUATION else text + "."


def _pyopenjtalk():
    try:
        import pyopenjtalk
    except ImportError:
        raise RuntimeRefError("the Japanese accent front-end needs pyopenjtalk: pip install pyopenjtalk-plus") from None
    return pyopenjtalk


def japanese_accent_tokens(text: str, rule: str = DEFAULT_ACCENT_RULE) -> list[str]:
    pyopenjtalk = _pyopenjtalk()
    out: list[str] = []
    level = phrase = None
    for label in pyopenjtalk.extract_fullcontext(text):
        m = _PHONE.search(label)
        phone = m.group(1) if m else "xx"
        if phone == "sil":
            continue
        if phone == "pau":
            out.append("pau")
            level = phrase = None
            continue
        f = _F.search(label)
        f_key = f.group(1).split("#")[0] if f else "xx"
        if phrase is not None and f_key != phrase:
            out.append(PHRASE_BOUNDARY)
            level = None
        a = _A12.search(label)
        try:
            new_level = ACCENT_HIGH if accent_level(int(a.group(1)), int(a.group(2)), rule) == "H" else ACCENT_LOW
        except (AttributeError, ValueError):
            new_level = ACCENT_LOW
        if new_level != level:
            out.append(new_level)
        out.append(phone)
        level, phrase = new_level, f_key
    if text.rstrip().endswith(("?", "？")):
        out.append(QUESTION)
    return out


class ZipVoiceFrontend:
    def __init__(self, token2id: dict[str, int], tokenizer: str = "simple", accent_rule: str = DEFAULT_ACCENT_RULE):
        if tokenizer not in ("simple", "japanese_accent"):
            raise RuntimeRefError(f"unknown ZipVoice tokenizer {tokenizer!r} (simple, japanese_accent)")
        if accent_rule not in ACCENT_RULES:
            raise RuntimeRefError(f"unknown accent rule {accent_rule!r} ({', '.join(ACCENT_RULES)})")
        self.token2id, self.tokenizer, self.accent_rule = token2id, tokenizer, accent_rule

    @classmethod
    def load(cls, bundle) -> "ZipVoiceFrontend":
        comp = bundle.component("text")
        return cls(read_tokens(bundle.root / comp["tokens"]), comp.get("tokenizer", "simple"), comp.get("accent_rule", DEFAULT_ACCENT_RULE))

    def tokens(self, text: str, *, kana: bool = False) -> list[str]:
        """kana=True (japanese_accent only): `text` is accent kana (kana.py), read without OpenJTalk."""
        if self.tokenizer != "japanese_accent":
            if kana:
                raise RuntimeRefError(f"accent kana input needs a Japanese accent bundle; this one's front-end is {self.tokenizer!r}")
            return list(text)
        if kana:
            from .kana import accent_kana_tokens

            return accent_kana_tokens(text, self.accent_rule)
        return japanese_accent_tokens(text, self.accent_rule)

    def ids(self, text: str, *, kana: bool = False) -> list[int]:
        """Text -> ids as generate_sentence does: add_punctuation, tokenize, drop unknown tokens."""
        return [self.token2id[t] for t in self.tokens(add_punctuation(text), kana=kana) if t in self.token2id]


def read_tokens(path) -> dict[str, int]:
    """tokens.txt: `token TAB id` per line."""
    table: dict[str, int] = {}
    for line in open(path, encoding="utf-8").read().splitlines():
        if line.strip():
            tok, idx = line.rstrip("\n").split("\t")
            table[tok] = int(idx)
    return table
