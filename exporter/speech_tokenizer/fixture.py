"""Writes an ONNX file in the structure of the official `speech_tokenizer_v2.onnx` from our
PyTorch port with random weights (fixture builder hook).

What is reproduced from the official file (fact sheet §2.3/2.4): I/O `feats` (1,128,T) float32
with a dynamic T, `feats_length` (1,) int32 -> `indices` (1,L) int32; node names of the
consumers of every block weight (`/blocks.{i}/attn/query/MatMul`, `/blocks.{i}/mlp/mlp.0/Add`,
`/blocks.{i}/attn_ln/LayerNormalization`, `/blocks.{i}/attn/fsmn_block/Conv`, ...), 2-D MatMul
weights stored (in, out), and the anonymous initializer names of the conv and FSQ weights
(`onnx::Conv_2216..2219`, `onnx::MatMul_2536`, `quantizer.project_in.bias`). The graph's
internal op pattern (masks etc.) is ours; only the weight-carrying structure is mirrored.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
import torch.nn as nn

from .model import S3TokenizerV2, S3TokenizerV2Config, conv_out_len, length_mask, MASK_BIAS

SIZES = {
    "tiny": S3TokenizerV2Config(n_state=128, n_head=2, n_layer=2),
    "full": S3TokenizerV2Config(),
}

# official anonymous initializer names (fact sheet §2.3)
CONV_NAMES = {"conv1.weight": "onnx::Conv_2216", "conv1.bias": "onnx::Conv_2217",
              "conv2.weight": "onnx::Conv_2218", "conv2.bias": "onnx::Conv_2219"}
FSQ_WEIGHT_NAME = "onnx::MatMul_2536"
FSQ_BIAS_NAME = "quantizer.project_in.bias"


def random_tokenizer(cfg: S3TokenizerV2Config, seed: int) -> S3TokenizerV2:
    """Random weights at scales that keep activations sane (LN gains ~1, small projections)."""
    g = torch.Generator().manual_seed(seed)
    m = S3TokenizerV2(cfg)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("ln.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
        # FSQ projection: spread pre-tanh values over a few units so all three levels occur
        m.quantizer._codebook.project_down.weight.mul_(3.0)
    return m.eval()


class _Quantizer(nn.Module):
    def __init__(self, project_in: nn.Linear):
        super().__init__()
        self.project_in = project_in


class OfficialLayoutTokenizer(nn.Module):
    """Same computation as S3TokenizerV2, submodules named like the official export's scopes."""

    def __init__(self, m: S3TokenizerV2):
        super().__init__()
        self.conv1, self.conv2, self.blocks = m.encoder.conv1, m.encoder.conv2, m.encoder.blocks
        self.quantizer = _Quantizer(m.quantizer._codebook.project_down)
        self.register_buffer("rope_cos", m.encoder.rope_cos, persistent=False)
        self.register_buffer("rope_sin", m.encoder.rope_sin, persistent=False)
        self.register_buffer("powers", m.quantizer._codebook.powers, persistent=False)

    def forward(self, feats, feats_length):
        T = feats.shape[-1]
        x = torch.nn.functional.gelu(self.conv1(feats * length_mask(feats_length, T).unsqueeze(1)))
        T1, len1 = conv_out_len(T), conv_out_len(feats_length)
        x = torch.nn.functional.gelu(self.conv2(x * length_mask(len1, T1).unsqueeze(1)))
        T2, len2 = conv_out_len(T1), conv_out_len(len1)
        mask = length_mask(len2, T2)
        x = x.transpose(1, 2)
        kb, pm = ((1.0 - mask) * MASK_BIAS)[:, None, None, :], mask.unsqueeze(-1)
        cos, sin = self.rope_cos[:T2], self.rope_sin[:T2]
        for b in self.blocks:
            x = b(x, cos, sin, kb, pm)
        h = torch.round(torch.tanh(self.quantizer.project_in(x)) * 0.9990000128746033) + 1.0
        return (h * self.powers).sum(-1).to(torch.int32)


def _rename_initializer(model: onnx.ModelProto, old: str, new: str) -> None:
    for init in model.graph.initializer:
        if init.name == old:
            init.name = new
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def _consumer_init(model: onnx.ModelProto, node_name: str, input_index: int) -> str:
    for node in model.graph.node:
        if node.name == node_name:
            return node.input[input_index]
    raise KeyError(node_name)


