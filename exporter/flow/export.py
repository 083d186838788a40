"""Flow export: per mel-length bucket N (T = N/2 tokens), an encoder graph and a solver graph.

Graphs (N from --flow-len, buckets; everything fixed-shape, masks are 0/1 float inputs)
- flow_encoder_{N}: tokens (1,T) i32, token_mask (1,T), conv_mask (1,T), streaming (1,), xvec (1,192)
  -> mu (1,80,N), spks (1,80)
- flow_solve_{N} (default): noise, mu, cond (1,80,N), spks (1,80), mel_mask (1,1,N), streaming (1,)
  -> mel (1,80,N): the 10 Euler steps unrolled, CFG pair (batch 2) built and combined inside;
  built from one traced velocity graph copied per step in ONNX (unroll.py), the estimator
  weights shared initializers of all 10 copies.
- flow_step_{N} (solver "step" or "both"): x, t (1,), dt (1,), mu, cond, spks, mel_mask, streaming
  -> velocity (CFG-combined), x_next = x + dt * velocity: one Euler step for hosts that loop.

Extra file: flow/noise.npy = the official fixed noise (seed 0) for the first max(N) frames.
See docs/components/flow.md for the decisions and the measured figures.
"""
from __future__ import annotations

import numpy as np
import onnx
import torch
from torch import nn

from graph_passes import DEFAULT_PASSES

from ..checkpoint import load_into
from ..errors import ExportError
from ..spec import ComponentExport, ExportOptions, GraphSpec, TensorSpec
from .model import Flow, official_noise
from .unroll import traced_euler

# mel frames (50 per s) of prompt + speech: 5.12 / 10.24 / 15.36 / 20.48 s; the small first bucket keeps the
# first streaming chunk (prompt + 28 tokens) short (time to first audio, bench/results.md)
DEFAULT_FLOW_LENS = (256, 512, 768, 1024)
SOLVERS = ("unrolled", "step", "both")
ATOL_ENCODER = 1e-4
ATOL_STEP = 1e-4
ATOL_SOLVE = 1e-3
# fp16 weights vs the fp32 module (random weights); the real fp16 criterion is mel SNR (tests/flow)
ATOL_FP16_ENCODER = 0.1
ATOL_FP16_MEL = 0.5


def load_flows(model_dir, lens, flow_class: type = Flow) -> dict[int, Flow]:
    """One Flow module (or a family's Flow subclass) per mel length, the first loaded strictly from
    flow.pt, the others sharing its parameter tensors (one copy of the 450 MB of full-size weights
    for all buckets; only the per-length constants differ)."""
    cfg = model_dir.config.flow
    flows = {}
    for n in lens:
        f = flow_class(cfg, n).eval()
        if not flows:
            load_into(f, model_dir.load_checkpoint("flow"), source=str(model_dir.checkpoint_path("flow")))
            shared = f.state_dict()
        else:
            f.load_state_dict(shared, strict=True, assign=True)
        flows[n] = f
    return flows


class EncoderGraph(nn.Module):
    def __init__(self, flow: Flow):
        super().__init__()
        self.flow = flow

    def forward(self, tokens, token_mask, conv_mask, streaming, xvec):
        return self.flow.encode(tokens, token_mask, conv_mask, streaming), self.flow.speaker(xvec)


class SolveGraph(nn.Module):
    """The PyTorch reference of flow_solve (parity); the graph itself is `solve_onnx`."""

    def __init__(self, flow: Flow):
        super().__init__()
        self.flow = flow

    def forward(self, noise, mu, cond, spks, mel_mask, streaming):
        return self.flow.solve(noise, mu, cond, spks, mel_mask, streaming)


class VelocityGraph(nn.Module):
    def __init__(self, flow: Flow):
        super().__init__()
        self.flow = flow

    def forward(self, x, t, mu, cond, spks, mel_mask, streaming):
        return self.flow.velocity(x, t, mu, cond, spks, mel_mask, streaming)


VELOCITY_INPUTS = ("x", "t", "mu", "cond", "spks", "mel_mask", "streaming")
# the unrolled graph: solve_onnx already folded the step; folding the ten copies again would only
# fold the per-step time embedding of the constant t (a few tiny ops) at ~10x the cost
SOLVE_PASSES = [p for p in DEFAULT_PASSES if p not in ("fold_constants", "fold_to_fixed_point")]


def solve_onnx(flow: Flow, example: dict[str, np.ndarray], opset: int, scratch) -> onnx.ModelProto:
    """flow_solve as ONNX: the velocity graph traced once, unrolled over the Euler steps in ONNX
    (exporter/flow/unroll.py) instead of tracing the estimator once per step."""
    return traced_euler(VelocityGraph(flow), example, list(VELOCITY_INPUTS), ts=flow.t_steps, dts=flow.dt_steps, out="mel",
                        opset=opset, scratch=scratch, what=f"flow_solve_{flow.n_frames}")


