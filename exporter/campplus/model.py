"""CAM++ speaker embedding (3D-Speaker `CAMPPlus`, as CosyVoice ships it in campplus.onnx;
fact sheet §3), written from the public structure: FCM 2-D conv head, a strided TDNN, three
densely connected CAM-TDNN blocks with transit layers, statistics pooling, a dense layer.

Two forwards on the same weights:
- `forward(feats)`: the official computation on an exact-length input (1,T,80) -> (1,192); used to
  write the official-structure ONNX fixture.
- `forward_masked(feats, n_frames)`: the same numbers on a fixed-length zero-padded buffer with a
  length: every conv input is masked, CAM context means / segment means / statistics pooling use
  only valid frames. This is the bundle graph (static shape, whole 30 s prompt).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

SEG_LEN = 100


@dataclass
class CAMPPlusConfig:
    feat_dim: int = 80
    embedding_size: int = 192
    m_channels: int = 32
    growth_rate: int = 32
    bn_size: int = 4
    init_channels: int = 128
    block_layers: tuple[int, int, int] = (12, 24, 16)
    block_dilations: tuple[int, int, int] = (1, 2, 2)


def _mask_time(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the frames past the length; mask (1,T) broadcast over the last (time) axis."""
    if mask is None:
        return x
    return x * mask.view(*([1] * (x.dim() - 1)), -1)


def _bn_relu(channels: int, affine: bool = True) -> nn.Sequential:
    return nn.Sequential(OrderedDict([("batchnorm", nn.BatchNorm1d(channels, affine=affine)), ("relu", nn.ReLU())]))


class BasicResBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=(stride, 1), bias=False), nn.BatchNorm2d(planes))

    def forward(self, x, mask=None):
        out = F.relu(self.bn1(self.conv1(_mask_time(x, mask))))
        out = self.bn2(self.conv2(_mask_time(out, mask)))
        return F.relu(out + self.shortcut(x))


class FCM(nn.Module):
    def __init__(self, cfg: CAMPPlusConfig):
        super().__init__()
        c = cfg.m_channels
        self.conv1 = nn.Conv2d(1, c, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.layer1 = nn.Sequential(BasicResBlock(c, c, 2), BasicResBlock(c, c, 1))
        self.layer2 = nn.Sequential(BasicResBlock(c, c, 2), BasicResBlock(c, c, 1))
        self.conv2 = nn.Conv2d(c, c, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.out_channels = c * (cfg.feat_dim // 8)

    def forward(self, x, mask=None):  # (1,F,T) -> (1,C*F/8,T)
        x = x.unsqueeze(1)
        x = F.relu(self.bn1(self.conv1(_mask_time(x, mask))))
        for blk in list(self.layer1) + list(self.layer2):
            x = blk(x, mask)
        x = F.relu(self.bn2(self.conv2(_mask_time(x, mask))))
        return x.reshape(x.shape[0], x.shape[1] * x.shape[2], x.shape[3])


class TDNNLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.linear = nn.Conv1d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False)
        self.nonlinear = _bn_relu(cout)

    def forward(self, x, mask=None):
        return self.nonlinear(self.linear(_mask_time(x, mask)))


class CAMLayer(nn.Module):
    def __init__(self, bn_channels: int, cout: int, kernel: int, dilation: int, reduction: int = 2):
        super().__init__()
        self.linear_local = nn.Conv1d(bn_channels, cout, kernel, padding=(kernel - 1) // 2 * dilation, dilation=dilation, bias=False)
        self.linear1 = nn.Conv1d(bn_channels, bn_channels // reduction, 1)
        self.relu = nn.ReLU()
        self.linear2 = nn.Conv1d(bn_channels // reduction, cout, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x, mask=None, seg_count=None):
        y = self.linear_local(_mask_time(x, mask))
        if mask is None:
            seg = F.avg_pool1d(x, SEG_LEN, SEG_LEN, ceil_mode=True)
            context = x.mean(-1, keepdim=True) + _expand_segments(seg, x.shape[-1])
        else:
            context = _masked_mean(x, mask) + _masked_segment_mean(x, mask, seg_count)
        m = self.sigmoid(self.linear2(self.relu(self.linear1(context))))
        return y * m


def _expand_segments(seg: torch.Tensor, T: int) -> torch.Tensor:
    B, C, S = seg.shape
    return seg.unsqueeze(-1).expand(B, C, S, SEG_LEN).reshape(B, C, S * SEG_LEN)[..., :T]


def _masked_mean(x, mask):
    return (x * mask.unsqueeze(1)).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).unsqueeze(1)


def _segment_sums(x: torch.Tensor) -> torch.Tensor:  # (B,C,T) -> (B,C,ceil(T/100))
    B, C, T = x.shape
    S = (T + SEG_LEN - 1) // SEG_LEN  # positive floor division only (ONNX Div truncates)
    x = F.pad(x, (0, S * SEG_LEN - T))
    return x.reshape(B, C, S, SEG_LEN).sum(-1)


def _masked_segment_mean(x, mask, seg_count):
    seg = _segment_sums(x * mask.unsqueeze(1)) / seg_count.unsqueeze(1)
    return _expand_segments(seg, x.shape[-1])


class CAMDenseTDNNLayer(nn.Module):
    def __init__(self, cin: int, cout: int, bn_channels: int, kernel: int, dilation: int):
        super().__init__()
        self.nonlinear1 = _bn_relu(cin)
        self.linear1 = nn.Conv1d(cin, bn_channels, 1, bias=False)
        self.nonlinear2 = _bn_relu(bn_channels)
        self.cam_layer = CAMLayer(bn_channels, cout, kernel, dilation)

    def forward(self, x, mask=None, seg_count=None):
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))), mask, seg_count)


