"""LLM export: one cached-step graph (prefill chunks and single-token decode share it) plus three
small embedding-lookup graphs. See docs/components/llm.md for the design and measured figures.

Graphs (KV-cache contract "rows", manifest llm.cache_contract; bundles without the key have the
older "full" contract where llm_step itself returned present.*)
- llm_step: inputs_embeds (1, query_len, d) f32, position (1,) i32, valid_len (1,) i32,
  past_key_values.{i}.key/value (1, kv_heads, max_cache_len, head_dim) f32 (read only)
  -> logprobs (1, speech_vocab) f32 (log-softmax of the last valid row),
     new_key_values.{i}.key/value (1, kv_heads, query_len, head_dim): the new rows only.
  query_len is the only symbolic dim: the runtime feeds prefill_chunk rows (last chunk
  zero-padded, valid_len says how many are real) or 1 row.
- llm_cache_append (no weights): position, past_key_values.*, new_key_values.* -> present.*
  (the cache with the rows written at position..; rows past capacity dropped). A runtime keeps two
  workers of it and alternates, so the cache moves from call to call without a copy.
- llm_text_embedding: text_ids (1, n_ids) i32 -> text_embeds (1, n_ids, d)  (the 151936-row table
  lives only here)
- llm_speech_embedding: speech_ids (1, n_ids) i32 -> speech_embeds (1, n_ids, d)
- llm_special_embedding: special_ids (1, n_ids) i32 (0 = sos, 1 = task_id) -> special_embeds
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ExportError
from ..spec import ComponentExport, ExportOptions, GraphSpec, TensorSpec
from .model import Qwen2LM, append_rows, write_keep

DEFAULT_MAX_CACHE_LEN = 2048  # 10 s prompt (250 tokens) + text + 20*text_len decode steps; see docs
DEFAULT_PREFILL_CHUNK = 32
MIN_TOKEN_TEXT_RATIO = 2.0  # official Qwen2LM.inference defaults
MAX_TOKEN_TEXT_RATIO = 20.0
ATOL_FP32 = 1e-4
# fp16 weights vs the fp32 module: logprobs move by ~1e-2 on random weights; the real fp16
# criterion is top-1 agreement over long decodes (tests/llm), this bound only catches breakage.
ATOL_FP16 = 0.5


CACHE_CONTRACT = "rows"


def cache_names(n_layers: int) -> tuple[list[str], list[str]]:
    past, present = [], []
    for i in range(n_layers):
        past += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        present += [f"present.{i}.key", f"present.{i}.value"]
    return past, present


def row_names(n_layers: int) -> list[str]:
    return [f"new_key_values.{i}.{kv}" for i in range(n_layers) for kv in ("key", "value")]


class StepGraph(nn.Module):
    """forward(inputs_embeds, position, valid_len, *past) -> (logprobs, *new rows)."""

    def __init__(self, model: Qwen2LM):
        super().__init__()
        self.model = model

    def forward(self, inputs_embeds, position, valid_len, *past):
        logp, rows = self.model.step_rows(inputs_embeds, list(past), position, valid_len)
        return (logp, *rows)


class AppendGraph(nn.Module):
    """forward(position, *past, *rows) -> *present (append_rows per cache tensor)."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, position, *tensors):
        past, rows = tensors[:self.n], tensors[self.n:]
        wk = write_keep(rows[0].shape[2], past[0].shape[2], position)  # shared by every layer
        return tuple(append_rows(c, r, position, wk) for c, r in zip(past, rows))


class EmbeddingGraph(nn.Module):
    def __init__(self, table: nn.Embedding | torch.Tensor):
        super().__init__()
        self.table = table if isinstance(table, nn.Embedding) else nn.Embedding.from_pretrained(table.detach())  # shares the storage (no 544 MB copy of the text table)

    def forward(self, ids):
        return self.table(ids)  # int32 ids -> Gather


