"""Text front-end of the reference runtime (pure Python + numpy, no torch/tokenizers/transformers).

- `Qwen2Tokenizer` (bpe.py): Qwen2 byte-level BPE from vocab.json + merges.txt, added tokens
  (the CosyVoice2 specials from cosyvoice2_special_tokens.json) matched first.
- `normalize_text` (normalize.py, japanese.py): numbers/symbols as words for English and
  Japanese, Japanese kanji -> kana reading mode (pyopenjtalk-plus, optional).
- `split_text`, `text_token_budget` (split.py): pieces that fit the bundle's limits, never truncated.
- `TextFrontend` (frontend.py): normalise -> split -> encode, loaded from a bundle or a model dir.
"""
from .bpe import Qwen2Tokenizer, bytes_to_unicode
from .errors import TextFrontendError
from .frontend import TextFrontend, TextPiece, load_tokenizer
from .normalize import detect_language, has_control_tokens, normalize_text
from .special_tokens import AddedToken, cosyvoice2_special_tokens
from .split import split_sentences, split_text, text_token_budget

__all__ = [
    "Qwen2Tokenizer", "bytes_to_unicode", "TextFrontendError", "TextFrontend", "TextPiece", "load_tokenizer",
    "detect_language", "has_control_tokens", "normalize_text", "AddedToken", "cosyvoice2_special_tokens",
    "split_sentences", "split_text", "text_token_budget",
]