class CAMDenseTDNNBlock(nn.ModuleList):
    def __init__(self, n_layers: int, cin: int, growth: int, bn_channels: int, kernel: int, dilation: int):
        super().__init__()
        for i in range(n_layers):
            self.add_module(f"tdnnd{i + 1}", CAMDenseTDNNLayer(cin + i * growth, growth, bn_channels, kernel, dilation))

    def forward(self, x, mask=None, seg_count=None):
        for layer in self:
            x = torch.cat([x, layer(x, mask, seg_count)], dim=1)
        return x


class TransitLayer(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.nonlinear = _bn_relu(cin)
        self.linear = nn.Conv1d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.linear(self.nonlinear(x))


class DenseLayer(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.linear = nn.Conv1d(cin, cout, 1, bias=False)
        self.nonlinear = nn.Sequential(OrderedDict([("batchnorm", nn.BatchNorm1d(cout, affine=False))]))

    def forward(self, x):  # (1,C) -> (1,E)
        return self.nonlinear(self.linear(x.unsqueeze(-1))).squeeze(-1)


class StatsPool(nn.Module):
    def forward(self, x, mask=None):
        if mask is None:
            return torch.cat([x.mean(-1), x.std(-1, unbiased=True)], dim=-1)
        n = mask.sum(-1, keepdim=True)  # (1,1)
        m = mask.unsqueeze(1)
        mean = (x * m).sum(-1) / n
        var = (((x - mean.unsqueeze(-1)) ** 2) * m).sum(-1) / (n - 1.0)
        return torch.cat([mean, var.sqrt()], dim=-1)


class CAMPPlus(nn.Module):
    def __init__(self, cfg: CAMPPlusConfig = CAMPPlusConfig()):
        super().__init__()
        self.cfg = cfg
        self.head = FCM(cfg)
        ch = self.head.out_channels
        xv = OrderedDict([("tdnn", TDNNLayer(ch, cfg.init_channels, 5, stride=2))])
        ch = cfg.init_channels
        for i, (n, d) in enumerate(zip(cfg.block_layers, cfg.block_dilations)):
            xv[f"block{i + 1}"] = CAMDenseTDNNBlock(n, ch, cfg.growth_rate, cfg.bn_size * cfg.growth_rate, 3, d)
            ch += n * cfg.growth_rate
            xv[f"transit{i + 1}"] = TransitLayer(ch, ch // 2)
            ch //= 2
        xv["out_nonlinear"] = _bn_relu(ch)
        xv["stats"] = StatsPool()
        xv["dense"] = DenseLayer(2 * ch, cfg.embedding_size)
        self.xvector = nn.Sequential(xv)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """feats (1,T,80) (CMN'd Kaldi fbank) -> (1,192)."""
        x = self.head(feats.permute(0, 2, 1))
        return self.xvector(x)

    def forward_masked(self, feats: torch.Tensor, n_frames: torch.Tensor) -> torch.Tensor:
        """feats (1,T_max,80) zero past n_frames, n_frames (1,) int -> (1,192)."""
        T = feats.shape[1]
        mask = (torch.arange(T, dtype=n_frames.dtype).unsqueeze(0) < n_frames.unsqueeze(-1)).float()
        x = self.head(feats.permute(0, 2, 1), mask)
        xv = self.xvector
        T2 = (T - 1) // 2 + 1
        n2 = (n_frames - 1) // 2 + 1
        mask2 = (torch.arange(T2, dtype=n_frames.dtype).unsqueeze(0) < n2.unsqueeze(-1)).float()
        seg_count = _segment_sums(mask2.unsqueeze(1)).squeeze(1).clamp(min=1.0)  # (1,S)
        x = xv.tdnn(x, mask)
        for i in range(len(self.cfg.block_layers)):
            x = getattr(xv, f"block{i + 1}")(x, mask2, seg_count)
            x = getattr(xv, f"transit{i + 1}")(x)
        x = xv.out_nonlinear(x)
        return xv.dense(xv.stats(x, mask2))


class CAMPPlusGraph(nn.Module):
    """Bundle graph wrapper: fbank (1,T_max,80) + n_frames (1,) int32 -> embedding (1,192)."""

    def __init__(self, model: CAMPPlus):
        super().__init__()
        self.model = model

    def forward(self, fbank: torch.Tensor, n_frames: torch.Tensor) -> torch.Tensor:
        return self.model.forward_masked(fbank, n_frames)
