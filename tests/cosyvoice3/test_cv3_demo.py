"""`sentis-tts demo --family cosyvoice3` at CI speed: the demo's own code path (exporter/cosyvoice3/demo.py
run_demo: tiny official-layout dir -> export of every component this version has, Sentis checker +
parity per graph -> voice baked with speech_tokenizer_v3 + CAM++ -> runtime_ref zero-shot synthesis
non-streaming and streaming -> report and WAVs) with the "smoke" profile (1.2 s prompt, flow bucket
224, causal vocoder of 224 frames, KV cache 256, 12 tokens per piece, 12 s tokenizer buffer). The full profile (what the
CLI runs) differs only in those sizes."""
from __future__ import annotations

import pytest


@pytest.mark.slow
def test_demo_smoke_profile(tmp_path):
    from exporter.cosyvoice3.demo import run_demo
    from runtime_ref.audio import read_wav

    logs: list[str] = []
    res = run_demo(tmp_path / "demo", seed=0, threads=2, log=logs.append, profile="smoke")
    assert res["ok"], res
    assert len(logs) == 4 and logs[-1].startswith("[4/4]")
    assert res["n_tokens"] and all(0 < n <= 12 for n in res["n_tokens"]) and res["stream_chunks"] >= len(res["n_tokens"])
    report = (tmp_path / "demo" / "report.md").read_text(encoding="utf-8")
    for graph in ("llm_step", "flow_encoder_224", "flow_solve_224", "hift_64", "hift_256", "campplus", "speech_tokenizer"):
        assert f"| {graph} | ok |" in report, graph
    wav, sr = read_wav(tmp_path / "demo" / "demo.wav")
    stream, _ = read_wav(tmp_path / "demo" / "demo_stream.wav")
    assert "prompt tokens), zero-shot" in report
    import json

    st = json.loads((tmp_path / "demo" / "bundle" / "manifest.json").read_text())["graphs"]["speech_tokenizer"]
    assert "speech_tokenizer_v3.onnx" in st["description"] and st["inputs"][0]["shape"] == [1, 12 * 16000]  # static (smoke: 12 s)
    assert st["parity"]["exact"] == {"speech_tokens": True, "token_count": True}
    assert sr == 24000 and wav.shape[0] == stream.shape[0] == round(res["seconds_audio"] * sr) > 0
