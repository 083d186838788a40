"""Speech tokenizer export (v2 for CosyVoice2, v3 for CosyVoice3: the model dir names the file).

Bundle path (used): the official ONNX's weights are mapped into our PyTorch S3TokenizerV2
(`onnx_weights`) and ONE clean graph is re-exported: 16 kHz waveform (fixed 30 s buffer) + its
length -> token ids, with the Whisper log-mel in-graph (STFT as a fixed-kernel Conv1d, Slaney mel
filters computed in code, log10 / clamp at the max of the VALID frames − 8 / scale). The host then
only resamples audio; no FFT is needed in C#, the graph is fully static and its parity is measured
against the PyTorch module.

Plain path (offered, not used in the bundle): `convert_official` runs the official ONNX through
graph_passes with T fixed; it still needs the log-mel computed on the host, and its internals are
whatever the official exporter produced (not under our control).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..spec import ComponentExport, ExportOptions, GraphSpec, TensorSpec
from .model import HOP, MAX_SECONDS, SAMPLE_RATE, SpeechTokenizerGraph, max_tokens
from .onnx_weights import load_tokenizer

COMPONENT = "speech_tokenizer"


def test_signal(n: int, seed: int) -> np.ndarray:
    """Speech-like test signal: a few harmonics with vibrato + noise, amplitude-modulated."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    f0 = 120 + 40 * rng.random() + 15 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    x = sum((0.3 / k) * np.sin(k * phase + rng.random() * 6) for k in range(1, 8))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 1.7 * t)) + 0.02 * rng.standard_normal(n)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def make_spec(model_dir, options: ExportOptions) -> GraphSpec:
    tok = load_tokenizer(model_dir.speech_tokenizer_onnx)
    seconds = int(options.extra.get("prompt_max_seconds", MAX_SECONDS))
    max_samples = seconds * SAMPLE_RATE
    graph = SpeechTokenizerGraph(tok, max_samples).eval()
    n_tok = max_tokens(max_samples)
    lengths = [int(3.3 * SAMPLE_RATE) + 37, max_samples, int(10 * SAMPLE_RATE) + 159]

    def make_inputs(case: int) -> dict[str, np.ndarray]:
        n = lengths[case % len(lengths)]
        wave = np.zeros((1, max_samples), np.float32)
        wave[0, :n] = test_signal(n, options.seed + case)
        return {"waveform": wave, "waveform_length": np.array([n], np.int32)}

    return GraphSpec(
        name="speech_tokenizer", component=COMPONENT, module=graph,
        inputs=[TensorSpec("waveform", (1, max_samples), "float32", f"16 kHz mono in [-1,1], zero past the length, at most {seconds} s"),
                TensorSpec("waveform_length", (1,), "int32", "valid samples")],
        outputs=[TensorSpec("speech_tokens", (1, n_tok), "int32", "ids 0..6560; -1 past token_count"),
                 TensorSpec("token_count", (1,), "int32", "ceil-ish(frames/4), frames = length // 160")],
        make_inputs=make_inputs, atol=0.0, exact_outputs=("speech_tokens", "token_count"),
        fixed_dims={"max_samples": max_samples, "max_frames": max_samples // HOP, "max_tokens": n_tok},
        description=f"S3 tokenizer ({model_dir.speech_tokenizer_file}, {tok.cfg.n_layer} blocks) with in-graph Whisper log-mel: "
                    "waveform(16 kHz) -> speech tokens (25 Hz)",
        metadata={"sample_rate": SAMPLE_RATE, "hop": HOP, "n_state": tok.cfg.n_state, "n_layer": tok.cfg.n_layer,
                  "n_head": tok.cfg.n_head, "source": f"official {model_dir.speech_tokenizer_file} weights mapped into the PyTorch port"},
        fp16_exempt=True,  # FSQ rounding makes token ids sensitive to weight precision
    )


def build(model_dir, options: ExportOptions) -> ComponentExport:
    spec = make_spec(model_dir, options)
    return ComponentExport(COMPONENT, [spec], manifest={
        "graph": spec.name, "sample_rate": SAMPLE_RATE, "max_samples": spec.fixed_dims["max_samples"],
        "max_tokens": spec.fixed_dims["max_tokens"], "path": "re-export (weights mapped from the official ONNX)",
        # the flow's 24 kHz prompt mel parameters (voice baking reads them from here)
        "prompt_mel": {k: getattr(model_dir.config.mel, k) for k in ("n_fft", "hop_size", "num_mels", "sampling_rate", "fmin", "fmax")},
    })


def convert_official(src: str | Path, dst: str | Path, frames: int = MAX_SECONDS * SAMPLE_RATE // HOP,
                     sentis_version: str = "2.1"):
    """Plain path: the official ONNX through graph_passes with `feats` fixed to (1,128,frames).
    Returns the Sentis check report (not used by the bundle)."""
    import onnx
    from graph_passes import run_pipeline
    from graph_passes.sentis import check_model

    model = onnx.load(str(src))
    model, _ = run_pipeline(model, input_shapes={"feats": [1, 128, frames], "feats_length": [1]})
    onnx.save(model, str(dst))
    return check_model(dst, sentis_version)


__all__ = ["build", "make_spec", "convert_official", "test_signal"]
