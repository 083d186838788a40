"""The official CosyVoice2 modules, built from a model directory (official layout, our fixture's
random weights load strictly) for benchmarks that time them beside ours in the same process.

The official code is a scratch copy outside the repo (default /tmp/cv_official, with
third_party/Matcha-TTS; see COMMON.md): never committed, only imported. The builders and the
placeholder imports are the tests' shared oracle, tests/official_oracle.py.

    from bench.official import OfficialCode
    off = OfficialCode.find()          # None (with .why) if the copy is absent
    flow = off.flow(model_dir)         # CausalMaskedDiffWithXvec, eval, flow.pt loaded strictly
    hift = off.hift(model_dir)         # HiFTGenerator, hift.pt loaded strictly
    llm = off.llm(model_dir)           # Qwen2LM with a Qwen2ForCausalLM from the model dir's config
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))  # the shared oracle builders
import official_oracle as oo  # noqa: E402

DEFAULT_ROOT = "/tmp/cv_official"
why_absent = oo.why_absent


class OfficialCode:
    def __init__(self, root: str | Path = DEFAULT_ROOT):
        self.root = Path(root)

    @classmethod
    def find(cls, root: str | Path = DEFAULT_ROOT) -> "OfficialCode | None":
        return None if why_absent(root) else cls(root)

    def flow(self, md) -> nn.Module:
        with oo.official_imports(self.root):
            return oo.load(oo.official_flow(md.config.flow, md.config.token_frame_rate), md.load_checkpoint("flow"))

    def hift(self, md) -> nn.Module:
        with oo.official_imports(self.root):
            return oo.load(oo.official_hift(md.config.hift), md.load_checkpoint("hift"))  # weight-norm parametrized keys

    def llm(self, md) -> nn.Module:
        """Qwen2LM around HF Qwen2ForCausalLM built from the model dir's CosyVoice-BlankEN config,
        the weights from llm.pt (lm_head tied)."""
        with oo.official_imports(self.root):
            return oo.load(oo.official_qwen2lm(md, attn_implementation="sdpa"), md.load_checkpoint("llm"), tied=("lm_head.weight",))


@torch.inference_mode()
def official_llm_run(llm, lm_input: torch.Tensor, tokens) -> tuple[float, float]:
    """The official decode loop (Qwen2LM.inference_wrapper without vllm): forward_one_step over the
    whole prompt, then one token at a time with the growing HF cache; llm_decoder + log_softmax
    each step. Tokens are fixed (not sampled) so every engine runs the same number of steps.
    Returns (prefill seconds, decode seconds)."""
    import time

    def step(x, cache):  # the official call, mask built from the current input as there
        n = x.shape[1]
        y, cache = llm.llm.forward_one_step(x, masks=torch.tril(torch.ones((1, n, n))).to(torch.bool), cache=cache)
        return llm.llm_decoder(y[:, -1]).log_softmax(dim=-1), cache

    t0 = time.perf_counter()
    logp, cache = step(lm_input, None)
    t1 = time.perf_counter()
    for tok in tokens:
        logp, cache = step(llm.speech_embedding.weight[int(tok)].reshape(1, 1, -1), cache)
    return t1 - t0, time.perf_counter() - t1
