"""The text front-end as one object: load the tokenizer (bundle, model dir or tokenizer folder),
normalise, split to a token budget, encode."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bpe import Qwen2Tokenizer
from .errors import TextFrontendError
from .normalize import detect_language, has_control_tokens, normalize_text
from .split import split_text

MODEL_TOKENIZER_DIR = "CosyVoice-BlankEN"


def load_tokenizer(source, *, specials: str = "cosyvoice2") -> Qwen2Tokenizer:
    """From a runtime_ref Bundle (its `text` component), a bundle folder, a model dir
    (CosyVoice-BlankEN/ + the special tokens of the tokenizer version `specials`, which the model's
    yaml names) or a folder with vocab.json/merges.txt."""
    if hasattr(source, "component") and hasattr(source, "root"):  # a runtime_ref.bundle.Bundle
        comp = source.component("text")
        return Qwen2Tokenizer.from_dir(Path(source.root) / comp.get("dir", "text"))
    p = Path(source)
    if (p / "manifest.json").is_file():
        from ..bundle import Bundle

        return load_tokenizer(Bundle.open(p))
    if (p / MODEL_TOKENIZER_DIR / "vocab.json").is_file():
        return Qwen2Tokenizer.from_dir(p / MODEL_TOKENIZER_DIR, specials=specials)
    if (p / "vocab.json").is_file():
        return Qwen2Tokenizer.from_dir(p, specials=specials)
    raise TextFrontendError(f"{p}: no tokenizer here — pass a bundle, a CosyVoice2 model dir or a folder with vocab.json + merges.txt")


@dataclass
class TextPiece:
    text: str  # normalised text of the piece
    ids: list[int]

    def array(self) -> np.ndarray:
        """(1, L) int32, the LLM graphs' text input."""
        return np.asarray(self.ids, dtype=np.int32).reshape(1, -1)


class TextFrontend:
    """normalize -> split -> encode. `japanese_reading`: kanji -> kana for Japanese text (default on)."""

    def __init__(self, tokenizer: Qwen2Tokenizer, *, normalize: bool = True, japanese_reading: bool = True):
        self.tokenizer = tokenizer
        self.normalize_enabled = normalize
        self.japanese_reading = japanese_reading

    @classmethod
    def load(cls, source, **kw) -> "TextFrontend":
        return cls(load_tokenizer(source), **kw)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def normalize(self, text: str, lang: str | None = None) -> str:
        """One normalised string (what the official frontend does to a prompt transcript)."""
        if not self.normalize_enabled:
            return text
        return normalize_text(text, lang, japanese_reading=self.japanese_reading)

    def pieces(self, text: str, max_tokens: int, *, lang: str | None = None, target_tokens: int | None = None,
               min_tokens: int | None = None) -> list[TextPiece]:
        """Normalised pieces of `text`, each at most `max_tokens` tokens (see split.split_text).
        Text with `<|...|>` control tokens is not normalised (official behaviour) but is still
        split when it is over the budget."""
        if not text.strip():
            raise TextFrontendError("the text to synthesize is empty")
        control = has_control_tokens(text)
        norm = text if control else self.normalize(text, lang or detect_language(text))
        count = self.tokenizer.count
        if control and count(norm) <= max_tokens:
            parts = [norm]
        else:
            parts = split_text(norm, count, max_tokens, target_tokens=target_tokens, min_tokens=min_tokens)
        if not parts:
            raise TextFrontendError(f"nothing to synthesize in {text[:40]!r} (only punctuation or blanks)")
        return [TextPiece(p, self.tokenizer.encode(p)) for p in parts]
