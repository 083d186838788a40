"""speech_tokenizer_v3 (CosyVoice3's prompt-side tokenizer) through the v2 mapping/re-export
(exporter/speech_tokenizer: weights mapped from the official-layout ONNX into the PyTorch port, one
static graph with the Whisper log-mel in-graph, 30 s buffer). The fixture ONNX has the v3 weight
layout that s3tokenizer 0.3.0's `onnx2torch_v3` reads (decomposed LayerNorm, Constant-node weights,
12 blocks at full size); s3tokenizer's `S3TokenizerV3` is the outside oracle (skipped with the
reason where the package is absent; CI installs it in .ci/run)."""
from __future__ import annotations

import pytest
import torch

from exporter.speech_tokenizer.export import test_signal as speech_signal
from exporter.speech_tokenizer.fixture import SIZES_V3, random_tokenizer
from exporter.speech_tokenizer.onnx_weights import load_tokenizer, state_dict_from_onnx

from prompt.conftest import import_s3tokenizer  # (tests/prompt: the shared torchaudio-placeholder import)


@pytest.fixture(scope="module")
def v3_onnx(cv3_md):
    return cv3_md.speech_tokenizer_onnx


def test_v3_file_in_the_model_dir_and_mapping_recovers_the_fixture_weights(v3_onnx):
    assert v3_onnx.name == "speech_tokenizer_v3.onnx"
    sd, cfg = state_dict_from_onnx(v3_onnx)
    assert (cfg.n_state, cfg.n_head, cfg.n_layer) == (128, 2, 2) and abs(cfg.attn_ln_eps - 1e-5) < 1e-9
    ref = random_tokenizer(SIZES_V3["tiny"], seed=3).state_dict()  # fixture seed = model seed + 3
    assert set(sd) == set(ref)
    for k, v in ref.items():
        assert torch.equal(sd[k], v), k


def test_tokens_identical_to_s3tokenizer_v3(v3_onnx):
    s3tok = import_s3tokenizer()
    from s3tokenizer.model_v3 import ModelConfigV3, S3TokenizerV3
    from s3tokenizer.utils import onnx2torch_v3

    theirs_sd = onnx2torch_v3(str(v3_onnx))
    ours_sd, _ = state_dict_from_onnx(v3_onnx)
    assert set(theirs_sd) == set(ours_sd)
    for k in ours_sd:
        assert torch.equal(theirs_sd[k].float(), ours_sd[k]), k
    theirs = S3TokenizerV3("speech_tokenizer_v3", ModelConfigV3(n_audio_state=128, n_audio_head=2, n_audio_layer=2))
    theirs.load_state_dict(theirs_sd, strict=True)
    theirs.eval()
    ours = load_tokenizer(v3_onnx)
    for sec, seed in ((0.04, 0), (2.3, 1), (7.9, 2)):  # 1 token, odd lengths
        wav = torch.from_numpy(speech_signal(int(sec * 16000), seed))
        mel = s3tok.log_mel_spectrogram(wav).unsqueeze(0)
        n = torch.tensor([mel.shape[-1]])
        ref, ref_len = theirs.quantize(mel, n)
        with torch.inference_mode():
            got, got_len = ours(mel, n.int())
        assert int(ref_len[0]) == int(got_len[0]) > 0
        assert torch.equal(ref.int(), got), sec
    assert len(torch.unique(got)) > 10  # the random weights exercise the FSQ levels


# the bundle graph (static 30 s, exact token parity vs PyTorch, checker) and voice baking with it:
# tests/cosyvoice3/test_cv3_demo.py (the demo exports and bakes with speech_tokenizer_v3)
