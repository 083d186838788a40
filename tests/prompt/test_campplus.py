"""CAM++: weight mapping from the official-structure ONNX (conv-BN folding undone), the masked
fixed-length bundle graph vs the official-format ONNX on onnxruntime (cosine >= 0.9999)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from exporter.campplus.export import cosine, max_frames
from exporter.campplus.fixture import SIZES, random_campplus
from exporter.campplus.onnx_weights import load_campplus


@pytest.fixture(scope="module")
def official(tiny_md):
    return ort.InferenceSession(str(tiny_md.campplus_onnx), providers=["CPUExecutionProvider"])


def _feats(n, seed):
    f = np.random.default_rng(seed).standard_normal((n, 80)).astype(np.float32) * 2
    return f - f.mean(0, keepdims=True)


def test_official_io(official):
    assert [i.name for i in official.get_inputs()] == ["input"]
    assert official.get_inputs()[0].shape[2] == 80
    out = official.run(None, {"input": _feats(120, 0)[None]})[0]
    assert out.shape == (1, 192)


def test_mapping_reproduces_the_port(tiny_md, official):
    mapped = load_campplus(tiny_md.campplus_onnx)
    ref = random_campplus(SIZES["tiny"], seed=3)
    assert mapped.cfg == ref.cfg
    x = _feats(333, 1)[None]
    with torch.inference_mode():
        a = mapped(torch.from_numpy(x)).numpy()
        b = ref(torch.from_numpy(x)).numpy()
    o = official.run(None, {"input": x})[0]
    assert np.abs(a - b).max() < 1e-4 and np.abs(a - o).max() < 1e-4


def test_bundle_graph_vs_official(prompt_bundle, official):
    from runtime_ref.bundle import Bundle

    root, manifest = prompt_bundle
    g = manifest["graphs"]["campplus"]
    T = max_frames()
    assert g["checker"]["ok"] and g["inputs"][0]["shape"] == [1, T, 80] and T == 2998
    assert g["parity"]["max_abs"]["embedding"] <= 1e-3
    assert manifest["components"]["campplus"]["official_onnx_min_cosine"] >= 0.9999
    b = Bundle.open(root)
    worst = 1.0
    for n, seed in ((101, 2), (1234, 3), (T, 4)):
        f = _feats(n, seed)
        buf = np.zeros((1, T, 80), np.float32)
        buf[0, :n] = f
        got = b.run("campplus", {"fbank": buf, "n_frames": np.array([n], np.int32)})["embedding"]
        ref = official.run(None, {"input": f[None]})[0]
        worst = min(worst, cosine(got, ref))
        buf[0, n:] = 5.0  # whatever lies past n_frames must not matter
        again = b.run("campplus", {"fbank": buf, "n_frames": np.array([n], np.int32)})["embedding"]
        assert np.abs(again - got).max() < 1e-5
    assert worst >= 0.9999, worst
