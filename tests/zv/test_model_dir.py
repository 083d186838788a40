"""Reading ZipVoice model dirs in the published layout: detection, variant, strict keys, errors."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from exporter.errors import CheckpointError, ModelDirError
from exporter.families import detect_family
from exporter.zipvoice.model import load_model
from exporter.zipvoice.modeldir import ZipVoiceModelDir


def test_detected_as_zipvoice_with_its_variant(zv_dir, zv_distill_dir):
    assert detect_family(zv_dir).name == "zipvoice"
    md = ZipVoiceModelDir.open(zv_dir)
    assert md.config.variant == "zipvoice" and (md.config.num_step, md.config.guidance_scale) == (16, 1.0)
    d = ZipVoiceModelDir.open(zv_distill_dir)  # safetensors checkpoint
    assert d.config.variant == "zipvoice_distill" and (d.config.num_step, d.config.guidance_scale) == (8, 3.0)
    assert md.config.model.vocab_size == len(md.config.tokens) and md.config.model.pad_id == md.config.tokens["_"]


def test_checkpoint_is_the_training_scripts_layout(zv_dir):
    obj = torch.load(zv_dir / "model.pt", weights_only=True)
    assert set(obj) == {"model"} and "embed.weight" in obj["model"]


def test_strict_keys_name_the_offenders(zv_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(zv_dir, d)
    sd = torch.load(d / "model.pt", weights_only=True)["model"]
    del sd["fm_decoder.encoders.2.encoder.layers.0.norm.log_scale"]
    sd["extra.weight"] = torch.zeros(1)
    torch.save({"model": sd}, d / "model.pt")
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\): fm_decoder.encoders.2.encoder.layers.0.norm.log_scale.*"
                                              r"1 unexpected key\(s\): extra.weight"):
        load_model(ZipVoiceModelDir.open(d))


def test_bad_files_are_one_line_errors(zv_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(zv_dir, d)
    doc = json.loads((d / "model.json").read_text())
    doc["model"]["fm_decoder_dimm"] = 3
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelDirError, match="unknown model key.*fm_decoder_dimm"):
        ZipVoiceModelDir.open(d)
    shutil.copy(zv_dir / "model.json", d / "model.json")
    (d / "tokens.txt").write_text("a\t1\n")
    with pytest.raises(ModelDirError, match="no padding token '_'"):
        ZipVoiceModelDir.open(d)
    shutil.copy(zv_dir / "tokens.txt", d / "tokens.txt")
    shutil.rmtree(d / "vocos")
    with pytest.raises(ModelDirError, match="missing vocos/config.yaml"):
        ZipVoiceModelDir.open(d)
