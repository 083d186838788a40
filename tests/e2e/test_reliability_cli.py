"""Issue 19's findings that need a bundle (the demo bundle, copied with hard links per test)."""
import hashlib
import json
import os
import shutil
import struct
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from exporter.cli import cli


def invoke(*args, input=None):
    r = CliRunner().invoke(cli, list(args), input=input)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture()
def bundle(demo_run, tmp_path):
    out, _, _ = demo_run
    dst = tmp_path / "bundle"
    shutil.copytree(out / "bundle", dst, copy_function=os.link)
    return dst


def _replace_listed(b, rel, data):
    """Replace a bundle file and its sha256 in the manifest: malformed, but hash-consistent."""
    (b / rel).unlink()
    (b / rel).write_bytes(data)
    m = json.loads((b / "manifest.json").read_text())
    digest = hashlib.sha256(data).hexdigest()
    for g in m["graphs"].values():
        if g["file"] == rel:
            g["sha256"] = digest
    if rel in m["files"]:
        m["files"][rel]["sha256"] = digest
    (b / "manifest.json").unlink()
    (b / "manifest.json").write_text(json.dumps(m))


def _nan_wav(path, n=32000, rate=16000):
    x = (np.sin(np.arange(n) / 7.0) * 0.3).astype("<f4")
    x[500] = np.nan
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", x.nbytes) + x.tobytes()
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def _hidden(d):
    return [p.name for p in d.rglob(".*")]


# -- 4. a NaN WAV never replaces a good voice ----------------------------------------------------------------
def test_nan_wav_does_not_replace_a_voice(bundle, tmp_path):
    before = (bundle / "voices" / "demo.npz").read_bytes()
    manifest = (bundle / "manifest.json").read_bytes()
    code, out, err = invoke("voice", "add", "--bundle", str(bundle), "--name", "demo", "--wav", str(_nan_wav(tmp_path / "n.wav")),
                            "--overwrite")
    assert code == 1 and err.startswith("error: ") and "NaN or infinite" in err and err.count("\n") == 1
    assert (bundle / "voices" / "demo.npz").read_bytes() == before and (bundle / "manifest.json").read_bytes() == manifest
    assert _hidden(bundle) == []


def test_add_voice_to_bundle_validates_before_writing(bundle):
    from runtime_ref.prompt import VoiceError, add_voice_to_bundle

    bad = {"embedding": np.full(192, np.inf, np.float32), "speech_tokens": np.zeros(2, np.int32),
           "prompt_mel": np.zeros((4, 80), np.float32), "prompt_text": np.array("")}
    with pytest.raises(VoiceError, match="NaN/Inf.*nothing was written"):
        add_voice_to_bundle(bundle, "demo", bad, source="test", overwrite=True)
    assert "demo" in json.loads((bundle / "manifest.json").read_text())["voices"]


# -- 5. bistream never drops text silently --------------------------------------------------------------------
@pytest.mark.parametrize("stdin", [b"", b"\n  \n\t\n"])
def test_bistream_empty_stdin_is_an_error(bundle, tmp_path, stdin):
    code, out, err = invoke("synthesize", "-b", str(bundle), "-v", "demo", "--bistream", "-o", str(tmp_path / "o.wav"), input=stdin)
    assert code == 1 and "no text" in err and err.count("\n") == 1 and not (tmp_path / "o.wav").exists()


def test_bistream_reports_the_text_it_did_not_speak(e2e):
    pipe, _ = e2e
    text = ["A long sentence that keeps going. "] * 200
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audio = list(pipe.stream_bistream(iter(text), "demo", seed=0, max_new_tokens=12))
    assert audio
    msgs = [str(w.message) for w in caught if "bistream" in str(w.message)]
    assert len(msgs) == 1 and f"of {sum(map(len, text))} characters" in msgs[0] and "missing" in msgs[0]


# -- 8. malformed files behind a matching sha256, garbage graphs, bad paths --------------------------------------
def test_verify_on_a_garbage_graph_is_one_line(bundle):
    m = json.loads((bundle / "manifest.json").read_text())
    rel = next(g["file"] for g in m["graphs"].values() if g["component"] == "hift")
    _replace_listed(bundle, rel, b"\x08\x01garbage" * 50)
    code, out, err = invoke("verify", "--bundle", str(bundle))
    assert code == 1 and err.startswith("error: ") and rel in err and "not a readable ONNX model" in err and err.count("\n") == 1
    assert not any(line.startswith("hift ") and "checker ok" in line for line in out.splitlines())


@pytest.mark.parametrize("rel,data,match", [
    ("voices/demo.npz", b"PK\x03\x04 not a zip", "not a readable .npz"),
    ("flow/noise.npy", b"\x93NUMPY garbage", "not a readable .npy"),
])
def test_malformed_files_with_matching_sha256_are_one_line(bundle, tmp_path, rel, data, match):
    _replace_listed(bundle, rel, data)
    code, out, err = invoke("synthesize", "-b", str(bundle), "-v", "demo", "-t", "Hi.", "-o", str(tmp_path / "o.wav"))
    assert code == 1 and match in err and err.count("\n") == 1 and not (tmp_path / "o.wav").exists()


def test_unusable_output_path_is_refused_before_synthesis(bundle, tmp_path, monkeypatch):
    from runtime_ref import pipeline

    def no_synthesis(*a, **k):
        raise AssertionError("the pipeline was opened before the output path was checked")

    monkeypatch.setattr(pipeline.Pipeline, "open", classmethod(no_synthesis))
    (tmp_path / "file").write_text("x")
    for out in (tmp_path, tmp_path / "file" / "o.wav"):
        code, _, err = invoke("synthesize", "-b", str(bundle), "-v", "demo", "-t", "Hi.", "-o", str(out))
        assert code == 1 and err.startswith("error: -o ") and err.count("\n") == 1


def test_non_utf8_text_file_is_one_line(bundle, tmp_path):
    (tmp_path / "t.txt").write_bytes(b"Hello \xff world")
    for extra in ([], ["--bistream"]):
        code, _, err = invoke("synthesize", "-b", str(bundle), "-v", "demo", "--text-file", str(tmp_path / "t.txt"), "-o",
                              str(tmp_path / "o.wav"), *extra)
        assert code == 1 and "not UTF-8 text (byte 0xff at offset 6)" in err and err.count("\n") == 1


def test_manifest_section_errors_are_one_line(bundle, tmp_path):
    m = json.loads((bundle / "manifest.json").read_text())
    m["components"]["flow"]["mel_lens"] = []
    (bundle / "manifest.json").unlink()
    (bundle / "manifest.json").write_text(json.dumps(m))
    code, _, err = invoke("synthesize", "-b", str(bundle), "-v", "demo", "-t", "Hi.", "-o", str(tmp_path / "o.wav"))
    assert code == 1 and "mel_lens is empty" in err and "re-export" in err and err.count("\n") == 1


# -- 9. long synthesis shows its progress --------------------------------------------------------------------
def test_synthesize_reports_progress_per_piece(e2e, monkeypatch):
    pipe, _ = e2e
    calls = []
    res = pipe.synthesize("Hello there. How are you today? Fine, thanks.", "demo", seed=0, max_new_tokens=8,
                          progress=lambda done, total, secs: calls.append((done, total, round(secs, 3))))
    n = len(res.pieces)
    assert calls[0] == (0, n, 0.0) and [c[0] for c in calls] == list(range(n + 1)) and calls[-1][1] == n
    assert calls[-1][2] == pytest.approx(res.audio.size / pipe.sample_rate, abs=1e-3)
