"""Voices in a bundle: bake from a WAV (runtime_ref.prompt, onnxruntime only) or import the
official `spk2info.pt` (torch.load weights_only=True)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import SentisTTSError


def add_voice(bundle_path: str | Path, name: str, wav: str | Path, *, text: str = "", overwrite: bool = False) -> dict:
    from runtime_ref.bundle import Bundle
    from runtime_ref.families import runtime_family
    from runtime_ref.prompt import add_voice_to_bundle, check_voice_name

    check_voice_name(name)
    bundle = Bundle.open(bundle_path, verify=False)
    if name in bundle.manifest.get("voices", {}) and not overwrite:
        raise SentisTTSError(f"{bundle_path}: voice {name!r} exists; pass --overwrite to replace it")
    family = runtime_family(bundle.manifest)
    voice = family.bake_voice_from_wav(bundle, wav, text=text)
    return add_voice_to_bundle(bundle_path, name, voice, source=f"wav:{Path(wav).name}", overwrite=overwrite,
                               extra=family.voice_entry(voice))


def _np(v, dtype) -> np.ndarray:
    import torch

    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().float().numpy() if dtype == np.float32 else v.detach().cpu().numpy()
    return np.asarray(v).astype(dtype)


def voice_from_spk2info_entry(entry: dict) -> dict[str, np.ndarray]:
    """Official spk2info entry -> voice arrays. Accepts the SFT layout ('embedding', 'speech_token',
    'speech_feat') and the zero-shot layout written by add_zero_shot_spk ('flow_embedding',
    'flow_prompt_speech_token', 'prompt_speech_feat', 'prompt_text')."""
    def pick(*keys):
        for k in keys:
            if k in entry and entry[k] is not None:
                return entry[k]
        return None

    emb = pick("flow_embedding", "embedding", "llm_embedding")
    if emb is None:
        raise SentisTTSError(f"spk2info entry has no speaker embedding (keys: {', '.join(map(str, entry))})")
    voice = {"embedding": _np(emb, np.float32).reshape(-1)}
    tok, feat = pick("flow_prompt_speech_token", "speech_token", "llm_prompt_speech_token"), pick("prompt_speech_feat", "speech_feat")
    tokens = _np(tok, np.int32).reshape(-1) if tok is not None else np.zeros((0,), np.int32)
    mel = _np(feat, np.float32).reshape(-1, _np(feat, np.float32).shape[-1]) if feat is not None else np.zeros((0, 80), np.float32)
    k = min(mel.shape[0] // 2, tokens.shape[0])
    voice["speech_tokens"], voice["prompt_mel"] = tokens[:k], mel[: 2 * k]
    text = pick("prompt_text")
    voice["prompt_text"] = np.array("")
    if text is not None and not isinstance(text, str):
        voice["prompt_text_ids"] = _np(text, np.int32).reshape(-1)
    elif isinstance(text, str):
        voice["prompt_text"] = np.array(text)
    return voice


def _ascii_name(spk: str) -> str:
    """Non-ASCII speaker ids (e.g. '中文女') -> 'spk_<ascii part>_<6 hex of sha1>' (stable, distinct)."""
    import hashlib

    part = "".join(c if c.isascii() and c.isalnum() else "_" for c in spk)[:40].strip("_")
    return f"spk_{part + '_' if part else ''}{hashlib.sha1(spk.encode()).hexdigest()[:6]}"


def import_spk2info(bundle_path: str | Path, spk2info: str | Path, *, names: list[str] | None = None,
                    overwrite: bool = False) -> list[str]:
    import torch

    from runtime_ref.prompt import VOICE_NAME, add_voice_to_bundle

    try:
        data = torch.load(str(spk2info), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise SentisTTSError(f"{spk2info}: cannot load with weights_only=True ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(data, dict) or not data:
        raise SentisTTSError(f"{spk2info}: expected a non-empty dict speaker -> entry")
    wanted = list(data) if not names else names
    missing = [n for n in wanted if n not in data]
    if missing:
        raise SentisTTSError(f"{spk2info}: no speaker(s) {', '.join(missing)}; known: {', '.join(map(str, list(data)[:10]))}")
    done = []
    for spk in wanted:
        name = str(spk) if VOICE_NAME.match(str(spk)) else _ascii_name(str(spk))
        try:
            voice = voice_from_spk2info_entry(data[spk]) if isinstance(data[spk], dict) else None
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, RuntimeError) as e:
            raise SentisTTSError(f"{spk2info}: speaker {spk!r} is malformed ({type(e).__name__}: {' '.join(str(e).split())[:120]}); "
                                 "use the official spk2info.pt") from None
        if voice is None:
            raise SentisTTSError(f"{spk2info}: speaker {spk!r} is a {type(data[spk]).__name__}, not a dict of arrays; use the official spk2info.pt")
        add_voice_to_bundle(bundle_path, name, voice, source=f"spk2info:{spk}", overwrite=overwrite)
        done.append(name)
    return done
