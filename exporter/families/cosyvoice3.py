"""Fun-CosyVoice3-0.5B: Qwen2 LM with its specials inside speech_embedding (CosyVoice3LM) →
CausalMaskedDiffWithDiT (pre-lookahead + DiT estimator, CFG/Euler) → CausalHiFTGenerator.
The family's code is `exporter/cosyvoice3/`; shared parts come from the CosyVoice2 packages."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import Family

# the LM needs <|endofprompt|> in its text; official examples put this system prompt before it
SYSTEM_PROMPT = "You are a helpful assistant."


class CosyVoice3(Family):
    name = "cosyvoice3"
    title = "CosyVoice3"
    marker = "cosyvoice3.yaml + CosyVoice-BlankEN/ + llm/flow/hift.pt"
    components = {
        "llm": "exporter.cosyvoice3.llm_export",
        "flow": "exporter.cosyvoice3.flow_export",
        "hift": "exporter.cosyvoice3.hift_export",
        "speech_tokenizer": "exporter.speech_tokenizer.export",  # speech_tokenizer_v3.onnx, same mapping/re-export
        "campplus": "exporter.campplus.export",
        "text": "exporter.text_export",
    }

    def detect(self, root: Path) -> bool:
        return (root / "cosyvoice3.yaml").is_file()

    def open(self, root: Path):
        from ..cosyvoice3.modeldir import CosyVoice3ModelDir

        return CosyVoice3ModelDir.open(root)

    def checkpoint_files(self, md, component: str) -> list[Path]:
        from ..modeldir import CHECKPOINTS

        return [md.checkpoint_path(component)] if component in CHECKPOINTS else []

    def constants(self, md) -> dict:
        c = md.config
        return {"sample_rate": c.sample_rate, "token_frame_rate": c.token_frame_rate,
                "token_mel_ratio": c.token_mel_ratio, "chunk_size": c.chunk_size,
                "system_prompt": SYSTEM_PROMPT, "yaml_classes": dict(c.classes)}

    def describe(self, md) -> list[str]:
        c = md.config
        q, f, e, h = c.llm.qwen, c.flow, c.flow.estimator, c.hift
        return [
            f"  llm : CosyVoice3LM, Qwen2 {q.num_hidden_layers} layers, hidden {q.hidden_size}, heads {q.num_attention_heads}/"
            f"{q.num_key_value_heads} kv, text vocab {q.vocab_size}, speech vocab {c.llm.speech_vocab} "
            f"({len(c.llm.stop_token_ids)} stop ids)",
            f"  flow: CausalMaskedDiffWithDiT, pre-lookahead {f.input_size}->{f.pre_lookahead_channels}, DiT dim {e.dim} × "
            f"{e.depth} blocks, {e.heads} heads × {e.dim_head}, chunk {e.static_chunk_size} frames",
            f"  hift: CausalHiFTGenerator, base {h.base_channels}, upsample {list(h.upsample_rates)}, istft {h.istft_n_fft}/"
            f"{h.istft_hop_len}, look-right {h.conv_pre_look_right}, {h.sampling_rate} Hz",
        ]

    def build_fixture(self, dst: Path, *, size: str = "tiny", seed: int = 0, fmt: str = "pt", overwrite: bool = False) -> Path:
        from ..cosyvoice3.fixture import build_model_dir

        return build_model_dir(dst, size=size, seed=seed, fmt=fmt, overwrite=overwrite)

    def run_demo(self, out: Path, *, seed: int = 0, threads: int = 2, log: Callable[[str], None] = print) -> dict:
        from ..cosyvoice3.demo import run_demo

        return run_demo(out, seed=seed, threads=threads, log=log)


FAMILY = CosyVoice3()
