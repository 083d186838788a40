"""runtime_ref.audio: WAV io, resampling and front-ends against independent implementations."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from runtime_ref import audio as A


@pytest.mark.parametrize("bits", [16, 24, 32])
def test_pcm_wav_roundtrip(tmp_path, bits):
    x = np.stack([np.linspace(-0.9, 0.9, 1000), np.sin(np.arange(1000) / 7) * 0.5], 1)
    A.write_wav(tmp_path / "a.wav", x, 22050, bits=bits)
    y, rate = A.read_wav(tmp_path / "a.wav")
    assert rate == 22050 and y.shape == (1000, 2)
    assert np.abs(y - x).max() <= 1.0 / (1 << (bits - 1))


def test_float_wav_and_stereo_mixdown(tmp_path):
    x = np.stack([np.full(32000, 0.25), np.full(32000, -0.05)], 1).astype(np.float32)
    x[::100, 0] = 0.5
    A.write_float_wav(tmp_path / "f.wav", x, 32000)
    y, rate = A.read_wav(tmp_path / "f.wav")
    assert rate == 32000 and np.array_equal(y, x.astype(np.float64))
    mono = A.load_prompt_wav(tmp_path / "f.wav", 16000)
    assert mono.shape == (16000,)
    assert abs(float(np.median(mono)) - 0.1) < 1e-3  # (0.25 - 0.05) / 2


def test_resample_matches_scipy():
    from scipy.signal import resample_poly

    t = np.arange(44100 * 2) / 44100
    x = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t + 1)
    for dst in (16000, 24000):
        ours = A.resample(x, 44100, dst)
        ref = resample_poly(x, dst, 44100)
        assert ours.shape == ref.shape
        assert np.abs(ours - ref)[200:-200].max() < 2e-3
    assert np.array_equal(A.resample(x, 16000, 16000), x)


def test_slaney_filters_match_whisper_asset():
    from pathlib import Path

    from .conftest import import_s3tokenizer

    s3tokenizer = import_s3tokenizer()


    path = Path(s3tokenizer.__file__).parent / "assets" / "mel_filters.npz"
    ref = np.load(path)["mel_128"]
    assert np.abs(A.slaney_mel_filters(16000, 400, 128) - ref).max() < 1e-8


def test_kaldi_fbank_matches_kaldi_native_fbank(speech_like):
    knf = pytest.importorskip("kaldi_native_fbank", reason="test-only dependency kaldi-native-fbank (pip install -e .[test])")
    x = speech_like(2.37).astype(np.float32)
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = 16000
    opts.mel_opts.num_bins = 80
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(16000, x.tolist())
    fb.input_finished()
    ref = np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])
    ours = A.kaldi_fbank(x, cmn=False)
    assert ours.shape == ref.shape == (1 + (len(x) - 400) // 160, 80)
    assert np.abs(ours - ref).max() <= 1e-4
    cmn = A.kaldi_fbank(x)
    assert np.abs(cmn.mean(0)).max() < 1e-4 and np.abs((ours - ours.mean(0)) - cmn).max() < 1e-4


def test_prompt_checks():
    with pytest.raises(A.AudioError, match="empty"):
        A.check_prompt_audio(np.zeros(0), 16000)
    with pytest.raises(A.AudioError, match="at least"):
        A.check_prompt_audio(np.ones(8000) * 0.1, 16000)
    with pytest.raises(A.AudioError, match="at most 30"):
        A.check_prompt_audio(np.ones(16000 * 31) * 0.1, 16000)
    with pytest.raises(A.AudioError, match="silent"):
        A.check_prompt_audio(np.zeros(32000), 16000)
    with pytest.warns(A.ClippingWarning):
        A.check_prompt_audio(np.where(np.arange(32000) % 50 == 0, 1.0, 0.1), 16000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A.check_prompt_audio(np.sin(np.arange(32000) / 5) * 0.5, 16000)


def test_unreadable_wav_is_one_line_error(tmp_path):
    p = tmp_path / "bad.wav"
    p.write_bytes(b"not a wav at all")
    with pytest.raises(A.AudioError, match="not a RIFF/WAVE file") as e:
        A.read_wav(p)
    assert "\n" not in str(e.value)


def test_flow_mel_shape_and_values(speech_like):
    x = speech_like(2.0, 24000)
    mel = A.flow_mel(x)
    assert mel.shape == (len(x) // 480, 80)
    # independent check of one frame by direct DFT
    pad = np.pad(x, (720, 720), mode="reflect")
    fr = pad[480 * 7: 480 * 7 + 1920] * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1920) / 1920))
    k = np.arange(961)
    re = (fr[None, :] * np.cos(2 * np.pi * np.outer(k, np.arange(1920)) / 1920)).sum(1)
    im = (fr[None, :] * np.sin(2 * np.pi * np.outer(k, np.arange(1920)) / 1920)).sum(1)
    mag = np.sqrt(re ** 2 + im ** 2 + 1e-9)
    ref = np.log(np.maximum(A.slaney_mel_filters(24000, 1920, 80, 0, 8000) @ mag, 1e-5))
    assert np.abs(mel[7] - ref).max() < 1e-4
