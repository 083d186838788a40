"""ZipVoice / ZipVoice-Distill (k2-fsa/ZipVoice): no LLM — token embedding → Zipformer text
encoder → Zipformer flow-matching decoder (CFG + Euler, unrolled) → Vocos. The family's code is
`exporter/zipvoice/` (model dir, modules, export specs, fixture, demo) and `runtime_ref/zipvoice/`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import Family


class ZipVoice(Family):
    name = "zipvoice"
    title = "ZipVoice"
    marker = "model.json + tokens.txt + model.pt|.safetensors + vocos/"
    components = {
        "text_encoder": "exporter.zipvoice.export_text_encoder",
        "fm_decoder": "exporter.zipvoice.export_fm_decoder",
        "vocos": "exporter.zipvoice.export_vocos",
        "text": "exporter.zipvoice.export_text",
    }

    def detect(self, root: Path) -> bool:
        return (root / "model.json").is_file() and (root / "tokens.txt").is_file()

    def open(self, root: Path):
        from ..zipvoice.modeldir import ZipVoiceModelDir

        return ZipVoiceModelDir.open(root)

    def checkpoint_files(self, md, component: str) -> list[Path]:
        if component in ("text_encoder", "fm_decoder"):
            return [md.checkpoint_path()]
        if component == "vocos":
            return [md.checkpoint_path("vocos")]
        return []

    def constants(self, md) -> dict:
        c = md.config
        return {"sample_rate": c.sampling_rate, "variant": c.variant, "feat_dim": c.model.feat_dim,
                "hop_length": c.vocos.hop_length, "feat_scale": c.feat_scale, "target_rms": c.target_rms,
                "num_step": c.num_step, "guidance_scale": c.guidance_scale, "t_shift": c.t_shift,
                "tokenizer": c.tokenizer}

    def describe(self, md) -> list[str]:
        c, m, v = md.config, md.config.model, md.config.vocos
        return [
            f"  variant     : {c.variant} ({c.num_step} steps, guidance {c.guidance_scale}, t_shift {c.t_shift})",
            f"  text encoder: {m.text_encoder_num_layers} layers × {m.text_encoder_dim}, ff {m.text_encoder_feedforward_dim}, "
            f"kernel {m.text_encoder_cnn_module_kernel}, vocab {m.vocab_size} ({c.tokenizer} front-end)",
            f"  fm decoder  : stacks {list(m.fm_decoder_num_layers)} layers, downsampling {list(m.fm_decoder_downsampling_factor)}, "
            f"dim {m.fm_decoder_dim}, ff {m.fm_decoder_feedforward_dim}, heads {m.fm_decoder_num_heads}",
            f"  vocos       : {v.num_layers} ConvNeXt blocks × {v.dim} (ff {v.intermediate_dim}), istft {v.n_fft}/{v.hop_length}, "
            f"{v.n_mels} mels, {v.sample_rate} Hz",
        ]

    def build_fixture(self, dst: Path, *, size: str = "tiny", seed: int = 0, fmt: str = "pt", overwrite: bool = False) -> Path:
        from ..zipvoice.fixture import build_model_dir

        return build_model_dir(dst, size=size, seed=seed, fmt=fmt, overwrite=overwrite)

    def run_demo(self, out: Path, *, seed: int = 0, threads: int = 2, log: Callable[[str], None] = print) -> dict:
        from ..zipvoice.demo import run_demo

        return run_demo(out, seed=seed, threads=threads, log=log)


FAMILY = ZipVoice()