class StepGraph(nn.Module):
    def __init__(self, flow: Flow):
        super().__init__()
        self.flow = flow

    def forward(self, x, t, dt, mu, cond, spks, mel_mask, streaming):
        v = self.flow.velocity(x, t, mu, cond, spks, mel_mask, streaming)
        return v, x + dt.view(1, 1, 1) * v


# ---------------------------------------------------------------------------------------------
# parity inputs: case 0 full bucket non-streaming; 1 ~60 % valid (padding); 2 streaming, ~30 % valid
# with 3 lookahead context tokens; 3+ more random lengths


def case_layout(n_tokens: int, case: int) -> tuple[int, int, bool]:
    """(encoder tokens L, lookahead context tokens, streaming) for a parity case."""
    rng = np.random.default_rng(500 + case)
    if case == 0:
        return n_tokens, 0, False
    if case == 1:
        return max(4, int(n_tokens * 0.6)), 0, False
    if case == 2:
        return max(4, int(n_tokens * 0.3)), 3, True
    return int(rng.integers(4, n_tokens - 3)), int(rng.integers(0, 2)) * 3, bool(rng.integers(0, 2))


def encoder_inputs(cfg, n_tokens: int, case: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(100 + case)
    L, ctx, streaming = case_layout(n_tokens, case)
    tokens = np.zeros((1, n_tokens), np.int32)
    tokens[0, :L + ctx] = rng.integers(0, cfg.vocab_size, L + ctx)
    token_mask = np.zeros((1, n_tokens), np.float32)
    token_mask[0, :L] = 1
    conv_mask = np.zeros((1, n_tokens), np.float32)
    conv_mask[0, :L + ctx] = 1
    return {"tokens": tokens, "token_mask": token_mask, "conv_mask": conv_mask,
            "streaming": np.array([float(streaming)], np.float32),
            "xvec": rng.standard_normal((1, cfg.spk_embed_dim)).astype(np.float32)}


def decoder_inputs(cfg, n_frames: int, case: int, noise: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(200 + case)
    L, _, streaming = case_layout(n_frames // cfg.token_mel_ratio, case)
    M = L * cfg.token_mel_ratio
    prompt = min(M, int(rng.integers(0, M // 2 + 1)))
    mel_mask = np.zeros((1, 1, n_frames), np.float32)
    mel_mask[..., :M] = 1
    mu = rng.standard_normal((1, 80, n_frames)).astype(np.float32)
    cond = np.zeros((1, 80, n_frames), np.float32)
    cond[..., :prompt] = rng.standard_normal((1, 80, prompt)).astype(np.float32) * 2 - 6
    x = noise[:, :, :n_frames] if case % 2 == 0 else rng.standard_normal((1, 80, n_frames)).astype(np.float32)
    t = float(rng.uniform(0, 0.95))
    return {"noise": noise[:, :, :n_frames].copy(), "x": np.ascontiguousarray(x), "t": np.array([t], np.float32),
            "dt": np.array([0.05], np.float32), "mu": mu, "cond": cond,
            "spks": rng.standard_normal((1, 80)).astype(np.float32) * 0.5, "mel_mask": mel_mask,
            "streaming": np.array([float(streaming)], np.float32)}


def build_graphs(flows: dict[int, Flow], options: ExportOptions, noise: np.ndarray) -> list[GraphSpec]:
    """Solver parity (the costliest part of a flow export: ten estimator calls on each side per
    case): every bucket on case 0 (full bucket), the smallest bucket also on the padded and the
    streaming case; all buckets are the same code at another N."""
    solver = options.extra.get("flow_solver", "unrolled")
    if solver not in SOLVERS:
        raise ExportError(f"flow: unknown flow_solver {solver!r}; one of {', '.join(SOLVERS)}")
    fp16 = options.fp16
    specs = []
    for n, flow in sorted(flows.items()):
        cfg = flow.cfg
        T = flow.n_tokens
        mel = (1, 80, n)
        dims = {"mel_frames": n, "tokens": T}
        specs.append(GraphSpec(
            name=f"flow_encoder_{n}", component="flow", module=EncoderGraph(flow),
            inputs=[TensorSpec("tokens", (1, T), "int32", "prompt + new speech tokens (0..6560), zero-padded"),
                    TensorSpec("token_mask", (1, T), description="1 for the encoder's tokens (not lookahead context, not padding)"),
                    TensorSpec("conv_mask", (1, T), description="token_mask plus 1 for the 3 lookahead context tokens (streaming, not final)"),
                    TensorSpec("streaming", (1,), description="1 = chunk-causal attention (25 tokens / 50 frames), 0 = full"),
                    TensorSpec("xvec", (1, cfg.spk_embed_dim), description="CAM++ speaker embedding (not normalised)")],
            outputs=[TensorSpec("mu", mel, description="encoder output, channels-first; frames past 2*sum(token_mask) are junk"),
                     TensorSpec("spks", (1, cfg.output_size), description="projected L2-normalised speaker embedding")],
            make_inputs=lambda case, cfg=cfg, T=T: encoder_inputs(cfg, T, case),
            atol=ATOL_FP16_ENCODER if fp16 else ATOL_ENCODER, parity_cases=3, fixed_dims=dims,
            description="token embedding + UpsampleConformerEncoder + encoder_proj; speaker affine",
            metadata=dict(dims),
        ))
        dec_common = [TensorSpec("mu", mel), TensorSpec("cond", mel, description="prompt mel on the first frames, else 0"),
                      TensorSpec("spks", (1, cfg.output_size)),
                      TensorSpec("mel_mask", (1, 1, n), description="1 for valid frames"),
                      TensorSpec("streaming", (1,), description="1 = chunk-causal attention (50 frames)")]
        if solver in ("unrolled", "both"):
            specs.append(GraphSpec(
                name=f"flow_solve_{n}", component="flow", module=SolveGraph(flow),
                inputs=[TensorSpec("noise", mel, description="flow/noise.npy[:, :, :N] (official fixed noise)")] + dec_common,
                outputs=[TensorSpec("mel", mel, description="log-mel; frames past the valid length are junk")],
                make_inputs=lambda case, cfg=cfg, n=n: decoder_inputs(cfg, n, case, noise),
                build_onnx=lambda opset, scratch, flow=flow, cfg=cfg, n=n: solve_onnx(
                    flow, decoder_inputs(cfg, n, 0, noise), opset, scratch),
                passes=SOLVE_PASSES,
                atol=ATOL_FP16_MEL if fp16 else ATOL_SOLVE, parity_cases=3 if n == min(flows) else 1, fixed_dims=dims,
                description=f"{cfg.n_timesteps}-step Euler CFM solve (cosine t, CFG {cfg.inference_cfg_rate}) unrolled",
                metadata=dict(dims, n_timesteps=cfg.n_timesteps),
            ))
        if solver in ("step", "both"):
            specs.append(GraphSpec(
                name=f"flow_step_{n}", component="flow", module=StepGraph(flow),
                inputs=[TensorSpec("x", mel, description="current sample (noise at step 0)"),
                        TensorSpec("t", (1,)), TensorSpec("dt", (1,))] + dec_common,
                outputs=[TensorSpec("velocity", mel, description="1.7 v(cond) - 0.7 v(uncond)"),
                         TensorSpec("x_next", mel, description="x + dt * velocity")],
                make_inputs=lambda case, cfg=cfg, n=n: decoder_inputs(cfg, n, case, noise),
                atol=ATOL_FP16_MEL if fp16 else ATOL_STEP, parity_cases=3, fixed_dims=dims,
                description="one Euler step of the CFG-paired estimator",
                metadata=dict(dims),
            ))
    return specs


def build(model_dir, options: ExportOptions, flow_class: type = Flow) -> ComponentExport:
    lens = tuple(sorted(set(options.flow_lens or DEFAULT_FLOW_LENS)))
    cfg = model_dir.config.flow
    for n in lens:
        if n <= 0 or n % cfg.token_mel_ratio:
            raise ExportError(f"flow: --flow-len {n} must be a positive multiple of {cfg.token_mel_ratio} (mel frames)")
        if n > 15000:
            raise ExportError(f"flow: --flow-len {n} exceeds the official noise table (15000 frames)")
    flows = load_flows(model_dir, lens, flow_class)
    noise = official_noise(max(lens)).numpy()
    specs = build_graphs(flows, options, noise)
    f0 = flows[lens[0]]
    solver = options.extra.get("flow_solver", "unrolled")
    manifest = {
        "mel_lens": list(lens),
        "token_mel_ratio": cfg.token_mel_ratio,
        "pre_lookahead_len": cfg.pre_lookahead_len,
        "solver": solver,
        "n_timesteps": cfg.n_timesteps,
        "t": f0.t_steps,
        "dt": f0.dt_steps,
        "inference_cfg_rate": cfg.inference_cfg_rate,
        "noise_file": "flow/noise.npy",
        "vocab_size": cfg.vocab_size,
        "spk_embed_dim": cfg.spk_embed_dim,
        "n_mels": cfg.output_size,
        "chunk_tokens": cfg.chunk_tokens,
        "graphs": {n: {"encoder": f"flow_encoder_{n}",
                       **({"solve": f"flow_solve_{n}"} if solver in ("unrolled", "both") else {}),
                       **({"step": f"flow_step_{n}"} if solver in ("step", "both") else {})} for n in lens},
    }
    manifest["graphs"] = {str(k): v for k, v in manifest["graphs"].items()}
    return ComponentExport("flow", specs, manifest, {"flow/noise.npy": noise.astype(np.float32)})
