"""Export spec of Vocos: backbone + iSTFT head in one static graph per frame bucket F
(`vocos_<F>`), exact at every valid length n ≤ F.

  inputs  features (1, n_mels, F) log-mel (fm output / feat_scale); frame_count (1,) int32
  outputs waveform (1, hop·(F-1)); the first hop·(n-1) samples equal vocos.decode(features[..., :n])
"""
from __future__ import annotations

import numpy as np
import torch

from ..checkpoint import load_into
from ..spec import ComponentExport, ExportOptions, GraphSpec, TensorSpec
from .export_common import example_features, frame_lens
from .vocos import Vocos


def build(md, options: ExportOptions) -> ComponentExport:
    v = md.config.vocos
    model = load_into(Vocos(v), md.load_vocos(), source=str(md.checkpoint_path("vocos"))).eval()
    specs = []
    for F in frame_lens(md, options):
        def make_inputs(case: int, F=F) -> dict[str, np.ndarray]:
            rng = np.random.default_rng(4000 + case)
            n = [F, F - 7, 2][case % 3]
            return {"features": np.ascontiguousarray(example_features(F, v.n_mels, rng).transpose(0, 2, 1)),
                    "frame_count": np.array([n], np.int32)}

        specs.append(GraphSpec(
            name=f"vocos_{F}", component="vocos", module=model,
            inputs=[TensorSpec("features", (1, v.n_mels, F), description="log-mel features"),
                    TensorSpec("frame_count", (1,), "int32", "valid frames")],
            outputs=[TensorSpec("waveform", (1, v.hop_length * (F - 1)), description=f"{v.sample_rate} Hz audio, "
                                "hop*(frame_count-1) valid samples, zeros after")],
            make_inputs=make_inputs, atol=1e-4, parity_cases=3, fixed_dims={"frames": F},
            description=f"Vocos ({v.num_layers} ConvNeXt blocks, iSTFT {v.n_fft}/{v.hop_length} as convolutions) over {F} frames",
            metadata={"frames": F}))
    manifest = {"graphs": [s.name for s in specs], "frame_lens": [s.fixed_dims["frames"] for s in specs],
                "hop_length": v.hop_length, "n_fft": v.n_fft, "n_mels": v.n_mels, "sample_rate": v.sample_rate,
                "output": "waveform[:, :hop*(frame_count-1)] = torch.istft(center=True) of the valid frames"}
    return ComponentExport("vocos", specs, manifest)
