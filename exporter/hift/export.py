"""Export spec of the HiFT vocoder: one static graph `hift` of T_fixed mel frames.

Graph `hift`:
  inputs  mel (1, 80, T) f32, noise (1, 480T, 9) f32 ~ N(0, 1) (the official randn_like draw),
          phase_in (1, 1, 9) f32 sine phase offset in cycles, phase_ref (1, T, 1)
          f32 zeros or one-hot reference frame of phase_in, cache_source (1, 1, 3840) f32,
          cache_weight (1, 1, 1) f32 (1 = overwrite the first 3840 source samples, 0 = not),
          n_frames (1,) int32: the input's length n in 1..T (frames from n on are ignored)
  outputs waveform (1, 480T), source (1, 1, 480T), phase (1, T, 9) cumulative frame phase (cycles),
          each what the official HiFTGenerator gives for the n-frame input, zero past it
Longer inputs are vocoded in chunks by the host (runtime_ref/hift.py); see docs/components/hift.md.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ExportError
from ..modeldir import ModelDir
from ..spec import COMPARE_CIRCULAR, COMPARE_RELATIVE_RMS, ComponentExport, ExportOptions, GraphSpec, TensorSpec
from .model import PHASE_BITS, build_hift

DEFAULT_FRAMES = 128  # mel frames per graph call (2.56 s of audio)
CONTEXT_FRAMES = 12  # mel frames of context on each side of a chunk's core (measured, docs/components/hift.md)
MEL_CACHE_LEN = 8  # official CosyVoice2Model streaming cache
SOURCE_CACHE_LEN = 8 * 480
PHASE_TOL_PER_FRAME = 2e-5  # phase: circular distance in cycles per graph frame (the f0's float32 rounding
#                             accumulates over the frames; measured ~2e-6 per frame at f0 up to 500 Hz)
SOURCE_REL_TOL = 1e-2  # source: max-abs / RMS(source) vs PyTorch (measured ~1e-3 at f0 up to 500 Hz)
# The sine phase integrates the f0's float32 rounding frame after frame, and how two float32
# implementations round depends on the CPU's kernels: on an AVX-512 Xeon onnxruntime and PyTorch
# agreed to ~2e-6 cycles per frame, on a Zen 5 EPYC to ~2e-5 (and each was as far from the float64
# math as from the other). So waveform, source and phase are compared with the float64 math:
# onnxruntime must stay within the fixed bound or FLOAT32_FLOOR_FACTOR x PyTorch float32's own
# distance from float64, whichever is larger. The two are draws of the same rounding process: their
# ratio was 0.3..3.6 over 14 measured outputs (tiny and full size, CosyVoice2 and 3); 8 leaves room
# for the spread of that ratio, and a broken graph is off by orders of magnitude more.
FLOAT32_FLOOR_FACTOR = 8.0


def example_mel(T: int, seed: int, n_mels: int = 80) -> np.ndarray:
    """A smooth random log-mel in the usual range (about -10 .. 0), (1, n_mels, T)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, n_mels, T + 8))
    k = np.ones(5) / 5
    x = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 2, x)[:, :, :T]
    return (-5.0 + 2.5 * x + rng.standard_normal((1, n_mels, T)) * 0.3).astype(np.float32)


