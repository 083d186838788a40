"""Fixtures of the text front-end tests.

The oracle for the real Qwen2 vocabulary is written by nobody here: the `quicktok` package
(PyPI: quicktok-v1) bundles the Qwen2.5/Qwen3 byte-level BPE ranks (151643 regular tokens, the
same vocabulary as Qwen2 / CosyVoice-BlankEN). From its ranks we derive a vocab.json +
merges.txt pair (one merge per token: the two parts BPE itself produces for the token's bytes
when only lower ranks may merge — the standard tiktoken -> Hugging Face conversion), cached under
the system temp dir, and compare our ids with quicktok's and with Hugging Face `tokenizers`
configured like Qwen2TokenizerFast (NFC, the Qwen2 split regex, byte-level, BPE).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pytest

CORPUS = Path(__file__).with_name("corpus.jsonl")
QWEN_BASE_SPECIALS = {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>"}
QWEN2_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    lines = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    assert len(lines) >= 300
    return lines


def _derive_vocab_merges(enc) -> tuple[dict[bytes, int], list[tuple[bytes, bytes]]]:
    ranks: dict[bytes, int] = {}
    for i in range(enc.n_vocab):
        if enc.is_special_token(i):
            continue
        try:
            ranks[enc.decode_single_token_bytes(i)] = i
        except Exception:  # noqa: BLE001 - unused id
            continue

    def split(token: bytes, max_rank: int) -> list[bytes]:
        parts = [bytes([b]) for b in token]
        while True:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best_rank is None or best_rank >= max_rank:
                return parts
            parts = parts[:best] + [parts[best] + parts[best + 1]] + parts[best + 2:]

    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            parts = split(token, rank)
            assert len(parts) == 2, f"token {token!r} (rank {rank}) is not a merge of two lower-ranked tokens"
            merges.append((parts[0], parts[1]))
    return ranks, merges


@pytest.fixture(scope="session")
def quicktok_qwen():
    qt = pytest.importorskip("quicktok", reason="the Qwen2 vocabulary oracle needs quicktok-v1 (pip install -e '.[test]')")
    return qt.get_encoding("qwen3")


@pytest.fixture(scope="session")
def qwen_tokenizer_dir(quicktok_qwen) -> Path:
    """vocab.json, merges.txt, tokenizer_config.json (3 base specials, like Qwen2-0.5B/BlankEN)
    derived from quicktok's bundled ranks; cached across sessions under the temp dir."""
    import quicktok

    from runtime_ref.text.bpe import bytes_to_unicode

    data = Path(quicktok.__file__).parent / "data" / "qwen3.vocab"
    key = hashlib.sha256(data.read_bytes()).hexdigest()[:16] if data.is_file() else quicktok.__version__
    cache = Path(tempfile.gettempdir()) / "sentis_tts_test_cache" / f"qwen_from_quicktok_{key}"
    if (cache / "tokenizer_config.json").is_file():
        return cache
    ranks, merges = _derive_vocab_merges(quicktok_qwen)
    b2u = bytes_to_unicode()
    m = lambda b: "".join(b2u[x] for x in b)  # noqa: E731
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".qwen_", dir=cache.parent))
    (tmp / "vocab.json").write_text(json.dumps({m(b): i for b, i in ranks.items()}, ensure_ascii=False), encoding="utf-8")
    (tmp / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{m(a)} {m(b)}\n" for a, b in merges), encoding="utf-8")
    added = {str(i): {"content": c, "lstrip": False, "rstrip": False, "normalized": False, "single_word": False, "special": True}
             for i, c in QWEN_BASE_SPECIALS.items()}
    (tmp / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": added, "bos_token": None, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "model_max_length": 32768, "tokenizer_class": "Qwen2Tokenizer", "errors": "replace",
        "clean_up_tokenization_spaces": False}, indent=2), encoding="utf-8")
    try:
        os.rename(tmp, cache)
    except OSError:  # another process won the race
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return cache


@pytest.fixture(scope="session")
def ours_qwen(qwen_tokenizer_dir):
    from runtime_ref.text import Qwen2Tokenizer

    return Qwen2Tokenizer.from_dir(qwen_tokenizer_dir)


def _hf_tokenizer(tok_dir: Path, specials: list[str]):
    """Hugging Face `tokenizers` set up like Qwen2TokenizerFast from vocab.json/merges.txt, with the
    config's added tokens and then `specials` added the way transformers' add_special_tokens does."""
    pytest.importorskip("tokenizers", reason="the BPE/added-token oracle needs tokenizers (pip install -e '.[test]')")
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    t = Tokenizer(models.BPE.from_file(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt")))
    t.normalizer = normalizers.NFC()
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    t.decoder = decoders.ByteLevel()
    cfg = json.loads((tok_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    for sid, a in sorted(cfg.get("added_tokens_decoder", {}).items(), key=lambda kv: int(kv[0])):
        got = t.add_special_tokens([AddedToken(a["content"], special=True, normalized=False)])
        assert t.token_to_id(a["content"]) == int(sid), (a, got)
    t.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return t


@pytest.fixture(scope="session")
def hf_tokenizer():
    """Factory: hf_tokenizer(tokenizer_dir, specials) -> tokenizers.Tokenizer (see _hf_tokenizer)."""
    return _hf_tokenizer


@pytest.fixture(scope="session")
def hf_qwen(qwen_tokenizer_dir, hf_tokenizer):
    from runtime_ref.text import cosyvoice2_special_tokens

    return hf_tokenizer(qwen_tokenizer_dir, list(cosyvoice2_special_tokens()))