def _step_inputs(cfg, capacity: int, chunk: int, case: int) -> dict[str, np.ndarray]:
    """Parity cases: 0 empty cache + full prefill chunk (trace input); 1 decode mid-cache with junk
    beyond `position`; 2 a partial last chunk near full capacity (rows past capacity dropped);
    3 decode into the last slot."""
    q = cfg.qwen
    rng = np.random.default_rng(1234 + case)
    T, position, valid = {0: (chunk, 0, chunk), 1: (1, min(37, capacity - 1), 1),
                          2: (chunk, max(0, capacity - chunk + 5), max(1, chunk - 5)),
                          3: (1, capacity - 1, 1)}[case]
    feeds = {
        "inputs_embeds": rng.standard_normal((1, T, q.hidden_size)).astype(np.float32),
        "position": np.array([position], np.int32),
        "valid_len": np.array([valid], np.int32),
    }
    past, _ = cache_names(q.num_hidden_layers)
    shape = (1, q.num_key_value_heads, capacity, q.head_dim)
    for name in past:
        feeds[name] = np.zeros(shape, np.float32) if case == 0 else rng.standard_normal(shape).astype(np.float32)
    return feeds


def _append_inputs(cfg, capacity: int, chunk: int, case: int) -> dict[str, np.ndarray]:
    """The step's cases: rows at position 0 (chunk), mid-cache (1 row), past capacity (dropped), last slot."""
    q = cfg.qwen
    step = _step_inputs(cfg, capacity, chunk, case)
    rng = np.random.default_rng(4321 + case)
    T = step["inputs_embeds"].shape[1]
    feeds = {"position": step["position"]}
    past, _ = cache_names(q.num_hidden_layers)
    for name in past:
        feeds[name] = step[name]
    for name in row_names(q.num_hidden_layers):
        feeds[name] = rng.standard_normal((1, q.num_key_value_heads, T, q.head_dim)).astype(np.float32)
    return feeds


