"""Prompt-side fixtures: one bundle with the speech_tokenizer and campplus graphs of the tiny
model (exported once per session), a prompt WAV."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest


def import_s3tokenizer():
    """Import the `s3tokenizer` oracle (or skip). It imports torchaudio at module level and no
    torchaudio fits torch 2.13 (pitfalls.md): a placeholder module stands in during the import and
    is removed right after, so other packages (transformers probes `find_spec('torchaudio')`) never
    see it."""
    placeholder = None
    if "torchaudio" not in sys.modules:
        placeholder = sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        s3tok = pytest.importorskip("s3tokenizer", reason="oracle s3tokenizer not installed: pip install --no-deps s3tokenizer==0.3.0 einops (not in the test extra: its torchaudio dependency cannot load with torch 2.13 and breaks transformers)")
        import s3tokenizer.model_v2  # noqa: F401
        import s3tokenizer.utils  # noqa: F401
    finally:
        if placeholder is not None and sys.modules.get("torchaudio") is placeholder:
            del sys.modules["torchaudio"]
    return s3tok


@pytest.fixture(scope="session")
def prompt_bundle(tiny_md, tmp_path_factory):
    from exporter.export import export_components
    from exporter.spec import ExportOptions

    out = tmp_path_factory.mktemp("prompt") / "bundle"
    manifest = export_components(tiny_md, out, ["speech_tokenizer", "campplus"], ExportOptions())
    return out, manifest


@pytest.fixture(scope="session")
def speech_like():
    from exporter.speech_tokenizer.export import test_signal

    def make(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
        return test_signal(int(seconds * rate), seed).astype(np.float64)

    return make
