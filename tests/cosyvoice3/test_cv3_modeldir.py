"""CosyVoice3 model directories: detection, the safe config reader (classes recorded and checked),
the official key tables, and the LM's CosyVoice3 head layout."""
from __future__ import annotations

import shutil

import pytest
import torch

from exporter.errors import ModelDirError
from exporter.families import detect_family, open_model_dir


def test_detected_and_read(cv3_model_dir, cv3_md):
    fam = detect_family(cv3_model_dir)
    assert fam.name == "cosyvoice3" and cv3_md.family == "cosyvoice3"
    c = cv3_md.config
    assert c.classes["llm"] == "cosyvoice.llm.llm.CosyVoice3LM"
    assert c.classes["flow.decoder.estimator"] == "cosyvoice.flow.DiT.dit.DiT"
    assert (c.llm.speech_vocab, c.llm.eos_token, c.llm.fill_token, len(c.llm.stop_token_ids)) == (6761, 6562, 6564, 200)
    assert (c.llm.sos_token, c.llm.task_token, c.llm.min_len_masked_token) == (6561, 6563, 6561)
    assert c.flow.estimator.static_chunk_size == 50 and c.flow.chunk_tokens == 25  # !ref <chunk_size> * <token_mel_ratio>
    assert c.hift.conv_pre_look_right == 4 and c.mel.fmax is None
    assert fam.constants(cv3_md)["yaml_classes"] == c.classes
    assert "speech_tokenizer_v3.onnx" in cv3_md.inventory()


def test_yaml_naming_other_classes_is_refused(cv3_model_dir, tmp_path):
    d = tmp_path / "md"
    shutil.copytree(cv3_model_dir, d)
    y = d / "cosyvoice3.yaml"
    y.write_text(y.read_text().replace("CausalHiFTGenerator", "HiFTGenerator"))
    with pytest.raises(ModelDirError, match=r"not a CosyVoice3 configuration — hift: cosyvoice.hifigan.generator.HiFTGenerator"):
        open_model_dir(d)


def test_cosyvoice2_loader_names_cosyvoice3(cv3_model_dir):
    from exporter.modeldir import ModelDir

    with pytest.raises(ModelDirError, match="family cosyvoice3"):
        ModelDir.open(cv3_model_dir)


def test_checkpoints_follow_the_key_tables(cv3_md):
    from exporter.cosyvoice3.keys import ROTARY_KEY, flow_keys, hift_keys, llm_keys, rotary_inv_freq
    from exporter.llm.keys import LM_HEAD_KEY

    c = cv3_md.config
    for name, table in (("llm", llm_keys(c.llm)), ("flow", flow_keys(c.flow)), ("hift", hift_keys(c.hift))):
        sd = cv3_md.load_checkpoint(name)
        assert {k: tuple(v.shape) for k, v in sd.items()} == table, name
    assert "llm_embedding.weight" not in llm_keys(c.llm) and "llm_decoder.bias" not in llm_keys(c.llm)
    assert LM_HEAD_KEY in llm_keys(c.llm)
    assert torch.equal(cv3_md.load_checkpoint("flow")[ROTARY_KEY], rotary_inv_freq(c.flow.estimator.dim_head))


def test_lm_specials_are_speech_embedding_rows(cv3_md):
    from exporter.cosyvoice3.llm_export import load_model

    m = load_model(cv3_md)
    assert not hasattr(m, "llm_embedding") or "llm_embedding.weight" not in m.state_dict()
    assert m.llm_decoder.bias is None and m.llm_decoder.out_features == 6761
    w = m.speech_embedding.weight
    seq = m.lm_input(torch.tensor([3, 4]), torch.tensor([7]))[0]
    assert torch.equal(seq[0], w[6561]) and torch.equal(seq[3], w[6563]) and torch.equal(seq[4], w[7])
    assert torch.equal(m.llm_embedding.weight, w[[6561, 6563]])