def build_graphs(model: Qwen2LM, options: ExportOptions) -> tuple[list[GraphSpec], dict]:
    cfg = model.cfg
    q = cfg.qwen
    capacity = options.max_cache_len or DEFAULT_MAX_CACHE_LEN
    chunk = options.prefill_chunk or DEFAULT_PREFILL_CHUNK
    if capacity < 2 or chunk < 1 or chunk > capacity:
        raise ExportError(f"llm: need 1 <= prefill_chunk ({chunk}) <= max_cache_len ({capacity}); fix --prefill-chunk/--max-cache-len")
    atol = ATOL_FP16 if options.fp16 else ATOL_FP32
    d, V = q.hidden_size, cfg.speech_vocab
    past, present = cache_names(q.num_hidden_layers)
    rows = row_names(q.num_hidden_layers)
    cache_shape = (1, q.num_key_value_heads, capacity, q.head_dim)
    row_shape = (1, q.num_key_value_heads, "query_len", q.head_dim)

    step = GraphSpec(
        name="llm_step",
        component="llm",
        module=StepGraph(model),
        inputs=[TensorSpec("inputs_embeds", (1, "query_len", d), description="new input embeddings; last prefill chunk zero-padded"),
                TensorSpec("position", (1,), "int32", "cache slots already filled = position of row 0"),
                TensorSpec("valid_len", (1,), "int32", "real rows in inputs_embeds (1..query_len)")]
        + [TensorSpec(n, cache_shape, description="read only: slots < position are the past") for n in past],
        outputs=[TensorSpec("logprobs", (1, V), description="log-softmax over the speech vocabulary at row valid_len-1")]
        + [TensorSpec(n, row_shape, description="the new rows, for llm_cache_append") for n in rows],
        make_inputs=lambda case: _step_inputs(cfg, capacity, chunk, case),
        atol=atol,
        parity_cases=4,
        fixed_dims={"max_cache_len": capacity, "prefill_chunk": chunk},
        symbolic_dims={"query_len": f"rows fed per call: {chunk} (prefill_chunk) for prompt prefill, 1 for decode; "
                                    "one graph so the backbone weights ship once"},
        description="Qwen2 backbone step over a read-only fixed-capacity KV cache + llm_decoder + log_softmax; "
                    "outputs the new K/V rows (cache contract 'rows')",
        metadata={"max_cache_len": capacity, "prefill_chunk": chunk, "cache_contract": CACHE_CONTRACT},
    )
    append = GraphSpec(
        name="llm_cache_append",
        component="llm",
        module=AppendGraph(len(past)),
        inputs=[TensorSpec("position", (1,), "int32", "slot of the first row")]
        + [TensorSpec(n, cache_shape) for n in past] + [TensorSpec(n, row_shape) for n in rows],
        outputs=[TensorSpec(n, cache_shape) for n in present],
        make_inputs=lambda case: _append_inputs(cfg, capacity, chunk, case),
        atol=0.0,
        parity_cases=4,
        fixed_dims={"max_cache_len": capacity},
        symbolic_dims={"query_len": "rows written per call (prefill_chunk or 1)"},
        description="KV-cache append: the step's new rows written at position.. (one-hot arithmetic, no weights)",
        metadata={"cache_contract": CACHE_CONTRACT},
    )

    def ids_case(hi: int):
        def make(case: int) -> dict[str, np.ndarray]:
            rng = np.random.default_rng(99 + case)
            n = (7, 1, 33)[case % 3]
            ids = rng.integers(0, hi, size=(1, n)).astype(np.int32)
            if case == 0:
                ids[0, 0], ids[0, -1] = 0, hi - 1  # first and last rows of the table
            return {"ids": ids}
        return make

    def emb_spec(name, table, rows, in_name, out_name, desc):
        make = ids_case(rows)
        return GraphSpec(
            name=name, component="llm", module=EmbeddingGraph(table),
            inputs=[TensorSpec(in_name, (1, "n_ids"), "int32")],
            outputs=[TensorSpec(out_name, (1, "n_ids", d))],
            make_inputs=lambda case, make=make, k=in_name: {k: make(case)["ids"]},
            atol=0.0 if not options.fp16 else 1e-2,
            symbolic_dims={"n_ids": "number of ids looked up (a Gather; nothing else depends on it)"},
            description=desc,
        )

    graphs = [
        step,
        append,
        emb_spec("llm_text_embedding", model.backbone.embed_tokens, q.vocab_size, "text_ids", "text_embeds",
                 "Qwen2 embed_tokens lookup (text token ids)"),
        emb_spec("llm_speech_embedding", model.speech_embedding, V, "speech_ids", "speech_embeds",
                 "speech_embedding lookup (speech token ids 0..speech_vocab-1)"),
        emb_spec("llm_special_embedding", model.llm_embedding, 2, "special_ids", "special_embeds",
                 "llm_embedding lookup: 0 = sos, 1 = task_id"),
    ]
    manifest = {
        "graphs": {"step": "llm_step", "cache_append": "llm_cache_append", "text_embedding": "llm_text_embedding",
                   "speech_embedding": "llm_speech_embedding", "special_embedding": "llm_special_embedding"},
        "max_cache_len": capacity,
        "prefill_chunk": chunk,
        "hidden_size": d,
        "num_layers": q.num_hidden_layers,
        "num_key_value_heads": q.num_key_value_heads,
        "head_dim": q.head_dim,
        "text_vocab_size": q.vocab_size,
        "speech_vocab": V,
        "speech_token_size": cfg.speech_token_size,
        "eos_token": cfg.eos_token,
        "stop_token_ids": list(cfg.stop_token_ids),
        "fill_token": cfg.fill_token,
        "mix_ratio": list(cfg.mix_ratio),  # bistream: text rows : speech rows
        "sos_id": Qwen2LM.SOS,
        "task_id": Qwen2LM.TASK_ID,
        "min_token_text_ratio": MIN_TOKEN_TEXT_RATIO,
        "max_token_text_ratio": MAX_TOKEN_TEXT_RATIO,
        "sampling": {"method": "ras", "top_p": cfg.sampling.top_p, "top_k": cfg.sampling.top_k,
                     "win_size": cfg.sampling.win_size, "tau_r": cfg.sampling.tau_r},
        "cache_contract": CACHE_CONTRACT,
        "cache_inputs": past,
        "cache_rows": rows,
        "cache_outputs": present,
    }
    return graphs, manifest


def load_model(model_dir) -> Qwen2LM:
    sd = model_dir.load_checkpoint("llm")
    model = Qwen2LM.from_state_dict(model_dir.config.llm, sd, source=str(model_dir.checkpoint_path("llm")))
    del sd
    return model


def build(model_dir, options: ExportOptions) -> ComponentExport:
    model = load_model(model_dir)
    graphs, manifest = build_graphs(model, options)
    return ComponentExport(component="llm", graphs=graphs, manifest=manifest)
