"""The host side of the ZipVoice solve (numpy): time grid, duration estimate, per-frame text
condition. The exporter's PyTorch model imports `time_steps` from here (one definition)."""
from __future__ import annotations

import numpy as np


def time_steps(num_step: int, t_shift: float, t_start: float = 0.0, t_end: float = 1.0) -> np.ndarray:
    """(num_step + 1,) float32, as the official `get_time_steps`: linspace, then
    t' = s·t / (1 + (s − 1)·t)."""
    t = np.linspace(t_start, t_end, num_step + 1, dtype=np.float32)
    s = np.float32(t_shift)
    return (s * t / (np.float32(1) + (s - np.float32(1)) * t)).astype(np.float32)


def total_frames(prompt_frames: int, prompt_tokens: int, tokens: int, speed: float = 1.0) -> int:
    """Official `forward_text_inference_ratio_duration` (float32 arithmetic like torch):
    prompt + ceil(prompt_frames / prompt_tokens · tokens / speed)."""
    f = np.float32(prompt_frames) / np.float32(max(prompt_tokens, 1)) * np.float32(tokens) / np.float32(speed)
    return int(prompt_frames + int(np.ceil(f)))


def token_index(n_frames: int, n_tokens: int) -> np.ndarray:
    """(n_frames,) int: the token each frame reads (official prepare_avg_tokens_durations +
    get_tokens_index): every token lasts n_frames // n_tokens frames, the rest read position
    n_tokens (the trailing pad the official appends)."""
    avg = n_frames // max(n_tokens, 1)
    f = np.arange(n_frames)
    return np.where(f < avg * n_tokens, f // max(avg, 1), n_tokens).astype(np.int64)
