"""CosyVoice2-0.5B (and fine-tunes): Qwen2 LLM → flow matching (conformer encoder + U-Net
estimator) → HiFT. The family wraps the existing component packages (exporter/llm, flow, hift,
speech_tokenizer, campplus, text_export), `exporter.modeldir.ModelDir`, `exporter.fixtures` and
`exporter.demo`; runtime_ref's pipeline is `runtime_ref.pipeline.Pipeline`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import Family


class CosyVoice2(Family):
    name = "cosyvoice2"
    title = "CosyVoice2"
    marker = "cosyvoice2.yaml + CosyVoice-BlankEN/ + llm/flow/hift.pt"
    components = {
        "llm": "exporter.llm.export",
        "flow": "exporter.flow.export",
        "hift": "exporter.hift.export",
        "speech_tokenizer": "exporter.speech_tokenizer.export",
        "campplus": "exporter.campplus.export",
        "text": "exporter.text_export",
    }

    def detect(self, root: Path) -> bool:
        # cosyvoice.yaml (CosyVoice 1) is claimed too, so that ModelDir.open names it in its error
        return (root / "cosyvoice2.yaml").is_file() or (root / "cosyvoice.yaml").is_file()

    def open(self, root: Path):
        from ..modeldir import ModelDir

        return ModelDir.open(root)

    def checkpoint_files(self, md, component: str) -> list[Path]:
        from ..modeldir import CHECKPOINTS

        return [md.checkpoint_path(component)] if component in CHECKPOINTS else []

    def constants(self, md) -> dict:
        c = md.config
        return {"sample_rate": c.sample_rate, "token_frame_rate": c.token_frame_rate,
                "token_mel_ratio": c.token_mel_ratio, "chunk_size": c.chunk_size}

    def describe(self, md) -> list[str]:
        c = md.config
        q = c.llm.qwen
        e, s = c.flow.encoder, c.flow.estimator
        h = c.hift
        return [
            f"  llm : Qwen2 {q.num_hidden_layers} layers, hidden {q.hidden_size}, heads {q.num_attention_heads}/"
            f"{q.num_key_value_heads} kv, text vocab {q.vocab_size}, speech vocab {c.llm.speech_vocab}",
            f"  flow: encoder {e.num_blocks}+{e.num_up_blocks} blocks × {e.output_size}, estimator channels "
            f"{list(s.channels)}, {s.n_blocks} blocks/level, {s.num_mid_blocks} mid, {s.num_heads} heads",
            f"  hift: base {h.base_channels}, upsample {list(h.upsample_rates)}, istft {h.istft_n_fft}/"
            f"{h.istft_hop_len}, {h.sampling_rate} Hz ({h.hop_samples} samples per mel frame)",
        ]

    def build_fixture(self, dst: Path, *, size: str = "tiny", seed: int = 0, fmt: str = "pt", overwrite: bool = False) -> Path:
        from ..fixtures import build_model_dir

        return build_model_dir(dst, size=size, seed=seed, fmt=fmt, overwrite=overwrite)

    def run_demo(self, out: Path, *, seed: int = 0, threads: int = 2, log: Callable[[str], None] = print) -> dict:
        from ..demo import run_demo

        return run_demo(out, seed=seed, threads=threads, log=log)


FAMILY = CosyVoice2()
