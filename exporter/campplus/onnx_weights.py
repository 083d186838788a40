"""Official `campplus.onnx` initializers -> our CAMPPlus state_dict.

The TorchScript exporter folds each BatchNorm that follows a conv into that conv (weight scaled,
bias added). We map back by the consumer node's scope (`/xvector/block1/tdnnd1/linear1/Conv` ->
`xvector.block1.tdnnd1.linear1`): the folded weight goes to the conv, and the folded bias goes to
the BatchNorm after it, which is set to an identity with that shift (mean = −bias, var = 1 − eps,
gain 1, offset 0). BatchNormalization nodes map their four inputs to weight / bias / running stats.
The embedding is the same function; numbers differ only by float rounding.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from ..errors import ModelDirError
from .model import CAMPPlus, CAMPPlusConfig

BN_EPS = 1e-5


def _bn_after(conv_path: str) -> str | None:
    """Module path of the BatchNorm that follows a bias-free conv in CAMPPlus."""
    head, _, leaf = conv_path.rpartition(".")
    if leaf in ("conv1", "conv2"):
        return f"{head}.bn{leaf[-1]}" if head else f"bn{leaf[-1]}"
    if leaf == "0" and head.endswith("shortcut"):
        return f"{head}.1"
    if leaf == "linear" and head.endswith(("tdnn", "dense")):
        return f"{head}.nonlinear.batchnorm"
    if leaf == "linear" and head.rpartition(".")[2].startswith("transit"):
        return "xvector.out_nonlinear.batchnorm"  # only the last transit conv feeds a BN alone
    if leaf == "linear1" and ".tdnnd" in f".{head.rpartition('.')[2]}":
        return f"{head}.nonlinear2.batchnorm"
    return None


def _scope_to_path(node_name: str) -> str:
    parts: list[str] = []
    for c in node_name.strip("/").split("/")[:-1]:
        if parts and c.startswith(parts[-1] + "."):
            parts[-1] = c
        else:
            parts.append(c)
    return ".".join(parts)


def _resolve(path: str, modules: set[str]) -> str | None:
    p = path.split(".")
    for i in range(len(p)):  # tolerate unknown leading scopes (e.g. a wrapper's name)
        cand = ".".join(p[i:])
        if cand in modules:
            return cand
    return None


def config_from_state(shapes: dict[str, tuple]) -> CAMPPlusConfig:
    m_ch = shapes["head.conv1.weight"][0]
    init = shapes["xvector.tdnn.linear.weight"][0]
    feat = shapes["xvector.tdnn.linear.weight"][1] // m_ch * 8
    growth = shapes["xvector.block1.tdnnd1.cam_layer.linear_local.weight"][0]
    bn_ch = shapes["xvector.block1.tdnnd1.linear1.weight"][0]
    layers = tuple(len({k.split(".")[2] for k in shapes if k.startswith(f"xvector.block{b}.tdnnd")}) for b in (1, 2, 3))
    dil = []
    return CAMPPlusConfig(feat_dim=feat, embedding_size=shapes["xvector.dense.linear.weight"][0], m_channels=m_ch,
                          growth_rate=growth, bn_size=bn_ch // growth, init_channels=init, block_layers=layers,
                          **({"block_dilations": tuple(dil)} if dil else {}))


def state_dict_from_onnx(path: str | Path) -> tuple[dict[str, torch.Tensor], CAMPPlusConfig]:
    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001
        raise ModelDirError(f"{path}: cannot read the CAM++ ONNX ({e})") from None
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    alias = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity" and n.input[0] in inits}

    def arr(name):
        name = alias.get(name, name)
        return None if name not in inits else torch.from_numpy(np.ascontiguousarray(inits[name].astype(np.float32)))

    conv_nodes = [n for n in model.graph.node if n.op_type == "Conv"]
    bn_nodes = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    # module paths that exist in the port (any config has the same path set shape-wise)
    probe = CAMPPlus(CAMPPlusConfig(block_layers=(64, 64, 64)))
    modules = {n for n, _ in probe.named_modules()}
    sd: dict[str, torch.Tensor] = {}
    dilations: dict[int, int] = {}
    for n in conv_nodes:
        path = _resolve(_scope_to_path(n.name), modules)
        if path is None:
            raise ModelDirError(f"{path}: unexpected conv node {n.name} in campplus.onnx")
        w = arr(n.input[1])
        sd[f"{path}.weight"] = w
        b = arr(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        if path.endswith("linear_local"):
            dilations[int(path.split(".")[1][-1])] = next((a.ints[0] for a in n.attribute if a.name == "dilations"), 1)
        if b is None:
            continue
        bn = _bn_after(path)
        if bn is None:
            sd[f"{path}.bias"] = b
        else:  # folded BatchNorm -> identity BN carrying the shift
            sd[f"{bn}.running_mean"] = -b
            sd[f"{bn}.running_var"] = torch.full_like(b, 1.0 - BN_EPS)
            sd[f"{bn}.num_batches_tracked"] = torch.tensor(0)
            if not bn.startswith("xvector.dense"):
                sd[f"{bn}.weight"] = torch.ones_like(b)
                sd[f"{bn}.bias"] = torch.zeros_like(b)
    for n in bn_nodes:
        path = _resolve(_scope_to_path(n.name), modules)
        if path is None:
            raise ModelDirError(f"{path}: unexpected BatchNormalization node {n.name} in campplus.onnx")
        for key, inp in zip(("weight", "bias", "running_mean", "running_var"), n.input[1:5]):
            sd[f"{path}.{key}"] = arr(inp)
        sd[f"{path}.num_batches_tracked"] = torch.tensor(0)
    if "head.conv1.weight" not in sd:
        raise ModelDirError(f"{path}: no head.conv1 found; is this campplus.onnx?")
    cfg = config_from_state({k: tuple(v.shape) for k, v in sd.items()})
    if dilations:
        cfg.block_dilations = tuple(dilations.get(i, d) for i, d in zip((1, 2, 3), cfg.block_dilations))
    return sd, cfg


def load_campplus(path: str | Path) -> CAMPPlus:
    from ..checkpoint import load_into

    sd, cfg = state_dict_from_onnx(path)
    m = CAMPPlus(cfg)
    load_into(m, sd, source=str(path))
    return m.eval()
