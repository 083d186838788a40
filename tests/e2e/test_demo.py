"""The README's first command, end to end: every graph checked, parity measured, a WAV and a report."""
import json
import wave

from exporter.cli import main


def test_demo_outputs(demo_run):
    out, res, logs = demo_run
    assert res["ok"], res
    assert res["tokens_identical"] and res["mel_max_abs"] <= 1e-3 and res["wave_snr_db"] >= 40 and res["stream_snr_db"] >= 40
    man = json.loads((out / "bundle" / "manifest.json").read_text())
    comps = set(man["components"])
    assert {"llm", "flow", "hift", "speech_tokenizer", "campplus", "text"} <= comps
    for name, g in man["graphs"].items():
        assert g["checker"]["ok"], name
        p = g["parity"]
        assert all(v <= p["atol"][k] for k, v in p["max_abs"].items()), name
    assert "demo" in man["voices"]
    with wave.open(str(out / "demo.wav")) as w:
        assert w.getframerate() == 24000 and w.getnframes() > 24000 // 2
    report = (out / "report.md").read_text()
    assert "| speech tokens identical | True" in report and "plots/mel_difference.png" in report
    for png in ("mel_pytorch.png", "mel_bundle.png", "mel_difference.png", "waveform.png"):
        assert (out / "plots" / png).read_bytes()[:4] == b"\x89PNG"


def test_check_passes_on_every_graph_the_project_writes(demo_run, capsys):
    out, _, _ = demo_run
    files = sorted(str(p) for p in (out / "bundle").glob("*.onnx"))
    assert len(files) >= 8
    try:
        main(["check", *files])
    except SystemExit as e:
        assert e.code == 0, capsys.readouterr().out
    try:
        main(["verify", "--bundle", str(out / "bundle")])
    except SystemExit as e:
        assert e.code == 0, capsys.readouterr()
