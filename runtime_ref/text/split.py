"""Splitting text into pieces that each fit a token budget (never truncating).

The budget comes from the bundle (LLM cache length, largest flow bucket), see `text_token_budget`.
`split_text` cuts at sentence ends first, then at clause punctuation, then at blanks, and for
scripts written without blanks (Chinese, Japanese) between characters; control tags such as
`[breath]` or `<|endofprompt|>` are never cut. Sentences are then packed greedily into pieces of
about `target_tokens` (the official frontend uses 60..80 tokens and merges a last piece shorter
than 20 tokens into the previous one), never over `max_tokens`. A unit that cannot be cut and is
still over `max_tokens` raises TextFrontendError: nothing is dropped silently.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Callable

from .errors import TextFrontendError

SENTENCE_ENDS = "。？！；：…!?;:\n"
CLAUSE_MARKS = "，、,－—"
CLOSING = "\"'”’」』)）]】"
# control tags are atomic (never cut inside): <|...|>, [word], <word>, </word>
TAG = re.compile(r"<\|[^|<>\s]{1,40}\|>|\[[A-Za-z_\-]{1,40}\]|</?[A-Za-z]{1,20}>")
_NO_SPACE_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u3000-\u303f\uff00-\uffef]")


def _atoms(text: str) -> list[str]:
    """Characters, except that control tags stay whole."""
    out, pos = [], 0
    for m in TAG.finditer(text):
        out.extend(text[pos:m.start()])
        out.append(m.group(0))
        pos = m.end()
    out.extend(text[pos:])
    return out


def _cut_after(text: str, is_cut: Callable[[list[str], int], bool]) -> list[str]:
    """Cut after each atom where is_cut(atoms, i); closing quotes/brackets stay with what they close."""
    atoms = _atoms(text)
    pieces, cur = [], []
    i = 0
    while i < len(atoms):
        cur.append(atoms[i])
        if is_cut(atoms, i):
            while i + 1 < len(atoms) and atoms[i + 1] in CLOSING:
                i += 1
                cur.append(atoms[i])
            pieces.append("".join(cur))
            cur = []
        i += 1
    if cur:
        pieces.append("".join(cur))
    return pieces


def split_sentences(text: str) -> list[str]:
    """Sentences with their end punctuation ('.' ends one only before a blank or the end; a run
    of marks such as '?!' stays together)."""
    def is_end(a: list[str], i: int) -> bool:
        c = a[i]
        if i + 1 < len(a) and a[i + 1] in SENTENCE_ENDS and a[i + 1] != "\n" and c in SENTENCE_ENDS + ".":
            return False  # a run such as "?!" or "!!!" ends at its last mark
        if c == ".":
            return i + 1 == len(a) or a[i + 1].isspace() or a[i + 1] in CLOSING
        return c in SENTENCE_ENDS
    return _cut_after(text, is_end)


def _split_clauses(text: str) -> list[str]:
    return _cut_after(text, lambda a, i: a[i] in CLAUSE_MARKS)


def _split_blanks(text: str) -> list[str]:
    return _cut_after(text, lambda a, i: a[i].isspace() and i + 1 < len(a) and not a[i + 1].isspace())


def _split_chars(text: str) -> list[str]:
    """Between atoms where either side is a no-blank script character (CJK, kana, Hangul)."""
    def cut(a: list[str], i: int) -> bool:
        return i + 1 < len(a) and bool(_NO_SPACE_SCRIPT.match(a[i]) or _NO_SPACE_SCRIPT.match(a[i + 1]))
    return _cut_after(text, cut)


def is_only_punctuation(text: str) -> bool:
    """True for pieces made of punctuation, symbols and blanks only (dropped, like the official)."""
    return all(unicodedata.category(c)[0] in "PSZC" for c in text)


def _pack(units: list[str], count: Callable[[str], int], max_tokens: int, target: int, min_tokens: int) -> list[str]:
    """Greedy: start a new piece when adding the next unit would pass `target` (and the current
    piece has at least `min_tokens`) or would pass `max_tokens`."""
    out: list[str] = []
    cur = ""
    for u in units:
        if cur:
            n_cur, n_new = count(cur), count(cur + u)
            if n_new > max_tokens or (n_new > target and n_cur >= min_tokens):
                out.append(cur)
                cur = ""
        cur += u
    if cur:
        out.append(cur)
    return out


def _fit(unit: str, count: Callable[[str], int], max_tokens: int, level: int = 0) -> list[str]:
    """Cut one unit into parts of at most max_tokens each, finer and finer."""
    n = count(unit)
    if n <= max_tokens:
        return [unit]
    splitters = (_split_clauses, _split_blanks, _split_chars)
    for lvl in range(level, len(splitters)):
        parts = splitters[lvl](unit)
        if len(parts) > 1:
            out: list[str] = []
            for p in parts:
                out.extend(_fit(p, count, max_tokens, lvl + 1))
            return _pack(out, count, max_tokens, max_tokens, 0)
    shown = unit.strip()
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    raise TextFrontendError(
        f"cannot split {shown!r} ({n} tokens) to fit the {max_tokens}-token limit of this bundle; "
        "add blanks or punctuation to the text, or export with a larger LLM cache / flow length")


def split_text(text: str, count_tokens: Callable[[str], int], max_tokens: int, *, target_tokens: int | None = None,
               min_tokens: int | None = None, merge_tokens: int = 20) -> list[str]:
    """Pieces of `text`, each with count_tokens(piece) <= max_tokens; whitespace at piece edges
    is stripped and punctuation-only pieces are dropped. Defaults follow the official frontend:
    target 80, minimum 60, a last piece under 20 tokens joins the previous one (all capped by
    max_tokens). Raises TextFrontendError when a unit cannot be cut small enough."""
    if max_tokens < 1:
        raise TextFrontendError(f"the text token budget is {max_tokens}; the bundle leaves no room for text (prompt too long?)")
    target = min(target_tokens or 80, max_tokens)
    low = min(min_tokens if min_tokens is not None else 60, target)
    units: list[str] = []
    for s in split_sentences(text):
        if units and is_only_punctuation(s) and count_tokens(units[-1] + s) <= max_tokens:
            units[-1] += s  # a stray '...' or '!!!' stays with the sentence before it
            continue
        units.extend(_fit(s, count_tokens, max_tokens))
    pieces = [p for p in _pack(units, count_tokens, max_tokens, target, low) if not is_only_punctuation(p)]
    if len(pieces) > 1 and count_tokens(pieces[-1]) < merge_tokens and count_tokens(pieces[-2] + pieces[-1]) <= max_tokens:
        pieces[-2:] = [pieces[-2] + pieces[-1]]
    pieces = [p.strip() for p in pieces]
    return [p for p in pieces if p and not is_only_punctuation(p)]


def text_token_budget(max_cache_len: int, max_flow_tokens: int, *, prompt_text_tokens: int = 0,
                      prompt_speech_tokens: int = 0, speech_tokens_per_text_token: float = 20.0) -> int:
    """Largest number of text tokens per piece such that the LLM cache and the largest flow bucket
    can hold the worst case. The LLM sequence is [sos] + prompt text + text + [task] + prompt speech
    + generated tokens, and generation stops at most at `speech_tokens_per_text_token` x text tokens
    (20 in the official code: max_len = 20 x text length); the flow sees prompt speech + generated
    tokens. A smaller ratio (e.g. a measured speaking rate) gives longer pieces but may hit the
    limit for slow speech; the default guarantees it never does."""
    r = float(speech_tokens_per_text_token)
    llm_room = (max_cache_len - 2 - prompt_text_tokens - prompt_speech_tokens) / (1.0 + r)
    flow_room = (max_flow_tokens - prompt_speech_tokens) / r
    budget = int(min(llm_room, flow_room))
    if budget < 1:
        raise TextFrontendError(
            f"the prompt ({prompt_text_tokens} text + {prompt_speech_tokens} speech tokens) leaves no room for text in "
            f"this bundle (LLM cache {max_cache_len}, flow {max_flow_tokens} tokens); use a shorter prompt or a larger export")
    return budget
