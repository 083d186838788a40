"""The PyTorch twin of runtime_ref's ZipVoicePipeline: the same orchestration with every graph
replaced by our modules at the exact lengths (no buckets, no padding), so comparing the two
measures exactly what the bundle changes (end-to-end mel and waveform)."""
from __future__ import annotations

import numpy as np
import torch

from runtime_ref.zipvoice.pipeline import ZipVoicePipeline
from runtime_ref.zipvoice.solve import time_steps, token_index

from ..checkpoint import load_into
from .model import load_model
from .vocos import Vocos


class TorchZipVoicePipeline(ZipVoicePipeline):
    def __init__(self, bundle, md):
        super().__init__(bundle)
        self.model = load_model(md)
        self.vocos = load_into(Vocos(md.config.vocos), md.load_vocos(), source=str(md.checkpoint_path("vocos"))).eval()

    @torch.inference_mode()
    def encode_text(self, ids):
        n = len(ids)
        tok = torch.tensor([ids + [self.pad_id]], dtype=torch.int64)
        return self.model.encode_text(tok, torch.tensor([n]))[0].numpy()

    @torch.inference_mode()
    def solve(self, text_embed, prompt_features, n_frames, noise, *, guidance_scale, t_shift):
        F = self.feat_dim
        text_cond = torch.from_numpy(text_embed[token_index(n_frames, text_embed.shape[0] - 1)])[None]
        speech = torch.zeros(1, n_frames, F)
        speech[0, : prompt_features.shape[0]] = torch.from_numpy(prompt_features) * self.feat_scale
        x = self.model.solve(torch.from_numpy(np.asarray(noise, np.float32))[None], text_cond, speech,
                             torch.tensor([n_frames]), torch.from_numpy(time_steps(self.num_step, self.t_shift)),
                             torch.tensor([guidance_scale], dtype=torch.float32))
        return x[0].numpy()

    @torch.inference_mode()
    def vocode(self, features):
        n = features.shape[0]
        return self.vocos(torch.from_numpy(np.ascontiguousarray(features.T))[None], torch.tensor([n]))[0].numpy()
