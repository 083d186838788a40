"""Fun-CosyVoice3 model directories in the official layout with seeded random weights
(`tiny` for tests and `demo --family cosyvoice3`, `full` = the real 0.5B dimensions for benchmarks).

The yaml is `examples/libritts/cosyvoice3/conf/cosyvoice3.yaml`'s inference part in the official
hyperpyyaml format (class paths, argument names, tags); the tokenizer, config.json writer and
CAM++ hook are the CosyVoice2 fixture's (exporter/fixtures.py)."""
from __future__ import annotations

from pathlib import Path

from runtime_ref.text.special_tokens import special_token_list

from ..fixtures import SIZES as CV2_SIZES, YAML_TEMPLATE as CV2_TEMPLATE, write_model_dir
from .config import parse_config
from .keys import flow_random_checkpoint, hift_random_checkpoint, llm_random_checkpoint
from .modeldir import SPEECH_TOKENIZER, YAML_NAME

SIZES: dict[str, dict] = {
    # extra_text_ids: room in the tiny text table for the ~280 tokens CosyVoice3Tokenizer adds
    "tiny": dict(qwen=CV2_SIZES["tiny"]["qwen"], lookahead_channels=64, dit_dim=64, dit_depth=2, dit_heads=4,
                 dit_dim_head=16, dit_ff_mult=2, hift_base=32, hift_cond=32, bpe_merges=300,
                 extra_text_ids=len(special_token_list("cosyvoice3"))),
    "full": dict(qwen=CV2_SIZES["full"]["qwen"], lookahead_channels=1024, dit_dim=1024, dit_depth=22, dit_heads=16,
                 dit_dim_head=64, dit_ff_mult=2, hift_base=512, hift_cond=512, bpe_merges=300, qwen_vocab_size=151936),
}

_CV3_FLOW = """\
flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithDiT
    input_size: 80
    output_size: 80
    spk_embed_dim: !ref <spk_embed_dim>
    output_type: 'mel'
    vocab_size: 6561
    input_frame_rate: !ref <token_frame_rate>
    only_mask_loss: True
    token_mel_ratio: !ref <token_mel_ratio>
    pre_lookahead_len: 3
    pre_lookahead_layer: !new:cosyvoice.transformer.upsample_encoder.PreLookaheadLayer
        in_channels: 80
        channels: {lookahead_channels}
        pre_lookahead_len: 3
{cfm}
        estimator: !new:cosyvoice.flow.DiT.dit.DiT
            dim: {dit_dim}
            depth: {dit_depth}
            heads: {dit_heads}
            dim_head: {dit_dim_head}
            ff_mult: {dit_ff_mult}
            mel_dim: 80
            mu_dim: 80
            spk_dim: 80
            out_channels: 80
            static_chunk_size: !ref <chunk_size> * <token_mel_ratio>
            num_decoding_left_chunks: !ref <num_decoding_left_chunks>

"""


def _yaml_template() -> str:
    """The official cosyvoice3.yaml (inference part): the CosyVoice2 fixture template with what the
    CosyVoice3 recipe changes — the LM, flow, vocoder and f0 classes, the DiT flow section,
    conv_pre_look_right, tokenizer version cosyvoice3 and fmax null."""
    t = CV2_TEMPLATE
    head, rest = t.split("flow: !new:", 1)
    cfm = rest[rest.index("    decoder: !new:cosyvoice.flow.flow_matching.CausalConditionalCFM"):rest.index("        estimator:")].rstrip("\n")
    hift = rest[rest.index("hift: !new:"):]
    head = head.replace("!new:cosyvoice.llm.llm.Qwen2LM", "!new:cosyvoice.llm.llm.CosyVoice3LM")
    hift = (hift.replace("generator.HiFTGenerator", "generator.CausalHiFTGenerator")
            .replace("    audio_limit: 0.99\n", "    audio_limit: 0.99\n    conv_pre_look_right: 4\n")
            .replace("f0_predictor.ConvRNNF0Predictor", "f0_predictor.CausalConvRNNF0Predictor")
            .replace("    skip_special_tokens: True\n", "    skip_special_tokens: True\n    version: cosyvoice3\n")
            .replace("    fmax: 8000\n", "    fmax: null\n"))
    return head + _CV3_FLOW.replace("{cfm}", cfm.replace("{", "{{").replace("}", "}}")) + hift


YAML_TEMPLATE = _yaml_template()


def build_model_dir(dst: str | Path, size: str = "tiny", seed: int = 0, *, fmt: str = "pt", with_onnx: bool = True,
                    overwrite: bool = False) -> Path:
    """Write a complete CosyVoice3 model directory (temp sibling + rename: never half-written)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}")
    return write_model_dir(dst, SIZES[size], size=size, seed=seed, yaml_name=YAML_NAME, template=YAML_TEMPLATE,
                           parse=parse_config, checkpoints={"llm": llm_random_checkpoint, "flow": flow_random_checkpoint,
                                                            "hift": hift_random_checkpoint},
                           onnx_files=("campplus.onnx", SPEECH_TOKENIZER) if with_onnx else (), fmt=fmt, overwrite=overwrite)
