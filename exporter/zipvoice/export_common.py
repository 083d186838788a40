"""Buckets and example inputs shared by the ZipVoice export specs."""
from __future__ import annotations

import numpy as np

from ..errors import ExportError
from ..spec import ExportOptions

# frames of prompt + generated speech per fm-solve / Vocos graph (24 kHz / 256: 93.75 frames per s)
DEFAULT_FRAME_LENS = (1024, 2048)
# text tokens (prompt transcript + text + the official trailing pad) per text-encoder graph
DEFAULT_TOKEN_LENS = (128, 512)
MAX_DOWNSAMPLING = 4  # frames buckets are multiples of the decoder's largest downsampling factor


def frame_lens(md, options: ExportOptions) -> tuple[int, ...]:
    lens = tuple(sorted(set(options.flow_lens or options.extra.get("frame_lens") or DEFAULT_FRAME_LENS)))
    ds = max(md.config.model.fm_decoder_downsampling_factor)
    bad = [n for n in lens if n < 2 * ds or n % ds]
    if bad:
        raise ExportError(f"--flow-len {bad}: ZipVoice frame buckets must be multiples of {ds} (the decoder's "
                          f"largest downsampling factor) and at least {2 * ds}")
    return lens


def token_lens(options: ExportOptions) -> tuple[int, ...]:
    lens = tuple(sorted(set(options.extra.get("token_lens") or DEFAULT_TOKEN_LENS)))
    if any(n < 2 for n in lens):
        raise ExportError(f"token buckets {lens}: each must hold at least one token and the trailing pad")
    return lens


def example_features(T: int, n_mels: int, rng: np.random.Generator) -> np.ndarray:
    """(1, T, n_mels) log-mel in the usual Vocos range (about -11 .. 2), smooth over time."""
    x = rng.standard_normal((1, T + 4, n_mels))
    x = (x[:, :-4] + x[:, 1:-3] + x[:, 2:-2] + x[:, 3:-1] + x[:, 4:]) / 5
    return (-4.0 + 3.0 * x).astype(np.float32)
