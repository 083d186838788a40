"""Audio input and front-ends in numpy (no torch): WAV reading (a small RIFF parser: PCM, IEEE
float and WAVE_FORMAT_EXTENSIBLE, every header field checked, NaN/Inf refused), resampling, and the three
feature front-ends of the CosyVoice2 prompt path:

- `whisper_log_mel`: 128-bin log-mel of the S3 tokenizer v2 (fact sheet §2.1),
- `kaldi_fbank`: 80-bin Kaldi fbank of CAM++ with per-utterance mean normalisation (§3),
- `flow_mel`: 80-bin natural-log mel of the flow at 24 kHz (§8.1).

The speech tokenizer graph computes its log-mel in-graph; `whisper_log_mel` here is the host
reference used by tests and by callers that feed the official tokenizer.
"""
from __future__ import annotations

import struct
import warnings
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import RuntimeRefError


class AudioError(RuntimeRefError):
    """The prompt audio cannot be used (unreadable, empty, silent, too short or too long)."""


class ClippingWarning(UserWarning):
    """The prompt audio reaches full scale (it was probably clipped when recorded)."""


MIN_PROMPT_S = 1.0
MAX_PROMPT_S = 30.0


# ------------------------------------------------------------------------------------------ io
WAV_FIX = "convert it to a PCM 16/24/32-bit or float32 WAV, e.g. `ffmpeg -i in -ac 1 -c:a pcm_s16le out.wav`"
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def _riff_chunks(data: bytes, path: str) -> tuple[bytes, bytes]:
    """(fmt body, data body) of a RIFF/WAVE file; a data chunk whose size runs past the end of
    the file (streamed/truncated files) is read up to the end."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError(f"{path}: not a RIFF/WAVE file ({WAV_FIX})")
    pos, fmt, payload = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt " and fmt is None:
            fmt = body
        elif cid == b"data" and payload is None:
            payload = body
        pos += 8 + size + (size & 1)
    if fmt is None or payload is None:
        raise AudioError(f"{path}: the WAV file lacks a {'fmt' if fmt is None else 'data'} chunk (truncated? {WAV_FIX})")
    return fmt, payload


def parse_wav(data: bytes, path: str = "<wav>") -> tuple[np.ndarray, int]:
    """RIFF/WAVE bytes -> (samples (n, channels) float64, sample_rate). PCM 8/16/24/32-bit,
    IEEE float 32/64-bit, and WAVE_FORMAT_EXTENSIBLE carrying either; every header field is
    checked (rate, channels, bits, block alignment) and NaN/Inf samples are refused."""
    fmt, payload = _riff_chunks(data, path)
    if len(fmt) < 16:
        raise AudioError(f"{path}: the WAV fmt chunk is {len(fmt)} bytes, at least 16 expected (corrupt header; {WAV_FIX})")
    tag, channels, rate, _, block, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _EXTENSIBLE:
        if len(fmt) < 40:
            raise AudioError(f"{path}: WAVE_FORMAT_EXTENSIBLE header of {len(fmt)} bytes, 40 expected (corrupt header; {WAV_FIX})")
        valid_bits = struct.unpack("<H", fmt[18:20])[0]
        tag = struct.unpack("<H", fmt[24:26])[0]  # the sub-format GUID starts with the format tag
        if valid_bits and valid_bits > bits:
            raise AudioError(f"{path}: {valid_bits} valid bits in {bits}-bit samples (corrupt header; {WAV_FIX})")
    if channels == 0:
        raise AudioError(f"{path}: the WAV header says 0 channels (corrupt header; {WAV_FIX})")
    if rate == 0:
        raise AudioError(f"{path}: the WAV header says a sample rate of 0 Hz (corrupt header; {WAV_FIX})")
    kinds = {(_PCM, 8): "u1", (_PCM, 16): "<i2", (_PCM, 24): "i3", (_PCM, 32): "<i4", (_FLOAT, 32): "<f4", (_FLOAT, 64): "<f8"}
    kind = kinds.get((tag, bits))
    if kind is None:
        enc = {_PCM: "PCM", _FLOAT: "IEEE float"}.get(tag, f"format tag {tag}")
        raise AudioError(f"{path}: unsupported WAV encoding ({enc}, {bits} bit; {WAV_FIX})")
    width = bits // 8
    if block != channels * width:
        raise AudioError(f"{path}: block alignment {block} does not match {channels} channel(s) × {width} byte(s) (corrupt header; {WAV_FIX})")
    n = len(payload) // block
    raw = payload[: n * block]
    if kind == "u1":
        x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif kind == "i3":
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / float(1 << 23)
    elif kind in ("<i2", "<i4"):
        x = np.frombuffer(raw, kind).astype(np.float64) / float(1 << (bits - 1))
    else:
        x = np.frombuffer(raw, kind).astype(np.float64)
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        if bad:
            raise AudioError(f"{path}: {bad} sample(s) are NaN or infinite (a broken float WAV; re-export the audio)")
    return x.reshape(n, channels), int(rate)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a WAV file -> (samples (n, channels) float64, sample_rate); see `parse_wav`."""
    path = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise AudioError(f"{path}: cannot read the WAV file ({e.strerror or type(e).__name__})") from None
    return parse_wav(data, path)


