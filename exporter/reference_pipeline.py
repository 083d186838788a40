"""The end-to-end PyTorch reference: the same orchestration as `runtime_ref.pipeline.Pipeline`
(requests, modes, streaming schedule, HiFT chunk plan and cache), with every model stage run by
our PyTorch modules instead of the bundle's ONNX graphs:

- LLM: the official generation loop recomputed with the full causal forward each step (no KV
  cache: an independent path from the fixed-capacity cache graphs), official RAS structure in
  torch, consuming the same uniforms;
- flow: `token2mel_torch`, built for exactly prompt + new tokens (no bucket padding);
- HiFT: our PyTorch HiFT on the same chunk plan and noise as the ONNX path.

Comparing `TorchPipeline` with `Pipeline` on the same seed measures what the bundle changes end
to end: identical speech tokens, mel max-abs, waveform SNR.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from runtime_ref.hift import HiFTVocoder
from runtime_ref.pipeline import GeneratorUniforms, PieceRequest, Pipeline
from runtime_ref.sampling import RasParams

from .flow.model import Flow, token2mel_torch
from .hift.model import build_hift
from .llm.model import Qwen2LM
from .llm.reference import torch_ras
from .modeldir import ModelDir


class TorchPipeline(Pipeline):
    def __init__(self, bundle, model_dir: ModelDir, **kw):
        super().__init__(bundle, **kw)
        cfg = model_dir.config
        self.torch_llm = Qwen2LM.from_state_dict(cfg.llm, model_dir.load_checkpoint("llm"))
        flow = Flow(cfg.flow, 2 * cfg.token_mel_ratio).eval()
        from .checkpoint import load_into

        load_into(flow, model_dir.load_checkpoint("flow"), source="flow.pt")
        self.torch_flow = flow
        self.torch_hift = build_hift(cfg.hift, model_dir.load_checkpoint("hift"))
        v = self.vocoder
        self.vocoder = HiFTVocoder(self._hift_run, frames=v.T, hop=v.hop, harmonics=v.H, n_mels=v.n_mels,
                                   context=v.context, source_cache_len=v.S, mel_cache_len=v.mel_cache_len)
        self.ras_params = RasParams.from_manifest(bundle.component("llm")["sampling"])

    # -- stages ---------------------------------------------------------------------------------
    @torch.inference_mode()
    def _hift_run(self, feeds: dict) -> dict:
        names = ("mel", "noise", "phase_in", "phase_ref", "cache_source", "cache_weight", "n_frames")
        wav, src, phase = self.torch_hift(*(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in names))
        return {"waveform": wav.numpy(), "source": src.numpy(), "phase": phase.numpy()}

    @torch.inference_mode()
    def _iter_torch_tokens(self, req: PieceRequest, sampling, sampler: str, max_new_tokens: int | None) -> Iterator[int]:
        m, cfg = self.torch_llm, self.torch_llm.cfg
        rng = GeneratorUniforms(sampling)
        ids = torch.from_numpy(np.concatenate([req.llm_prompt_text_ids, req.text_ids]).astype(np.int64))
        seq = m.lm_input(ids, torch.from_numpy(req.llm_prompt_speech.astype(np.int64)))
        n_text = int(req.text_ids.size)
        min_len, max_len = int(n_text * self.llm.min_ratio), int(n_text * self.llm.max_ratio)
        if max_new_tokens is not None:
            max_len = min(max_len, int(max_new_tokens))
        decoded: list[int] = []
        for i in range(max_len):
            logp = m.logprobs(m.backbone(seq)[:, -1])[0].float()
            if i < min_len:
                logp[cfg.eos_token] = -float("inf")
            tok = int(logp.argmax()) if sampler == "greedy" else torch_ras(logp, decoded, self.ras_params, rng)
            if tok in cfg.stop_token_ids:
                return
            decoded.append(tok)
            yield tok
            seq = torch.cat([seq, m.speech_embedding.weight[tok][None, None]], dim=1)

    def iter_tokens_for(self, req, sampling, *, sampler="ras", max_new_tokens=None) -> Iterator[int]:
        return self._iter_torch_tokens(req, sampling, sampler, self.token_cap(req, max_new_tokens))

    def bistream_feeder(self):
        return _TorchFeeder(self.torch_llm)

    def sample_fn(self, sampler: str):
        if sampler == "greedy":
            return lambda scores, decoded, params, rng: int(np.argmax(scores))
        return lambda scores, decoded, params, rng: torch_ras(torch.from_numpy(scores), decoded, params, rng)

    def token2mel(self, req, tokens, *, streaming=False, finalize=True) -> np.ndarray:
        mel = token2mel_torch(self.torch_flow, torch.from_numpy(req.flow_prompt_tokens[None].astype(np.int64)),
                              torch.as_tensor(np.asarray(tokens, np.int64)[None]), torch.from_numpy(req.flow_prompt_mel[None]),
                              torch.from_numpy(req.embedding[None]), streaming=streaming, finalize=finalize)
        return mel.numpy()


class _TorchFeeder:
    """Bistream engine on the PyTorch module: the whole sequence is recomputed at every feed
    (no cache), an independent path from the ONNX cache graph."""

    def __init__(self, model: Qwen2LM):
        self.m = model
        self.hidden = model.cfg.qwen.hidden_size
        self.seq = torch.zeros(1, 0, self.hidden)

    @torch.inference_mode()
    def embed_text(self, ids):
        ids = torch.as_tensor(np.asarray(ids, np.int64).reshape(-1))
        return self.m.backbone.embed_tokens(ids).numpy()

    @torch.inference_mode()
    def embed_speech(self, ids):
        return self.m.speech_embedding.weight[torch.as_tensor(np.asarray(ids, np.int64).reshape(-1))].numpy()

    def sos_task(self):
        return self.m.llm_embedding.weight.detach().numpy()[[self.m.SOS, self.m.TASK_ID]]

    @torch.inference_mode()
    def feed(self, rows):
        self.seq = torch.cat([self.seq, torch.from_numpy(np.ascontiguousarray(rows, np.float32))[None]], dim=1)
        return self.m.logprobs(self.m.backbone(self.seq)[:, -1])[0].float().numpy()


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    ref = np.asarray(ref, np.float64).reshape(-1)
    test = np.asarray(test, np.float64).reshape(-1)
    n = min(ref.size, test.size)
    err = np.sum((ref[:n] - test[:n]) ** 2) + (np.sum(ref[n:] ** 2) + np.sum(test[n:] ** 2))
    sig = np.sum(ref ** 2)
    if err == 0:
        return float("inf")
    return float(10 * np.log10(max(sig, 1e-30) / err))
