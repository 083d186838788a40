"""CosyVoice3 vocoder export: one static graph `hift` of T mel frames (finalize semantics:
conv_pre / f0 look-right zero-padded at the end), in-graph causal sine source, STFT and iSTFT.

  inputs  mel (1, 80, T) f32, noise (1, 480T, 9) f32 uniform [0, 1) (the official fixed table's role)
  outputs waveform (1, 480T)
"""
from __future__ import annotations

import numpy as np
from torch import nn

from ..flow.export import DEFAULT_FLOW_LENS
from ..hift.export import example_mel
from ..spec import COMPARE_RELATIVE_RMS, ComponentExport, ExportOptions, GraphSpec, TensorSpec
from .hift import PHASE_BITS, build_causal_hift


WAVE_REL_TOL = 1e-2


class VocoderGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, mel, noise):
        return self.model(mel, noise, True)


def build(model_dir, options: ExportOptions) -> ComponentExport:
    cfg = model_dir.config.hift
    # the whole mel of an utterance piece is vocoded in one call: default = the largest flow bucket
    T = int(options.hift_frames or max(options.flow_lens or DEFAULT_FLOW_LENS))
    model = build_causal_hift(cfg, model_dir.load_checkpoint("hift"), source=str(model_dir.checkpoint_path("hift")))
    hop, H = cfg.hop_samples, cfg.nb_harmonics + 1

    def make_inputs(case: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(2000 + case)
        return {"mel": example_mel(T, seed=case, n_mels=cfg.in_channels),
                "noise": rng.random((1, hop * T, H)).astype(np.float32)}

    spec = GraphSpec(
        name="hift", component="hift", module=VocoderGraph(model),
        inputs=[TensorSpec("mel", (1, cfg.in_channels, T), description="log-mel frames (natural log)"),
                TensorSpec("noise", (1, hop * T, H), description="uniform [0, 1) noise table of the causal SineGen2 (host RNG)")],
        outputs=[TensorSpec("waveform", (1, hop * T), description="24 kHz audio, clamped to +-0.99")],
        make_inputs=make_inputs,
        # the held sine phase integrates the f0 over all frames, so torch-vs-onnxruntime roundings of
        # the f0 (thread count, kernel order) grow with T: ~1e-4 absolute at T=128, ~1e-3 of the RMS.
        # Compared relative to the waveform's RMS (max |diff| / RMS), as CosyVoice2's HiFT source is.
        compare={"waveform": COMPARE_RELATIVE_RMS},
        atol=5e-2 if options.fp16 else WAVE_REL_TOL, parity_cases=2,
        fixed_dims={"frames": T, "samples": hop * T},
        description=f"CausalHiFT vocoder: {T} mel frames -> {hop * T} samples, causal sine source, STFT/iSTFT in graph",
        metadata={"frames": T, "hop_samples": hop},
    )
    manifest = {"graph": "hift", "variant": "causal", "frames": T, "hop_samples": hop, "sample_rate": cfg.sampling_rate,
                "harmonics": H, "phase_bits": PHASE_BITS, "conv_pre_look_right": cfg.conv_pre_look_right,
                "f0_look_right": cfg.f0_first_kernel - 1,
                "noise": {"input": "noise", "distribution": "uniform [0, 1)", "shape": [1, "480*frames", H],
                          "note": "official: a fixed torch.rand table drawn when the module is built; the host draws it"}}
    return ComponentExport("hift", [spec], manifest)
