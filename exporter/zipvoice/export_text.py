"""Bundle component "text" of ZipVoice: tokens.txt (no graphs) and the front-end the table was
made for (runtime_ref/zipvoice/text.py)."""
from __future__ import annotations

from ..spec import ComponentExport, ExportOptions

BUNDLE_FILE = "text/tokens.txt"


def build(md, options: ExportOptions) -> ComponentExport:
    c = md.config
    manifest = {"tokenizer": c.tokenizer, "tokens": BUNDLE_FILE, "pad_id": c.model.pad_id, "vocab_size": c.model.vocab_size,
                "add_punctuation": "a text not ending in ;:,.!? (or full-width) gets '.' (official add_punctuation)"}
    return ComponentExport("text", [], manifest, files={BUNDLE_FILE: (md.root / "tokens.txt").read_bytes()})
