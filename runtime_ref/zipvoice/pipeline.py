"""ZipVoice on the bundle (onnxruntime + numpy only), the official `generate_sentence` flow for
one text piece:

  prompt transcript + text -> ids (front-end) -> text_encoder_<S> (S = smallest bucket holding
  the ids and the trailing pad) -> frames = prompt + ceil(prompt_frames / prompt_ids · ids / speed)
  -> per-frame text condition (average token durations) -> fm_solve_<T> (CFG + Euler, noise from
  the seed) -> generated features / feat_scale -> vocos_<F> -> clamp to ±1, scaled by
  prompt_rms / target_rms when the prompt was quieter than target_rms.

Randomness: the solver's initial noise, (1, frames, feat_dim) standard normal from
`np.random.default_rng(seed)` (or given explicitly), one draw per piece. Long text: split into
pieces that fit the bundle's largest buckets with the shared splitter (runtime_ref/text/split.py)
and joined with the official 0.1 s cross-fade (the official chunks at punctuation into ≈25 s
pieces; ours are as long as the buckets allow). Not done here (documented in
docs/components/zipvoice.md): the official trims silences with pydub.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..bundle import Bundle
from ..errors import RuntimeRefError
from ..prompt import load_voice
from .solve import token_index, total_frames
from .text import ZipVoiceFrontend


CROSS_FADE_S = 0.1  # official cross_fade_concat between the pieces of a long text


@dataclass
class ZipVoiceSynthesis:
    audio: np.ndarray  # (n,) float32
    sample_rate: int
    features: np.ndarray  # (frames, feat_dim) generated Vocos features (after / feat_scale), pieces one after another
    ids: list[int]  # prompt ids + the text ids of every piece
    n_frames: int  # prompt + generated, summed over the pieces
    pieces: list[str] = field(default_factory=list)


def cross_fade_concat(chunks: list[np.ndarray], fade: int) -> np.ndarray:
    """Official cross_fade_concat: consecutive chunks overlap by min(fade, both lengths) samples,
    the earlier fading out linearly (1 -> 0) while the later fades in."""
    if not chunks:
        return np.zeros(0, np.float32)
    out = chunks[0]
    for nxt in chunks[1:]:
        k = min(fade, out.size, nxt.size)
        if k <= 0:
            out = np.concatenate([out, nxt])
            continue
        w = np.linspace(1, 0, k, dtype=np.float32)
        out = np.concatenate([out[:-k], out[-k:] * w + nxt[:k] * (np.float32(1) - w), nxt[k:]])
    return out.astype(np.float32)


def _bucket(lens: list[int], n: int, what: str) -> int:
    fit = [b for b in sorted(lens) if b >= n]
    if not fit:
        raise RuntimeRefError(f"{what} needs {n}, the bundle's largest bucket holds {max(lens)}: shorten the text "
                              f"(or export larger buckets)")
    return fit[0]


class ZipVoicePipeline:
    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        k = bundle.constants
        self.sample_rate = int(k.get("sample_rate", 24000))
        self.feat_scale, self.target_rms = float(k["feat_scale"]), float(k["target_rms"])
        self.text = ZipVoiceFrontend.load(bundle)
        self.te, self.fm, self.voc = bundle.component("text_encoder"), bundle.component("fm_decoder"), bundle.component("vocos")
        self.pad_id, self.feat_dim = int(self.te["pad_id"]), int(self.fm["feat_dim"])
        self.num_step = int(self.fm["num_step"])
        self.t_shift = float(self.fm["t_shift"])  # the time grid is baked into fm_solve_<T> (fm["time_steps"])

    @classmethod
    def open(cls, path: str | Path, *, threads: int = 2) -> "ZipVoicePipeline":
        return cls(Bundle.open(path, threads=threads))

    # -- stages -------------------------------------------------------------------------------
    def encode_text(self, ids: list[int]) -> np.ndarray:
        """(len(ids) + 1, feat_dim): encoder output for the ids and the trailing pad."""
        S = _bucket(self.te["token_lens"], len(ids) + 1, "the text (prompt transcript + text + 1 pad)")
        tok = np.full((1, S), self.pad_id, np.int32)
        tok[0, : len(ids)] = ids
        out = self.bundle.run(f"text_encoder_{S}", {"tokens": tok, "token_count": np.array([len(ids)], np.int32)})
        return out["text_embed"][0, : len(ids) + 1]

    def solve(self, text_embed: np.ndarray, prompt_features: np.ndarray, n_frames: int, noise: np.ndarray, *,
              guidance_scale: float, t_shift: float) -> np.ndarray:
        """-> (n_frames, feat_dim) x at t = 1 (prompt part included). `t_shift` must be the bundle's:
        its time grid is part of the solve graph."""
        if abs(t_shift - self.t_shift) > 1e-9:
            raise RuntimeRefError(f"t_shift {t_shift:g}: this bundle's solve has t_shift {self.t_shift:g} baked in "
                                  f"(re-export the fm_decoder component for another time grid)")
        T = _bucket(self.fm["frame_lens"], n_frames, "prompt + speech frames")
        F = self.feat_dim
        text_cond = np.zeros((1, T, F), np.float32)
        text_cond[0, :n_frames] = text_embed[token_index(n_frames, text_embed.shape[0] - 1)]
        speech = np.zeros((1, T, F), np.float32)
        speech[0, : prompt_features.shape[0]] = prompt_features * np.float32(self.feat_scale)
        x0 = np.zeros((1, T, F), np.float32)
        x0[0, :n_frames] = noise
        out = self.bundle.run(f"fm_solve_{T}", {
            "noise": x0, "text_condition": text_cond, "speech_condition": speech,
            "frame_count": np.array([n_frames], np.int32), "guidance_scale": np.array([guidance_scale], np.float32)})
        return out["features"][0, :n_frames]

    def vocode(self, features: np.ndarray) -> np.ndarray:
        """(n, n_mels) Vocos features -> (hop·(n-1),) samples (official vocos.decode)."""
        n = features.shape[0]
        Fb = _bucket(self.voc["frame_lens"], n, "the generated frames")
        x = np.zeros((1, features.shape[1], Fb), np.float32)
        x[0, :, :n] = features.T
        wav = self.bundle.run(f"vocos_{Fb}", {"features": x, "frame_count": np.array([n], np.int32)})["waveform"][0]
        return wav[: int(self.voc["hop_length"]) * (n - 1)]

    # -- the official flow --------------------------------------------------------------------
    def prompt_ids(self, voice: dict) -> list[int]:
        """The voice's baked transcript ids (prompt_ids), else its transcript through the front-end."""
        if "prompt_ids" in voice:
            return [int(i) for i in np.asarray(voice["prompt_ids"]).reshape(-1)]
        return self.text.ids(str(voice["prompt_text"]))

    def text_budget(self, prompt_frames: int, prompt_tokens: int, speed: float = 1.0) -> int:
        """Most text ids one piece may have with this prompt: prompt ids + ids + the pad fit the
        largest token bucket, prompt + generated frames the largest solve bucket, the generated
        frames the largest Vocos bucket (the duration rule of total_frames)."""
        n = max(self.te["token_lens"]) - 1 - prompt_tokens
        max_t, max_v = max(self.fm["frame_lens"]), max(self.voc["frame_lens"])
        while n > 0 and (total_frames(prompt_frames, prompt_tokens, n, speed) > max_t
                         or total_frames(prompt_frames, prompt_tokens, n, speed) - prompt_frames > max_v):
            n -= 1
        if n < 1:
            raise RuntimeRefError(f"the voice's prompt ({prompt_frames} frames, {prompt_tokens} ids) leaves no room for text in this "
                                  f"bundle's largest buckets; use a shorter prompt clip or export larger buckets")
        return n

    def pieces(self, text: str, voice: dict, *, speed: float = 1.0, kana: bool = False) -> list[str]:
        """`text` as pieces that each fit the bundle with this voice: the shared splitter of the
        CosyVoice2 front-end (runtime_ref/text/split.py split_text: sentences, then clauses, blanks,
        characters; never truncating) with the ZipVoice budget (text_budget) counted in model ids."""
        from ..text.split import split_text

        budget = self.text_budget(np.asarray(voice["prompt_features"]).shape[0], len(self.prompt_ids(voice)), speed)
        count = lambda piece: len(self.text.ids(piece, kana=kana))  # noqa: E731
        if count(text) <= budget:
            return [text]
        return split_text(text, count, budget, target_tokens=budget)

    def synthesize(self, text: str, voice: str | dict, *, seed: int = 0, speed: float = 1.0, noise: np.ndarray | None = None,
                   guidance_scale: float | None = None, t_shift: float | None = None, kana: bool = False) -> ZipVoiceSynthesis:
        """kana=True: `text` is accent kana (Japanese accent bundles; runtime_ref/zipvoice/kana.py).
        A text longer than one solve holds is split (`pieces`); each piece is solved with the next
        noise draw of the seed's generator and the pieces are joined with the official 0.1 s linear
        cross-fade (cross_fade_concat). `noise` (frames, feat_dim) may be given for a one-piece text."""
        v = load_voice(self.bundle, voice) if isinstance(voice, str) else voice
        prompt_features = np.asarray(v["prompt_features"], np.float32)
        prompt_ids = self.prompt_ids(v)
        if not prompt_ids:
            raise RuntimeRefError("the voice's transcript has no token the model knows")
        pieces = self.pieces(text, v, speed=speed, kana=kana)
        if noise is not None and len(pieces) > 1:
            raise RuntimeRefError(f"an explicit noise covers one solve; this text needs {len(pieces)} pieces")
        rng = np.random.default_rng(seed)
        k = self.bundle.constants
        g = float(k["guidance_scale"] if guidance_scale is None else guidance_scale)
        ts = self.t_shift if t_shift is None else float(t_shift)
        wavs, feats_all, ids_all, frames = [], [], list(prompt_ids), 0
        Fp = prompt_features.shape[0]
        for piece in pieces:
            ids = self.text.ids(piece, kana=kana)
            if not ids:
                raise RuntimeRefError("the text has no token the model knows (check the language / tokens.txt)")
            n_frames = total_frames(Fp, len(prompt_ids), len(ids), speed)
            x0 = noise if noise is not None else rng.standard_normal((n_frames, self.feat_dim)).astype(np.float32)
            x1 = self.solve(self.encode_text(prompt_ids + ids), prompt_features, n_frames, np.asarray(x0, np.float32),
                            guidance_scale=g, t_shift=ts)
            feats = x1[Fp:] / np.float32(self.feat_scale)
            wav = np.clip(self.vocode(feats), -1.0, 1.0)
            rms = float(v.get("prompt_rms", self.target_rms))
            if rms < self.target_rms:
                wav = wav * np.float32(rms / self.target_rms)
            wavs.append(wav.astype(np.float32))
            feats_all.append(feats)
            ids_all += ids
            frames += n_frames
        audio = cross_fade_concat(wavs, int(CROSS_FADE_S * self.sample_rate))
        return ZipVoiceSynthesis(audio, self.sample_rate, np.concatenate(feats_all), ids_all, frames, pieces)

    def stream(self, text: str, voice, *, seed: int = 0, **kw):
        """One chunk: the whole utterance is one solve (no streaming path in ZipVoice)."""
        yield self.synthesize(text, voice, seed=seed, **kw).audio
