"""CosyVoice3 vocoder export: static graphs `hift_{T}` of T mel frames (default 64 and 256), the
finalize pass over the first n of them (in-graph causal sine source, STFT and iSTFT), the sine
phase pinnable, so that a mel of any length is vocoded exactly in chunks (runtime_ref/cosyvoice3.py
CausalVocoder: chunks of the largest T, each call on the smallest graph that holds it):

  inputs  mel (1, 80, T) f32, noise (1, 480T, 9) f32 uniform [0, 1) (the official fixed table's
          values for these samples), phase_in (1, 1, 9) f32 cycles, phase_ref (1, T, 1) f32 zeros or
          one-hot frame r (phase[r] = phase_in), n_frames (1,) int32 in 1..T (the rest is ignored)
  outputs waveform (1, 480T), phase (1, T, 9) cumulative sine phase per frame (cycles), zero from n

A chunk reads `context_frames` before what it emits (the causal stack's left reach, measured from
the architecture: exporter/cosyvoice3/hift.py measure_context_frames) and holds back the last
`lookahead_frames` unless it ends the utterance.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from ..errors import ExportError
from ..hift.export import FLOAT32_FLOOR_FACTOR, PHASE_TOL_PER_FRAME, example_mel
from ..spec import COMPARE_CIRCULAR, COMPARE_RELATIVE_RMS, ComponentExport, ExportOptions, GraphSpec, TensorSpec
from .hift import PHASE_BITS, build_causal_hift, lookahead_frames, measure_context_frames

# graph sizes (mel frames): chunks of the largest (5.12 s; ~83 % of a middle call's frames are
# emitted), the smallest for calls of fewer frames — a stream's first call, a short utterance, the
# tail of a long one — so they do not pay for 256 frames (full size: 0.77 s vs ~0.2 s for the first
# streaming call)
DEFAULT_FRAMES = (64, 256)
MIN_CORE_FRAMES = 16
# the waveform integrates the f0's float32 rounding in its sine phase frame after frame, so it is
# compared relative to its RMS (max |diff| / RMS) per call of T frames, with the float64 math
# (FLOAT32_FLOOR_FACTOR, exporter/hift/export.py): the chunking bounds the integration to one call
# (the whole-utterance graph of 1024 frames was 0.047 from PyTorch float32)
WAVE_REL_TOL = 1e-2


class VocoderGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, mel, noise, phase_in, phase_ref, n_frames):
        return self.model.vocode_chunk(mel, noise, phase_in, phase_ref, n_frames)


def emitted_region(n: int, ref: int | None, hop: int) -> dict[str, tuple]:
    """The samples and phases a call with n valid frames, pinned at frame `ref`, can hand to the
    host (causal_chunk_plan emits from the frame after the pin; what is before it is context)."""
    first = 0 if ref is None else ref + 1
    return {"waveform": (slice(None), slice(hop * first, hop * n)), "phase": (slice(None), slice(max(first - 1, 0), n))}


def graph_name(T: int) -> str:
    return f"hift_{T}"


def build(model_dir, options: ExportOptions) -> ComponentExport:
    cfg = model_dir.config.hift
    context, look = measure_context_frames(cfg), lookahead_frames(cfg)
    hf = options.hift_frames
    sizes = sorted(set(int(t) for t in (hf if isinstance(hf, tuple) else (hf,) if hf else DEFAULT_FRAMES)))
    for T in sizes:
        if T < context + look + MIN_CORE_FRAMES or T > 2048:
            raise ExportError(f"--hift-frames {T} is out of range for this vocoder: use {context + look + MIN_CORE_FRAMES}..2048 "
                              f"mel frames (a chunk re-reads {context} context frames and holds back {look})")
    sd, where = model_dir.load_checkpoint("hift"), str(model_dir.checkpoint_path("hift"))
    model = build_causal_hift(cfg, sd, source=where)

    @functools.cache  # one float64 copy for every graph size's parity
    def float64_module():
        return VocoderGraph(build_causal_hift(cfg, sd, source=where, dtype=torch.float64))

    hop, H = cfg.hop_samples, cfg.nb_harmonics + 1
    specs = [graph_spec(cfg, VocoderGraph(model), float64_module, T, context, options) for T in sizes]
    manifest = {"variant": "causal", "frames": sizes[-1], "graphs": {str(T): graph_name(T) for T in sizes},
                "hop_samples": hop, "sample_rate": cfg.sampling_rate,
                "harmonics": H, "phase_bits": PHASE_BITS, "conv_pre_look_right": cfg.conv_pre_look_right,
                "f0_look_right": cfg.f0_first_kernel - 1, "length_input": "n_frames",
                "context_frames": context, "lookahead_frames": look,
                "chunking": {"plan": "a call reads frames start = max(0, emitted - context_frames) .. start + n (n <= frames, "
                                     "the largest graph) and emits emitted .. end: end = the mel's last frame + 1 if this call "
                                     "reaches it and the utterance is final, else start + n - lookahead_frames (at most the "
                                     "mel's frames - lookahead_frames when more mel will come); it runs on the smallest graph "
                                     "of `graphs` with at least n frames",
                             "phase_carry": "emitted > 0: phase_ref one-hot at emitted - 1 - start, phase_in = the previous "
                                            "call's phase output at that frame; else zeros"},
                "noise": {"input": "noise", "distribution": "uniform [0, 1)", "shape": [1, "480*frames", H],
                          "note": "official: one fixed torch.rand table from sample 0 of the utterance; the host draws the "
                                  "piece's table from its RNG as far as it is used and passes the call's samples"},
                "precision": {"fp16_weights": bool(options.fp16)}}
    return ComponentExport("hift", specs, manifest)


def graph_spec(cfg, module, float64_module, T: int, context: int, options: ExportOptions) -> GraphSpec:
    hop, H = cfg.hop_samples, cfg.nb_harmonics + 1
    # parity cases: an utterance's first chunk; a middle chunk (phase pinned at the frame before what
    # it emits); the last chunk, ending inside the buffer (random past n: the graph must ignore it);
    # a one-frame utterance
    cases = [(T, None), (T, context - 1), (T // 2 + 5, context - 1), (1, None)]

    def make_inputs(case: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(2000 + case)
        n, ref = cases[case]
        mel = example_mel(T, seed=case, n_mels=cfg.in_channels)
        mel[:, :, n:] = rng.standard_normal((1, cfg.in_channels, T - n)) * 3 - 5
        return {"mel": mel,
                "noise": rng.random((1, hop * T, H)).astype(np.float32),
                "phase_in": (rng.random((1, 1, H)) if ref is not None else np.zeros((1, 1, H))).astype(np.float32),
                "phase_ref": np.eye(1, T, T if ref is None else ref, dtype=np.float32).reshape(1, T, 1),
                "n_frames": np.array([n], np.int32)}

    return GraphSpec(
        name=graph_name(T), component="hift", module=module,
        inputs=[TensorSpec("mel", (1, cfg.in_channels, T), description="log-mel frames (natural log)"),
                TensorSpec("noise", (1, hop * T, H), description="uniform [0, 1) noise of the causal SineGen2 for these samples (host RNG)"),
                TensorSpec("phase_in", (1, 1, H), description="sine phase per harmonic in cycles [0, 1)"),
                TensorSpec("phase_ref", (1, T, 1), description="zeros (phase_in: the phase before frame 0), or one-hot frame r: phase[r] = phase_in"),
                TensorSpec("n_frames", (1,), dtype="int32", description="valid mel frames n (1..T): the utterance's end or the buffer's")],
        outputs=[TensorSpec("waveform", (1, hop * T), description="24 kHz audio, clamped to +-0.99, zero from sample 480n"),
                 TensorSpec("phase", (1, T, H), description="cumulative sine phase at each frame, cycles in [0, 1)")],
        make_inputs=make_inputs,
        compare={"waveform": COMPARE_RELATIVE_RMS, "phase": COMPARE_CIRCULAR},
        compare_region=lambda case: emitted_region(*cases[case], hop),
        compare_region_doc="the frames a call can emit: after the pinned frame (or from 0) up to n_frames "
                           "(the context frames before it are re-read, never played)",
        atol=5e-2 if options.fp16 else WAVE_REL_TOL,
        atol_per_output={"phase": 0.5 if options.fp16 else PHASE_TOL_PER_FRAME * T},
        parity_cases=len(cases),
        fp16_keep_prefixes=("model.f0_predictor.",),  # (the sine phase integrates the f0's error: CosyVoice2's HiFT)
        float64_reference=None if options.fp16 else float64_module,
        float32_limited={"waveform": FLOAT32_FLOOR_FACTOR, "phase": FLOAT32_FLOOR_FACTOR},
        fixed_dims={"frames": T, "samples": hop * T},
        description=f"CausalHiFT vocoder: {T} mel frames -> {hop * T} samples, causal sine source, STFT/iSTFT in graph",
        metadata={"frames": T, "hop_samples": hop},
    )
