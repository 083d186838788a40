"""Added (special) tokens: reading them from tokenizer_config.json, and the CosyVoice additions.

The official CosyVoice2Tokenizer / CosyVoice3Tokenizer call `add_special_tokens(...)` on the Qwen2
tokenizer at run time; which one a model uses is its yaml's `get_tokenizer: version` (cosyvoice2 by
default). Each list lives once in sentis-tts, in `<version>_special_tokens.json` beside this file;
ids are assigned the way Hugging Face `tokenizers` does: a token that already exists (in vocab.json
or among the added tokens) keeps its id, a new one gets max(len(vocab), largest added id + 1).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from .errors import TextFrontendError

SPECIAL_TOKEN_LISTS = ("cosyvoice2", "cosyvoice3")  # official get_qwen_tokenizer versions
COSYVOICE2_SPECIAL_TOKENS_FILE = Path(__file__).with_name("cosyvoice2_special_tokens.json")


@dataclass(frozen=True)
class AddedToken:
    id: int
    content: str
    special: bool = True
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = False
    single_word: bool = False  # not applied (no Qwen2/CosyVoice2 token uses it)

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=None)
def special_token_list(version: str) -> tuple[str, ...]:
    """The tokens the official tokenizer of `version` adds, in its order (eos, pad, then the additional ones)."""
    if version not in SPECIAL_TOKEN_LISTS:
        raise TextFrontendError(f"tokenizer version {version!r} is not known to this sentis-tts (known: {', '.join(SPECIAL_TOKEN_LISTS)})")
    data = json.loads(Path(__file__).with_name(f"{version}_special_tokens.json").read_text(encoding="utf-8"))
    out: list[str] = []
    for tok in [data["eos_token"], data["pad_token"], *data["additional_special_tokens"]]:
        if tok not in out:
            out.append(tok)
    return tuple(out)


def cosyvoice2_special_tokens() -> tuple[str, ...]:
    """The tokens CosyVoice2Tokenizer adds, in its order (eos, pad, then the additional ones)."""
    return special_token_list("cosyvoice2")


def read_added_tokens(tokenizer_config: Path) -> list[AddedToken]:
    """`added_tokens_decoder` of a Hugging Face tokenizer_config.json (empty list if none)."""
    try:
        cfg = json.loads(tokenizer_config.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise TextFrontendError(f"{tokenizer_config}: not valid JSON (line {e.lineno}): {e.msg}") from None
    out = []
    for sid, t in (cfg.get("added_tokens_decoder") or {}).items():
        out.append(AddedToken(id=int(sid), content=t["content"], special=bool(t.get("special", False)),
                              lstrip=bool(t.get("lstrip", False)), rstrip=bool(t.get("rstrip", False)),
                              normalized=bool(t.get("normalized", not t.get("special", False))),
                              single_word=bool(t.get("single_word", False))))
    return sorted(out, key=lambda t: t.id)


def add_special_tokens(vocab: dict[str, int], added: list[AddedToken], new: list[str] | tuple[str, ...]) -> list[AddedToken]:
    """`added` plus `new` special tokens with ids assigned like `tokenizers`' add_special_tokens."""
    by_content = {t.content: t for t in added}
    out = list(added)
    for content in new:
        if content in by_content:
            continue
        if content in vocab:  # an existing vocabulary entry becomes an added (special) token, same id
            tok = AddedToken(id=vocab[content], content=content)
        else:
            top = max((t.id for t in out), default=None)
            n = len(vocab)
            tok = AddedToken(id=n if top is None or (top < n and n > 0) else top + 1, content=content)
        by_content[content] = tok
        out.append(tok)
    return sorted(out, key=lambda t: t.id)


def read_special_tokens_table(path: Path) -> list[AddedToken]:
    """The resolved table written by the exporter (`text/special_tokens.json` in a bundle)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return sorted((AddedToken(**t) for t in data["added_tokens"]), key=lambda t: t.id)
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise TextFrontendError(f"{path}: malformed special-token table ({e}); re-export the bundle's text component") from None


def special_tokens_table(added: list[AddedToken]) -> dict:
    """What `read_special_tokens_table` reads back."""
    return {"added_tokens": [t.to_dict() for t in sorted(added, key=lambda t: t.id)]}
