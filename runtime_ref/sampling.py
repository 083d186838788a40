"""Speech-token sampling of CosyVoice2 (`ras_sampling`), as a deterministic function of
(log-probabilities, decoded history, uniforms). numpy only.

All randomness comes from an explicit `UniformSource`: each multinomial draw consumes exactly one
uniform u in [0, 1) and picks the first index whose cumulative (unnormalised) probability exceeds
u * total (inverse-CDF sampling). A reference sampler that consumes the same uniforms the same way
produces the same tokens.

Official algorithm (cosyvoice/utils/common.py, fact sheet §4.5):
- nucleus: softmax, stable descending sort; take tokens while (cumulative prob so far < top_p and
  count < top_k) -- the token crossing top_p is included; draw one over those probs.
- repetition-aware: if the drawn id occurs >= win_size * tau_r times among the last win_size
  decoded tokens, set its score to -inf and redraw over the full softmax.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np


class UniformSource(Protocol):
    def uniform(self) -> float: ...


class PCG64Uniforms:
    """Uniforms in [0, 1) from numpy Generator(PCG64(seed)); also records what it handed out."""

    def __init__(self, seed: int):
        self.gen = np.random.Generator(np.random.PCG64(seed))
        self.drawn: list[float] = []

    def uniform(self) -> float:
        u = float(self.gen.random())
        self.drawn.append(u)
        return u


class ReplayUniforms:
    """Hands out a fixed list of uniforms (to feed a second sampler the same randomness)."""

    def __init__(self, values: Sequence[float]):
        self.values = list(values)
        self.i = 0

    def uniform(self) -> float:
        u = self.values[self.i]
        self.i += 1
        return u


@dataclass
class RasParams:
    top_p: float = 0.8
    top_k: int = 25
    win_size: int = 10
    tau_r: float = 0.1

    @classmethod
    def from_manifest(cls, d: dict) -> "RasParams":
        return cls(top_p=float(d["top_p"]), top_k=int(d["top_k"]), win_size=int(d["win_size"]), tau_r=float(d["tau_r"]))


def softmax(scores: np.ndarray) -> np.ndarray:
    s = scores.astype(np.float32)
    e = np.exp(s - np.max(s))
    return (e / e.sum(dtype=np.float32)).astype(np.float32)


def draw(probs: np.ndarray, u: float) -> int:
    """Inverse-CDF draw over unnormalised non-negative probs (float64 cumulative sum)."""
    cdf = np.cumsum(probs.astype(np.float64))
    i = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
    return min(i, len(probs) - 1)


def nucleus_sampling(scores: np.ndarray, top_p: float, top_k: int, rng: UniformSource) -> int:
    probs = softmax(scores)
    order = np.argsort(-probs, kind="stable")  # descending, ties keep index order (torch stable sort)
    sorted_p = probs[order]
    # cumulative probability *before* each token, accumulated in float32 like the official loop
    before = np.concatenate([np.zeros(1, np.float32), np.cumsum(sorted_p, dtype=np.float32)[:-1]])
    n = int(np.count_nonzero(before < np.float32(top_p)))  # `before` is non-decreasing
    n = max(1, min(n, top_k))
    return int(order[draw(sorted_p[:n], rng.uniform())])


def random_sampling(scores: np.ndarray, rng: UniformSource) -> int:
    return draw(softmax(scores), rng.uniform())


def ras_sampling(scores: np.ndarray, decoded: Sequence[int], params: RasParams, rng: UniformSource) -> int:
    """`scores` (speech_vocab,) log-probs (EOS already masked by the caller if needed); not modified."""
    top = nucleus_sampling(scores, params.top_p, params.top_k, rng)
    window = list(decoded[-params.win_size:]) if params.win_size > 0 else []
    if sum(1 for t in window if t == top) >= params.win_size * params.tau_r:
        s = scores.copy()
        s[top] = -np.inf
        top = random_sampling(s, rng)
    return top


def greedy(scores: np.ndarray, decoded: Sequence[int], params: RasParams | None = None, rng: UniformSource | None = None) -> int:
    return int(np.argmax(scores))
