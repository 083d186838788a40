"""Export spec of the HiFT vocoder: one static graph `hift` of T_fixed mel frames.

Graph `hift`:
  inputs  mel (1, 80, T) f32, noise (1, 480T, 9) f32 ~ N(0, 1) (the official randn_like draw),
          phase_in (1, 1, 9) f32 sine phase offset in cycles, phase_ref (1, T, 1)
          f32 zeros or one-hot reference frame of phase_in, cache_source (1, 1, 3840) f32,
          cache_weight (1, 1, 1) f32 (1 = overwrite the first 3840 source samples, 0 = not)
  outputs waveform (1, 480T), source (1, 1, 480T), phase (1, T, 9) cumulative frame phase (cycles)
Longer inputs are vocoded in chunks by the host (runtime_ref/hift.py); see docs/components/hift.md.
"""
from __future__ import annotations

import numpy as np

from ..modeldir import ModelDir
from ..spec import ComponentExport, ExportOptions, GraphSpec, TensorSpec
from .model import PHASE_BITS, build_hift

DEFAULT_FRAMES = 128  # mel frames per graph call (2.56 s of audio)
CONTEXT_FRAMES = 12  # mel frames of context on each side of a chunk's core (measured, docs/components/hift.md)
MEL_CACHE_LEN = 8  # official CosyVoice2Model streaming cache
SOURCE_CACHE_LEN = 8 * 480


def example_mel(T: int, seed: int, n_mels: int = 80) -> np.ndarray:
    """A smooth random log-mel in the usual range (about -10 .. 0), (1, n_mels, T)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, n_mels, T + 8))
    k = np.ones(5) / 5
    x = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 2, x)[:, :, :T]
    return (-5.0 + 2.5 * x + rng.standard_normal((1, n_mels, T)) * 0.3).astype(np.float32)


def build(model_dir: ModelDir, options: ExportOptions) -> ComponentExport:
    cfg = model_dir.config.hift
    T = int(options.hift_frames or DEFAULT_FRAMES)
    if T < 2 * CONTEXT_FRAMES + 8 or T > 2048:
        from ..errors import ExportError

        raise ExportError(f"--hift-frames {T} is out of range: use {2 * CONTEXT_FRAMES + 8}..2048 mel frames")
    model = build_hift(cfg, model_dir.load_checkpoint("hift"), source=str(model_dir.checkpoint_path("hift")))
    hop, H = cfg.hop_samples, cfg.nb_harmonics + 1

    def make_inputs(case: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(1000 + case)
        return {
            "mel": example_mel(T, seed=case, n_mels=cfg.in_channels),
            "noise": rng.standard_normal((1, hop * T, H)).astype(np.float32),
            "phase_in": (rng.random((1, 1, H)) if case else np.zeros((1, 1, H))).astype(np.float32),
            "phase_ref": np.eye(1, T, T // 2 if case else T, dtype=np.float32).reshape(1, T, 1),
            "cache_source": (0.3 * rng.standard_normal((1, 1, SOURCE_CACHE_LEN))).astype(np.float32),
            "cache_weight": np.full((1, 1, 1), 1.0 if case == 1 else 0.0, np.float32),
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
        ],
        outputs=[
            TensorSpec("waveform", (1, hop * T), description="24 kHz audio, clamped to +-0.99"),
            TensorSpec("source", (1, 1, hop * T), description="merged sine/noise excitation (streaming cache)"),
            TensorSpec("phase", (1, T, H), description="cumulative sine phase at each frame, cycles in [0,1)"),
        ],
        make_inputs=make_inputs,
        # fp16 weights: the figure that matters is the waveform SNR vs fp32 (tests, docs); the
        # wrapped phase may differ by a whole cycle at the wrap point, so it is not bounded there
        atol=5e-2 if options.fp16 else 1e-4,
        atol_per_output={"phase": 1.0 if options.fp16 else 1e-4},
        parity_cases=3,
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
        "noise": {"input": "noise", "distribution": "standard normal", "shape": [1, "480*frames", H],
                  "note": "official SineGen2 draws randn_like(sine_waves) per call; the host draws it"},
        "chunking": {"context_frames": CONTEXT_FRAMES, "core_frames": T - 2 * CONTEXT_FRAMES,
                     "phase_carry": "phase_in of a chunk = phase output at the frame before its first frame"},
        "streaming": {"mel_cache_len": MEL_CACHE_LEN, "source_cache_len": SOURCE_CACHE_LEN,
                      "cross_fade": "symmetric Hamming of 2*source_cache_len (numpy.hamming)"},
        "precision": {"fp16_weights": bool(options.fp16)},
    }
    return ComponentExport("hift", [spec], manifest)
