"""Bistream (text arrives as a stream): the official `Qwen2LM.inference_bistream` schedule,
engine-agnostic so that onnxruntime (`OrtFeeder`) and the PyTorch reference drive the very same
control logic.

Schedule (mix ratio [5, 15] from the manifest): the LLM sequence starts with [sos]; while prompt
speech tokens remain, groups of 5 text rows + 15 prompt-speech rows are appended as text arrives.
Then the model decodes speech tokens; a fill token (speech_token_size + 2) is forced every 15
tokens (counted so that prompt + generated speech stays on the 15-grid) and means "feed the next
5 text rows". When the text stream ends, the rest of the text and task_id are fed and decoding
runs until EOS. Text arrives token by token (the official frontend tokenizes each chunk and
feeds its ids one at a time). Quirks kept for fidelity: fill tokens count in the repetition
window of RAS sampling; rows already fed before a fill token are fed again with the final text
(official behaviour when the stream ends right after a fill token); the score at index
speech_token_size is masked until the text stream ends (EOS in CosyVoice2).

CosyVoice3 (`CosyVoice3LM`, same official method) differs only in its ids and one prefix: eos
and fill are speech_token_size + 1 / + 3 (the mask stays at speech_token_size, which is sos
there), and the prompt text up to and including <|endofprompt|> is fed right after sos instead
of being mixed (`prefix_ids`); the rest of the prompt text is mixed as usual.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, Protocol

import numpy as np

from .errors import RuntimeRefError
from .sampling import RasParams, UniformSource


class Feeder(Protocol):
    """An LLM engine with a growing cache: feed rows, get the log-probs after the last row."""

    hidden: int

    def embed_text(self, ids) -> np.ndarray: ...
    def embed_speech(self, ids) -> np.ndarray: ...
    def sos_task(self) -> np.ndarray: ...  # (2, d): rows of sos and task_id
    def feed(self, rows: np.ndarray) -> np.ndarray: ...  # (n, d) -> (speech_vocab,) log-probs


class OrtFeeder:
    """runtime_ref.llm.LLM with its fixed-capacity cache as a Feeder."""

    def __init__(self, llm):
        self.llm = llm
        self.hidden = llm.hidden
        self.cache = None
        self.pos = 0

    def embed_text(self, ids):
        return self.llm.embed_text(ids)

    def embed_speech(self, ids):
        return self.llm.embed_speech(ids)

    def sos_task(self):
        return self.llm.embed_special([self.llm.meta["sos_id"], self.llm.meta["task_id"]])

    def feed(self, rows):
        if self.pos + rows.shape[0] > self.llm.capacity:
            raise RuntimeRefError(f"bistream: the LLM cache ({self.llm.capacity} positions) is full; "
                                  "send shorter text streams or re-export with a larger --max-cache-len")
        logp, self.cache, self.pos = self.llm.prefill(rows, self.cache, self.pos)
        return logp


def bistream_tokens(
    text_ids: Iterable[int],
    prompt_text_ids,
    prompt_speech_tokens,
    *,
    engine: Feeder,
    sample: Callable[[np.ndarray, list, RasParams, UniformSource], int],
    params: RasParams,
    rng: UniformSource,
    mix_ratio: tuple[int, int],
    speech_token_size: int,
    max_new_tokens: int | None = None,
    eos: int | None = None,
    fill: int | None = None,
    prefix_ids=(),
) -> Iterator[int]:
    """Yield speech tokens (fill/eos never yielded) as text ids arrive. eos / fill default to the
    CosyVoice2 ids (speech_token_size, + 2); `prefix_ids` are fed right after sos (CosyVoice3)."""
    n_text, n_speech = int(mix_ratio[0]), int(mix_ratio[1])
    eos = speech_token_size if eos is None else int(eos)
    fill = speech_token_size + 2 if fill is None else int(fill)
    d = engine.hidden
    sos_task = engine.sos_task()
    prompt_speech = np.asarray(prompt_speech_tokens, np.int64).reshape(-1)
    speech_rows = engine.embed_speech(prompt_speech) if prompt_speech.size else np.zeros((0, d), np.float32)
    text_rows = engine.embed_text(np.asarray(prompt_text_ids, np.int64).reshape(-1))
    prefix = np.asarray(prefix_ids, np.int64).reshape(-1)
    pending = np.concatenate([sos_task[:1], engine.embed_text(prefix)])  # official `lm_input`: rows fed at the next forward
    out: list[int] = []
    emitted = 0
    next_fill = (prompt_speech.size // n_speech + 1) * n_speech - prompt_speech.size

    def capped() -> bool:
        return max_new_tokens is not None and emitted >= max_new_tokens

    for tid in text_ids:
        text_rows = np.concatenate([text_rows, engine.embed_text([int(tid)])])
        while speech_rows.shape[0]:
            if text_rows.shape[0] < n_text:
                break
            pending = np.concatenate([pending, text_rows[:n_text], speech_rows[:n_speech]])
            text_rows, speech_rows = text_rows[n_text:], speech_rows[n_speech:]
        if speech_rows.shape[0]:
            continue
        after_fill = bool(out) and out[-1] == fill
        if after_fill or (not out and pending.shape[0] == 1):
            if text_rows.shape[0] < n_text:
                continue
            pending = text_rows[:n_text] if after_fill else np.concatenate([pending, text_rows[:n_text]])
            text_rows = text_rows[n_text:]
        while not capped():
            logp = engine.feed(pending)
            if next_fill != -1 and len(out) == next_fill:
                tok = fill
                next_fill += n_speech + 1
            else:
                scores = logp.astype(np.float32).copy()
                scores[speech_token_size] = -np.inf  # official sampling_ids(ignore_eos=True)
                tok = int(sample(scores, out, params, rng))
            if tok == fill:
                next_fill = len(out) + n_speech + 1
            out.append(tok)
            if tok >= speech_token_size:
                if tok == fill:
                    break
                raise RuntimeRefError(f"bistream: the model produced special token {tok} while text was streaming")
            emitted += 1
            yield tok
            pending = engine.embed_speech([tok])
        if capped():
            return
    # the text stream ended: the rest of the text + task_id, then decode until EOS
    pending = np.concatenate([pending, text_rows, sos_task[1:]])
    while not capped():
        logp = engine.feed(pending)
        tok = int(sample(logp.astype(np.float32).copy(), out, params, rng))
        out.append(tok)
        if tok >= speech_token_size:
            if tok == eos:
                return
            raise RuntimeRefError(f"bistream: the model produced special token {tok} instead of speech or EOS")
        emitted += 1
        yield tok
        pending = engine.embed_speech([tok])
