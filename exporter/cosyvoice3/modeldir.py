"""The official Fun-CosyVoice3-0.5B(-2512) model directory.

Layout (official `CosyVoice3` class, cosyvoice/cli/cosyvoice.py)::

    cosyvoice3.yaml                      hyperpyyaml; parsed safely (exporter.hyperyaml), classes recorded
    llm.pt | llm.safetensors             CosyVoice3LM state_dict
    flow.pt | flow.safetensors           CausalMaskedDiffWithDiT state_dict
    hift.pt | hift.safetensors           CausalHiFTGenerator state_dict
    campplus.onnx                        CAM++ speaker embedding (shared with CosyVoice2)
    speech_tokenizer_v3.onnx             S3 tokenizer v3
    spk2info.pt                          (optional) built-in speakers
    CosyVoice-BlankEN/config.json        Qwen2 hyper-parameters
    CosyVoice-BlankEN/vocab.json, merges.txt (+ tokenizer_config.json)   text tokenizer

Everything but the yaml name, the config reader and the tokenizer file is the CosyVoice2 loader
(`exporter.modeldir.ModelDir`): checkpoints, strict loading, prefixes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..modeldir import ModelDir
from .config import CosyVoice3Config, parse_config

YAML_NAME = "cosyvoice3.yaml"
SPEECH_TOKENIZER = "speech_tokenizer_v3.onnx"


@dataclass
class CosyVoice3ModelDir(ModelDir):
    family = "cosyvoice3"  # exporter/families/cosyvoice3.py
    config: CosyVoice3Config  # type: ignore[assignment]
    yaml_name = YAML_NAME
    speech_tokenizer_file = SPEECH_TOKENIZER

    title = "CosyVoice3"
    parse_config = staticmethod(parse_config)

    @classmethod
    def _refuse_other_yaml(cls, root: Path) -> None:
        return None
