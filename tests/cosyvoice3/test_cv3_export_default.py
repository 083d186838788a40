"""`sentis-tts export all` with the default options on a fresh tiny official-layout CosyVoice3
directory (issue 17's "Done when"): every graph exported, Sentis-checked and within its parity
tolerance (the export fails otherwise), the default flow buckets and the chunked causal vocoder
(T 256, context measured from the architecture), and `verify` passes on the bundle."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner


@pytest.mark.slow
def test_default_export_all_passes_check_and_parity(tmp_path):
    from exporter.cli import cli
    from exporter.flow.export import DEFAULT_FLOW_LENS

    runner = CliRunner()
    md, out = tmp_path / "cv3", tmp_path / "bundle"
    r = runner.invoke(cli, ["fixture", "--family", "cosyvoice3", "--out", str(md), "--size", "tiny"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["export", "all", "--model-dir", str(md), "--out", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["family"] == "cosyvoice3"
    assert set(m["components"]) == {"llm", "flow", "hift", "speech_tokenizer", "campplus", "text"}
    assert m["components"]["flow"]["mel_lens"] == list(DEFAULT_FLOW_LENS)
    hift = m["components"]["hift"]
    assert (hift["frames"], hift["context_frames"], hift["lookahead_frames"]) == (256, 37, 8)
    assert hift["graphs"] == {"64": "hift_64", "256": "hift_256"}
    for name, g in m["graphs"].items():
        assert g["checker"]["ok"], name
        p = g["parity"]
        assert not p.get("skipped"), name
        for k, v in {**p.get("max_abs", {}), **p.get("error", {})}.items():
            assert v <= p["atol"][k], (name, k, v)
        assert all(p.get("exact", {}).values()), name
    for g in hift["graphs"].values():  # vs the float64 math: within 8 x PyTorch float32's own distance, or 0.01
        assert m["graphs"][g]["parity"]["float64_reference"]["waveform"]["onnx"] <= m["graphs"][g]["parity"]["atol"]["waveform"]
    r = runner.invoke(cli, ["verify", "--bundle", str(out)])
    assert r.exit_code == 0, r.output
