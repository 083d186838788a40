"""runtime_ref.text works for a user without torch, tokenizers, transformers or the exporter."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import sys, json
for name in ("torch", "tokenizers", "transformers", "exporter", "regex"):
    sys.modules[name] = None  # any import of these now raises ImportError
import runtime_ref.text as text
from runtime_ref.text import TextFrontend, load_tokenizer
fe = TextFrontend(load_tokenizer(sys.argv[1]), japanese_reading=False)
pieces = fe.pieces("In 2026 [breath] we ship. Hello, world!", 64)
banned = sorted(m for m in ("torch", "tokenizers", "transformers", "exporter", "regex") if sys.modules.get(m) is not None)
print(json.dumps({"ids": [p.ids for p in pieces], "texts": [p.text for p in pieces], "banned_loaded": banned}))
"""


def test_import_and_encode_without_torch(tiny_model_dir):
    from runtime_ref.text import TextFrontend, load_tokenizer

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_model_dir)], capture_output=True, text=True, cwd=root, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["banned_loaded"] == []
    want = TextFrontend(load_tokenizer(tiny_model_dir), japanese_reading=False).pieces("In 2026 [breath] we ship. Hello, world!", 64)
    assert out["ids"] == [p.ids for p in want] and out["texts"] == [p.text for p in want]
    assert "two thousand twenty-six" in out["texts"][0]
