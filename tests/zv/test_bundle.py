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


def test_solve_is_one_traced_step_unrolled_with_shared_weights(zv_bundle, zv_md):
    """fm_solve_<T> is built by the shared traced_euler (exporter/flow/unroll.py): the decoder's
    weights are stored once whatever the step count, the time grid is baked in (no input)."""
    import onnx

    from exporter.zipvoice.model import load_model
    from runtime_ref.zipvoice.solve import time_steps

    bdir, m = zv_bundle
    g = onnx.load(str(bdir / f"fm_solve_{FRAMES[0]}.onnx"))
    assert [i.name for i in g.graph.input] == ["noise", "text_condition", "speech_condition", "frame_count", "guidance_scale"]
    weights = sum(p.numel() for n, p in load_model(zv_md).named_parameters() if n.startswith("fm_decoder.")) * 4
    stored = sum(onnx.numpy_helper.to_array(t).nbytes for t in g.graph.initializer)
    assert weights <= stored < 1.25 * weights, (stored, weights)
    assert sum(n.name.startswith(f"euler{STEPS - 1}/") for n in g.graph.node) > 0 and not any(n.name.startswith(f"euler{STEPS}/") for n in g.graph.node)
    fm = m["components"]["fm_decoder"]
    np.testing.assert_array_equal(np.asarray(fm["time_steps"], np.float32), time_steps(STEPS, fm["t_shift"]))


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


def test_long_text_is_split_to_fit_and_cross_faded(zv_bundle):
    """A paragraph is cut by the shared splitter into pieces within the budget of the bundle's
    largest buckets; each piece is solved with the seed's next noise draw and the pieces are
    joined with the official 0.1 s cross-fade. A word that cannot be cut is refused, naming the limit."""
    from runtime_ref.bundle import Bundle
    from runtime_ref.errors import RuntimeRefError
    from runtime_ref.zipvoice.pipeline import ZipVoicePipeline, cross_fade_concat
    from runtime_ref.zipvoice.solve import total_frames
    from runtime_ref.zipvoice.voice import bake_voice

    bundle = Bundle.open(zv_bundle[0])
    pipe = ZipVoicePipeline(bundle)
    voice = bake_voice(bundle, short_prompt(), 24000, text="this is a test voice.")
    Fp, P = voice["prompt_features"].shape[0], len(voice["prompt_ids"])
    budget = pipe.text_budget(Fp, P)
    assert total_frames(Fp, P, budget) <= FRAMES[0] < total_frames(Fp, P, budget + 1) and P + budget + 1 <= TOKENS[0]
    par = "Hi there. How are you today? I am fine, thanks. The weather is nice and warm here."
    syn = pipe.synthesize(par, voice, seed=3)
    assert len(syn.pieces) >= 3 and all(len(pipe.text.ids(p)) <= budget for p in syn.pieces)
    assert " ".join(syn.pieces) == par
    rng = np.random.default_rng(3)
    parts = []
    for p in syn.pieces:
        n = total_frames(Fp, P, len(pipe.text.ids(p)))
        parts.append(pipe.synthesize(p, voice, noise=rng.standard_normal((n, pipe.feat_dim)).astype(np.float32)).audio)
    np.testing.assert_array_equal(syn.audio, cross_fade_concat(parts, 2400))
    assert syn.audio.size == sum(x.size for x in parts) - 2400 * (len(parts) - 1)
    assert pipe.synthesize("Hi there.", voice, seed=3).pieces == ["Hi there."]  # a text that fits is one solve, as before
    with pytest.raises(RuntimeRefError, match=f"{budget}-token limit"):
        pipe.synthesize("a" * 60, voice)
    with pytest.raises(RuntimeRefError, match="t_shift 0.7.*baked in"):
        pipe.synthesize("hi.", voice, t_shift=0.7)


def test_cross_fade_concat():
    from runtime_ref.zipvoice.pipeline import cross_fade_concat

    a, b = np.ones(5, np.float32), np.full(4, 3.0, np.float32)
    np.testing.assert_allclose(cross_fade_concat([a, b], 3), [1, 1, 1, 2, 3, 3], rtol=1e-6)  # 5 + 4 - 3 samples
    np.testing.assert_array_equal(cross_fade_concat([a, b], 0), np.concatenate([a, b]))
    assert cross_fade_concat([a], 3) is not None and cross_fade_concat([], 3).size == 0
    assert cross_fade_concat([a, b[:2]], 3).size == 5  # the fade never exceeds the shorter chunk


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
