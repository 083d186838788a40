"""Qwen2's pre-tokenizer regex, written for the standard-library `re` module.

Qwen2 (tokenizer.json, `Split` pre-tokenizer, behaviour "isolated") splits text with

    (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+

(`\\p{N}` is ONE digit per piece). `re` has no `\\p{..}` classes and its `\\s`/`\\w` differ from
Unicode's (e.g. U+001C..U+001F count as space for `str.isspace`), so the three classes are
spelled out as explicit code-point ranges: L = general category L*, N = N* (Nd, Nl, No), and
\\s = the Unicode White_Space property. Every character is matched by one of the alternatives, so
the pieces concatenate back to the input.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Unicode White_Space (PropList.txt): what `\s` means in Oniguruma / the Rust regex crate.
WHITE_SPACE = (
    (0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)

# planes 4..13 have no assigned characters; planes 15/16 are private use (category Co)
_SCAN = (range(0, 0x40000), range(0xE0000, 0xE0200))


def _ranges(codes: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for c in codes:
        if out and out[-1][1] == c - 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out


def _class_body(ranges) -> str:
    """Ranges as the inside of a `re` character class."""
    parts = []
    for a, b in ranges:
        parts.append(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}")
    return "".join(parts)


@lru_cache(maxsize=1)
def unicode_classes() -> tuple[str, str, str]:
    """(L, N, WS) class bodies for this Python's Unicode database."""
    letters, numbers = [], []
    cat = unicodedata.category
    for rng in _SCAN:
        for c in rng:
            k = cat(chr(c))[0]
            if k == "L":
                letters.append(c)
            elif k == "N":
                numbers.append(c)
    return _class_body(_ranges(letters)), _class_body(_ranges(numbers)), _class_body(WHITE_SPACE)


@lru_cache(maxsize=1)
def qwen2_pattern() -> re.Pattern:
    L, N, S = unicode_classes()
    pattern = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
        rf"|[^\r\n{L}{N}]?[{L}]+"
        rf"|[{N}]"
        rf"| ?[^{S}{L}{N}]+[\r\n]*"
        rf"|[{S}]*[\r\n]+"
        rf"|[{S}]+(?![^{S}])"
        rf"|[{S}]+"
    )
    return re.compile(pattern)


def pretokenize(text: str) -> list[str]:
    """Split `text` into Qwen2 pre-tokenizer pieces (their concatenation is `text`)."""
    return qwen2_pattern().findall(text)

