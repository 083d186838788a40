"""Issue 19's findings, one test each where no bundle is needed (the bundle-level ones are in
tests/e2e/test_reliability_cli.py; real SIGTERM/SIGHUP/SIGINT during an export, and the seeded
catalogue, are tests/e2e/test_fuzz_catalogue.py)."""
import io
import json
import os
import pickle
import struct
import time
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from exporter import hyperyaml
from exporter.bundle import BundleWriter
from exporter.checkpoint import load_state_dict
from exporter.cli import SynthProgress, Terminated, cli
from exporter.errors import CheckpointError, ExportError, ModelDirError, SentisTTSError
from runtime_ref import audio as A
from runtime_ref.bundle import read_manifest
from runtime_ref.errors import BundleError


def invoke(*args):
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.stdout, r.stderr


# -- 1. NaN weights never pass the parity gate; non-finite checkpoints are refused at load ------------
class NaNLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        with torch.no_grad():
            self.lin.weight[0, 0] = float("nan")

    def forward(self, x):
        return self.lin(x)


def test_parity_gate_fails_on_nan_output(tmp_path):
    from exporter.export import export_graph
    from exporter.spec import ExportOptions, GraphSpec, TensorSpec

    spec = GraphSpec("nan_lin", "toy", NaNLinear(), [TensorSpec("x", (1, 4))], [TensorSpec("y", (1, 4))],
                     make_inputs=lambda case: {"x": np.ones((1, 4), np.float32)}, atol=1e-4, parity_cases=1)
    with pytest.raises(ExportError, match=r"y: \d+ NaN/Inf value\(s\)"):
        export_graph(spec, tmp_path, ExportOptions())


@pytest.mark.parametrize("fmt", [".pt", ".safetensors"])
def test_checkpoint_with_nan_or_inf_is_refused_naming_tensors(tmp_path, fmt):
    from exporter.checkpoint import save_state_dict

    sd = {"ok.weight": torch.ones(3), "bad.weight": torch.tensor([1.0, float("nan")]), "worse.bias": torch.tensor([float("inf")])}
    save_state_dict(sd, tmp_path / f"m{fmt}")
    with pytest.raises(CheckpointError, match=r"2 tensor\(s\) hold NaN/Inf values: bad.weight, worse.bias") as e:
        load_state_dict(tmp_path / f"m{fmt}")
    assert "ok.weight" not in str(e.value)


# -- 3. nothing left behind ------------------------------------------------------------------------------
def _bundle_dir(tmp_path, manifest_bytes):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "big.onnx").write_bytes(b"x" * 1000)
    (out / "manifest.json").write_bytes(manifest_bytes)
    return out


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", json.dumps({"schema_version": 7, "graphs": {}}).encode(),
                                     b'{"schema_version": 1, "graphs": {"a": {"no_file": 1}}, "constants": {}, "components": {}}',
                                     b"\xff\xfe"])