def write_wav(path: str | Path, samples: np.ndarray, rate: int, *, bits: int = 16) -> None:
    """Write PCM 16/24/32-bit WAV (samples (n,) or (n, channels) float in [-1, 1])."""
    x = np.asarray(samples, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    full = float(1 << (bits - 1))
    q = np.clip(np.round(x * full), -full, full - 1).astype(np.int64)
    if bits == 16:
        raw = q.astype("<i2").tobytes()
    elif bits == 24:
        u = (q & 0xFFFFFF).astype(np.uint32).reshape(-1)
        raw = np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    elif bits == 32:
        raw = q.astype("<i4").tobytes()
    else:
        raise ValueError("bits must be 16, 24 or 32")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(bits // 8)
        w.setframerate(int(rate))
        w.writeframes(raw)


def write_float_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write an IEEE float32 WAV (format tag 3)."""
    x = np.asarray(samples, dtype="<f4")
    x = x[:, None] if x.ndim == 1 else x
    ch = x.shape[1]
    data = x.tobytes()
    fmt = struct.pack("<HHIIHH", 3, ch, int(rate), int(rate) * ch * 4, ch * 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


# ------------------------------------------------------------------------------------ resample
def _kaiser_lowpass(up: int, down: int, half_width: int = 10, beta: float = 5.0) -> np.ndarray:
    """Windowed-sinc anti-aliasing filter for rational resampling (at the up-sampled rate)."""
    cutoff = 1.0 / max(up, down)  # fraction of the up-sampled Nyquist
    n = half_width * max(up, down)
    t = np.arange(-n, n + 1, dtype=np.float64)
    h = cutoff * np.sinc(cutoff * t) * np.kaiser(2 * n + 1, beta)
    return h * up  # unity gain after zero stuffing


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited rational resampling of a 1-D signal (polyphase windowed sinc, Kaiser beta 5, 10 zero crossings per side).
    Output length ceil(len * dst / src)."""
    x = np.asarray(x, dtype=np.float64)
    if src_rate == dst_rate:
        return x.copy()
    r = Fraction(int(dst_rate), int(src_rate))
    up, down = r.numerator, r.denominator
    h = _kaiser_lowpass(up, down)
    half = (len(h) - 1) // 2
    n_out = -(-len(x) * up // down)
    # output sample m sits at up-sampled index m*down; y[m] = sum_k x[k] h[m*down - k*up + half]
    m = np.arange(n_out)
    pos = m * down + half  # index into h for k = 0
    k_lo = np.maximum(0, -(-(pos - (len(h) - 1)) // up))
    k_hi = np.minimum(len(x) - 1, pos // up)
    span = int(np.max(k_hi - k_lo)) + 1 if n_out else 0
    y = np.zeros(n_out)
    for j in range(span):  # loop over filter taps per output (vectorised over outputs)
        k = k_lo + j
        ok = k <= k_hi
        kk = np.where(ok, k, 0)
        y += np.where(ok, x[kk] * h[np.clip(pos - kk * up, 0, len(h) - 1)], 0.0)
    return y


def load_prompt_wav(path: str | Path, rate: int = 16000, *, check: bool = True) -> np.ndarray:
    """Read a prompt WAV, mix down to mono, resample to `rate`, check it. Returns float32 (n,)."""
    samples, src = read_wav(path)
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if check:
        check_prompt_audio(mono, src, name=str(path))
    return resample(mono, src, rate).astype(np.float32)


def check_prompt_audio(x: np.ndarray, rate: int, *, name: str = "prompt audio") -> None:
    """Empty, silent, < 1 s or > 30 s -> AudioError; full-scale samples -> ClippingWarning."""
    if x.size == 0:
        raise AudioError(f"{name}: the audio is empty; record a 3-10 s prompt")
    if rate <= 0:
        raise AudioError(f"{name}: sample rate {rate} Hz is not usable (fix the WAV header)")
    bad = int(x.size - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise AudioError(f"{name}: {bad} sample(s) are NaN or infinite (re-export the audio)")
    dur = x.size / float(rate)
    if dur < MIN_PROMPT_S:
        raise AudioError(f"{name}: the audio is {dur:.2f} s long; a prompt needs at least {MIN_PROMPT_S:g} s (3-10 s works best)")
    if dur > MAX_PROMPT_S:
        raise AudioError(f"{name}: the audio is {dur:.1f} s long; a prompt may be at most {MAX_PROMPT_S:g} s, cut it")
    peak = float(np.max(np.abs(x)))
    if peak < 1e-4:
        raise AudioError(f"{name}: the audio is silent (peak {peak:.1e}); record speech at a normal level")
    n_clip = int(np.sum(np.abs(x) >= 0.999))
    if n_clip >= 3:
        warnings.warn(f"{name}: {n_clip} sample(s) at full scale; the prompt is probably clipped", ClippingWarning, stacklevel=2)


# ------------------------------------------------------------------------------------ mel tools
def hz_to_mel_slaney(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    mel = f / f_sp
    return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mel)


def mel_to_hz_slaney(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def slaney_mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) with htk=False, norm='slaney':
    triangular filters on the Slaney mel scale, area-normalised. (n_mels, n_fft//2+1) float64."""
    fmax = sr / 2.0 if fmax is None else fmax
    fft_freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    mel_pts = mel_to_hz_slaney(np.linspace(hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax), n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0.0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_pts[2: n_mels + 2] - mel_pts[:n_mels])
    return w * enorm[:, None]


def hann_periodic(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def _frames(x: np.ndarray, n: int, hop: int) -> np.ndarray:
    count = 1 + (len(x) - n) // hop
    idx = np.arange(n)[None, :] + hop * np.arange(count)[:, None]
    return x[idx]


# --------------------------------------------------------------------------- whisper log-mel
def whisper_log_mel(wav16: np.ndarray, n_mels: int = 128) -> np.ndarray:
    """S3 tokenizer v2 features (fact sheet §2.1): (n_mels, N//160) float32."""
    x = np.asarray(wav16, dtype=np.float64)
    xp = np.pad(x, (200, 200), mode="reflect")
    fr = _frames(xp, 400, 160)[:-1] * hann_periodic(400)
    power = np.abs(np.fft.rfft(fr, axis=1)) ** 2  # (T, 201)
    mel = slaney_mel_filters(16000, 400, n_mels) @ power.T
    log = np.log10(np.maximum(mel, 1e-10))
    log = np.maximum(log, log.max() - 8.0)
    return ((log + 4.0) / 4.0).astype(np.float32)


# ------------------------------------------------------------------------------- Kaldi fbank
def _kaldi_mel_banks(n_bins: int, n_fft: int, sr: float, low: float, high: float) -> np.ndarray:
    def mel(f):
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    n_half = n_fft // 2
    fft_bin_width = sr / n_fft
    mel_lo, mel_hi = mel(low), mel(high)
    delta = (mel_hi - mel_lo) / (n_bins + 1)
    b = np.arange(n_bins, dtype=np.float64)[:, None]
    left, center, right = mel_lo + b * delta, mel_lo + (b + 1) * delta, mel_lo + (b + 2) * delta
    m = mel(fft_bin_width * np.arange(n_half, dtype=np.float64))[None, :]
    up = (m - left) / (center - left)
    down = (right - m) / (right - center)
    w = np.maximum(0.0, np.minimum(up, down))
    return np.pad(w, ((0, 0), (0, 1)))  # (n_bins, n_fft//2+1); Nyquist bin gets weight 0


def kaldi_fbank(wav16: np.ndarray, n_mels: int = 80, sr: int = 16000, *, cmn: bool = True) -> np.ndarray:
    """Kaldi fbank as CAM++ sees it (fact sheet §3): 25 ms / 10 ms frames, snip edges, DC removal,
    pre-emphasis 0.97, Povey window, FFT 512, power spectrum, mel 20 Hz..Nyquist, natural log
    floored at float32 eps, dither 0; then per-utterance mean subtraction. (T, n_mels) float32."""
    x = np.asarray(wav16, dtype=np.float64)
    n, hop, n_fft = int(0.025 * sr), int(0.010 * sr), 512
    if len(x) < n:
        raise AudioError(f"audio of {len(x)} samples is shorter than one 25 ms frame")
    fr = _frames(x, n, hop)
    fr = fr - fr.mean(axis=1, keepdims=True)
    fr = np.concatenate([fr[:, :1] - 0.97 * fr[:, :1], fr[:, 1:] - 0.97 * fr[:, :-1]], axis=1)
    povey = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / (n - 1))) ** 0.85
    power = np.abs(np.fft.rfft(fr * povey, n=n_fft, axis=1)) ** 2
    mel = power @ _kaldi_mel_banks(n_mels, n_fft, sr, 20.0, sr / 2.0).T
    feats = np.log(np.maximum(mel, np.finfo(np.float32).eps))
    if cmn:
        feats = feats - feats.mean(axis=0, keepdims=True)
    return feats.astype(np.float32)


# -------------------------------------------------------------------------------- flow mel
def flow_mel(wav24: np.ndarray, *, n_fft: int = 1920, hop: int = 480, n_mels: int = 80, sr: int = 24000,
             fmin: float = 0.0, fmax: float = 8000.0) -> np.ndarray:
    """Prompt mel for the flow (fact sheet §8.1): reflect pad (n_fft-hop)/2, STFT (periodic Hann,
    center False), magnitude sqrt(re²+im²+1e-9), Slaney mel, ln(max(x, 1e-5)). (T24, n_mels) f32."""
    x = np.asarray(wav24, dtype=np.float64)
    pad = (n_fft - hop) // 2
    xp = np.pad(x, (pad, pad), mode="reflect")
    spec = np.fft.rfft(_frames(xp, n_fft, hop) * hann_periodic(n_fft), axis=1)
    mag = np.sqrt(spec.real ** 2 + spec.imag ** 2 + 1e-9)
    mel = mag @ slaney_mel_filters(sr, n_fft, n_mels, fmin, fmax).T
    return np.log(np.maximum(mel, 1e-5)).astype(np.float32)