def build(model_dir: ModelDir, options: ExportOptions) -> ComponentExport:
    cfg = model_dir.config.hift
    if isinstance(options.hift_frames, tuple):
        raise ExportError("--hift-frames: the CosyVoice2 vocoder takes one graph size (a mel of any length is vocoded "
                          "exactly in chunks of it); give it once")
    T = int(options.hift_frames or DEFAULT_FRAMES)
    if T < 2 * CONTEXT_FRAMES + 8 or T > 2048:  # (any call length 1..T works; chunks need 2 contexts + a core)
        raise ExportError(f"--hift-frames {T} is out of range: use {2 * CONTEXT_FRAMES + 8}..2048 mel frames")
    sd, where = model_dir.load_checkpoint("hift"), str(model_dir.checkpoint_path("hift"))
    model = build_hift(cfg, sd, source=where)
    hop, H = cfg.hop_samples, cfg.nb_harmonics + 1

    # parity cases: full length; a short call with cache_source; one frame short with a pinned
    # phase; a single frame. Past n the inputs are random (the graph must ignore them).
    case_frames = [T, T // 2 + 5, T - 1, 1]

    def make_inputs(case: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(1000 + case)
        n = case_frames[case]
        mel = example_mel(T, seed=case, n_mels=cfg.in_channels)
        mel[:, :, n:] = rng.standard_normal((1, cfg.in_channels, T - n)) * 3 - 5
        return {
            "mel": mel,
            "noise": rng.standard_normal((1, hop * T, H)).astype(np.float32),
            "phase_in": (rng.random((1, 1, H)) if case else np.zeros((1, 1, H))).astype(np.float32),
            "phase_ref": np.eye(1, T, min(T // 2, n - 1) if case == 2 else T, dtype=np.float32).reshape(1, T, 1),
            "cache_source": (0.3 * rng.standard_normal((1, 1, SOURCE_CACHE_LEN))).astype(np.float32),
            "cache_weight": np.full((1, 1, 1), 1.0 if case == 1 else 0.0, np.float32),
            "n_frames": np.array([n], np.int32),
        }

    spec = GraphSpec(
        name="hift",
        component="hift",
        module=model,
        inputs=[
            TensorSpec("mel", (1, cfg.in_channels, T), description="log-mel frames (natural log)"),
            TensorSpec("noise", (1, hop * T, H), description="standard normal noise of SineGen2 (host RNG)"),
            TensorSpec("phase_in", (1, 1, H), description="sine phase offset per harmonic in cycles [0,1)"),
            TensorSpec("phase_ref", (1, T, 1), description="zeros, or one-hot frame r: phase[r] = phase_in"),
            TensorSpec("cache_source", (1, 1, SOURCE_CACHE_LEN), description="source samples that overwrite the start (streaming)"),
            TensorSpec("cache_weight", (1, 1, 1), description="1 = apply cache_source, 0 = ignore it"),
            TensorSpec("n_frames", (1,), dtype="int32", description="valid mel frames n (1..T); the rest is ignored"),
        ],
        outputs=[
            TensorSpec("waveform", (1, hop * T), description="24 kHz audio, clamped to +-0.99"),
            TensorSpec("source", (1, 1, hop * T), description="merged sine/noise excitation (streaming cache)"),
            TensorSpec("phase", (1, T, H), description="cumulative sine phase at each frame, cycles in [0,1)"),
        ],
        make_inputs=make_inputs,
        # phase wraps at 1 cycle: compared by circular distance. The source is a sum of sines whose
        # phase reaches ~480 cycles inside a frame (float32 ulp ~3e-5 cycles), so the two backends'
        # roundings differ by up to ~1e-3 of its RMS at f0 up to 500 Hz: compared relative to its RMS.
        # fp16 weights: the figure that matters is the waveform SNR vs fp32 (tests, docs); a slightly
        # different f0 accumulates a different phase, so phase and source are only reported there.
        compare={"phase": COMPARE_CIRCULAR, "source": COMPARE_RELATIVE_RMS},
        atol=5e-2 if options.fp16 else 1e-4,
        atol_per_output={"phase": 0.5 if options.fp16 else PHASE_TOL_PER_FRAME * T, "source": 10.0 if options.fp16 else SOURCE_REL_TOL},
        parity_cases=len(case_frames),
        # fp16 bundles: the F0 predictor stays float32 (the sine phase integrates its error frame
        # after frame; in float16 a 0.1 Hz error is a whole cycle after ~50 frames at harmonic 9)
        fp16_keep_prefixes=("f0_predictor.",),
        float64_reference=None if options.fp16 else (lambda: build_hift(cfg, sd, source=where, dtype=torch.float64)),
        float32_limited={"waveform": FLOAT32_FLOOR_FACTOR, "source": FLOAT32_FLOOR_FACTOR, "phase": FLOAT32_FLOOR_FACTOR},
        fixed_dims={"frames": T, "samples": hop * T, "source_cache_len": SOURCE_CACHE_LEN},
        description=f"HiFT vocoder: {T} mel frames -> {hop * T} samples at {cfg.sampling_rate} Hz, in-graph sine source, STFT and iSTFT",
        metadata={"frames": T, "hop_samples": hop},
    )
    manifest = {
        "graph": "hift",
        "frames": T,
        "hop_samples": hop,
        "sample_rate": cfg.sampling_rate,
        "harmonics": H,
        "phase_bits": PHASE_BITS,
        "length_input": "n_frames",  # any call of 1..frames mel frames is exact (no padding by the host)
        "noise": {"input": "noise", "distribution": "standard normal", "shape": [1, "480*frames", H],
                  "note": "official SineGen2 draws randn_like(sine_waves) per call; the host draws it"},
        "chunking": {"context_frames": CONTEXT_FRAMES, "core_frames": T - 2 * CONTEXT_FRAMES,
                     "phase_carry": "phase_in of a chunk = phase output at the frame before its first frame"},
        "streaming": {"mel_cache_len": MEL_CACHE_LEN, "source_cache_len": SOURCE_CACHE_LEN,
                      "cross_fade": "symmetric Hamming of 2*source_cache_len (numpy.hamming)"},
        "precision": {"fp16_weights": bool(options.fp16)},
    }
    return ComponentExport("hift", [spec], manifest)
