"""Bundle component "text": the tokenizer files (no graphs).

Copies vocab.json, merges.txt and tokenizer_config.json from the model dir's CosyVoice-BlankEN/
into the bundle's text/ folder and writes text/special_tokens.json, the complete added-token
table with the special tokens of the model's official tokenizer (yaml `get_tokenizer: version`:
cosyvoice2 or cosyvoice3, lists in runtime_ref/text/) resolved to ids — exactly what runtime_ref
and the C# runtime use, so neither has to know the lists or the id-assignment rule.
"""
from __future__ import annotations

import json

from runtime_ref.text.bpe import Qwen2Tokenizer, SPECIAL_TOKENS_TABLE
from runtime_ref.text.special_tokens import special_token_list, special_tokens_table

from .errors import SentisTTSError
from .spec import ComponentExport, ExportOptions

BUNDLE_DIR = "text"


def build(model_dir, options: ExportOptions) -> ComponentExport:
    src = model_dir.tokenizer_dir
    version = model_dir.config.tokenizer_version
    tok = Qwen2Tokenizer.from_dir(src, specials=version)
    llm_vocab = model_dir.config.llm.qwen.vocab_size
    if tok.max_id >= llm_vocab:
        raise SentisTTSError(f"{src}: the tokenizer uses ids up to {tok.max_id}, but the LLM text embedding has only "
                             f"{llm_vocab} rows; the tokenizer and the checkpoint do not belong together")
    files: dict[str, bytes] = {}
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        p = src / name
        if p.is_file():
            files[f"{BUNDLE_DIR}/{name}"] = p.read_bytes()
    files[f"{BUNDLE_DIR}/{SPECIAL_TOKENS_TABLE}"] = (json.dumps(special_tokens_table(tok.added_tokens), indent=1,
                                                               ensure_ascii=False) + "\n").encode("utf-8")
    specials = special_token_list(version)
    manifest = {
        "tokenizer": "qwen2_byte_level_bpe",
        "dir": BUNDLE_DIR,
        "files": sorted(files),
        "vocab_size": len(tok.vocab),
        "n_ids": len(tok),
        "max_id": tok.max_id,
        "normalizer": "NFC",
        "pretokenizer_regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "special_tokens": version,
        "special_token_ids": {t: tok.token_to_id(t) for t in specials},
        "endofprompt_id": tok.token_to_id("<|endofprompt|>"),
        "adds_bos_eos": False,
    }
    return ComponentExport(component="text", graphs=[], manifest=manifest, files=files)
