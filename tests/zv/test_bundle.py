"""`export all` on a tiny published-layout ZipVoice dir: every graph checked and within parity,
the manifest records the family; runtime_ref on the bundle vs our PyTorch modules end to end;
the CLI (verify, voice add, synthesize, inspect) on it."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import FRAMES, STEPS, TOKENS, short_prompt


def test_every_graph_is_checked_and_within_parity(zv_bundle):
    _, m = zv_bundle
    assert m["family"] == "zipvoice"
    assert set(m["graphs"]) == {f"text_encoder_{TOKENS[0]}", f"fm_solve_{FRAMES[0]}", f"vocos_{FRAMES[0]}"}
    for name, g in m["graphs"].items():
        assert g["checker"]["ok"], name
        assert all(v <= 1e-4 for v in g["parity"]["max_abs"].values()), (name, g["parity"])
        ops = set(g["checker"]["op_counts"])
        assert not ops & {"If", "Loop", "Scan", "DFT", "STFT"}, (name, ops)
    assert m["components"]["fm_decoder"]["num_step"] == STEPS
    k = m["constants"]
    assert k["variant"] == "zipvoice" and k["sample_rate"] == 24000 and k["feat_scale"] == 0.1
    assert m["files"]["text/tokens.txt"]["component"] == "text"


def test_runtime_matches_pytorch_end_to_end(zv_bundle, zv_md):
    from runtime_ref.bundle import Bundle
    from runtime_ref.zipvoice.pipeline import ZipVoicePipeline
    from runtime_ref.zipvoice.voice import bake_voice

    from exporter.reference_pipeline import snr_db
    from exporter.zipvoice.reference import TorchZipVoicePipeline

    bundle = Bundle.open(zv_bundle[0])
    voice = bake_voice(bundle, short_prompt(), 24000, text="this is a test voice.")
    ours = ZipVoicePipeline(bundle).synthesize("hi there.", voice, seed=3)
    theirs = TorchZipVoicePipeline(bundle, zv_md).synthesize("hi there.", voice, seed=3)
    assert ours.n_frames == theirs.n_frames and ours.features.shape[0] == ours.n_frames - voice["prompt_features"].shape[0]
    assert np.abs(ours.features - theirs.features).max() <= 1e-4
    assert snr_db(theirs.audio, ours.audio) >= 40
    assert ours.audio.size == 256 * (ours.features.shape[0] - 1)
    # same seed, same samples; another seed, other noise
    again = ZipVoicePipeline(bundle).synthesize("hi there.", voice, seed=3)
    np.testing.assert_array_equal(again.audio, ours.audio)
    assert not np.array_equal(ZipVoicePipeline(bundle).synthesize("hi there.", voice, seed=4).audio, ours.audio)


def test_text_that_does_not_fit_is_refused(zv_bundle):
    from runtime_ref.bundle import Bundle
    from runtime_ref.errors import RuntimeRefError
    from runtime_ref.zipvoice.pipeline import ZipVoicePipeline
    from runtime_ref.zipvoice.voice import bake_voice

    bundle = Bundle.open(zv_bundle[0])
    voice = bake_voice(bundle, short_prompt(), 24000, text="this is a test voice.")
    with pytest.raises(RuntimeRefError, match="largest bucket"):
        ZipVoicePipeline(bundle).synthesize("a much longer text " * 5, voice)


def test_cli_verify_voice_add_synthesize(zv_bundle, zv_dir, tmp_path):
    import shutil

    from runtime_ref.audio import read_wav, write_wav

    from tests.foundation.test_cli import run_cli

    b = tmp_path / "b"
    shutil.copytree(zv_bundle[0], b)
    code, out = run_cli("verify", "--bundle", str(b))
    assert code == 0 and "3 graph(s) verified" in out
    write_wav(tmp_path / "p.wav", short_prompt(), 24000)
    code, out = run_cli("voice", "add", "--bundle", str(b), "--name", "v", "--wav", str(tmp_path / "p.wav"),
                        "--text", "this is a test voice.")
    assert code == 0 and "94 mel frames" in out, out
    code, out = run_cli("synthesize", "-b", str(b), "-v", "v", "-t", "hi there.", "-o", str(tmp_path / "o.wav"))
    assert code == 0 and "wrote" in out, out
    samples, rate = read_wav(tmp_path / "o.wav")
    assert rate == 24000 and samples.shape[0] > 1000
    code, out = run_cli("synthesize", "-b", str(b), "-v", "v", "-t", "hi", "-o", str(tmp_path / "x.wav"), "--instruct", "x")
    assert code == 1 and "zipvoice bundles do not support --instruct" in out
    code, out = run_cli("inspect", "--model-dir", str(zv_dir))
    assert code == 0 and "family: zipvoice" in out and "fm decoder" in out
