"""llm_sample (exporter/llm/sample_graph.py): RAS sampling as a weightless ONNX graph, measured
against runtime_ref's sampler on the same uniforms and checked Sentis-clean (the in-graph sampling
design docs/unity.md compares with CPU sampling after an asynchronous readback)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from exporter.llm.sample_graph import build_sample_graph
from runtime_ref.sampling import RasParams, ReplayUniforms, ras_sampling

V, EOS = 6564, 6561


@pytest.fixture(scope="module")
def graph():
    return build_sample_graph(V, eos=EOS)


@pytest.mark.parametrize("version", ["2.1", "2.2", "2.4"])
def test_sample_graph_is_sentis_clean(graph, version):
    from graph_passes.sentis import check_model

    r = check_model(graph, version)
    assert r.ok, r.format()
    assert r.blocking_readbacks == 0


def test_sample_graph_draws_what_runtime_ref_draws(graph):
    """Same tokens as runtime_ref.sampling.ras_sampling on the same uniforms over 600 draws: three
    score scales, EOS masked in a quarter, the top token in the repetition window in half (so the
    redraw branch runs), window shifted with the token appended."""
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    params = RasParams()
    agree = redraws = eos_masked = 0
    n = 600
    for k in range(n):
        s = (rng.standard_normal(V) * [1.0, 3.0, 6.0][k % 3]).astype(np.float32)
        s = (s - np.log(np.exp(s.astype(np.float64)).sum())).astype(np.float32)
        if k % 5 == 0:
            s[EOS] = s.max() + 2.0  # EOS would win if not masked
        mask = float(k % 4 == 0)
        win = rng.integers(0, V, 10).astype(np.int32)
        if k % 2:
            win[: int(rng.integers(1, 4))] = int(np.argmax(s))
        if k % 7 == 0:
            win[:5] = -1  # a window not yet full
        u = rng.random(2).astype(np.float32).astype(np.float64)  # what the graph receives (float32)
        sc = s.copy()
        if mask:
            sc[EOS] = -np.inf
        ru = ReplayUniforms(list(u))
        ref = ras_sampling(sc, list(win), params, ru)
        redraws += ru.i == 2
        tok, nxt = sess.run(None, {"logprobs": s[None], "uniforms": u.astype(np.float32)[None], "window": win[None],
                                   "mask_eos": np.array([[mask]], np.float32)})
        got = int(tok[0, 0])
        agree += got == ref
        eos_masked += mask and k % 5 == 0
        assert not (mask and got == EOS)
        assert nxt[0, -1] == got and (nxt[0, :-1] == win[1:]).all()
    assert redraws > 100 and eos_masked > 10
    assert agree == n, f"{agree} of {n} draws agree"


def test_add_to_bundle_registers_a_graph_runtime_ref_runs(tmp_path):
    """add_to_bundle writes llm_sample into a bundle: the manifest still verifies (sha256), the graph
    runs through runtime_ref's Bundle, and the llm component names it (what LlmGenerator reads)."""
    import json
    import shutil

    from exporter.llm.sample_graph import add_to_bundle
    from runtime_ref.bundle import Bundle

    from .golden_writer import GOLDEN

    t = json.loads((GOLDEN / "llm_generate_sft.json").read_text(encoding="utf-8"))["manifest"]
    d = tmp_path / "b"
    d.mkdir()
    t["graphs"] = {}
    (d / "manifest.json").write_text(json.dumps(t), encoding="utf-8")
    assert add_to_bundle(d) == "llm_sample"
    b = Bundle.open(d)  # verifies every file's sha256
    assert b.component("llm")["graphs"]["sample"] == "llm_sample"
    lp = np.full((1, V), -20.0, np.float32)
    lp[0, 42] = 0.0
    out = b.run("llm_sample", {"logprobs": lp, "uniforms": np.array([[0.3, 0.6]], np.float32),
                               "window": np.full((1, 10), -1, np.int32), "mask_eos": np.zeros((1, 1), np.float32)})
    assert int(out["token"][0, 0]) == 42
    shutil.rmtree(d)
