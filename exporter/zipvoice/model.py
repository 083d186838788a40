"""ZipVoice / ZipVoice-Distill in plain torch (inference), loading the official `model.pt`
layout strictly: `embed.weight`, `text_encoder.*`, `fm_decoder.*`.

  encode_text   tokens (1, S) [+ pad] -> text encoder output (1, S, feat_dim), masked beyond count
  velocity      one fm-decoder evaluation with the official guidance handling:
                ZipVoice: classifier-free guidance in one batch of 2, v = (1+g)·v_cond − g·v_uncond,
                the unconditional half drops the text and, for t > 0.5, the speech prompt too
                (for t ≤ 0.5 it keeps the prompt and uses 2g) — `DiffusionModel.forward`;
                Distill: one pass with g fed to the decoder's guidance embedding.
  solve         the whole Euler solve, unrolled: x ← x + v(t_i, x)·(t_{i+1} − t_i) over the given
                time steps (`get_time_steps`: linspace, then t' = s·t / (1 + (s−1)·t)).
"""
from __future__ import annotations

import torch
from torch import nn

from runtime_ref.zipvoice.solve import time_steps  # noqa: F401  (one definition of the time grid)

from .config import ZipVoiceModelConfig
from .zipformer import Zipformer


def padding_mask(n_valid: torch.Tensor, length: int) -> torch.Tensor:
    """(1, length) bool, True beyond n_valid (official make_pad_mask)."""
    return torch.arange(length, dtype=n_valid.dtype)[None, :] >= n_valid[:, None]


class ZipVoiceModel(nn.Module):
    def __init__(self, c: ZipVoiceModelConfig, distill: bool = False):
        super().__init__()
        self.c, self.distill = c, distill
        self.embed = nn.Embedding(c.vocab_size, c.text_embed_dim)
        self.text_encoder = Zipformer(c.text_encoder())
        self.fm_decoder = Zipformer(c.fm_decoder(distill))

    # -- text ---------------------------------------------------------------------------------
    def encode_text(self, tokens: torch.Tensor, token_count: torch.Tensor) -> torch.Tensor:
        """tokens (1, S) int, token_count (1,): tokens[count:] are padding (pad_id; the official
        appends one pad and masks it). -> (1, S, feat_dim)."""
        x = self.embed(tokens.long())
        return self.text_encoder(x, padding_mask(token_count, tokens.shape[1]))

    # -- flow matching ------------------------------------------------------------------------
    def decoder(self, t, x, text_cond, speech_cond, mask, n_valid, guidance_scale=None):
        """fm decoder on cat([x, text, speech]); t (B,) -> velocity (B, T, feat_dim)."""
        return self.fm_decoder(torch.cat([x, text_cond, speech_cond], dim=2), mask, n_valid, t, guidance_scale)

    def velocity(self, t: torch.Tensor, x, text_cond, speech_cond, n_valid, guidance_scale: torch.Tensor, zeros=None):
        """t (1,) in [0, 1); x, text_cond, speech_cond (1, T, F); guidance_scale (1,). `zeros`: a
        zero tensor like text_cond (the solve passes one for all steps; a zeros_like of a static
        shape would be folded into a new constant per step)."""
        mask = padding_mask(n_valid, x.shape[1])
        if self.distill:
            return self.decoder(t, x, text_cond, speech_cond, mask, n_valid, guidance_scale)
        zeros = text_cond * 0.0 if zeros is None else zeros
        late = t > 0.5  # (1,)
        uncond_speech = torch.where(late[:, None, None], zeros, speech_cond)
        g = torch.where(late, guidance_scale, 2.0 * guidance_scale)[:, None, None]
        v = self.decoder(t.expand(2), torch.cat([x, x]), torch.cat([zeros, text_cond]),
                         torch.cat([uncond_speech, speech_cond]), mask.expand(2, -1), n_valid)
        v_uncond, v_cond = v[0:1], v[1:2]
        return (1 + g) * v_cond - g * v_uncond

    def solve(self, noise, text_cond, speech_cond, n_valid, timesteps: torch.Tensor, guidance_scale: torch.Tensor):
        """Euler over len(timesteps) - 1 steps (unrolled), from x = noise. -> (1, T, F)."""
        x, zeros = noise, text_cond * 0.0
        for i in range(timesteps.shape[0] - 1):
            t0, t1 = timesteps[i: i + 1], timesteps[i + 1: i + 2]
            x = x + self.velocity(t0, x, text_cond, speech_cond, n_valid, guidance_scale, zeros) * (t1 - t0)
        return x


def load_model(md) -> ZipVoiceModel:
    """The model of a ZipVoiceModelDir, its checkpoint loaded strictly (one error lists every
    missing / unexpected / mis-shaped key)."""
    from ..checkpoint import load_into

    m = ZipVoiceModel(md.config.model, distill=md.config.variant == "zipvoice_distill")
    load_into(m, md.state_dict(), source=str(md.checkpoint_path()))
    return m.eval()
