"""HiFT vocoding on onnxruntime + numpy (no torch): whole utterances of any length with one
static graph, and streaming.

The `hift` graph vocodes exactly `frames` (T) mel frames. Longer mels are cut into overlapping
chunks: every chunk but the first starts `context` frames before the first frame it emits and
every chunk but the last ends `context` frames after the last one it emits; the first chunk is
left-aligned with the utterance and the last right-aligned, so the utterance's true edges are
the graph's edges. The sine phase is carried over exactly: a chunk pins its phase at the last
frame the previous chunk emitted (`phase_ref` one-hot, `phase_in` = that frame's phase). The
noise of a chunk is the matching slice of the utterance's noise. The result equals vocoding the
whole utterance at once up to the receptive-field leak of the context (measured in
docs/components/hift.md). A mel of n <= T frames is one exact-length call: the graph's
`n_frames` input tells it where the input ends (the buffer past it is zeros and ignored), and
it computes what the official HiFTGenerator computes on exactly those n frames.

`stream_official` reproduces CosyVoice2Model.token2wav's streaming scheme (8 cached mel frames,
3840 cached source samples overwriting the start of the next call's source, symmetric Hamming
cross-fade of 2x3840 samples, the last 3840 samples held back until the next call); every call
is vocoded at its exact length, as the official one is.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

import numpy as np

from .errors import RuntimeRefError

RunFn = Callable[[dict], dict]  # feeds -> {"waveform", "source", "phase"}


class HiFTVocoder:
    def __init__(self, run: RunFn, *, frames: int, hop: int = 480, harmonics: int = 9, n_mels: int = 80,
                 context: int = 12, source_cache_len: int = 3840, mel_cache_len: int = 8):
        self._run = run
        self.T, self.hop, self.H, self.n_mels = frames, hop, harmonics, n_mels
        self.context, self.S, self.mel_cache_len = context, source_cache_len, mel_cache_len
        self.calls = 0

    @classmethod
    def from_bundle(cls, bundle) -> "HiFTVocoder":
        c = bundle.component("hift")
        g = c.get("graph", "hift")
        if "n_frames" not in {i["name"] for i in bundle.graph(g).inputs}:
            raise RuntimeRefError(f"hift: graph {g} has no n_frames input (exported by an older sentis-tts, it cannot "
                                  "vocode a call shorter than its frames exactly): re-export with `sentis-tts export hift`")
        return cls(lambda feeds: bundle.run(g, feeds), frames=c["frames"], hop=c["hop_samples"], harmonics=c["harmonics"],
                   n_mels=bundle.graph(g).input("mel")["shape"][1], context=c["chunking"]["context_frames"],
                   source_cache_len=c["streaming"]["source_cache_len"], mel_cache_len=c["streaming"]["mel_cache_len"])

    # -- one graph call -----------------------------------------------------------------------
    def run_chunk(self, mel, noise, phase_in=None, ref_frame=None, cache_source=None):
        """mel (1, n_mels, n), noise (1, 480n, H) with 1 <= n <= T (one exact-length call: zeros
        past n fill the graph's T frames); ref_frame: index whose phase is pinned to phase_in."""
        T, H, n = self.T, self.H, mel.shape[2]
        if not 1 <= n <= T or noise.shape[1] != self.hop * n:
            raise RuntimeRefError(f"hift: one call takes 1..{T} mel frames and 480 noise samples per frame, "
                                  f"got {n} frames and {noise.shape[1]} samples")
        if n < T:
            mel = np.concatenate([mel, np.zeros((1, mel.shape[1], T - n), np.float32)], axis=2)
            noise = np.concatenate([noise, np.zeros((1, self.hop * (T - n), H), np.float32)], axis=1)
        ref = np.zeros((1, T, 1), np.float32)
        if ref_frame is not None:
            ref[0, ref_frame, 0] = 1.0
        cw = np.zeros((1, 1, 1), np.float32)
        cs = np.zeros((1, 1, self.S), np.float32)
        if cache_source is not None and cache_source.shape[-1]:
            if cache_source.shape[-1] != self.S:
                raise RuntimeRefError(f"hift: cache_source must have {self.S} samples, got {cache_source.shape[-1]}")
            cs, cw[:] = cache_source.reshape(1, 1, self.S).astype(np.float32), 1.0
        feeds = {"mel": np.ascontiguousarray(mel, np.float32), "noise": np.ascontiguousarray(noise, np.float32),
                 "phase_in": (np.zeros((1, 1, H)) if phase_in is None else phase_in).reshape(1, 1, H).astype(np.float32),
                 "phase_ref": ref, "cache_source": cs, "cache_weight": cw, "n_frames": np.array([n], np.int32)}
        self.calls += 1
        return self._run(feeds)

    # -- whole utterance ----------------------------------------------------------------------
    def plan(self, n: int) -> list[tuple[int, int, int]]:
        """Chunks (start, emit_from, emit_to) in frames for an n-frame mel (n > T)."""
        T, C = self.T, self.context
        out, e = [], 0
        while e < n:
            a = 0 if e == 0 else e - C
            if a + T >= n:
                a = max(0, n - T)
                out.append((a, e, n))
                break
            out.append((a, e, a + T - C))
            e = a + T - C
        return out

    def mel2wav(self, mel: np.ndarray, noise: np.ndarray | None = None, *, rng: np.random.Generator | None = None,
                cache_source: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """mel (1, n_mels, N) -> (waveform (1, 480N), source (1, 1, 480N)). noise (1, 480N, H) standard
        normal (drawn from `rng` when None). cache_source (1, 1, S) overwrites the first S source samples."""
        if mel.ndim != 3 or mel.shape[0] != 1 or mel.shape[1] != self.n_mels:
            raise RuntimeRefError(f"hift: mel must be (1, {self.n_mels}, frames), got {list(mel.shape)}")
        N, hop, T = mel.shape[2], self.hop, self.T
        if N == 0:
            return np.zeros((1, 0), np.float32), np.zeros((1, 1, 0), np.float32)
        if noise is None:
            noise = (rng or np.random.default_rng()).standard_normal((1, hop * N, self.H)).astype(np.float32)
        if noise.shape != (1, hop * N, self.H):
            raise RuntimeRefError(f"hift: noise must be (1, {hop * N}, {self.H}) for {N} mel frames, got {list(noise.shape)}")
        if cache_source is not None and cache_source.shape[-1] and N * hop < self.S:
            raise RuntimeRefError(f"hift: a cache_source needs at least {self.S // hop} mel frames")
        if N <= T:  # one exact-length call
            o = self.run_chunk(mel, noise, cache_source=cache_source)
            return o["waveform"][:, : hop * N], o["source"][:, :, : hop * N]
        wav = np.zeros((1, hop * N), np.float32)
        src = np.zeros((1, 1, hop * N), np.float32)
        phase = np.zeros((N, self.H), np.float32)  # cumulative phase of emitted frames
        for a, e0, e1 in self.plan(N):
            first = e0 == 0
            o = self.run_chunk(mel[:, :, a: a + T], noise[:, hop * a: hop * (a + T)],
                               phase_in=None if first else phase[e0 - 1], ref_frame=None if first else e0 - 1 - a,
                               cache_source=cache_source if first else None)
            wav[:, hop * e0: hop * e1] = o["waveform"][:, hop * (e0 - a): hop * (e1 - a)]
            src[:, :, hop * e0: hop * e1] = o["source"][:, :, hop * (e0 - a): hop * (e1 - a)]
            phase[e0:e1] = o["phase"][0, e0 - a: e1 - a]
        return wav, src

    # -- streaming ----------------------------------------------------------------------------
    def stream_official(self, mel_chunks: Iterable[np.ndarray], *, noise_fn: Callable[[int], np.ndarray] | None = None,
                        rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
        """CosyVoice2Model streaming: yields waveform pieces (1, n) as mel chunks (1, n_mels, n_i)
        arrive; the last chunk is final. noise_fn(n_frames) -> (1, 480 n_frames, H) noise for one
        call (default: fresh standard normal from rng, as the official code draws per call).
        (Needs one chunk of look-ahead to know which is final; callers that know it use
        `OfficialStream.push(mel, final)` directly.)"""
        state = OfficialStream(self, noise_fn=noise_fn, rng=rng)
        chunks = iter(mel_chunks)
        nxt = next(chunks, None)
        while nxt is not None:
            cur, nxt = nxt, next(chunks, None)
            yield state.push(cur, final=nxt is None)


class OfficialStream:
    """State of CosyVoice2Model.token2wav's HiFT streaming for one utterance: the last 8 mel
    frames, the last 3840 source samples (overwriting the start of the next call's source) and
    the last 3840 output samples (cross-faded with a symmetric Hamming window of 2x3840 into the
    next call). `push(mel, final)` returns the samples that are ready: all but the held-back
    3840 for a non-final chunk, everything for the final one."""

    def __init__(self, vocoder: HiFTVocoder, *, noise_fn: Callable[[int], np.ndarray] | None = None,
                 rng: np.random.Generator | None = None):
        self.v = vocoder
        rng = rng or np.random.default_rng()
        self.noise_fn = noise_fn or (lambda n: rng.standard_normal((1, vocoder.hop * n, vocoder.H)).astype(np.float32))
        self.window = np.hamming(2 * vocoder.S).astype(np.float32)
        self.cache = None  # (mel, source, speech)

    def push(self, mel_chunk: np.ndarray, *, final: bool) -> np.ndarray:
        v, S = self.v, self.v.S
        mel = mel_chunk if self.cache is None else np.concatenate([self.cache[0], mel_chunk], axis=2)
        wav, src = v.mel2wav(mel, self.noise_fn(mel.shape[2]), cache_source=None if self.cache is None else self.cache[1])
        if self.cache is not None:
            wav = wav.copy()
            wav[:, :S] = wav[:, :S] * self.window[:S] + self.cache[2] * self.window[S:]
        if final:
            self.cache = None
            return wav
        self.cache = (mel[:, :, -v.mel_cache_len:], src[:, :, -S:], wav[:, -S:])
        return wav[:, :-S]


def mel2wav(bundle, mel: np.ndarray, noise: np.ndarray | None = None, *, rng: np.random.Generator | None = None) -> np.ndarray:
    """Whole-utterance vocoding with the bundle's `hift` graph: mel (1, 80, N) -> waveform (1, 480N)."""
    return HiFTVocoder.from_bundle(bundle).mel2wav(mel, noise, rng=rng)[0]


def stream(bundle, mel_chunks: Iterable[np.ndarray], *, rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Streaming vocoding with the official CosyVoice2 cache/cross-fade scheme."""
    return HiFTVocoder.from_bundle(bundle).stream_official(mel_chunks, rng=rng)
