"""A ZipVoice model directory in the published layout (k2-fsa/ZipVoice on Hugging Face, and what
`train_zipvoice*.py` writes), read as `infer_zipvoice.py --model-dir` reads it::

    model.json                       {"model": ZipVoice kwargs, "feature": {"type": "vocos", …}}
    tokens.txt                       token<TAB>id
    model.pt | model.safetensors     ZipVoice / ZipVoiceDistill state_dict (.pt: under "model")
    vocos/config.yaml                Vocos hyper-parameters (`--vocoder-path` layout of
    vocos/pytorch_model.bin          charactr/vocos-mel-24khz)

ZipVoice vs ZipVoice-Distill is read from the checkpoint (the distilled fm decoder has
`fm_decoder.guidance_scale_embed.weight`), as the two published checkpoints differ only there.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoint import load_state_dict
from ..errors import ModelDirError
from ..hyperyaml import read_utf8
from .config import VARIANT_DEFAULTS, ZipVoiceConfig, detect_tokenizer, parse_model_json, parse_vocos_yaml, read_tokens

MODEL_JSON = "model.json"
TOKENS = "tokens.txt"
CHECKPOINT = "model"
VOCOS_DIR = "vocos"
DISTILL_KEY = "fm_decoder.guidance_scale_embed.weight"


@dataclass
class ZipVoiceModelDir:
    family = "zipvoice"  # exporter/families/zipvoice.py
    root: Path
    config: ZipVoiceConfig
    _state: dict | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> "ZipVoiceModelDir":
        root = Path(path)
        for rel, what in ((MODEL_JSON, "the model hyper-parameters"), (TOKENS, "the token table")):
            if not (root / rel).is_file():
                raise ModelDirError(f"{root}: missing {rel} ({what}) — is this a ZipVoice model directory?")
        try:
            doc = json.loads(read_utf8(root / MODEL_JSON))
        except RecursionError:
            raise ModelDirError(f"{root / MODEL_JSON}: nested too deeply to read (use the official model.json)") from None
        except json.JSONDecodeError as e:
            raise ModelDirError(f"{root / MODEL_JSON}: not valid JSON (line {e.lineno}): {e.msg}") from None
        model, feature = parse_model_json(doc, str(root / MODEL_JSON))
        tokens = read_tokens(root / TOKENS)
        model.vocab_size, model.pad_id = len(tokens), tokens["_"]
        vocos_yaml = root / VOCOS_DIR / "config.yaml"
        if not vocos_yaml.is_file():
            raise ModelDirError(f"{root}: missing {VOCOS_DIR}/config.yaml (the Vocos vocoder, as infer_zipvoice.py --vocoder-path reads it)")
        vocos = parse_vocos_yaml(vocos_yaml)
        md = cls(root=root, config=ZipVoiceConfig(variant="zipvoice", model=model, vocos=vocos, tokens=tokens,
                                                  sampling_rate=int(feature.get("sampling_rate", 24000)),
                                                  tokenizer=detect_tokenizer(tokens)))
        keys = md.checkpoint_keys()
        variant = "zipvoice_distill" if DISTILL_KEY in keys else "zipvoice"
        md.config.variant = variant
        md.config.num_step = VARIANT_DEFAULTS[variant]["num_step"]
        md.config.guidance_scale = VARIANT_DEFAULTS[variant]["guidance_scale"]
        return md

    # ---- files ------------------------------------------------------------------------------
    def checkpoint_path(self, name: str = CHECKPOINT) -> Path:
        if name == "vocos":
            p = self.root / VOCOS_DIR / "pytorch_model.bin"
            if not p.is_file():
                raise ModelDirError(f"{self.root}: missing {VOCOS_DIR}/pytorch_model.bin (Vocos weights)")
            return p
        found = [self.root / f"model{s}" for s in (".pt", ".safetensors") if (self.root / f"model{s}").is_file()]
        if not found:
            raise ModelDirError(f"{self.root}: missing model.pt (or model.safetensors)")
        if len(found) > 1:
            raise ModelDirError(f"{self.root}: both model.pt and model.safetensors exist; keep one so it is clear which to export")
        return found[0]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The ZipVoice checkpoint (read once; torch.load(weights_only=True) or safetensors)."""
        if self._state is None:
            self._state = load_state_dict(self.checkpoint_path(), strip_prefixes=("module.",))
        return self._state

    def checkpoint_keys(self) -> set[str]:
        return set(self.state_dict())

    def component_state(self, prefix: str) -> dict[str, torch.Tensor]:
        """Keys under `prefix.` with the prefix removed (e.g. 'fm_decoder')."""
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.state_dict().items() if k.startswith(p)}

    def load_vocos(self) -> dict[str, torch.Tensor]:
        return load_state_dict(self.checkpoint_path("vocos"))

    def inventory(self) -> dict[str, str]:
        out = {MODEL_JSON: "ok", TOKENS: f"ok ({len(self.config.tokens)} tokens, {self.config.tokenizer} front-end)"}
        try:
            out["model"] = f"{self.checkpoint_path().name} ({self.config.variant})"
        except ModelDirError as e:
            out["model"] = f"missing ({e})"
        for rel in (f"{VOCOS_DIR}/config.yaml", f"{VOCOS_DIR}/pytorch_model.bin"):
            out[rel] = "ok" if (self.root / rel).is_file() else "missing"
        return out
