"""Export spec of the ZipVoice text encoder: token embedding + Zipformer, one graph per token
bucket S (`text_encoder_<S>`).

  inputs  tokens (1, S) int32 — prompt transcript ids + text ids, then pad_id (the official
          appends one pad and encodes it; its output is the text condition of the last frames);
          token_count (1,) int32 — ids before that pad (positions ≥ count are masked)
  outputs text_embed (1, S, feat_dim); positions 0..count are those of the official encoder
"""
from __future__ import annotations

import numpy as np
import torch

from ..spec import ComponentExport, ExportOptions, GraphSpec, TensorSpec
from .export_common import token_lens
from .model import load_model


class TextEncoderGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, token_count):
        return self.model.encode_text(tokens, token_count)


def build(md, options: ExportOptions) -> ComponentExport:
    model = load_model(md)
    c = md.config.model
    graph = TextEncoderGraph(model)
    specs = []
    for S in token_lens(options):
        def make_inputs(case: int, S=S) -> dict[str, np.ndarray]:
            rng = np.random.default_rng(2000 + case)
            n = [S - 1, max(1, S // 2 - 3), 1][case % 3]
            tok = np.full((1, S), c.pad_id, np.int32)
            tok[0, :n] = rng.integers(0, c.vocab_size, n)
            return {"tokens": tok, "token_count": np.array([n], np.int32)}

        specs.append(GraphSpec(
            name=f"text_encoder_{S}", component="text_encoder", module=graph,
            inputs=[TensorSpec("tokens", (1, S), "int32", "token ids, padded with pad_id"),
                    TensorSpec("token_count", (1,), "int32", "number of ids before the padding")],
            outputs=[TensorSpec("text_embed", (1, S, c.feat_dim), description="text encoder output per token")],
            make_inputs=make_inputs, atol=1e-4, parity_cases=3, fixed_dims={"tokens": S},
            description=f"ZipVoice text encoder ({c.text_encoder_num_layers} Zipformer layers) over {S} tokens",
            metadata={"tokens": S}))
    manifest = {"graphs": [s.name for s in specs], "token_lens": [s.fixed_dims["tokens"] for s in specs],
                "pad_id": c.pad_id, "vocab_size": c.vocab_size, "feat_dim": c.feat_dim}
    return ComponentExport("text_encoder", specs, manifest)
