"""ZipVoice text front-ends (no torch): tokens.txt lookup after the tokenizer the table was made
for, as the official `SimpleTokenizer` / the Japanese fork's accent tokenizer do; out-of-table
tokens are skipped (official `tokens_to_token_ids`).

- simple: every character is a token (no normalisation);
- japanese_accent: pyopenjtalk(-plus) full-context labels -> phonemes with pitch marks: `[H]` /
  `[L]` before a mora run whose pitch level changes (high where the label's A1 ≤ 0, i.e. up to and
  including the accent nucleus; low after it), `|` between accent phrases, `pau` for pauses, and
  `[Q]` at the end of a question (text ending in ? or ？). Needs `pip install pyopenjtalk-plus`.
"""
from __future__ import annotations

import re

from ..errors import RuntimeRefError

PUNCTUATION = frozenset(";:,.!?；：，。！？")  # official infer.py `punctuation`
ACCENT_HIGH, ACCENT_LOW, PHRASE_BOUNDARY, QUESTION = "[H]", "[L]", "|", "[Q]"
HIGH_MAX_A1 = 0  # A1 ≤ 0: at or before the accent nucleus -> high
_PHONE = re.compile(r"-([^+]+)\+")
_A1 = re.compile(r"/A:([0-9\-]+|xx)\+")
_F = re.compile(r"/F:([^/]*)")


def add_punctuation(text: str) -> str:
    """Official `add_punctuation`: strip, and end with '.' unless the text ends in punctuation."""
    text = text.strip()
    return text if text and text[-1] in PUNCTUATION else text + "."


def japanese_accent_tokens(text: str) -> list[str]:
    try:
        import pyopenjtalk
    except ImportError:
        raise RuntimeRefError("the Japanese accent front-end needs pyopenjtalk: pip install pyopenjtalk-plus") from None
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
        a1 = _A1.search(label)
        try:
            new_level = ACCENT_HIGH if int(a1.group(1)) <= HIGH_MAX_A1 else ACCENT_LOW
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
    def __init__(self, token2id: dict[str, int], tokenizer: str = "simple"):
        if tokenizer not in ("simple", "japanese_accent"):
            raise RuntimeRefError(f"unknown ZipVoice tokenizer {tokenizer!r} (simple, japanese_accent)")
        self.token2id, self.tokenizer = token2id, tokenizer

    @classmethod
    def load(cls, bundle) -> "ZipVoiceFrontend":
        comp = bundle.component("text")
        path = bundle.root / comp["tokens"]
        table: dict[str, int] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                tok, idx = line.rstrip("\n").split("\t")
                table[tok] = int(idx)
        return cls(table, comp.get("tokenizer", "simple"))

    def tokens(self, text: str) -> list[str]:
        return japanese_accent_tokens(text) if self.tokenizer == "japanese_accent" else list(text)

    def ids(self, text: str) -> list[int]:
        """Text -> ids as generate_sentence does: add_punctuation, tokenize, drop unknown tokens."""
        return [self.token2id[t] for t in self.tokens(add_punctuation(text)) if t in self.token2id]
