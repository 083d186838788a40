"""CosyVoice3 flow (`CausalMaskedDiffWithDiT`) for export at a fixed length: the CosyVoice2 `Flow`
(speaker affine, CFG-paired velocity, unrolled Euler solve, `resized`, the export wrappers and the
runtime's I/O contract) with the CosyVoice3 encoder and estimator:

    tokens (1, T) -> input_embedding (80) * conv_mask -> PreLookaheadLayer (80 -> 1024 -> 80, looks 3
    tokens right; context tokens via conv_mask) -> repeat × token_mel_ratio -> mu (1, 80, N = 2T)
    estimator: DiT (exporter/cosyvoice3/dit.py)

mu is zero past the encoder's frames (token_mask); the CosyVoice3 encoder has no attention, so
`streaming` does not change it (streaming acts in the DiT's chunk masks).
"""
from __future__ import annotations

import torch
from torch import nn

from ..flow.model import Flow, PreLookahead
from .config import DiTFlowConfig
from .dit import DiT


class DiTFlow(Flow):
    def build_encoder(self, cfg: DiTFlowConfig) -> None:
        self.pre_lookahead_layer = PreLookahead(cfg.input_size, cfg.pre_lookahead_len, hidden=cfg.pre_lookahead_channels)

    def build_estimator(self, cfg: DiTFlowConfig, n_frames: int) -> nn.Module:
        return DiT(cfg.estimator, n_frames)

    def encode(self, tokens, token_mask, conv_mask, streaming=None):
        # tokens (1, T) int; token_mask (1, T) encoder tokens; conv_mask (1, T) + lookahead context -> mu (1, 80, N)
        emb = self.input_embedding(tokens) * conv_mask.unsqueeze(-1)  # (1, T, 80), zero past the context
        h = self.pre_lookahead_layer(emb, emb)
        B, T, C = h.shape
        r = self.cfg.token_mel_ratio
        h = (h * token_mask.unsqueeze(-1)).unsqueeze(2).expand(B, T, r, C).reshape(B, T * r, C)  # repeat_interleave
        return h.transpose(1, 2)
