"""Qwen2 byte-level BPE in pure Python (what `Qwen2TokenizerFast` computes, no `tokenizers` needed).

encode(text):
  1. added tokens (special tokens such as <|endofprompt|> or [breath]) split the raw text first,
     leftmost match, longest token first; each becomes its own id;
  2. every other segment: Unicode NFC -> Qwen2 pre-tokenizer regex (pretokenize.py) -> each
     piece's UTF-8 bytes mapped to printable characters (GPT-2 bytes<->unicode table) -> BPE:
     repeatedly merge the adjacent pair with the lowest rank in merges.txt -> vocab.json ids.
No BOS/EOS is added (CosyVoice2 calls the tokenizer with default arguments; Qwen2 adds none).
"""
from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from .errors import TextFrontendError
from .pretokenize import pretokenize, unicode_classes
from .special_tokens import AddedToken, add_special_tokens, read_added_tokens, read_special_tokens_table, special_token_list

SPECIAL_TOKENS_TABLE = "special_tokens.json"  # resolved added-token table in a bundle's text/ folder
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json")


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (printable Latin-1 bytes map to
    themselves, the other 68 bytes to U+0100.. in byte order)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def read_merges(path: Path) -> list[tuple[str, str]]:
    merges = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line or (n == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2:
                raise TextFrontendError(f"{path}:{n}: a merge line must be two tokens separated by one space, got {line!r}")
            merges.append((parts[0], parts[1]))
    return merges


class Qwen2Tokenizer:
    """Byte-level BPE with added tokens. `vocab`: token -> id (vocab.json); `merges`: ranked pairs."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], added_tokens: list[AddedToken] = ()):
        self.vocab = vocab
        self.ranks = {pair: r for r, pair in enumerate(merges)}
        self.added_tokens = sorted(added_tokens, key=lambda t: t.id)
        self.added_by_content = {t.content: t for t in self.added_tokens}
        self.id_to_token = {i: t for t, i in vocab.items()}
        self.added_by_id = {t.id: t for t in self.added_tokens}
        clash = [t for t in self.added_tokens if t.id in self.id_to_token and self.id_to_token[t.id] != t.content]
        if clash:
            t = clash[0]
            raise TextFrontendError(f"added token {t.content!r} has id {t.id}, which vocab.json gives to "
                                    f"{self.id_to_token[t.id]!r}; the tokenizer files do not belong together")
        self._b2u = bytes_to_unicode()
        self._u2b = unicode_to_bytes()
        self._cache: dict[str, tuple[int, ...]] = {}
        self._added_re = self._added_pattern()

    # -- construction ---------------------------------------------------------------------------
    @staticmethod
    def read_files(vocab_json: Path, merges_txt: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
        for p in (vocab_json, merges_txt):
            if not Path(p).is_file():
                raise TextFrontendError(f"{p}: missing tokenizer file (a Qwen2 tokenizer needs vocab.json and merges.txt)")
        try:
            vocab = json.loads(Path(vocab_json).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise TextFrontendError(f"{vocab_json}: not valid JSON (line {e.lineno}): {e.msg}") from None
        return vocab, read_merges(Path(merges_txt))

    @classmethod
    def from_files(cls, vocab_json: Path, merges_txt: Path, added_tokens: list[AddedToken] = ()) -> "Qwen2Tokenizer":
        vocab, merges = cls.read_files(vocab_json, merges_txt)
        return cls(vocab, merges, list(added_tokens))

    @classmethod
    def from_dir(cls, path: str | Path, *, specials: str | None = "cosyvoice2") -> "Qwen2Tokenizer":
        """A folder with vocab.json + merges.txt (+ tokenizer_config.json). If it holds the exporter's
        resolved `special_tokens.json` (a bundle's text/ folder), that is the complete added-token
        table; otherwise the config's added tokens are read and the special tokens of the official
        tokenizer version `specials` (cosyvoice2, cosyvoice3; None: none) are added like it does."""
        d = Path(path)
        if not (d / "vocab.json").is_file():
            raise TextFrontendError(f"{d}: no vocab.json here — pass the tokenizer folder (CosyVoice-BlankEN, or a bundle's text/)")
        if (d / SPECIAL_TOKENS_TABLE).is_file():
            added = read_special_tokens_table(d / SPECIAL_TOKENS_TABLE)
            return cls.from_files(d / "vocab.json", d / "merges.txt", added)
        vocab, merges = cls.read_files(d / "vocab.json", d / "merges.txt")
        added = read_added_tokens(d / "tokenizer_config.json") if (d / "tokenizer_config.json").is_file() else []
        if specials:
            added = add_special_tokens(vocab, added, special_token_list(specials))
        return cls(vocab, merges, added)

    def _added_pattern(self) -> re.Pattern | None:
        """One alternative (one group) per added token, longest first: at a given position the
        longest token wins; group k of a match is self._added_by_length[k - 1]."""
        self._added_by_length = sorted(self.added_tokens, key=lambda t: -len(t.content))
        if not self.added_tokens:
            return None
        ws = unicode_classes()[2]
        alts = []
        for t in self._added_by_length:
            alts.append((f"[{ws}]*" if t.lstrip else "") + re.escape(t.content) + (f"[{ws}]*" if t.rstrip else ""))
        return re.compile("|".join(f"({a})" for a in alts))

    # -- properties -----------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of distinct ids (vocabulary + added tokens not in it)."""
        return len(self.vocab) + sum(1 for t in self.added_tokens if t.id not in self.id_to_token)

    @property
    def max_id(self) -> int:
        return max([*self.vocab.values(), *(t.id for t in self.added_tokens)])

    def token_to_id(self, token: str) -> int:
        if token in self.added_by_content:
            return self.added_by_content[token].id
        if token in self.vocab:
            return self.vocab[token]
        raise TextFrontendError(f"token {token!r} is not in this tokenizer's vocabulary")

    # -- encoding -------------------------------------------------------------------------------
    def split_added(self, text: str) -> list[tuple[str, AddedToken | None]]:
        """Text segments and added tokens, in order: [(segment, None) | (matched, token)]."""
        if self._added_re is None or not text:
            return [(text, None)] if text else []
        out: list[tuple[str, AddedToken | None]] = []
        pos = 0
        for m in self._added_re.finditer(text):
            if m.start() > pos:
                out.append((text[pos:m.start()], None))
            out.append((m.group(0), self._added_by_length[m.lastindex - 1]))
            pos = m.end()
        if pos < len(text):
            out.append((text[pos:], None))
        return out

    def bpe(self, piece: str) -> tuple[int, ...]:
        """Ids of one pre-tokenized piece (cached)."""
        ids = self._cache.get(piece)
        if ids is not None:
            return ids
        word = [self._b2u[b] for b in piece.encode("utf-8")]
        ranks = self.ranks
        while len(word) > 1:
            best, best_rank = -1, None
            for i in range(len(word) - 1):
                r = ranks.get((word[i], word[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best_rank is None:
                break
            a, b = word[best], word[best + 1]
            merged, i = [], 0
            while i < len(word):  # merge every occurrence of the pair, left to right
                if i < len(word) - 1 and word[i] == a and word[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        try:
            ids = tuple(self.vocab[w] for w in word)
        except KeyError as e:
            raise TextFrontendError(f"BPE produced {e.args[0]!r}, which is not in vocab.json; vocab.json and merges.txt do not belong together") from None
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[piece] = ids
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of text with no added-token matching (NFC, pre-tokenizer, BPE)."""
        out: list[int] = []
        for piece in pretokenize(unicodedata.normalize("NFC", text)):
            out.extend(self.bpe(piece))
        return out

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (added tokens matched first). No BOS/EOS."""
        out: list[int] = []
        for seg, tok in self.split_added(text):
            if tok is not None:
                out.append(tok.id)
            else:
                out.extend(self.encode_ordinary(seg))
        return out

    def encode_array(self, text: str):
        """(1, L) int32 array, the shape the LLM graphs take."""
        import numpy as np

        return np.asarray([self.encode(text)], dtype=np.int32).reshape(1, -1)

    def count(self, text: str) -> int:
        return len(self.encode(text))

    # -- decoding -------------------------------------------------------------------------------
    def decode(self, ids, *, skip_special_tokens: bool = True) -> str:
        """Text of `ids`; invalid UTF-8 byte runs become U+FFFD (Qwen2's errors='replace')."""
        parts: list[str] = []
        buf = bytearray()
        for i in (int(x) for x in ids):
            t = self.added_by_id.get(i)
            if t is not None:
                if buf:
                    parts.append(buf.decode("utf-8", errors="replace"))
                    buf.clear()
                if not (skip_special_tokens and t.special):
                    parts.append(t.content)
                continue
            tok = self.id_to_token.get(i)
            if tok is None:
                raise TextFrontendError(f"id {i} is not in this tokenizer (it has ids 0..{self.max_id})")
            buf.extend(self._u2b[c] for c in tok)
        if buf:
            parts.append(buf.decode("utf-8", errors="replace"))
        return "".join(parts)
