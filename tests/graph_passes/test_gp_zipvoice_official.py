"""`convert` on the official ZipVoice / ZipVoice-Distill ONNX exports (k2-fsa/ZipVoice
`zipvoice/bin/onnx_export.py`: legacy exporter, opset 13, and its int8 dynamic quantization),
built from tiny random-weight models with the official code. Needs the official copy (see
_zipvoice_official.py); CI has none, the hand-built graphs of test_gp_real_exports.py cover the
same five failures there."""

import numpy as np
import onnx
import pytest
from _gp_helpers import run
from _zipvoice_official import AVAILABLE, MISSING_REASON, TINY_CONFIG, export_official
from click.testing import CliRunner

from exporter.cli_graph import convert_command

pytestmark = pytest.mark.skipif(not AVAILABLE, reason=MISSING_REASON)

FEAT = TINY_CONFIG["feat_dim"]
TOL = 1e-5


@pytest.fixture(scope="module", params=["zipvoice", "zipvoice_distill"])
def exports(request, tmp_path_factory):
    pytest.importorskip("onnxruntime.quantization", reason="the official script quantizes with onnxruntime.quantization")
    out = tmp_path_factory.mktemp(request.param)
    return export_official(out, distill=request.param == "zipvoice_distill")


def _convert(src, dst, *args):
    res = CliRunner().invoke(convert_command, [str(src), str(dst), *args])
    return res


def _text_feeds(rng, n_tok, n_prompt):
    return [{"tokens": rng.integers(1, TINY_CONFIG["vocab_size"], (1, n_tok)),
             "prompt_tokens": rng.integers(1, TINY_CONFIG["vocab_size"], (1, n_prompt)),
             "prompt_features_len": np.array(pfl), "speed": np.array(speed, np.float32)}
            for pfl, speed in ((n_prompt * 4, 1.0), (n_prompt * 7, 1.3), (n_prompt * 3 + 1, 0.8))]


@pytest.mark.parametrize("n_tok, n_prompt", [(40, 20), (17, 9)])
def test_text_encoder_converts_with_identical_outputs(exports, tmp_path, n_tok, n_prompt):
    dst = tmp_path / "te.onnx"
    res = _convert(exports["text_encoder"], dst, "--input-shape", f"tokens=1,{n_tok}", "--input-shape",
                   f"prompt_tokens=1,{n_prompt}", "--allow-dynamic", "text_condition_dim1")
    assert res.exit_code == 0, res.output
    assert "symbolic dim 'T' split" in res.output
    assert "output 'text_condition' dim 1 depends on input values" in res.output  # reported, not declared fixed
    out = onnx.load(str(dst))
    assert not {"If", "Loop"} & {n.op_type for n in out.graph.node}
    orig = onnx.load(str(exports["text_encoder"]))
    for feeds in _text_feeds(np.random.default_rng(n_tok), n_tok, n_prompt):
        a, b = run(out, feeds)[0], run(orig, feeds)[0]
        assert a.shape == b.shape and float(np.max(np.abs(a - b))) <= TOL


@pytest.mark.parametrize("t", [100, 37])
def test_fm_decoder_converts_with_identical_outputs(exports, tmp_path, t):
    dst = tmp_path / "fm.onnx"
    shapes = [f"{k}=1,{t},{FEAT}" for k in ("x", "text_condition", "speech_condition")]
    res = _convert(exports["fm_decoder"], dst, *[a for s in shapes for a in ("--input-shape", s)])
    assert res.exit_code == 0, res.output
    assert "OK for Sentis" in res.output
    out = onnx.load(str(dst))
    assert [d.dim_value for d in out.graph.output[0].type.tensor_type.shape.dim] == [1, t, FEAT]
    orig = onnx.load(str(exports["fm_decoder"]))
    rng = np.random.default_rng(t)
    for tv in (0.2, 0.5, 0.9):  # both sides of the t > 0.5 branch of the official CFG wrapper
        feeds = {"t": np.array(tv, np.float32), "guidance_scale": np.array(1.5, np.float32)}
        feeds.update({k: rng.standard_normal((1, t, FEAT)).astype(np.float32) for k in ("x", "text_condition", "speech_condition")})
        a, b = run(out, feeds)[0], run(orig, feeds)[0]
        assert a.shape == b.shape == (1, t, FEAT) and float(np.max(np.abs(a - b))) <= TOL


def test_int8_exports_convert_and_name_the_ops_sentis_cannot_keep(exports, tmp_path):
    dst = tmp_path / "fm8.onnx"
    shapes = [f"{k}=1,50,{FEAT}" for k in ("x", "text_condition", "speech_condition")]
    res = _convert(exports["fm_decoder_int8"], dst, *[a for s in shapes for a in ("--input-shape", s)])
    assert res.exit_code == 1 and dst.exists(), res.output  # written, parity checked, checker violations
    assert "parity vs the input model" in res.output
    assert "DynamicQuantizeLinear is not supported" in res.output and "MatMulInteger is not supported" in res.output
    dst = tmp_path / "te8.onnx"
    res = _convert(exports["text_encoder_int8"], dst, "--input-shape", "tokens=1,12", "--input-shape", "prompt_tokens=1,6")
    assert res.exit_code == 1 and "MatMulInteger is not supported" in res.output, res.output
