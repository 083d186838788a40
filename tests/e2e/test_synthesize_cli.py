"""`sentis-tts synthesize`, and runtime_ref running with torch made unimportable."""
import subprocess
import sys
import wave

from exporter.cli import main


def _run(args):
    try:
        main(args)
    except SystemExit as e:
        return e.code
    return 0


def test_synthesize_writes_a_wav(demo_run, tmp_path, capsys):
    out, _, _ = demo_run
    wav = tmp_path / "hi.wav"
    assert _run(["synthesize", "-b", str(out / "bundle"), "-v", "demo", "-t", "Hi there.", "-o", str(wav), "--stream"]) == 0
    msg = capsys.readouterr().out
    assert "first audio after" in msg and "RTF" in msg
    with wave.open(str(wav)) as w:
        assert w.getframerate() == 24000 and w.getsampwidth() == 2 and w.getnframes() > 0


def test_synthesize_errors(demo_run, tmp_path, capsys):
    out, _, _ = demo_run
    assert _run(["synthesize", "-b", str(out / "bundle"), "-v", "demo", "-t", "  ", "-o", str(tmp_path / "x.wav")]) == 1
    assert "empty" in capsys.readouterr().err
    assert _run(["synthesize", "-b", str(out / "bundle"), "-v", "ghost", "-t", "Hi", "-o", str(tmp_path / "x.wav")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no voice 'ghost'" in err and err.count("\n") == 1
    assert not (tmp_path / "x.wav").exists()


def test_runtime_ref_runs_without_torch(demo_run):
    out, _, _ = demo_run
    code = f"""
import sys
sys.modules['torch'] = None  # any 'import torch' now fails
from runtime_ref.pipeline import Pipeline
p = Pipeline.open({str(out / 'bundle')!r})
a = p.synthesize('Hi.', 'demo', seed=1, max_new_tokens=20).audio
assert a.size > 0 and 'exporter' not in sys.modules
print('ok', a.size)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok")
