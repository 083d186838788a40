"""Voice baking with onnxruntime + numpy only: prompt WAV -> speaker embedding (CAM++ graph),
prompt speech tokens (speech tokenizer graph), 24 kHz flow mel, CosyVoice2 token/mel alignment
(fact sheet §8.1), stored as `voices/<name>.npz` + a manifest `voices` entry.

Voice file arrays (npz, no pickles):
  embedding      (192,) float32   CAM++ x-vector, not normalised (the flow normalises it)
  speech_tokens  (k,)   int32     prompt tokens after alignment
  prompt_mel     (2k, 80) float32 flow mel after alignment (natural log)
  prompt_text    ()     unicode   transcript ('' if none)
  prompt_text_ids (n,)  int32     text ids (only when a text tokenizer was given)
k = min(T24 // 2, P): T24 mel frames at 50 Hz, P tokens at 25 Hz.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from . import audio
from .errors import RuntimeRefError

VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MEL_DEFAULTS = {"n_fft": 1920, "hop_size": 480, "num_mels": 80, "sampling_rate": 24000, "fmin": 0.0, "fmax": 8000.0}


class VoiceError(RuntimeRefError):
    """A voice cannot be baked or stored (bad name, missing graph, ...)."""


def check_voice_name(name: str) -> str:
    if not VOICE_NAME.match(name or ""):
        raise VoiceError(f"voice name {name!r} is not allowed; use letters, digits, '_', '-', '.' (at most 64 characters)")
    return name


def align(tokens: np.ndarray, mel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CosyVoice2 alignment: k = min(T24 // 2, P); keep 2k mel frames and k tokens."""
    k = min(mel.shape[0] // 2, tokens.shape[0])
    return tokens[:k], mel[: 2 * k]


def speech_tokens(bundle, wav16: np.ndarray) -> np.ndarray:
    """Run the bundle's speech_tokenizer graph on a 16 kHz waveform -> (P,) int32."""
    if not bundle.has_graph("speech_tokenizer"):
        raise VoiceError(f"{bundle.root}: no speech_tokenizer graph; run `sentis-tts export speech_tokenizer --model-dir D --out {bundle.root}`")
    n_max = bundle.graph("speech_tokenizer").input("waveform")["shape"][1]
    if len(wav16) > n_max:
        raise VoiceError(f"prompt of {len(wav16) / 16000:.1f} s is longer than the tokenizer graph's {n_max / 16000:.0f} s")
    buf = np.zeros((1, n_max), np.float32)
    buf[0, : len(wav16)] = wav16
    out = bundle.run("speech_tokenizer", {"waveform": buf, "waveform_length": np.array([len(wav16)], np.int32)})
    return out["speech_tokens"][0, : int(out["token_count"][0])].astype(np.int32)


def speaker_embedding(bundle, wav16: np.ndarray) -> np.ndarray:
    """Kaldi fbank (+CMN) on the host, CAM++ graph on a padded buffer -> (192,) float32."""
    if not bundle.has_graph("campplus"):
        raise VoiceError(f"{bundle.root}: no campplus graph; run `sentis-tts export campplus --model-dir D --out {bundle.root}`")
    fb = audio.kaldi_fbank(wav16)
    t_max, n_mels = bundle.graph("campplus").input("fbank")["shape"][1:]
    if fb.shape[0] > t_max:
        raise VoiceError(f"prompt has {fb.shape[0]} fbank frames, the campplus graph takes at most {t_max}")
    buf = np.zeros((1, t_max, n_mels), np.float32)
    buf[0, : fb.shape[0]] = fb
    out = bundle.run("campplus", {"fbank": buf, "n_frames": np.array([fb.shape[0]], np.int32)})
    return out["embedding"][0].astype(np.float32)


def mel_params(bundle) -> dict:
    """Flow mel parameters: the bundle's (speech_tokenizer component, from the model yaml) or §8.1."""
    p = dict(MEL_DEFAULTS)
    p.update(bundle.manifest.get("components", {}).get("speech_tokenizer", {}).get("prompt_mel", {}))
    return p


def bake_voice(bundle, samples: np.ndarray, rate: int, *, text: str = "",
               text_ids: np.ndarray | None = None, name: str = "prompt audio") -> dict[str, np.ndarray]:
    """Mono samples at `rate` -> voice arrays (see module doc). Checks the audio first."""
    x = np.asarray(samples, dtype=np.float64)
    audio.check_prompt_audio(x, rate, name=name)
    mp = mel_params(bundle)
    wav16 = audio.resample(x, rate, 16000).astype(np.float32)
    wav24 = audio.resample(x, rate, int(mp["sampling_rate"])).astype(np.float32)
    tokens = speech_tokens(bundle, wav16)
    emb = speaker_embedding(bundle, wav16)
    mel = audio.flow_mel(wav24, n_fft=int(mp["n_fft"]), hop=int(mp["hop_size"]), n_mels=int(mp["num_mels"]),
                         sr=int(mp["sampling_rate"]), fmin=float(mp["fmin"]), fmax=float(mp["fmax"] or mp["sampling_rate"] / 2))
    tok_a, mel_a = align(tokens, mel)
    voice = {"embedding": emb, "speech_tokens": tok_a, "prompt_mel": mel_a, "prompt_text": np.array(text or "")}
    if text_ids is not None:
        voice["prompt_text_ids"] = np.asarray(text_ids, dtype=np.int32).reshape(-1)
    return voice


def bake_voice_from_wav(bundle, wav_path: str | Path, **kw) -> dict[str, np.ndarray]:
    samples, rate = audio.read_wav(wav_path)
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return bake_voice(bundle, mono, rate, name=str(wav_path), **kw)


def voice_bytes(voice: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **voice)
    return buf.getvalue()


def voice_problem(voice: dict, family: str = "cosyvoice2") -> str | None:
    """What makes voice arrays unusable (None if nothing). Every family: arrays only, no NaN/Inf
    in any float array. CosyVoice2: the arrays of the module doc with their dtypes and shapes, and
    the token/mel alignment."""
    for key, a in voice.items():
        if not isinstance(a, np.ndarray):
            return f"'{key}' is a {type(a).__name__}, not an array"
        if a.dtype.kind == "f" and a.size and not bool(np.isfinite(a).all()):
            return f"'{key}' holds {int(a.size - np.count_nonzero(np.isfinite(a)))} NaN/Inf value(s)"
    if family != "cosyvoice2":
        return None
    emb, tok, mel = voice.get("embedding"), voice.get("speech_tokens"), voice.get("prompt_mel")
    for key, a in (("embedding", emb), ("speech_tokens", tok), ("prompt_mel", mel)):
        if not isinstance(a, np.ndarray):
            return f"no '{key}' array"
        if a.dtype.kind not in "fiu":
            return f"'{key}' has dtype {a.dtype}, not numbers"
    if emb.ndim != 1 or emb.size == 0:
        return f"'embedding' has shape {list(emb.shape)}, expected (D,)"
    if tok.ndim != 1 or tok.dtype.kind not in "iu":
        return f"'speech_tokens' has shape {list(tok.shape)} and dtype {tok.dtype}, expected (k,) int"
    if mel.ndim != 2 or mel.shape[0] != 2 * tok.shape[0]:
        return f"'prompt_mel' has shape {list(mel.shape)}, expected (2k, n_mels) with k = {tok.shape[0]} tokens"
    for key, a in (("embedding", emb), ("prompt_mel", mel)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        if bad:
            return f"'{key}' holds {bad} NaN/Inf value(s)"
    if tok.size and int(tok.min()) < 0:
        return "'speech_tokens' holds negative ids"
    ids = voice.get("prompt_text_ids")
    if ids is not None and (not isinstance(ids, np.ndarray) or ids.dtype.kind not in "iu"):
        return "'prompt_text_ids' is not an integer array"
    text = voice.get("prompt_text")
    if text is not None and (not isinstance(text, np.ndarray) or text.dtype.kind != "U"):
        return "'prompt_text' is not a string"
    return None


def load_voice(bundle, name: str) -> dict[str, np.ndarray]:
    entry = bundle.manifest.get("voices", {}).get(name)
    if entry is None:
        raise VoiceError(f"{bundle.root}: no voice {name!r} (known: {', '.join(sorted(bundle.manifest.get('voices', {}))) or 'none'}; "
                         "bake one with `sentis-tts voice add`)")
    path = bundle.root / entry["file"]
    fix = f"re-bake it with `sentis-tts voice add --overwrite --name {name}`"
    try:
        with np.load(path, allow_pickle=False) as z:
            voice = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, AttributeError) as e:
        raise VoiceError(f"{path}: voice {name!r} is not a readable .npz of arrays ({' '.join(str(e).split())[:120]}; {fix})") from None
    problem = voice_problem(voice, bundle.manifest.get("family", "cosyvoice2"))
    if problem:
        raise VoiceError(f"{path}: voice {name!r} is malformed: {problem} ({fix})")
    return voice


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def add_voice_to_bundle(root: str | Path, name: str, voice: dict[str, np.ndarray], *, source: str,
                        overwrite: bool = False, extra: dict | None = None) -> dict:
    """Write voices/<name>.npz and register it (manifest `voices` + `files` with sha256).
    The voice file and then manifest.json are each replaced atomically."""
    from .bundle import read_manifest

    check_voice_name(name)
    root = Path(root)
    mpath = root / "manifest.json"
    manifest = read_manifest(root)
    problem = voice_problem(voice, manifest.get("family", "cosyvoice2"))
    if problem:  # validated before anything is written: a bad voice never replaces a good one
        raise VoiceError(f"voice {name!r} from {source} is unusable: {problem}; nothing was written (check the prompt audio)")
    voices = manifest.setdefault("voices", {})
    if name in voices and not overwrite:
        raise VoiceError(f"{root}: voice {name!r} exists; pass --overwrite to replace it")
    rel = f"voices/{name}.npz"
    (root / "voices").mkdir(exist_ok=True)
    data = voice_bytes(voice)
    _atomic_write(root / rel, data)
    digest = hashlib.sha256(data).hexdigest()
    manifest.setdefault("files", {})[rel] = {"sha256": digest, "bytes": len(data), "component": "voices",
                                             "description": f"voice {name}"}
    entry = {"file": rel, "source": source, "prompt_text": str(voice.get("prompt_text", ""))}
    if "speech_tokens" in voice:  # CosyVoice2 voices (other families describe theirs in `extra`)
        entry.update({"n_tokens": int(voice["speech_tokens"].shape[0]), "n_mel_frames": int(voice["prompt_mel"].shape[0]),
                      "embedding_dim": int(voice["embedding"].shape[0]), "has_text_ids": "prompt_text_ids" in voice,
                      "alignment": "k = min(mel_frames // 2, tokens); prompt_mel = mel[:2k], speech_tokens = tokens[:k]"})
    entry.update(extra or {})
    voices[name] = entry
    _atomic_write(mpath, (json.dumps(manifest, indent=2) + "\n").encode())
    return entry


TextEncoder = Callable[[str], np.ndarray]
