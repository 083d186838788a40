"""Prompt-side fixtures: one bundle with the speech_tokenizer and campplus graphs of the tiny
model (exported once per session), a prompt WAV."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest


def placeholder_torchaudio() -> None:
    """s3tokenizer imports torchaudio at module level; no torchaudio fits torch 2.13 (pitfalls.md)."""
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))


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
