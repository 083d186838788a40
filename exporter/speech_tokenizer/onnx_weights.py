"""Official `speech_tokenizer_v2.onnx` initializers -> our S3TokenizerV2 state_dict (fact sheet §2.3).

Mapping rules (by the node that consumes each initializer, like S3Tokenizer's `onnx2torch`):
- the conv and FSQ weights have anonymous names (`onnx::Conv_2216..2219`, `onnx::MatMul_2536`,
  `quantizer.project_in.bias`); we recognise them by name and, as a fallback, by their consumer
  (`/conv1/Conv`, `/conv2/Conv`, a MatMul whose scope ends in `project_in`);
- `/blocks.{i}/<path>/MatMul` -> `encoder.blocks.{i}.<path>.weight` (2-D, stored (in, out): transposed);
- `/blocks.{i}/<path>/Add*` -> `...bias`; `/blocks.{i}/attn/fsmn_block/Conv` -> `...fsmn_block.weight`;
- `/blocks.{i}/<ln>/LayerNormalization` -> `<ln>.weight` / `.bias` from inputs 1/2 (its epsilon too);
- the scope `mlp/mlp.0` becomes `mlp.0`.
The head count is not stored in any weight: head dim 64 (the RoPE table of the port) is assumed.

`speech_tokenizer_v3.onnx` (CosyVoice3; same model with 12 blocks) is read by the same rules plus
what its export layout changes (as s3tokenizer 0.3.0's `onnx2torch_v3` describes it): LayerNorm is
decomposed — `/blocks.{i}/<ln>/Mul` carries the gain, the `Add` with a vector the bias, the `Add`
with a scalar the epsilon —, weights may be Constant nodes instead of initializers, and the FSQ
projection may sit in a `quantizer` scope.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from ..errors import ModelDirError
from .model import S3TokenizerV2Config

NAMED = {
    "onnx::Conv_2216": "encoder.conv1.weight", "onnx::Conv_2217": "encoder.conv1.bias",
    "onnx::Conv_2218": "encoder.conv2.weight", "onnx::Conv_2219": "encoder.conv2.bias",
    "onnx::MatMul_2536": "quantizer._codebook.project_down.weight",
    "quantizer.project_in.bias": "quantizer._codebook.project_down.bias",
}
HEAD_DIM = 64
_BLOCK = re.compile(r"^/blocks\.(\d+)/(.+)/([A-Za-z]+)(_\d+)?$")


_LINEARS = ("attn.query", "attn.key", "attn.value", "attn.out", "mlp.0", "mlp.2")


def _key_for(node: onnx.NodeProto, input_index: int) -> str | None:
    name, op = node.name, node.op_type
    if op == "Conv" and name.startswith("/conv") and name.endswith("/Conv"):
        conv = name.split("/")[1]
        return f"encoder.{conv}.{'weight' if input_index == 1 else 'bias'}"
    if "project_in" in name and op in ("MatMul", "Add"):
        return "quantizer._codebook.project_down." + ("weight" if op == "MatMul" else "bias")
    m = _BLOCK.match(name)
    if not m:
        return None
    i, path = m.group(1), m.group(2).replace("mlp/mlp.", "mlp.").replace("/", ".")
    if op == "LayerNormalization":
        return f"encoder.blocks.{i}.{path}.{'weight' if input_index == 1 else 'bias'}"
    if path.endswith("_ln") and op in ("Mul", "Add"):  # decomposed LayerNorm (v3): gain, bias (a scalar Add is eps)
        return f"encoder.blocks.{i}.{path}.{'weight' if op == 'Mul' else 'bias'}"
    if op == "Conv" and path.endswith("fsmn_block"):
        return f"encoder.blocks.{i}.{path}.weight"
    if op == "MatMul" and path in _LINEARS:
        return f"encoder.blocks.{i}.{path}.weight"
    if op == "Add" and path in _LINEARS:
        return f"encoder.blocks.{i}.{path}.bias"
    return None


def state_dict_from_onnx(path: str | Path) -> tuple[dict[str, torch.Tensor], S3TokenizerV2Config]:
    """Read the official tokenizer ONNX; return (state_dict for S3TokenizerV2, config)."""
    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001
        raise ModelDirError(f"{path}: cannot read the speech tokenizer ONNX ({e})") from None
    tensors = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:  # v3: weights stored as Constant nodes
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            tensors.setdefault(node.output[0], numpy_helper.to_array(node.attribute[0].t))
    sd: dict[str, torch.Tensor] = {}
    eps: dict[str, float] = {}
    for node in model.graph.node:
        for idx, inp in enumerate(node.input):
            if inp not in tensors or not np.issubdtype(tensors[inp].dtype, np.floating):
                continue
            key = NAMED.get(inp) or _key_for(node, idx)
            if key is None:
                continue
            arr = tensors[inp].astype(np.float32)
            if node.op_type == "LayerNormalization":
                eps[key.rsplit(".", 2)[-2]] = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
            elif node.op_type == "Add" and key.endswith("_ln.bias") and arr.size == 1:  # decomposed LN: var + eps
                eps[key.rsplit(".", 2)[-2]] = float(arr.reshape(-1)[0])
                continue
            if node.op_type == "MatMul" and arr.ndim == 2:
                arr = arr.T
            sd[key] = torch.from_numpy(np.ascontiguousarray(arr))
    if "encoder.conv1.weight" not in sd:
        raise ModelDirError(f"{path}: no conv1 weight found; is this a speech_tokenizer_v2/v3 ONNX?")
    n_state, n_mels, _ = sd["encoder.conv1.weight"].shape
    n_layer = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("encoder.blocks."))
    kernel = sd["encoder.blocks.0.attn.fsmn_block.weight"].shape[-1]
    cfg = S3TokenizerV2Config(n_mels=n_mels, n_state=n_state, n_head=n_state // HEAD_DIM, n_layer=n_layer,
                              fsmn_kernel=kernel, attn_ln_eps=eps.get("attn_ln", 1e-5), mlp_ln_eps=eps.get("mlp_ln", 1e-5))
    return sd, cfg


def load_tokenizer(path: str | Path):
    """Build S3TokenizerV2 from the official ONNX (strict key/shape check)."""
    from ..checkpoint import load_into
    from .model import S3TokenizerV2

    sd, cfg = state_dict_from_onnx(path)
    m = S3TokenizerV2(cfg)
    load_into(m, sd, source=str(path))
    return m.eval()
