"""The official CosyVoice2-0.5B model directory (real loading path, used by the CLI and tests).

Layout::

    cosyvoice2.yaml                      hyperpyyaml; parsed safely (exporter.hyperyaml)
    llm.pt | llm.safetensors             Qwen2LM state_dict
    flow.pt | flow.safetensors           CausalMaskedDiffWithXvec state_dict
    hift.pt | hift.safetensors           HiFTGenerator state_dict
    campplus.onnx                        CAM++ speaker embedding
    speech_tokenizer_v2.onnx             S3 tokenizer v2
    spk2info.pt                          (optional) built-in speakers
    CosyVoice-BlankEN/config.json        Qwen2 hyper-parameters
    CosyVoice-BlankEN/vocab.json, merges.txt (+ tokenizer_config.json)   text tokenizer
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import hyperyaml
from .checkpoint import load_state_dict
from .config import CosyVoice2Config, Qwen2Config, parse_config
from .errors import ModelDirError

YAML_NAME = "cosyvoice2.yaml"
QWEN_DIR = "CosyVoice-BlankEN"
CHECKPOINTS = ("llm", "flow", "hift")
CHECKPOINT_SUFFIXES = (".pt", ".safetensors")
# prefixes some official/derived checkpoints carry on every key
STRIP_PREFIXES = {"hift": ("generator.", "module."), "llm": ("module.",), "flow": ("module.",)}


@dataclass
class ModelDir:
    family = "cosyvoice2"  # exporter/families/cosyvoice2.py
    yaml_name = YAML_NAME  # class-level file names (a family subclass, e.g. CosyVoice3, sets its own)
    speech_tokenizer_file = "speech_tokenizer_v2.onnx"
    root: Path
    config: CosyVoice2Config
    yaml: dict = field(repr=False)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> "ModelDir":
        root = Path(path)
        if not root.exists():
            raise ModelDirError(f"model directory not found: {root}")
        if not root.is_dir():
            raise ModelDirError(f"not a directory: {root} (pass the folder that holds {cls.yaml_name})")
        yaml_path = root / cls.yaml_name
        if not yaml_path.is_file():
            cls._refuse_other_yaml(root)
            raise ModelDirError(f"{root}: missing {cls.yaml_name} — is this a {cls.title} model directory?")
        qwen_json = root / QWEN_DIR / "config.json"
        if not qwen_json.is_file():
            raise ModelDirError(f"{root}: missing {QWEN_DIR}/config.json (the Qwen2 hyper-parameters)")
        qwen = Qwen2Config.from_json(qwen_json)
        doc = hyperyaml.load(yaml_path, overrides={"qwen_pretrain_path": str(root / QWEN_DIR)})
        return cls(root=root, config=cls.parse_config(doc, qwen, str(yaml_path)), yaml=doc)

    title = "CosyVoice2"
    parse_config = staticmethod(parse_config)  # (yaml doc, Qwen2Config, where) -> the family's config

    @classmethod
    def _refuse_other_yaml(cls, root: Path) -> None:
        if (root / "cosyvoice.yaml").is_file():
            raise ModelDirError(f"{root} holds cosyvoice.yaml (CosyVoice 1), not {YAML_NAME}: sentis-tts supports CosyVoice2")
        if (root / "cosyvoice3.yaml").is_file():
            raise ModelDirError(f"{root} holds cosyvoice3.yaml: a CosyVoice3 directory (family cosyvoice3), not CosyVoice2")

    # ---- files ------------------------------------------------------------------------------
    def checkpoint_path(self, name: str) -> Path:
        if name not in CHECKPOINTS:
            raise ValueError(f"unknown checkpoint {name!r}; one of {CHECKPOINTS}")
        found = [self.root / f"{name}{s}" for s in CHECKPOINT_SUFFIXES if (self.root / f"{name}{s}").is_file()]
        if not found:
            raise ModelDirError(f"{self.root}: missing {name}.pt (or {name}.safetensors)")
        if len(found) > 1:
            raise ModelDirError(
                f"{self.root}: both {found[0].name} and {found[1].name} exist; keep one so it is clear which to export"
            )
        return found[0]

    def load_checkpoint(self, name: str) -> dict[str, torch.Tensor]:
        return load_state_dict(self.checkpoint_path(name), strip_prefixes=STRIP_PREFIXES.get(name, ()))

    def _require(self, rel: str, what: str) -> Path:
        p = self.root / rel
        if not p.is_file():
            raise ModelDirError(f"{self.root}: missing {rel} ({what})")
        return p

    @property
    def campplus_onnx(self) -> Path:
        return self._require("campplus.onnx", "CAM++ speaker embedding model")

    @property
    def speech_tokenizer_onnx(self) -> Path:
        return self._require(self.speech_tokenizer_file, "speech tokenizer model")

    @property
    def tokenizer_dir(self) -> Path:
        self._require(f"{QWEN_DIR}/vocab.json", "Qwen2 tokenizer vocabulary")
        self._require(f"{QWEN_DIR}/merges.txt", "Qwen2 tokenizer merges")
        return self.root / QWEN_DIR

    @property
    def spk2info(self) -> Path | None:
        p = self.root / "spk2info.pt"
        return p if p.is_file() else None

    def inventory(self) -> dict[str, str]:
        """What is present: file -> 'ok' / 'missing' (for `sentis-tts inspect`)."""
        out: dict[str, str] = {self.yaml_name: "ok", f"{QWEN_DIR}/config.json": "ok"}
        for name in CHECKPOINTS:
            try:
                out[name] = self.checkpoint_path(name).name
            except ModelDirError as e:
                out[name] = f"missing ({e})"
        for rel in ("campplus.onnx", self.speech_tokenizer_file, f"{QWEN_DIR}/vocab.json", f"{QWEN_DIR}/merges.txt", "spk2info.pt"):
            out[rel] = "ok" if (self.root / rel).is_file() else "missing"
        return out
