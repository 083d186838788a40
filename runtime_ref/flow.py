"""Flow (speech tokens -> mel) on onnxruntime + numpy, from a bundle exported by `sentis-tts export flow`.

    mel = token2mel(bundle, prompt_tokens, tokens, prompt_mel, spk_embedding)

Picks the smallest mel-length bucket that fits, pads, runs flow_encoder_{N} and then either the
unrolled solver graph flow_solve_{N} (one call) or, for bundles exported with the step solver,
flow_step_{N} ten times. Returns the new part of the mel, (1, 80, frames), float32.
"""
from __future__ import annotations

import numpy as np

from .errors import BundleError, RuntimeRefError


class FlowInputError(RuntimeRefError):
    """Inputs to token2mel that the flow graphs cannot take (too long, wrong shape, bad ids)."""


def _as_ids(a, what: str, vocab: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] != 1 or not np.issubdtype(a.dtype, np.integer):
        raise FlowInputError(f"token2mel: {what} must be integer ids of shape (1, n), got {a.dtype} {list(a.shape)}")
    if a.size and (a.min() < 0 or a.max() >= vocab):
        raise FlowInputError(f"token2mel: {what} has ids outside 0..{vocab - 1} (speech tokens only; strip eos/special ids first)")
    return a.astype(np.int32)


def pick_bucket(mel_lens: list[int], needed_frames: int) -> int:
    """Smallest exported mel length >= needed_frames, or a one-line error naming the maximum."""
    for n in sorted(mel_lens):
        if n >= needed_frames:
            return n
    mx = max(mel_lens)
    raise FlowInputError(f"token2mel: prompt + new speech need {needed_frames} mel frames but the largest flow graph "
                         f"takes {mx} ({mx // 2} tokens); split the text into shorter pieces or re-export with a larger --flow-len")


def token2mel(bundle, prompt_tokens, tokens, prompt_mel, spk_embedding, *, streaming: bool = False,
              finalize: bool = True) -> np.ndarray:
    """prompt_tokens (1,P) / tokens (1,N) speech ids, prompt_mel (1,F,80) (F = 2P from the frontend),
    spk_embedding (1,192) -> mel (1, 80, frames) for the new tokens.

    finalize=False (streaming chunks): the last `pre_lookahead_len` tokens are only lookahead
    context, as in the official flow; streaming=True uses the chunk-causal attention masks."""
    comp = bundle.component("flow")
    vocab, ratio, look = comp["vocab_size"], comp["token_mel_ratio"], comp["pre_lookahead_len"]
    prompt_tokens = _as_ids(prompt_tokens, "prompt_tokens", vocab)
    tokens = _as_ids(tokens, "tokens", vocab)
    prompt_mel = np.asarray(prompt_mel, np.float32)
    if prompt_mel.ndim == 2:
        prompt_mel = prompt_mel[None]
    n_mels = comp["n_mels"]
    if prompt_mel.ndim != 3 or prompt_mel.shape[0] != 1 or prompt_mel.shape[2] != n_mels:
        raise FlowInputError(f"token2mel: prompt_mel must have shape (1, frames, {n_mels}), got {list(prompt_mel.shape)}")
    xvec = np.asarray(spk_embedding, np.float32).reshape(1, -1)
    if xvec.shape[1] != comp["spk_embed_dim"]:
        raise FlowInputError(f"token2mel: spk_embedding must have {comp['spk_embed_dim']} values, got {xvec.shape[1]}")

    all_tokens = np.concatenate([prompt_tokens, tokens], axis=1)
    n_all = all_tokens.shape[1]
    n_enc = n_all if finalize else n_all - look  # tokens the encoder emits frames for
    if n_enc <= 0:
        raise FlowInputError(f"token2mel: need more than {look} tokens when finalize=False, got {n_all}")
    M = n_enc * ratio  # valid mel frames
    F = prompt_mel.shape[1]
    if F > M:
        raise FlowInputError(f"token2mel: prompt_mel has {F} frames but the tokens give only {M}")
    N = pick_bucket([int(n) for n in comp["mel_lens"]], n_all * ratio)
    T = N // ratio
    graphs = comp["graphs"][str(N)]

    tok = np.zeros((1, T), np.int32)
    tok[:, :n_all] = all_tokens
    token_mask = np.zeros((1, T), np.float32)
    token_mask[:, :n_enc] = 1
    conv_mask = np.zeros((1, T), np.float32)
    conv_mask[:, :n_all] = 1
    stream = np.array([1.0 if streaming else 0.0], np.float32)
    enc = bundle.run(graphs["encoder"], {"tokens": tok, "token_mask": token_mask, "conv_mask": conv_mask,
                                         "streaming": stream, "xvec": xvec})
    cond = np.zeros((1, n_mels, N), np.float32)
    cond[:, :, :F] = prompt_mel[0].T
    mel_mask = np.zeros((1, 1, N), np.float32)
    mel_mask[..., :M] = 1
    table = bundle.load_array(comp["noise_file"])
    if table.ndim != 3 or table.shape[1] != n_mels or table.shape[2] < N or table.dtype.kind != "f":
        raise BundleError(f"{bundle.root}: {comp['noise_file']} has shape {list(table.shape)} ({table.dtype}), expected "
                          f"(1, {n_mels}, >= {N}) floats (re-export the flow with `sentis-tts export flow`)")
    noise = table[:, :, :N].astype(np.float32)
    common = {"mu": enc["mu"], "cond": cond, "spks": enc["spks"], "mel_mask": mel_mask, "streaming": stream}
    if "solve" in graphs:
        mel = bundle.run(graphs["solve"], {"noise": noise, **common})["mel"]
    else:
        x = noise
        for t, dt in zip(comp["t"], comp["dt"]):
            x = bundle.run(graphs["step"], {"x": x, "t": np.array([t], np.float32), "dt": np.array([dt], np.float32),
                                            **common}, outputs=["x_next"])["x_next"]
        mel = x
    return np.ascontiguousarray(mel[:, :, F:M])
