"""Writes an ONNX file in the structure of the official `campplus.onnx` from our PyTorch CAM++
port (3D-Speaker CAMPPlus layout) with random weights (fixture builder hook).

Reproduced: I/O `input` (1,T,80) float32 with a dynamic T -> `output` (1,192); a TorchScript
export in eval mode, which fuses every BatchNorm that follows a conv into the conv (anonymous
`onnx::Conv_*` weight + bias) and keeps the BatchNorms that precede a conv as
BatchNormalization nodes with named initializers. Whether the official file's node names carry
a prefix is not known; `onnx_weights` tolerates leading scopes it does not recognise.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from .model import CAMPPlus, CAMPPlusConfig

SIZES = {
    "tiny": CAMPPlusConfig(m_channels=8, growth_rate=8, bn_size=2, init_channels=16, block_layers=(2, 2, 2)),
    "full": CAMPPlusConfig(),
}


def random_campplus(cfg: CAMPPlusConfig, seed: int) -> CAMPPlus:
    g = torch.Generator().manual_seed(seed)
    m = CAMPPlus(cfg)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "batchnorm" in name or ".bn" in name or "shortcut.1" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / p[0].numel()) ** 0.5)
        for name, b in m.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
    return m.eval()


def export_official_layout(m: CAMPPlus, path: str | Path, t_frames: int = 230) -> None:
    x = torch.randn(1, t_frames, m.cfg.feat_dim)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (x,), str(path), input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {1: "T"}}, opset_version=17, do_constant_folding=True, dynamo=False)


def write_official_onnx(path: str | Path, size: str = "tiny", seed: int = 0) -> None:
    export_official_layout(random_campplus(SIZES[size], seed), path)
