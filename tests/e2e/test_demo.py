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


def test_every_graph_imports_without_readbacks_or_lost_fusions(demo_run):
    """The import model (docs/sentis.md) on every graph of the bundle, for the oldest (2.1) and the
    newest (2.4) Sentis: clean, no blocking GPU->CPU readback, no fusion lost to a same-dtype Cast;
    the manifest records the same figures per graph."""
    from graph_passes.sentis import check_model

    out, _, _ = demo_run
    man = json.loads((out / "bundle" / "manifest.json").read_text())
    by_file = {g["file"]: g for g in man["graphs"].values()}
    files = sorted((out / "bundle").glob("*.onnx"))
    assert len(files) >= 8 and {f.name for f in files} <= set(by_file)
    for path in files:
        g = by_file[path.name]
        for version in ("2.1", "2.4"):
            r = check_model(path, version, allowed_symbolic_dims=g.get("symbolic_dims", {}))
            assert r.ok, r.format()
            assert r.blocking_readbacks == 0 and r.blocked_fusions == 0, r.format()
            assert g["checker"]["import"][version] == r.importer.summary(), path.name
    step = by_file["llm_step.onnx"]["checker"]["import"]
    assert step["2.1"]["rewrites"].get("RMSNormalization") == step["2.4"]["rewrites"].get("RMSNormalization") == 5


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
