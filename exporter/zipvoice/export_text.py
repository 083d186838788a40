"""Bundle component "text" of ZipVoice: tokens.txt (no graphs) and the front-end the table was
made for (runtime_ref/zipvoice/text.py); Japanese accent bundles also carry the accent rule and
the kana -> phoneme table the Unity runtime reads accent kana with (runtime_ref/zipvoice/kana.py)."""
from __future__ import annotations

from ..spec import ComponentExport, ExportOptions

BUNDLE_FILE = "text/tokens.txt"
KANA_FILE = "text/kana.tsv"


def build(md, options: ExportOptions) -> ComponentExport:
    c = md.config
    manifest = {"tokenizer": c.tokenizer, "tokens": BUNDLE_FILE, "pad_id": c.model.pad_id, "vocab_size": c.model.vocab_size,
                "add_punctuation": "a text not ending in ;:,.!? (or full-width) gets '.' (official add_punctuation)"}
    files = {BUNDLE_FILE: (md.root / "tokens.txt").read_bytes()}
    if c.tokenizer == "japanese_accent":
        from runtime_ref.zipvoice.kana import kana_table_tsv
        from runtime_ref.zipvoice.text import DEFAULT_ACCENT_RULE

        manifest.update(accent_rule=options.extra.get("accent_rule", DEFAULT_ACCENT_RULE), kana_table=KANA_FILE)
        files[KANA_FILE] = kana_table_tsv().encode("utf-8")
    return ComponentExport("text", [], manifest, files=files)
