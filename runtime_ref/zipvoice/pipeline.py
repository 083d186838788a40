"""ZipVoice on the bundle (onnxruntime + numpy only), the official `generate_sentence` flow for
one text piece:

  prompt transcript + text -> ids (front-end) -> text_encoder_<S> (S = smallest bucket holding
  the ids and the trailing pad) -> frames = prompt + ceil(prompt_frames / prompt_ids · ids / speed)
  -> per-frame text condition (average token durations) -> fm_solve_<T> (CFG + Euler, noise from
  the seed) -> generated features / feat_scale -> vocos_<F> -> clamp to ±1, scaled by
  prompt_rms / target_rms when the prompt was quieter than target_rms.

Randomness: the solver's initial noise, (1, frames, feat_dim) standard normal from
`np.random.default_rng(seed)` (or given explicitly). Not done here (documented in
docs/components/zipvoice.md): the official splits long text at punctuation into ≈25 s pieces and
cross-fades them, and trims silences with pydub; a text that does not fit the largest bucket is
refused with the limit in the message.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bundle import Bundle
from ..errors import RuntimeRefError
from ..prompt import load_voice
from .solve import time_steps, token_index, total_frames
from .text import ZipVoiceFrontend


@dataclass
class ZipVoiceSynthesis:
    audio: np.ndarray  # (n,) float32
    sample_rate: int
    features: np.ndarray  # (frames, feat_dim) generated Vocos features (after / feat_scale)
    ids: list[int]
    n_frames: int  # prompt + generated


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
        """-> (n_frames, feat_dim) x at t = 1 (prompt part included)."""
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
            "frame_count": np.array([n_frames], np.int32), "timesteps": time_steps(self.num_step, t_shift),
            "guidance_scale": np.array([guidance_scale], np.float32)})
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

    def synthesize(self, text: str, voice: str | dict, *, seed: int = 0, speed: float = 1.0, noise: np.ndarray | None = None,
                   guidance_scale: float | None = None, t_shift: float | None = None, kana: bool = False) -> ZipVoiceSynthesis:
        """kana=True: `text` is accent kana (Japanese accent bundles; runtime_ref/zipvoice/kana.py)."""
        v = load_voice(self.bundle, voice) if isinstance(voice, str) else voice
        prompt_features = np.asarray(v["prompt_features"], np.float32)
        prompt_ids, ids = self.prompt_ids(v), self.text.ids(text, kana=kana)
        if not ids:
            raise RuntimeRefError("the text has no token the model knows (check the language / tokens.txt)")
        if not prompt_ids:
            raise RuntimeRefError("the voice's transcript has no token the model knows")
        Fp = prompt_features.shape[0]
        n_frames = total_frames(Fp, len(prompt_ids), len(ids), speed)
        if noise is None:
            noise = np.random.default_rng(seed).standard_normal((n_frames, self.feat_dim)).astype(np.float32)
        k = self.bundle.constants
        x1 = self.solve(self.encode_text(prompt_ids + ids), prompt_features, n_frames, np.asarray(noise, np.float32),
                        guidance_scale=float(k["guidance_scale"] if guidance_scale is None else guidance_scale),
                        t_shift=float(k["t_shift"] if t_shift is None else t_shift))
        feats = x1[Fp:] / np.float32(self.feat_scale)
        wav = np.clip(self.vocode(feats), -1.0, 1.0)
        rms = float(v.get("prompt_rms", self.target_rms))
        if rms < self.target_rms:
            wav = wav * np.float32(rms / self.target_rms)
        return ZipVoiceSynthesis(wav.astype(np.float32), self.sample_rate, feats, prompt_ids + ids, n_frames)

    def stream(self, text: str, voice, *, seed: int = 0, **kw):
        """One chunk: the whole utterance is one solve (no streaming path in ZipVoice)."""
        yield self.synthesize(text, voice, seed=seed, **kw).audio
