"""CAM++ export: weights mapped from the official campplus.onnx into our port (onnx_weights), one
static graph: CMN'd Kaldi fbank in a fixed 30 s buffer (1, 2998, 80) + the valid frame count ->
192-d x-vector. Masked convs / means / statistics pooling make the padded buffer compute the same
embedding as the exact-length official graph, so the whole prompt is used (no truncation).
The fbank front-end is host code (runtime_ref.audio.kaldi_fbank)."""
from __future__ import annotations

import numpy as np
import torch

from ..spec import ComponentExport, ExportOptions, GraphSpec, TensorSpec
from .model import CAMPPlusGraph
from .onnx_weights import load_campplus

COMPONENT = "campplus"
SAMPLE_RATE = 16000
MAX_SECONDS = 30


def max_frames(seconds: int = MAX_SECONDS) -> int:
    return 1 + (seconds * SAMPLE_RATE - 400) // 160


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def official_parity(official_onnx, graph: CAMPPlusGraph, cases: list[tuple[np.ndarray, int]], threads: int = 2) -> float:
    """Worst cosine between the official-format ONNX (exact-length input, onnxruntime) and our
    masked module on the padded buffer."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(official_onnx), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    worst = 1.0
    for buf, n in cases:
        ref = sess.run(None, {name: np.ascontiguousarray(buf[:, :n])})[0]
        with torch.inference_mode():
            got = graph(torch.from_numpy(buf), torch.tensor([n], dtype=torch.int32)).numpy()
        worst = min(worst, cosine(ref, got))
    return worst


def make_spec(model_dir, options: ExportOptions) -> GraphSpec:
    model = load_campplus(model_dir.campplus_onnx)
    T = max_frames(int(options.extra.get("prompt_max_seconds", MAX_SECONDS)))
    graph = CAMPPlusGraph(model).eval()
    lengths = [298, T, 1003]

    def make_inputs(case: int) -> dict[str, np.ndarray]:
        n = lengths[case % len(lengths)]
        rng = np.random.default_rng(options.seed + 100 + case)
        buf = np.zeros((1, T, model.cfg.feat_dim), np.float32)
        feats = rng.standard_normal((n, model.cfg.feat_dim)).astype(np.float32) * 2.0
        buf[0, :n] = feats - feats.mean(0, keepdims=True)
        return {"fbank": buf, "n_frames": np.array([n], np.int32)}

    spec = GraphSpec(
        name="campplus", component=COMPONENT, module=graph,
        inputs=[TensorSpec("fbank", (1, T, model.cfg.feat_dim), "float32", "Kaldi fbank (80 bins) minus its mean over valid frames; zero past n_frames"),
                TensorSpec("n_frames", (1,), "int32", "valid frames (>= 2)")],
        outputs=[TensorSpec("embedding", (1, model.cfg.embedding_size), "float32", "CAM++ x-vector (not normalised)")],
        make_inputs=make_inputs, atol=1e-3,
        fixed_dims={"max_frames": T},
        description="CAM++ speaker embedding on a fixed 30 s fbank buffer with a frame count",
        metadata={"sample_rate": SAMPLE_RATE, "frame_length": 400, "frame_shift": 160,
                  "source": "official campplus.onnx weights mapped into the PyTorch port"},
    )
    cases = [(make_inputs(c)["fbank"], lengths[c % len(lengths)]) for c in range(2)]
    spec.metadata["official_onnx_min_cosine"] = official_parity(model_dir.campplus_onnx, graph, cases, options.threads)
    return spec


def build(model_dir, options: ExportOptions) -> ComponentExport:
    spec = make_spec(model_dir, options)
    if spec.metadata["official_onnx_min_cosine"] < 0.9999:
        from ..errors import ExportError

        raise ExportError(f"campplus: cosine vs the official ONNX {spec.metadata['official_onnx_min_cosine']:.6f} < 0.9999")
    return ComponentExport(COMPONENT, [spec], manifest={
        "graph": spec.name, "sample_rate": SAMPLE_RATE, "max_frames": spec.fixed_dims["max_frames"],
        "front_end": "kaldi_fbank(80, povey, preemph 0.97, dither 0, snip_edges) - mean",
        "official_onnx_min_cosine": spec.metadata["official_onnx_min_cosine"],
    })