def test_bundle_writer_validates_existing_bundle_before_copying(tmp_path, content):
    out = _bundle_dir(tmp_path, content)
    with pytest.raises(SentisTTSError, match="cannot update the bundle.*--overwrite"):
        with BundleWriter(out, mode="update"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no .bundle.tmp-* copy


def test_bundle_writer_refuses_a_non_bundle_folder(tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(SentisTTSError, match="not a bundle"):
        with BundleWriter(out, mode="update"):
            pass
    assert (out / "holiday.jpg").read_bytes() == b"jpeg" and sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_bundle_writer_cleans_up_on_sigterm_exception(tmp_path):
    with pytest.raises(Terminated):
        with BundleWriter(tmp_path / "b", mode="create") as bw:
            (bw.path / "half.onnx").write_bytes(b"x")
            raise Terminated(15)
    assert list(tmp_path.iterdir()) == []


# -- 4. NaN/Inf audio refused --------------------------------------------------------------------------
def _float_wav(x, rate=16000, tag=3):
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * 4, 4, 32)
    data = np.asarray(x, "<f4").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_wav_is_refused(bad):
    x = np.sin(np.arange(32000) / 7.0) * 0.3
    x[1234] = bad
    with pytest.raises(A.AudioError, match="1 sample\\(s\\) are NaN or infinite"):
        A.parse_wav(_float_wav(x), "p.wav")
    with pytest.raises(A.AudioError, match="NaN or infinite"):
        A.check_prompt_audio(x, 16000)


def test_voice_validation_rejects_broken_arrays():
    from runtime_ref.prompt import voice_problem

    good = {"embedding": np.ones(192, np.float32), "speech_tokens": np.arange(5, dtype=np.int32),
            "prompt_mel": np.zeros((10, 80), np.float32), "prompt_text": np.array("hi")}
    assert voice_problem(good) is None
    assert "NaN/Inf" in voice_problem({**good, "embedding": np.full(192, np.nan, np.float32)})
    assert "expected (2k" in voice_problem({**good, "prompt_mel": np.zeros((9, 80), np.float32)})
    assert "no 'speech_tokens'" in voice_problem({k: v for k, v in good.items() if k != "speech_tokens"})


# -- 6. YAML alias bomb ------------------------------------------------------------------------------
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def test_yaml_alias_bomb_is_refused_fast(tmp_path):
    assert len(BOMB) < 1100
    t0 = time.perf_counter()
    with pytest.raises(ModelDirError, match="alias bomb"):
        hyperyaml.loads(BOMB, "cosyvoice2.yaml")
    from exporter.profiles import load_profile

    (tmp_path / "p.yaml").write_text(BOMB)
    with pytest.raises(ModelDirError, match="alias bomb"):
        load_profile(str(tmp_path / "p.yaml"))
    assert time.perf_counter() - t0 < 5
    # ordinary aliases stay fine
    assert hyperyaml.loads("a: &x [1, 2]\nb: *x\n")["b"] == [1, 2]


def test_yaml_deep_nesting_and_bad_bytes_are_one_line(tmp_path):
    with pytest.raises(ModelDirError, match="nested too deeply"):
        hyperyaml.loads("x: " + "[" * 2000 + "]" * 2000)
    (tmp_path / "c.yaml").write_bytes(b"a: \xff\n")
    with pytest.raises(ModelDirError, match="not UTF-8 text"):
        hyperyaml.load(tmp_path / "c.yaml")


# -- 8. malformed inputs: one line each, never a traceback -------------------------------------------------
@pytest.mark.parametrize("content,match", [
    (b"[1]", "top level is a JSON list"),
    (b"\xff", "not UTF-8"),
    (json.dumps({"schema_version": 1, "graphs": {"g": {"inputs": [], "outputs": []}}, "constants": {}, "components": {}}).encode(),
     "graph 'g' has no valid 'file'"),
    (json.dumps({"schema_version": 1, "graphs": {"g": {"file": "../../etc/passwd", "inputs": [], "outputs": []}},
                 "constants": {}, "components": {}}).encode(), "no valid 'file'"),
    (json.dumps({"schema_version": 1, "graphs": {}, "constants": {}, "components": {}, "voices": {"v": {}}}).encode(),
     "voice 'v' has no valid 'file'"),
])
def test_malformed_manifest_is_one_bundle_error(tmp_path, content, match):
    (tmp_path / "manifest.json").write_bytes(content)
    with pytest.raises(BundleError, match=match) as e:
        read_manifest(tmp_path)
    assert "\n" not in str(e.value) and "re-export" in str(e.value)


def _pcm_header(tag=1, ch=1, rate=16000, bits=16, block=None):
    block = ch * bits // 8 if block is None else block
    fmt = struct.pack("<HHIIHH", tag, ch, rate, rate * block, block, bits)
    data = b"\0\1" * 16000
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("kw,match", [({"rate": 0}, "sample rate of 0"), ({"ch": 0, "block": 2}, "0 channels"),
                                      ({"bits": 12}, "unsupported WAV encoding"), ({"block": 7}, "block alignment")])
def test_broken_wav_headers_are_one_line(kw, match):
    with pytest.raises(A.AudioError, match=match):
        A.parse_wav(_pcm_header(**kw), "p.wav")


def test_int32_checkpoint_is_refused(tmp_path):
    torch.save({"w": torch.ones(3, dtype=torch.int32), "b": torch.zeros(2, dtype=torch.bool)}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"2 tensor\(s\) are not floating point: w \(int32\), b \(bool\)"):
        load_state_dict(tmp_path / "m.pt")


def test_seed_minus_one_is_a_usage_error():
    code, out, err = invoke("synthesize", "-b", ".", "-v", "x", "-t", "hi", "-o", "x.wav", "--seed", "-1")
    assert code == 2 and err.startswith("error: Invalid value for '--seed'") and err.count("\n") == 1 and "--help" in err


# -- 9. one error style, exit codes, --debug --------------------------------------------------------------
def test_usage_errors_are_one_error_line_exit_2():
    for args in (["nope"], ["export"], ["synthesize", "--bogus"]):
        code, out, err = invoke(*args)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (args, err)
        assert "Usage:" not in err and "Error:" not in err


def test_internal_errors_exit_3_with_report_hint_and_debug_traceback(monkeypatch, tmp_path):
    from exporter import families

    def boom(path):
        raise KeyError("surprise")

    monkeypatch.setattr(families, "detect_family", boom)
    code, out, err = invoke("inspect", "--model-dir", str(tmp_path))
    assert code == 3 and err.count("\n") == 1
    assert err.startswith("error: internal error: KeyError") and "please report it" in err and "--debug" in err
    code, out, err = invoke("--debug", "inspect", "--model-dir", str(tmp_path))
    assert code == 3 and "Traceback (most recent call last)" in err and err.rstrip().splitlines()[-1].startswith("error: internal error")


def test_project_errors_exit_1_and_say_how_to_fix(tmp_path):
    code, out, err = invoke("verify", "--bundle", str(tmp_path))
    assert code == 1 and err.startswith("error: ") and "sentis-tts export" in err and err.count("\n") == 1


def _extensible(x, bits, sub, rate=16000):
    if sub == 1:
        full = float(1 << (bits - 1))
        q = np.clip(np.round(x * full), -full, full - 1).astype(np.int64)
        data = q.astype("<i2").tobytes() if bits == 16 else \
            np.stack([(q & 0xFF), (q >> 8) & 0xFF, (q >> 16) & 0xFF], 1).astype(np.uint8).tobytes()
    else:
        data = x.astype("<f4").tobytes()
    block = bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE, 1, rate, rate * block, block, bits) + struct.pack("<HHI", 22, bits, 4)
    fmt += struct.pack("<H", sub) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("bits,sub", [(16, 1), (24, 1), (32, 3)])
