"""Speech tokenizer v2: weight mapping from the official-structure ONNX, the s3tokenizer package as
an independent oracle (model + log-mel), the bundle graph (exact token parity)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from exporter.speech_tokenizer.fixture import SIZES, random_tokenizer
from exporter.speech_tokenizer.model import S3TokenizerV2, WhisperLogMel
from exporter.speech_tokenizer.onnx_weights import load_tokenizer, state_dict_from_onnx

from .conftest import import_s3tokenizer


@pytest.fixture(scope="module")
def s3tok():
    return import_s3tokenizer()


@pytest.fixture(scope="module")
def official_onnx(tiny_md):
    return tiny_md.speech_tokenizer_onnx


def test_mapping_recovers_the_fixture_weights(official_onnx):
    sd, cfg = state_dict_from_onnx(official_onnx)
    assert (cfg.n_state, cfg.n_head, cfg.n_layer) == (128, 2, 2)
    ref = random_tokenizer(SIZES["tiny"], seed=3).state_dict()  # fixture seed = model seed + 3
    assert set(sd) == set(ref)
    for k, v in ref.items():
        assert torch.equal(sd[k], v), k


def test_mapping_agrees_with_s3tokenizer_onnx2torch(s3tok, official_onnx):
    from s3tokenizer.utils import onnx2torch

    theirs = onnx2torch(str(official_onnx))
    ours, _ = state_dict_from_onnx(official_onnx)
    assert set(theirs) == set(ours)
    for k in ours:
        assert torch.equal(theirs[k].float(), ours[k]), k


def test_official_format_onnx_matches_port(official_onnx):
    m = load_tokenizer(official_onnx)
    sess = ort.InferenceSession(str(official_onnx), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for T in (97, 400):
        feats = rng.standard_normal((1, 128, T)).astype(np.float32)
        got = sess.run(None, {"feats": feats, "feats_length": np.array([T], np.int32)})[0]
        with torch.inference_mode():
            ids, n = m(torch.from_numpy(feats), torch.tensor([T], dtype=torch.int32))
        assert got.shape == ids.shape and int(n[0]) == (T + 3) // 4
        assert np.array_equal(got, ids.numpy())
        assert len(np.unique(got)) > 10  # the random weights do exercise the FSQ levels


def _their_model(s3tok, state_dict):
    from s3tokenizer.model_v2 import ModelConfig, S3TokenizerV2 as Theirs

    theirs = Theirs("speech_tokenizer_v2_25hz", ModelConfig(n_audio_state=128, n_audio_head=2, n_audio_layer=2))
    theirs.load_state_dict(state_dict, strict=True)
    return theirs.eval()


def test_tokens_identical_to_s3tokenizer(s3tok, official_onnx, speech_like):
    ours = load_tokenizer(official_onnx)
    theirs = _their_model(s3tok, ours.state_dict())
    for sec, seed in ((2.3, 0), (7.9, 1)):
        wav = torch.from_numpy(speech_like(sec, seed=seed).astype(np.float32))
        mel = s3tok.log_mel_spectrogram(wav).unsqueeze(0)
        n = torch.tensor([mel.shape[-1]])
        ref, ref_len = theirs.quantize(mel, n)
        with torch.inference_mode():
            got, got_len = ours(mel, n.int())
        assert int(ref_len[0]) == int(got_len[0])
        assert torch.equal(ref.int(), got)


def test_log_mel_matches_s3tokenizer(s3tok, speech_like):
    from runtime_ref.audio import whisper_log_mel

    front = WhisperLogMel(128, max_samples=16000 * 6)
    for sec, seed in ((1.7, 2), (5.31, 3)):
        x = speech_like(sec, seed=seed).astype(np.float32)
        ref = s3tok.log_mel_spectrogram(torch.from_numpy(x)).numpy()
        buf = np.zeros((1, 16000 * 6), np.float32)
        buf[0, : len(x)] = x
        with torch.inference_mode():
            got, frames = front(torch.from_numpy(buf), torch.tensor([len(x)], dtype=torch.int32))
        n = int(frames[0])
        assert n == ref.shape[1] == len(x) // 160
        got = got[0, :, :n].numpy()
        # the host reference is float64; the oracle itself is float32 torch.stft (~1e-5 of its own
        # error: 1.5e-5 on the 5.31 s case on an AVX2 EPYC, where its FFT rounds differently)
        ref64 = whisper_log_mel(x)
        oracle_err = np.abs(ref64 - ref).max()
        assert oracle_err <= 2e-5
        # our float32 graph: within 1e-5 of the float64 truth, and no farther from the oracle than
        # the oracle's own float32 error allows
        assert np.abs(got - ref64).max() <= 1e-5
        assert np.abs(got - ref).max() <= oracle_err + 1e-5


def _run_bundle(b, x, tail=0.0):
    buf = np.full((1, 480000), tail, np.float32)
    buf[0, : len(x)] = x
    return b.run("speech_tokenizer", {"waveform": buf, "waveform_length": np.array([len(x)], np.int32)})


def test_bundle_graph(prompt_bundle, official_onnx, speech_like):
    """Always runs: manifest contract, exact parity recorded, graph == port fed the host log-mel."""
    from runtime_ref.audio import whisper_log_mel
    from runtime_ref.bundle import Bundle

    root, manifest = prompt_bundle
    g = manifest["graphs"]["speech_tokenizer"]
    assert g["parity"]["exact"] == {"speech_tokens": True, "token_count": True}
    assert g["checker"]["ok"] and g["inputs"][0]["shape"] == [1, 480000] and not g["symbolic_dims"]
    assert g["outputs"][0]["shape"] == [1, 750] and g["outputs"][0]["dtype"] == "int32"
    b = Bundle.open(root)
    x = speech_like(6.05, seed=4).astype(np.float32)
    out = _run_bundle(b, x)
    n = int(out["token_count"][0])
    assert n == (len(x) // 160 + 3) // 4
    mel = torch.from_numpy(whisper_log_mel(x))[None]
    with torch.inference_mode():
        ref, _ = load_tokenizer(official_onnx)(mel, torch.tensor([mel.shape[-1]], dtype=torch.int32))
    assert float(np.mean(out["speech_tokens"][0, :n] != ref[0].numpy())) <= 0.005
    assert np.all(out["speech_tokens"][0, n:] == -1)
    # samples past the length must not matter (reflect padding and the max-8 clamp use valid data only)
    assert np.array_equal(_run_bundle(b, x, tail=0.9)["speech_tokens"], out["speech_tokens"])


def test_bundle_graph_vs_s3tokenizer(prompt_bundle, s3tok, official_onnx, speech_like):
    from runtime_ref.bundle import Bundle

    b = Bundle.open(prompt_bundle[0])
    theirs = _their_model(s3tok, load_tokenizer(official_onnx).state_dict())
    x = speech_like(6.05, seed=4).astype(np.float32)
    out = _run_bundle(b, x)
    mel = s3tok.log_mel_spectrogram(torch.from_numpy(x)).unsqueeze(0)
    ref, ref_len = theirs.quantize(mel, torch.tensor([mel.shape[-1]]))
    n = int(out["token_count"][0])
    assert n == int(ref_len[0])
    assert float(np.mean(out["speech_tokens"][0, :n] != ref[0].numpy())) <= 0.005  # S3Tokenizer's own bar


def test_plain_conversion_path(official_onnx, tmp_path):
    from exporter.speech_tokenizer.export import convert_official

    dst = tmp_path / "st_plain.onnx"
    report = convert_official(official_onnx, dst, frames=400)
    assert report.ok, [v.message for v in report.violations[:3]]
    feats = np.random.default_rng(5).standard_normal((1, 128, 400)).astype(np.float32)
    feeds = {"feats": feats, "feats_length": np.array([400], np.int32)}
    a = ort.InferenceSession(str(official_onnx)).run(None, feeds)[0]
    b = ort.InferenceSession(str(dst)).run(None, feeds)[0]
    assert np.array_equal(a, b)


def test_log_mel_matches_scipy_stft(speech_like):
    """Always runs (no s3tokenizer needed): the in-graph conv-STFT log-mel vs scipy's FFT STFT
    (reflect/'even' boundary, periodic Hann, last frame dropped) with the same Slaney filters."""
    from scipy.signal import get_window, stft

    from runtime_ref.audio import slaney_mel_filters

    x = speech_like(3.71, seed=9).astype(np.float32)
    win = get_window("hann", 400)  # periodic
    _, _, Z = stft(x.astype(np.float64), window=win, nperseg=400, noverlap=240, boundary="even", padded=False)
    power = np.abs(Z[:, :-1] * win.sum()) ** 2
    log = np.log10(np.maximum(slaney_mel_filters(16000, 400, 128) @ power, 1e-10))
    ref = (np.maximum(log, log.max() - 8.0) + 4.0) / 4.0
    front = WhisperLogMel(128, max_samples=16000 * 5)
    buf = np.zeros((1, 16000 * 5), np.float32)
    buf[0, : len(x)] = x
    with torch.inference_mode():
        got, frames = front(torch.from_numpy(buf), torch.tensor([len(x)], dtype=torch.int32))
    n = int(frames[0])
    assert n == ref.shape[1] == len(x) // 160
    # float64 reference vs the float32 400-tap conv: 2.1e-5 measured (the float32 oracle above: <= 1e-5)
    assert np.abs(got[0, :, :n].numpy() - ref).max() <= 5e-5
