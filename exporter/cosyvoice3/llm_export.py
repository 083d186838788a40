"""CosyVoice3 LM export: the CosyVoice2 graphs (exporter/llm/export.py: llm_step with the
fixed-capacity KV cache, text/speech/special embedding lookups) built on CosyVoice3LM; the
manifest carries the CosyVoice3 ids (eos 6562, fill 6564, 200 stop ids, 6761 speech rows) and the
id masked before min_len (official: index speech_token_size)."""
from __future__ import annotations

from ..llm.export import build_graphs
from ..spec import ComponentExport, ExportOptions
from .llm import CosyVoice3LM

SILENT_TOKENS = (1, 2, 28, 29, 55, 248, 494, 2241, 2242, 2322, 2323)  # official CosyVoice3Model.silent_tokens
MAX_SILENT_TOKENS = 5


def load_model(model_dir) -> CosyVoice3LM:
    sd = model_dir.load_checkpoint("llm")
    return CosyVoice3LM.from_state_dict(model_dir.config.llm, sd, source=str(model_dir.checkpoint_path("llm")))


def build(model_dir, options: ExportOptions) -> ComponentExport:
    model = load_model(model_dir)
    graphs, manifest = build_graphs(model, options)
    cfg = model.cfg
    manifest.update({"layout": "cosyvoice3", "sos_token": cfg.sos_token, "task_token": cfg.task_token, "fill_token": cfg.fill_token,
                     "min_len_masked_token": cfg.min_len_masked_token,
                     # official CosyVoice3Model.llm_job: a run of FSQ silence/breath tokens longer than
                     # max_silent_tokens is not passed on to the flow (the LM still sees them)
                     "silent_tokens": list(SILENT_TOKENS), "max_silent_tokens": MAX_SILENT_TOKENS})
    return ComponentExport(component="llm", graphs=graphs, manifest=manifest)
