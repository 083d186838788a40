"""Export spec of the ZipVoice flow-matching solve: the fm decoder (Zipformer U-Net) with the
official guidance handling, Euler over all steps unrolled in one graph, one graph per frame
bucket T (`fm_solve_<T>`).

  inputs  noise (1, T, F) — x at t = 0 (the official torch.randn draw; the host draws it)
          text_condition (1, T, F) — text encoder output gathered per frame (host, official
          get_tokens_index with average token durations)
          speech_condition (1, T, F) — prompt features × feat_scale, zeros after the prompt
          frame_count (1,) int32 — prompt + generated frames (positions ≥ count are padding)
          timesteps (num_step + 1,) — official get_time_steps(num_step, t_shift)
          guidance_scale (1,)
  outputs features (1, T, F) — x at t = 1 (× 1 / feat_scale = Vocos features)
"""
from __future__ import annotations

import numpy as np
import torch

from ..flow.export import pretranspose_linears  # one shared initializer per weight across the unrolled steps
from ..spec import ComponentExport, ExportOptions, GraphSpec, TensorSpec
from .export_common import example_features, frame_lens
from .model import load_model, time_steps
from .zipformer import freeze_positions


class SolveGraph(torch.nn.Module):
    """The solve for one frame bucket T: its own copy of the model (weights pre-transposed,
    position tables frozen for T), like the CosyVoice2 flow's per-bucket modules."""

    def __init__(self, model, T: int):
        super().__init__()
        self.model = pretranspose_linears(model)
        freeze_positions(self.model.fm_decoder, T)

    def forward(self, noise, text_condition, speech_condition, frame_count, timesteps, guidance_scale):
        return self.model.solve(noise, text_condition, speech_condition, frame_count, timesteps, guidance_scale)


def build(md, options: ExportOptions) -> ComponentExport:
    cfg = md.config
    c = cfg.model
    F = c.feat_dim
    steps = int(options.extra.get("num_step") or cfg.num_step)
    model = load_model(md)
    specs = []
    for T in frame_lens(md, options):
        graph = SolveGraph(model, T)
        def make_inputs(case: int, T=T) -> dict[str, np.ndarray]:
            rng = np.random.default_rng(3000 + case)
            n = [T, T - 13 if T > 26 else T, T // 2 + 1][case % 3]
            prompt = max(1, n // 3)
            valid = (np.arange(T) < n)[None, :, None]
            speech = example_features(T, F, rng) * cfg.feat_scale
            speech[:, prompt:] = 0.0
            return {
                "noise": rng.standard_normal((1, T, F)).astype(np.float32),
                "text_condition": (rng.standard_normal((1, T, F)) * valid).astype(np.float32),
                "speech_condition": speech.astype(np.float32),
                "frame_count": np.array([n], np.int32),
                "timesteps": time_steps(steps, cfg.t_shift),
                "guidance_scale": np.array([[cfg.guidance_scale, cfg.guidance_scale, 0.0][case % 3]], np.float32),
            }

        specs.append(GraphSpec(
            name=f"fm_solve_{T}", component="fm_decoder", module=graph,
            inputs=[TensorSpec("noise", (1, T, F), description="standard normal x at t=0 (host RNG)"),
                    TensorSpec("text_condition", (1, T, F), description="text encoder output per frame"),
                    TensorSpec("speech_condition", (1, T, F), description="prompt features x feat_scale, then zeros"),
                    TensorSpec("frame_count", (1,), "int32", "prompt + generated frames"),
                    TensorSpec("timesteps", (steps + 1,), description="Euler time grid (official get_time_steps)"),
                    TensorSpec("guidance_scale", (1,), description="classifier-free guidance scale")],
            outputs=[TensorSpec("features", (1, T, F), description="x at t=1 (divide by feat_scale for Vocos)")],
            make_inputs=make_inputs, atol=1e-4, parity_cases=3, fixed_dims={"frames": T, "num_step": steps},
            description=f"ZipVoice{'-Distill' if cfg.variant == 'zipvoice_distill' else ''} fm decoder, {steps} Euler steps "
                        f"{'(guidance embedding)' if cfg.variant == 'zipvoice_distill' else 'with CFG'} over {T} frames",
            metadata={"frames": T, "num_step": steps}))
    manifest = {"graphs": [s.name for s in specs], "frame_lens": [s.fixed_dims["frames"] for s in specs],
                "num_step": steps, "variant": cfg.variant, "guidance": "embedding" if cfg.variant == "zipvoice_distill" else "cfg",
                "guidance_scale": cfg.guidance_scale, "t_shift": cfg.t_shift, "feat_scale": cfg.feat_scale, "feat_dim": F,
                "noise": {"input": "noise", "distribution": "standard normal", "shape": [1, "frames", F]}}
    return ComponentExport("fm_decoder", specs, manifest)
