"""Strongest end-to-end check: runtime_ref.Pipeline on the demo bundle vs the official
CosyVoice2Model.tts glue (stream=False and stream=True) on the same tiny official-layout model,
greedy sampling, zero HiFT noise: identical tokens, the same pieces, every piece >= 40 dB.

Needs an official CosyVoice checkout OUTSIDE the repo with third_party/Matcha-TTS (default
/tmp/cv_official, or SENTIS_TTS_CV_OFFICIAL) and the pip packages transformers, diffusers and
einops; skipped otherwise (CI has none of them). Always-on end-to-end parity (our PyTorch
reference pipeline vs the bundle) lives in test_pipeline_parity.py.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

OFFICIAL = Path(os.environ.get("SENTIS_TTS_CV_OFFICIAL", "/tmp/cv_official"))


@pytest.mark.skipif(not (OFFICIAL / "cosyvoice/cli/model.py").is_file()
                    or not (OFFICIAL / "third_party/Matcha-TTS/matcha").is_dir(),
                    reason=f"no official CosyVoice + Matcha-TTS checkout at {OFFICIAL} (set SENTIS_TTS_CV_OFFICIAL)")
@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("transformers", "diffusers", "einops", "scipy")),
                    reason="the official modules need transformers, diffusers, einops and scipy")
def test_pipeline_equals_official_cosyvoice2model_tts(demo_run):
    out, _, _ = demo_run
    script = Path(__file__).with_name("official_glue_check.py")
    repo = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, str(script), str(OFFICIAL), str(out / "model"), str(out / "bundle"), "demo"],
                       capture_output=True, text=True, timeout=900, cwd=repo, env=env)
    print(r.stdout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("identical: True") == 2
