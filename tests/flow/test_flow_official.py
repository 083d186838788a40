"""Strongest check: the official CosyVoice2 flow modules and ours on the same random weights.

Needs an official checkout OUTSIDE the repo (the brief's recipe: `git archive` of the official repo
into /tmp/cv_official_flow plus Matcha-TTS in its third_party/) and the pip packages diffusers +
einops; skipped otherwise. Always-on parity lives in test_flow.py (our module vs ONNX).
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

OFFICIAL = Path(os.environ.get("SENTIS_TTS_CV_OFFICIAL", "/tmp/cv_official_flow"))


@pytest.mark.skipif(not (OFFICIAL / "cosyvoice/flow/decoder.py").is_file()
                    or not (OFFICIAL / "third_party/Matcha-TTS/matcha").is_dir(),
                    reason=f"no official CosyVoice + Matcha-TTS checkout at {OFFICIAL} (set SENTIS_TTS_CV_OFFICIAL)")
@pytest.mark.skipif(importlib.util.find_spec("diffusers") is None or importlib.util.find_spec("einops") is None,
                    reason="the official decoder needs the diffusers and einops packages")
def test_official_flow_matches_ours():
    script = Path(__file__).with_name("official_check.py")
    r = subprocess.run([sys.executable, str(script), str(OFFICIAL)], capture_output=True, text=True, timeout=600,
                       cwd=Path(__file__).parents[2])
    print(r.stdout)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "official module keys == keys.py table: True" in r.stdout