def test_wave_format_extensible_is_read(bits, sub):
    x = np.sin(np.arange(4000) / 9.0) * 0.5
    y, rate = A.parse_wav(_extensible(x, bits, sub), "e.wav")
    assert rate == 16000 and y.shape == (4000, 1)
    np.testing.assert_allclose(y[:, 0], x, atol=2.0 ** -(bits - 1) if sub == 1 else 1e-7)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_malicious_checkpoint_refusal_never_advises_weights_only_false(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"x": _Evil()}))
        z.writestr("archive/version", "3\n")
    (tmp_path / "evil.pt").write_bytes(buf.getvalue())
    (tmp_path / "legacy.pt").write_bytes(pickle.dumps({"x": _Evil()}))
    for f in ("evil.pt", "legacy.pt"):
        with pytest.raises(CheckpointError) as e:
            load_state_dict(tmp_path / f)
        msg = str(e.value)
        assert "weights_only=False" not in msg and "weights_only` set to `False" not in msg
        assert "never load an untrusted checkpoint" in msg


def test_progress_line_on_a_terminal(capsys):
    p = SynthProgress(enabled=True)
    p(0, 4, 0.0)
    p(2, 4, 6.5)
    p.close()
    err = capsys.readouterr().err
    assert "piece 2/4, 6.5 s of audio, ETA" in err and err.endswith("\n")
    p = SynthProgress(enabled=True)
    p(1, 1, 1.0)  # one piece: nothing to show
    assert capsys.readouterr().err == ""
    assert SynthProgress().enabled is False  # pytest's stderr is not a terminal
