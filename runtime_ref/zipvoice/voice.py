"""ZipVoice voices (numpy only): the prompt clip's 100-bin Vocos features, its transcript and its
RMS, as `generate_sentence` prepares them: resample to 24 kHz, RMS-normalise up to target_rms
(quieter clips are raised; the output is scaled back by prompt_rms / target_rms), Vocos fbank.

Voice file arrays (npz, no pickles):
  prompt_features (F, 100) float32   log-mel of the (normalised) prompt, NOT yet × feat_scale
  prompt_text     ()       unicode   transcript (required: ZipVoice needs the prompt's text)
  prompt_rms      ()       float32   RMS of the clip before normalisation
  prompt_ids      (n,)     int32     the transcript's token ids by the bundle's front-end (a runtime
                                     without that front-end — the Unity one has no OpenJTalk — reads these)
Not done here (documented): the official removes silences longer than 1 s and adds 0.2 s of
trailing silence to the prompt (pydub); trim the clip beforehand.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import audio
from ..prompt import VoiceError
from .fbank import vocos_fbank


def bake_voice(bundle, samples: np.ndarray, rate: int, *, text: str = "", name: str = "prompt audio") -> dict[str, np.ndarray]:
    if not text.strip():
        raise VoiceError("ZipVoice voices need the prompt's transcript: pass --text \"what the clip says\"")
    k = bundle.constants
    sr, target = int(k.get("sample_rate", 24000)), float(k.get("target_rms", 0.1))
    x = np.asarray(samples, np.float64)
    audio.check_prompt_audio(x, rate, name=name)
    x = audio.resample(x, rate, sr) if rate != sr else x
    rms = float(np.sqrt(np.mean(np.square(x))))
    if rms < target:
        x = x * target / max(rms, 1e-12)
    voc = bundle.component("vocos")
    feats = vocos_fbank(x.astype(np.float32), sr=sr, n_fft=int(voc["n_fft"]), hop=int(voc["hop_length"]), n_mels=int(voc["n_mels"]))
    from .text import ZipVoiceFrontend

    ids = ZipVoiceFrontend.load(bundle).ids(text.strip())
    return {"prompt_features": feats, "prompt_text": np.array(text.strip()), "prompt_rms": np.array(rms, np.float32),
            "prompt_ids": np.asarray(ids, np.int32)}


def bake_voice_from_wav(bundle, wav_path: str | Path, *, text: str = "") -> dict[str, np.ndarray]:
    samples, rate = audio.read_wav(wav_path)
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return bake_voice(bundle, mono, rate, text=text, name=str(wav_path))


def voice_entry(voice: dict[str, np.ndarray]) -> dict:
    """The manifest `voices` entry fields of a ZipVoice voice."""
    return {"n_prompt_frames": int(voice["prompt_features"].shape[0]), "prompt_rms": float(voice["prompt_rms"])}
