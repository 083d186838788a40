"""The 100-bin Vocos log-mel of ZipVoice's prompt (`VocosFbank`: torchaudio MelSpectrogram at
24 kHz, n_fft 1024, hop 256, center + reflect padding, periodic Hann, magnitude (power 1), HTK
mel scale without norm, then log(max(mel, 1e-7))), frame count as lhotse's
`compute_num_frames` (extra frames cut, missing ones repeat the last). numpy only."""
from __future__ import annotations

import numpy as np

from ..audio import _frames, hann_periodic


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """(n_fft//2+1, n_mels) triangular HTK-mel filters, no normalisation (torchaudio melscale_fbanks)."""
    fmax = sr / 2 if fmax is None else fmax
    freqs = np.linspace(0, sr // 2, n_fft // 2 + 1)
    hz2mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    mel2hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    f_pts = mel2hz(np.linspace(hz2mel(fmin), hz2mel(fmax), n_mels + 2))
    f_diff = np.diff(f_pts)
    slopes = f_pts[None, :] - freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up))


def num_frames(n_samples: int, hop: int) -> int:
    """lhotse compute_num_frames(duration, hop / sr, sr) for a clip of n_samples."""
    return int((n_samples + hop // 2) // hop)


def vocos_fbank(wav: np.ndarray, *, sr: int = 24000, n_fft: int = 1024, hop: int = 256, n_mels: int = 100) -> np.ndarray:
    """(n,) float waveform at `sr` -> (frames, n_mels) float32 log-mel."""
    x = np.asarray(wav, np.float64)
    half = n_fft // 2
    xp = np.pad(x, (half, half), mode="reflect")
    frames = _frames(xp, n_fft, hop) * hann_periodic(n_fft)[None, :]
    mag = np.abs(np.fft.rfft(frames, axis=-1))  # (F, n_fft//2+1)
    mel = mag @ mel_filterbank(sr, n_fft, n_mels)
    logmel = np.log(np.maximum(mel, 1e-7))
    n = num_frames(x.size, hop)
    if logmel.shape[0] > n:
        logmel = logmel[:n]
    elif logmel.shape[0] < n:
        logmel = np.concatenate([logmel, np.repeat(logmel[-1:], n - logmel.shape[0], 0)], 0)
    return logmel.astype(np.float32)
