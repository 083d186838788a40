"""ZipVoice host side without torch: token lookup, duration estimate, per-frame token index,
time grid, Vocos fbank, the Japanese accent tokens."""
from __future__ import annotations

import numpy as np
import pytest

from runtime_ref.zipvoice.fbank import mel_filterbank, num_frames, vocos_fbank
from runtime_ref.zipvoice.solve import time_steps, token_index, total_frames
from runtime_ref.zipvoice.text import ZipVoiceFrontend, add_punctuation


def test_simple_tokenizer_skips_unknown_and_adds_punctuation():
    fe = ZipVoiceFrontend({"_": 0, "h": 1, "i": 2, ".": 3, "!": 4})
    assert add_punctuation(" hi ") == "hi." and add_punctuation("hi!") == "hi!" and add_punctuation("はい。") == "はい。"
    assert fe.ids("hi") == [1, 2, 3] and fe.ids("hXi!") == [1, 2, 4]


def test_duration_and_token_index_as_the_official():
    # prompt 94 frames for 21 ids, 9 new ids: 94 + ceil(94 / 21 * 9) = 94 + 41
    assert total_frames(94, 21, 9) == 135 and total_frames(94, 21, 9, speed=2.0) == 94 + 21
    idx = token_index(11, 3)  # 3 frames per token, the remaining 2 frames read the trailing pad (index 3)
    assert idx.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
    assert token_index(2, 5).tolist() == [5, 5]  # fewer frames than tokens: every frame reads the pad


def test_time_grid():
    t = time_steps(4, 0.5)
    lin = np.linspace(0, 1, 5)
    np.testing.assert_allclose(t, 0.5 * lin / (1 - 0.5 * lin), rtol=1e-6)
    assert t[0] == 0 and t[-1] == 1


def test_vocos_fbank_frames_and_peak():
    sr = 24000
    x = 0.3 * np.sin(2 * np.pi * 1000 * np.arange(sr) / sr)
    f = vocos_fbank(x)
    assert f.shape == (num_frames(sr, 256), 100) == (94, 100)
    fb = mel_filterbank(sr, 1024, 100)
    assert fb.shape == (513, 100) and np.all(fb >= 0)
    centre = np.argmax(fb[round(1000 / sr * 1024)])  # the filter that covers 1 kHz is the loudest band
    assert abs(int(np.argmax(f[40])) - int(centre)) <= 1


def test_japanese_accent_tokens():
    pytest.importorskip("pyopenjtalk", reason="the Japanese accent front-end needs pyopenjtalk-plus")
    from runtime_ref.zipvoice.text import japanese_accent_tokens

    # heiban (flat) word: A1 <= 0 everywhere; the fork's v3 rule lowers the phrase's first mora
    assert japanese_accent_tokens("こんにちは") == ["[L]", "k", "o", "[H]", "N", "n", "i", "ch", "i", "w", "a"]
    assert japanese_accent_tokens("こんにちは", "v2") == ["[H]", "k", "o", "N", "n", "i", "ch", "i", "w", "a"]
    # the fork's own expectation for its v2 rule (tests/test_japanese_tokenizer.py, nucleus high, drop after it)
    assert " ".join(japanese_accent_tokens("明日は晴れです。", "v2")) == "[H] a sh I t a [L] w a | [H] h a r e [L] d e s U"
    assert " ".join(japanese_accent_tokens("明日は晴れです。", "v1")) == "[H] a sh I [L] t a w a | [H] h a [L] r e d e s U"
    assert " ".join(japanese_accent_tokens("明日は晴れです。")) == "[L] a [H] sh I t a [L] w a | [L] h a [H] r e [L] d e s U"
    toks = japanese_accent_tokens("雨が降っていますか？")
    assert toks[-1] == "[Q]" and "[L]" in toks and "|" in toks and "cl" in toks