def export_official_layout(m: S3TokenizerV2, path: str | Path, t_frames: int = 200) -> None:
    wrapper = OfficialLayoutTokenizer(m).eval()
    feats = torch.randn(1, m.cfg.n_mels, t_frames)
    lens = torch.tensor([t_frames], dtype=torch.int32)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (feats, lens), str(path), input_names=["feats", "feats_length"],
                          output_names=["indices"], dynamic_axes={"feats": {2: "T"}, "indices": {1: "L"}},
                          opset_version=17, do_constant_folding=True, dynamo=False)
    model = onnx.load(str(path))
    for key, new in CONV_NAMES.items():
        conv, idx = key.split(".")
        _rename_initializer(model, _consumer_init(model, f"/{conv}/Conv", 1 if idx == "weight" else 2), new)
    _rename_initializer(model, _consumer_init(model, "/project_in/MatMul", 1), FSQ_WEIGHT_NAME)
    _rename_initializer(model, _consumer_init(model, "/project_in/Add", 1 if _is_init(model, "/project_in/Add", 1) else 0), FSQ_BIAS_NAME)
    onnx.save(model, str(path))


def _is_init(model, node_name, idx) -> bool:
    names = {i.name for i in model.graph.initializer}
    return _consumer_init(model, node_name, idx) in names


def write_official_onnx(path: str | Path, size: str = "tiny", seed: int = 0) -> None:
    cfg = SIZES[size]
    export_official_layout(random_tokenizer(cfg, seed), path)


# -- speech_tokenizer_v3.onnx (CosyVoice3) ----------------------------------------------------------
SIZES_V3 = {
    "tiny": S3TokenizerV2Config(n_state=128, n_head=2, n_layer=2),
    "full": S3TokenizerV2Config(n_layer=12),
}


def _initializers_to_constants(model: onnx.ModelProto, keep_names: frozenset[str] = frozenset()) -> None:
    """Move the 1-D initializers (biases, LayerNorm gains) but `keep_names` into Constant nodes."""
    from onnx import helper

    keep, consts = [], []
    for init in model.graph.initializer:
        if len(init.dims) == 1 and init.name not in keep_names:
            consts.append(helper.make_node("Constant", [], [init.name], name=f"{init.name}_const", value=init))
        else:
            keep.append(init)
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    nodes = consts + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def write_official_onnx_v3(path: str | Path, size: str = "tiny", seed: int = 0) -> None:
    """An ONNX file in the weight layout that s3tokenizer 0.3.0's `onnx2torch_v3` reads from the official
    `speech_tokenizer_v3.onnx` (the real file is not available here): 12 blocks at full size,
    LayerNorm decomposed (`/blocks.{i}/attn_ln/Mul` gain, `/blocks.{i}/attn_ln/Add_1` bias, the eps a
    scalar Add), 1-D weights (biases, LayerNorm gains) stored as Constant nodes, conv / FSMN / MatMul
    weights as initializers consumed by `/conv{1,2}/Conv`, `/blocks.{i}/attn/fsmn_block/Conv`,
    `/blocks.{i}/<path>/MatMul` ((in, out)), the FSQ projection by a `/quantizer/project_in/MatMul`.
    Same I/O as v2: feats (1,128,T), feats_length (1,) -> indices (1,L)."""
    m = random_tokenizer(SIZES_V3[size], seed)
    wrapper = OfficialLayoutTokenizer(m).eval()
    feats = torch.randn(1, m.cfg.n_mels, 200)
    lens = torch.tensor([200], dtype=torch.int32)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (feats, lens), str(path), input_names=["feats", "feats_length"],
                          output_names=["indices"], dynamic_axes={"feats": {2: "T"}, "indices": {1: "L"}},
                          opset_version=16, do_constant_folding=True, dynamo=False)  # opset 16: LayerNorm decomposed
    model = onnx.load(str(path))
    bias = _consumer_init(model, "/project_in/Add", 1 if _is_init(model, "/project_in/Add", 1) else 0)
    _rename_initializer(model, bias, FSQ_BIAS_NAME)
    for node in model.graph.node:
        if node.name.startswith("/project_in/"):
            node.name = "/quantizer" + node.name
    _initializers_to_constants(model, keep_names=frozenset({FSQ_BIAS_NAME}))
    onnx.save(model, str(path))
