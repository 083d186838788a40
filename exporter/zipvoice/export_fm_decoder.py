"""Export spec of the ZipVoice flow-matching solve: the fm decoder (Zipformer U-Net) with the
official guidance handling, Euler over all steps unrolled in one graph, one graph per frame
bucket T (`fm_solve_<T>`). Built like the CosyVoice2 flow's solve on the shared machinery
(exporter/flow/unroll.py traced_euler): ONE traced velocity step copied per step in ONNX, the
time grid (official get_time_steps(num_step, t_shift)) baked in as constants and recorded in the
manifest, weights shared by all steps.

  inputs  noise (1, T, F) — x at t = 0 (the official torch.randn draw; the host draws it)
          text_condition (1, T, F) — text encoder output gathered per frame (host, official
          get_tokens_index with average token durations)
          speech_condition (1, T, F) — prompt features × feat_scale, zeros after the prompt
          frame_count (1,) int32 — prompt + generated frames (positions ≥ count are padding)
          guidance_scale (1,)
  outputs features (1, T, F) — x at t = 1 (× 1 / feat_scale = Vocos features)
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from ..flow.export import SOLVE_PASSES
from ..flow.unroll import traced_euler
from ..spec import ComponentExport, ExportOptions, GraphSpec, TensorSpec
from .export_common import example_features, frame_lens
from .model import load_model, time_steps
from .zipformer import freeze_positions

CONDITIONS = ("text_condition", "speech_condition", "frame_count", "guidance_scale")
VELOCITY_INPUTS = ("x", "t") + CONDITIONS


class SolveGraph(torch.nn.Module):
    """The PyTorch solve for one frame bucket T over a fixed time grid (the parity reference of the
    unrolled graph): its own copy of the model with the position tables frozen for T."""

    def __init__(self, model, T: int, timesteps: np.ndarray):
        super().__init__()
        self.model = copy.deepcopy(model)
        freeze_positions(self.model.fm_decoder, T)
        self.register_buffer("timesteps", torch.from_numpy(np.asarray(timesteps, np.float32)), persistent=False)

    def forward(self, noise, text_condition, speech_condition, frame_count, guidance_scale):
        return self.model.solve(noise, text_condition, speech_condition, frame_count, self.timesteps, guidance_scale)


class VelocityGraph(torch.nn.Module):
    """One decoder evaluation with the official guidance handling: the step traced_euler unrolls."""

    def __init__(self, solve: SolveGraph):
        super().__init__()
        self.model = solve.model

    def forward(self, x, t, text_condition, speech_condition, frame_count, guidance_scale):
        return self.model.velocity(t, x, text_condition, speech_condition, frame_count, guidance_scale)


def solve_onnx(graph: SolveGraph, example: dict[str, np.ndarray], opset: int, scratch, T: int):
    grid = graph.timesteps.numpy()
    ts = [float(v) for v in grid[:-1]]
    dts = [float(v) for v in (grid[1:] - grid[:-1]).astype(np.float32)]  # float32 t1 - t0, as the PyTorch solve
    example = dict(example, x=example["noise"], t=grid[:1].copy())
    return traced_euler(VelocityGraph(graph), example, list(VELOCITY_INPUTS), ts=ts, dts=dts, out="features", opset=opset,
                        scratch=scratch, what=f"fm_solve_{T}")


def build(md, options: ExportOptions) -> ComponentExport:
    cfg = md.config
    c = cfg.model
    F = c.feat_dim
    steps = int(options.extra.get("num_step") or cfg.num_step)
    grid = time_steps(steps, cfg.t_shift)
    model = load_model(md)
    specs = []
    for T in frame_lens(md, options):
        graph = SolveGraph(model, T, grid)
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
                "guidance_scale": np.array([[cfg.guidance_scale, cfg.guidance_scale, 0.0][case % 3]], np.float32),
            }

        specs.append(GraphSpec(
            name=f"fm_solve_{T}", component="fm_decoder", module=graph,
            inputs=[TensorSpec("noise", (1, T, F), description="standard normal x at t=0 (host RNG)"),
                    TensorSpec("text_condition", (1, T, F), description="text encoder output per frame"),
                    TensorSpec("speech_condition", (1, T, F), description="prompt features x feat_scale, then zeros"),
                    TensorSpec("frame_count", (1,), "int32", "prompt + generated frames"),
                    TensorSpec("guidance_scale", (1,), description="classifier-free guidance scale")],
            outputs=[TensorSpec("features", (1, T, F), description="x at t=1 (divide by feat_scale for Vocos)")],
            make_inputs=make_inputs, atol=1e-4, parity_cases=3, fixed_dims={"frames": T, "num_step": steps},
            passes=SOLVE_PASSES,
            build_onnx=lambda opset, scratch, graph=graph, T=T, mk=make_inputs: solve_onnx(graph, mk(0), opset, scratch, T),
            description=f"ZipVoice{'-Distill' if cfg.variant == 'zipvoice_distill' else ''} fm decoder, {steps} Euler steps "
                        f"{'(guidance embedding)' if cfg.variant == 'zipvoice_distill' else 'with CFG'} over {T} frames "
                        f"(t_shift {cfg.t_shift} baked in)",
            metadata={"frames": T, "num_step": steps}))
    manifest = {"graphs": [s.name for s in specs], "frame_lens": [s.fixed_dims["frames"] for s in specs],
                "num_step": steps, "variant": cfg.variant, "guidance": "embedding" if cfg.variant == "zipvoice_distill" else "cfg",
                "guidance_scale": cfg.guidance_scale, "t_shift": cfg.t_shift, "time_steps": [float(v) for v in grid],
                "feat_scale": cfg.feat_scale, "feat_dim": F,
                "noise": {"input": "noise", "distribution": "standard normal", "shape": [1, "frames", F]}}
    return ComponentExport("fm_decoder", specs, manifest)
