"""CosyVoice3LM in plain torch: the CosyVoice2 `Qwen2LM` (backbone, KV-cache step, logprobs) with
the CosyVoice3 head layout (official cosyvoice/llm/llm.py `CosyVoice3LM`):

    llm.model.model.*    Qwen2 backbone (same nesting as CosyVoice2)
    llm_decoder          Linear(d, speech_token_size + 200, bias=False)
    speech_embedding     (speech_token_size + 200, d); rows speech_token_size + 0 / 1 / 2 / 3 are
                         sos / eos / task_id / fill (there is no llm_embedding table)

`special_table` gives the (sos, task_id) rows as a 2-row table so the shared export graph
`llm_special_embedding` (ids 0 = sos, 1 = task_id) and the runtime's prompt assembly serve both
families unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from ..llm.model import Qwen2LM, Qwen2Model, _Nest
from .config import CosyVoice3LLMConfig


class CosyVoice3LM(Qwen2LM):
    def __init__(self, cfg: CosyVoice3LLMConfig):
        nn.Module.__init__(self)
        self.cfg = cfg
        d = cfg.qwen.hidden_size
        self.llm = _Nest(_Nest(Qwen2Model(cfg.qwen)))
        self.llm_decoder = nn.Linear(d, cfg.speech_vocab, bias=False)
        self.speech_embedding = nn.Embedding(cfg.speech_vocab, d)

    @property
    def special_table(self) -> torch.Tensor:
        """(2, d): row 0 = sos, row 1 = task_id (speech_embedding rows)."""
        return self.speech_embedding.weight[[self.cfg.sos_token, self.cfg.task_token]]

    @property
    def llm_embedding(self) -> nn.Embedding:
        # what the shared export graph looks up (ids 0 = sos, 1 = task_id); not a parameter of llm.pt
        return nn.Embedding.from_pretrained(self.special_table.detach().clone())

    def lm_input(self, text_ids: torch.Tensor, prompt_speech: torch.Tensor) -> torch.Tensor:
        """[sos, text (instruct/prompt text with <|endofprompt|> + text), task_id, prompt speech] -> (1, L, d)."""
        e = self.special_table
        parts = [e[:1], self.backbone.embed_tokens(text_ids.long()), e[1:], self.speech_embedding(prompt_speech.long())]
        return torch.cat(parts, dim=0)[None]
