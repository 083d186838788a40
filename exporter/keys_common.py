"""Helpers for the per-component tables of official checkpoint keys and seeded random weights.

Each component's `keys.py` lists the official key -> shape table (written from the architecture
fact sheet, independently of our nn.Modules) so that a module that loads a fixture checkpoint
strictly is checked against the official layout, not against itself.
"""
from __future__ import annotations

import math

import torch


def random_tensor(name: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """A plausibly scaled random tensor for a parameter called `name`.

    - norm/LayerNorm/RMSNorm weights ~ 1 ± 0.1, their biases ~ ±0.02
    - matrices/convs ~ N(0, 1/fan_in)
    - biases and small vectors ~ N(0, 0.02)
    """
    leaf = name.rsplit(".", 1)[-1]
    is_norm = any(t in name for t in ("norm", "_ln", "ln_", "layernorm", ".block.2.", "embed.out.1", "after_norm"))
    if len(shape) == 1:
        if is_norm and leaf == "weight":
            return 1.0 + 0.1 * torch.randn(shape, generator=gen)
        return 0.02 * torch.randn(shape, generator=gen)
    fan_in = max(1, math.prod(shape[1:]))
    return torch.randn(shape, generator=gen) / math.sqrt(fan_in)


def random_state_dict(keys: dict[str, tuple[int, ...]], seed: int, overrides=None) -> dict[str, torch.Tensor]:
    """Seeded random tensors for every key; `overrides(name, shape, gen)` may return a tensor to
    replace the default for a key (or None to keep it)."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, shape in keys.items():
        t = overrides(name, shape, gen) if overrides else None
        out[name] = (t if t is not None else random_tensor(name, tuple(shape), gen)).float().contiguous()
    return out
