"""Importing the official k2-fsa/ZipVoice and gemelo-ai/vocos modules from their scratch copies
(/tmp/zipvoice_official, /tmp/vocos_official), shared by tests/zv/test_official.py and
bench/zipvoice.py. Their import-time dependencies that cannot load here (torch.utils.tensorboard;
torchaudio with torch 2.13, encodec) get placeholder modules only while importing."""
from __future__ import annotations

import sys
import types
from pathlib import Path

ZV = Path("/tmp/zipvoice_official")
VOCOS = Path("/tmp/vocos_official")


def _placeholders(names: dict[str, dict]) -> list[str]:
    placed = []
    for name, attrs in names.items():
        if name not in sys.modules:
            mod = types.ModuleType(name)
            for k, v in attrs.items():
                setattr(mod, k, v)
            sys.modules[name] = mod
            placed.append(name)
    return placed


def _imported(root: Path, placeholders: dict[str, dict], load):
    """`load()` with `root` on sys.path and the placeholder modules present, both removed after."""
    placed = _placeholders(placeholders)
    sys.path.insert(0, str(root))
    try:
        return load()
    finally:
        sys.path.remove(str(root))
        for n in placed:
            sys.modules.pop(n, None)


def import_zipvoice():
    """-> (ZipVoice, ZipVoiceDistill, make_pad_mask) of the official copy."""
    def load():
        from zipvoice.models.zipvoice import ZipVoice
        from zipvoice.models.zipvoice_distill import ZipVoiceDistill
        from zipvoice.utils.common import make_pad_mask
        return ZipVoice, ZipVoiceDistill, make_pad_mask
    return _imported(ZV, {"torch.utils.tensorboard": {"SummaryWriter": object}}, load)


def import_vocos():
    """-> (VocosBackbone, ISTFTHead) of the official copy."""
    def load():
        from vocos.heads import ISTFTHead
        from vocos.models import VocosBackbone
        return VocosBackbone, ISTFTHead
    return _imported(VOCOS, {"torchaudio": {}, "torchaudio.functional": {},
                             "torchaudio.functional.functional": {"_hz_to_mel": None, "_mel_to_hz": None},
                             "encodec": {"EncodecModel": object}, "encodec.utils": {"convert_audio": None}}, load)


def import_infer_utils():
    """The official zipvoice.utils.infer module (chunking, cross_fade_concat); torchaudio and pydub
    are placeholders while importing (its silence helpers are not used here)."""
    def load():
        from zipvoice.utils import infer
        return infer
    return _imported(ZV, {"torchaudio": {}, "pydub": {"AudioSegment": object},
                          "pydub.silence": {"detect_leading_silence": None, "split_on_silence": None}}, load)


def official_model(classes, md):
    """The official ZipVoice (or Distill) built from the model dir's config, its checkpoint loaded strictly."""
    ZipVoice, ZipVoiceDistill, _ = classes
    kw = {k: list(v) if isinstance(v, tuple) else v for k, v in md.config.model.__dict__.items()}
    m = (ZipVoiceDistill if md.config.variant == "zipvoice_distill" else ZipVoice)(**kw).eval()
    m.load_state_dict(md.state_dict(), strict=True)
    return m


def official_vocos(classes, md):
    """(backbone, head) of the official Vocos with the model dir's vocoder weights."""
    VocosBackbone, ISTFTHead = classes
    v = md.config.vocos
    sd = md.load_vocos()
    bb = VocosBackbone(v.input_channels, v.dim, v.intermediate_dim, v.num_layers).eval()
    hd = ISTFTHead(v.dim, v.n_fft, v.hop_length, padding=v.padding).eval()
    bb.load_state_dict({k[len("backbone."):]: t for k, t in sd.items() if k.startswith("backbone.")}, strict=True)
    hd.load_state_dict({k[len("head."):]: t for k, t in sd.items() if k.startswith("head.")}, strict=True)
    return bb, hd
