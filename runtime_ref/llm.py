"""The CosyVoice2 LLM generation loop (official `Qwen2LM.inference`, non-bistream) on the exported
graphs. numpy + onnxruntime only.

    sequence = [sos] + embed(prompt_text + text) + [task_id] + embed(prompt speech tokens)
    min_len = int(len(text) * 2), max_len = int(len(text) * 20)   (target text only)
    prefill the sequence in chunks of `prefill_chunk` rows (last chunk zero-padded), then decode
    one token per step: EOS masked while step < min_len, RAS sampling, stop on any stop id.

The KV cache has a fixed capacity (`max_cache_len`, chosen at export). A request must fit
completely -- prompt sequence plus max_len - 1 fed-back tokens -- otherwise `LLMCapacityError`
says how many text tokens fit, so results never depend on silent truncation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from .bundle import Bundle
from .errors import RuntimeRefError
from .sampling import PCG64Uniforms, RasParams, UniformSource, greedy, ras_sampling


class LLMCapacityError(RuntimeRefError):
    """The request does not fit in the exported KV-cache capacity."""


@dataclass
class Generation:
    tokens: list[int]
    stop_reason: str  # "stop_token" | "max_len"
    stop_token: int | None = None
    prompt_len: int = 0  # rows of the prefilled sequence
    logprobs: list[np.ndarray] = field(default_factory=list)  # per step (after EOS masking), if recorded


def _int(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64).reshape(-1)


def write_rows(cache: dict[str, np.ndarray], rows: dict[str, np.ndarray], position: int) -> None:
    """llm_cache_append on the host, in place: rows[name] (1, kv, T, hd) -- all T rows, padding
    included, as the graph writes them -- into cache[name] (1, kv, S, hd) at slots position..;
    rows that would land at slots >= S are dropped. Bit-identical to the graph's
    `cache * keep + onehot @ rows` on finite non-zero values (each slot gets exactly one term; the
    graph's `x + 0` can flip the sign of a zero, and its `0 * inf` would smear a non-finite row)."""
    for name, r in rows.items():
        c = cache[name]
        n = max(0, min(r.shape[2], c.shape[2] - position))
        c[:, :, position:position + n] = r[:, :, :n]


class LLM:
    def __init__(self, bundle: Bundle, *, cache_write: str | None = None):
        self.bundle = bundle
        c = bundle.component("llm")
        self.meta = c
        self.g = c["graphs"]
        self.capacity = int(c["max_cache_len"])
        self.chunk = int(c["prefill_chunk"])
        self.hidden = int(c["hidden_size"])
        self.eos = int(c["eos_token"])
        # the score masked before min_len (official sampling_ids: index speech_token_size)
        self.min_len_masked = int(c.get("min_len_masked_token", self.eos))
        self.stop_ids = set(int(t) for t in c["stop_token_ids"])
        self.speech_vocab = int(c["speech_vocab"])
        self.min_ratio = float(c["min_token_text_ratio"])
        self.max_ratio = float(c["max_token_text_ratio"])
        self.ras = RasParams.from_manifest(c["sampling"])
        self.cache_inputs = list(c["cache_inputs"])
        self.cache_outputs = list(c["cache_outputs"])
        # KV-cache contract: "rows" (llm_step returns the new rows, llm_cache_append writes them) or
        # "full" (bundles before the key: llm_step returns the whole cache)
        self.cache_contract = c.get("cache_contract", "full")
        if self.cache_contract not in ("rows", "full"):
            raise RuntimeRefError(f"llm cache_contract {self.cache_contract!r} is not supported (rows, full): use the matching sentis-tts version")
        self.cache_rows = list(c.get("cache_rows", []))
        self.cache_shape = (1, int(c["num_key_value_heads"]), self.capacity, int(c["head_dim"]))
        # rows contract: who writes llm_step's new rows into the cache. "host": numpy writes them in
        # place at `position` (what llm_cache_append computes, without rewriting every full-capacity
        # cache per token); "graph": run llm_cache_append, as the Unity runtime does on Sentis --
        # for runners whose cache does not live in host arrays (the golden-trace recorders and
        # replays, which hold the C# runtime's call sequence). Default: the bundle's
        # `host_cache_write` (True for runtime_ref's Bundle), else "graph".
        if cache_write is None:
            cache_write = "host" if getattr(bundle, "host_cache_write", False) else "graph"
        if cache_write not in ("host", "graph"):
            raise RuntimeRefError(f"cache_write {cache_write!r}: use 'host' or 'graph'")
        self.cache_write = cache_write

    @classmethod
    def open(cls, path, *, threads: int = 2) -> "LLM":
        return cls(Bundle.open(path, threads=threads))

    # -- embeddings -------------------------------------------------------------------------------
    def _lookup(self, graph: str, in_name: str, ids: Sequence[int]) -> np.ndarray:
        ids = _int(ids)
        if ids.size == 0:
            return np.zeros((0, self.hidden), np.float32)
        out = self.bundle.run(self.g[graph], {in_name: ids.astype(np.int32)[None]})
        return next(iter(out.values()))[0]

    def embed_text(self, ids) -> np.ndarray:
        return self._lookup("text_embedding", "text_ids", ids)

    def embed_speech(self, ids) -> np.ndarray:
        ids = _int(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.speech_vocab):
            raise RuntimeRefError(f"speech token ids must be in 0..{self.speech_vocab - 1}, got {ids.min()}..{ids.max()}")
        return self._lookup("speech_embedding", "speech_ids", ids)

    def embed_special(self, ids) -> np.ndarray:
        return self._lookup("special_embedding", "special_ids", ids)

    def lm_input(self, text_ids, prompt_text_ids=(), prompt_speech_tokens=()) -> np.ndarray:
        """(L, d): [sos, prompt_text + text, task_id, prompt speech tokens]."""
        sos_task = self.embed_special([self.meta["sos_id"], self.meta["task_id"]])
        text = self.embed_text(np.concatenate([_int(prompt_text_ids), _int(text_ids)]))
        speech = self.embed_speech(prompt_speech_tokens)
        return np.concatenate([sos_task[:1], text, sos_task[1:], speech], axis=0).astype(np.float32)

    # -- capacity ---------------------------------------------------------------------------------
    def lengths(self, n_text: int) -> tuple[int, int]:
        return int(n_text * self.min_ratio), int(n_text * self.max_ratio)

    def needed_slots(self, n_text: int, n_prompt_text: int, n_prompt_speech: int) -> int:
        """Cache slots a request can use: the prompt sequence plus max_len - 1 fed-back tokens."""
        _, max_len = self.lengths(n_text)
        return 2 + n_prompt_text + n_text + n_prompt_speech + max(0, max_len - 1)

    def max_text_tokens(self, n_prompt_text: int = 0, n_prompt_speech: int = 0) -> int:
        n = 0
        while self.needed_slots(n + 1, n_prompt_text, n_prompt_speech) <= self.capacity:
            n += 1
        return n

    def check_capacity(self, n_text: int, n_prompt_text: int, n_prompt_speech: int) -> None:
        need = self.needed_slots(n_text, n_prompt_text, n_prompt_speech)
        if need > self.capacity:
            fit = self.max_text_tokens(n_prompt_text, n_prompt_speech)
            raise LLMCapacityError(
                f"text of {n_text} tokens needs {need} KV-cache slots but the bundle has max_cache_len {self.capacity}; "
                f"with this prompt ({n_prompt_text} text + {n_prompt_speech} speech tokens) at most {fit} text tokens fit: "
                "split the text or re-export with a larger --max-cache-len")

    # -- the cached step graph ------------------------------------------------------------------------
    def new_cache(self) -> dict[str, np.ndarray]:
        return {n: np.zeros(self.cache_shape, np.float32) for n in self.cache_inputs}

    def step(self, embeds: np.ndarray, cache: dict, position: int, valid_len: int | None = None):
        """embeds (T, d) at positions position.. -> (logprobs (V,), new cache). With cache_write
        "host" the new cache is `cache` itself, its arrays written in place."""
        T = embeds.shape[0]
        valid_len = T if valid_len is None else valid_len
        feeds = {"inputs_embeds": embeds[None].astype(np.float32, copy=False),
                 "position": np.array([position], np.int32), "valid_len": np.array([valid_len], np.int32)}
        feeds.update(cache)
        out = self.bundle.run(self.g["step"], feeds)
        if self.cache_contract == "full":
            return out["logprobs"][0], {i: out[o] for i, o in zip(self.cache_inputs, self.cache_outputs)}
        if self.cache_write == "host":
            write_rows(cache, {i: out[r] for i, r in zip(self.cache_inputs, self.cache_rows)}, position)
            return out["logprobs"][0], cache
        app = {"position": feeds["position"], **cache, **{r: out[r] for r in self.cache_rows}}
        new = self.bundle.run(self.g["cache_append"], app)
        return out["logprobs"][0], {i: new[o] for i, o in zip(self.cache_inputs, self.cache_outputs)}

    def prefill(self, embeds: np.ndarray, cache: dict | None = None, position: int = 0):
        """Feed (L, d) rows in chunks of `prefill_chunk` (the last one zero-padded).
        Returns (logprobs after the last row, cache, new position)."""
        if position + embeds.shape[0] > self.capacity:
            raise LLMCapacityError(f"{position + embeds.shape[0]} positions exceed max_cache_len {self.capacity}")
        cache = self.new_cache() if cache is None else cache
        logp = None
        for s in range(0, embeds.shape[0], self.chunk):
            rows = embeds[s:s + self.chunk]
            n = rows.shape[0]
            if n < self.chunk:
                rows = np.concatenate([rows, np.zeros((self.chunk - n, rows.shape[1]), np.float32)])
            logp, cache = self.step(rows, cache, position, n)
            position += n
        return logp, cache, position

    # -- generation -------------------------------------------------------------------------------------
    def generate(
        self,
        text_ids,
        prompt_text_ids=(),
        prompt_speech_tokens=(),
        *,
        rng: UniformSource | int | None = 0,
        sampler: str | Callable = "ras",
        record_logprobs: bool = False,
        max_new_tokens: int | None = None,
    ) -> Generation:
        """Speech tokens for `text_ids` (official Qwen2LM.inference). `rng`: a UniformSource or a
        seed for PCG64Uniforms. `sampler`: "ras" (official), "greedy", or f(logp, decoded, params, rng).
        `max_new_tokens` (not official) lowers max_len, e.g. for tests and previews."""
        res = Generation(tokens=[], stop_reason="max_len", prompt_len=0)
        for tok in self.iter_tokens(text_ids, prompt_text_ids, prompt_speech_tokens, rng=rng, sampler=sampler,
                                    max_new_tokens=max_new_tokens, result=res, record_logprobs=record_logprobs):
            pass
        return res

    def iter_tokens(
        self,
        text_ids,
        prompt_text_ids=(),
        prompt_speech_tokens=(),
        *,
        rng: UniformSource | int | None = 0,
        sampler: str | Callable = "ras",
        max_new_tokens: int | None = None,
        result: Generation | None = None,
        record_logprobs: bool = False,
    ) -> Iterator[int]:
        """The generation loop as a generator: yields each speech token as soon as it is sampled
        (streaming consumers), and fills `result` (stop reason, logprobs) if given."""
        res = result if result is not None else Generation(tokens=[], stop_reason="max_len", prompt_len=0)
        text_ids, prompt_text_ids, prompt_speech = _int(text_ids), _int(prompt_text_ids), _int(prompt_speech_tokens)
        min_len, max_len = self.lengths(text_ids.size)
        if max_new_tokens is not None:
            max_len = min(max_len, int(max_new_tokens))
        # slots this request can use (with max_len as capped); check_capacity raises with the advice
        if 2 + prompt_text_ids.size + text_ids.size + prompt_speech.size + max(0, max_len - 1) > self.capacity:
            self.check_capacity(text_ids.size, prompt_text_ids.size, prompt_speech.size)
        if not hasattr(rng, "uniform"):
            rng = PCG64Uniforms(0 if rng is None else int(rng))
        sample = {"ras": ras_sampling, "greedy": greedy}.get(sampler, sampler) if isinstance(sampler, str) else sampler
        if isinstance(sample, str):
            raise RuntimeRefError(f"unknown sampler {sampler!r}; use 'ras' or 'greedy'")
        seq = self.lm_input(text_ids, prompt_text_ids, prompt_speech)
        res.prompt_len = seq.shape[0]
        if max_len <= 0:
            return
        logp, cache, pos = self.prefill(seq)
        for i in range(max_len):
            scores = logp.astype(np.float32).copy()
            if i < min_len:
                scores[self.min_len_masked] = -np.inf
            if record_logprobs:
                res.logprobs.append(scores)
            tok = int(sample(scores, res.tokens, self.ras, rng))
            if tok in self.stop_ids:
                res.stop_reason, res.stop_token = "stop_token", tok
                return
            res.tokens.append(tok)
            yield tok
            if i == max_len - 1:
                return
            logp, cache = self.step(self.embed_speech([tok]), cache, pos)
            pos += 1
