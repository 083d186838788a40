"""llm_sample: CosyVoice2's RAS sampling (runtime_ref/sampling.py ras_sampling) as a weightless ONNX
graph, so that a runtime can sample on the device and feed the token straight back into the
speech-embedding graph (the host reads only the 4-byte token, asynchronously, to see stops).
Built with onnx.helper (no torch); not part of the default bundle (measured against CPU sampling in
docs/unity.md: the Unity runtime samples on the CPU).

    logprobs (1, V) f32, uniforms (1, 2) f32 (u for the nucleus draw, u for the repetition redraw),
    window (1, W) i32 (the last W decoded tokens, -1 = none), mask_eos (1, 1) f32 (1: EOS masked,
    i.e. step < min_len)
    -> token (1, 1) i32, window_next (1, W) i32 (window shifted left, token appended)

What it computes, next to runtime_ref:
- softmax of the scores (EOS set to -inf when masked), the top_k largest (TopK, ties: lower index
  first, like the stable sort), the nucleus cut `cumulative probability before < top_p` (exclusive
  CumSum, float32 like runtime_ref), an inverse-CDF draw with u1 over the kept probabilities;
- repetition-aware redraw when the drawn token occurs >= win_size * tau_r times in the window: an
  inverse-CDF draw with u2 over the full softmax without that token.
Differences: the draw's cumulative sum is float32 (runtime_ref: float64) and the redraw uses the
probabilities with the token zeroed instead of a second softmax (the same distribution up to
rounding), so a uniform that falls within rounding of a CDF step can pick the neighbour;
runtime_ref consumes u2 only when it redraws (the graph always takes both). Sentis-clean: every
shape-like input (TopK k, CumSum axis, Slice bounds) is an initializer; int32 throughout except
TopK's int64 indices, cast at once.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

OPSET = 17


def build_sample_graph(vocab: int, *, top_k: int = 25, top_p: float = 0.8, win_size: int = 10, tau_r: float = 0.1,
                       eos: int, name: str = "llm_sample") -> onnx.ModelProto:
    V, K, W = int(vocab), int(min(top_k, vocab)), int(win_size)
    if W < 1:
        raise ValueError("llm_sample needs win_size >= 1 (the repetition window)")
    inits = [
        nh.from_array(np.array([K], np.int64), "k"),
        nh.from_array(np.array(1, np.int32), "axis1"),
        nh.from_array(np.array(top_p, np.float32), "top_p"),
        nh.from_array(np.array(float(W * tau_r), np.float32), "rep_limit"),
        nh.from_array(np.array(-np.inf, np.float32), "neg_inf"),
        nh.from_array(np.array(0.0, np.float32), "zero"),
        nh.from_array(np.array(0.5, np.float32), "half"),
        nh.from_array(np.array(1.0, np.float32), "one"),
        nh.from_array(np.array([[float(V - 1)]], np.float32), "last_index"),
        nh.from_array((np.arange(V) == eos)[None], "is_eos"),
        nh.from_array(np.arange(V, dtype=np.int32)[None], "ids"),
        nh.from_array(np.array([0, K - 1], np.int64), "k_last_start"), nh.from_array(np.array([1, K], np.int64), "k_last_end"),
        nh.from_array(np.array([0, V - 1], np.int64), "v_last_start"), nh.from_array(np.array([1, V], np.int64), "v_last_end"),
        nh.from_array(np.array([0, 0], np.int64), "u_start"), nh.from_array(np.array([1, 1], np.int64), "u1_end"),
        nh.from_array(np.array([0, 1], np.int64), "u2_start"), nh.from_array(np.array([1, 2], np.int64), "u2_end"),
        nh.from_array(np.array([0, 1], np.int64), "w_start"), nh.from_array(np.array([1, W], np.int64), "w_end"),
        nh.from_array(np.array([1], np.int64), "axes1"),
    ]
    n = []

    def node(op, ins, outs, **kw):
        n.append(h.make_node(op, ins, outs, name=outs[0], **kw))
        return outs[0]

    # scores: EOS -> -inf while masked
    masked_on = node("Greater", ["mask_eos", "half"], ["eos_on"])
    cond = node("And", ["is_eos", masked_on], ["eos_cond"])
    scores = node("Where", [cond, "neg_inf", "logprobs"], ["scores"])
    probs = node("Softmax", [scores], ["probs"], axis=-1)
    # nucleus over the top_k
    node("TopK", [probs, "k"], ["top_vals", "top_idx64"], axis=-1, largest=1, sorted=1)
    top_idx = node("Cast", ["top_idx64"], ["top_idx"], to=T.INT32)
    before = node("CumSum", ["top_vals", "axis1"], ["before"], exclusive=1)
    keep = node("Cast", [node("Less", [before, "top_p"], ["keep_b"])], ["keep"], to=T.FLOAT)
    kept = node("Mul", ["top_vals", keep], ["kept"])
    cdf = node("CumSum", [kept, "axis1"], ["cdf"])
    total = node("Slice", [cdf, "k_last_start", "k_last_end"], ["total"])
    u1 = node("Slice", ["uniforms", "u_start", "u1_end"], ["u1"])
    target = node("Mul", [u1, total], ["target"])
    below = node("Cast", [node("LessOrEqual", [cdf, target], ["below_b"])], ["below"], to=T.FLOAT)
    count = node("ReduceSum", [below, "axes1"], ["count"], keepdims=1)
    n_kept = node("ReduceSum", [keep, "axes1"], ["n_kept"], keepdims=1)
    pos = node("Min", [count, node("Sub", [n_kept, "one"], ["n_kept_m1"])], ["pos_f"])
    pos_i = node("Cast", [pos], ["pos"], to=T.INT32)
    first = node("GatherElements", [top_idx, pos_i], ["first"], axis=1)
    # repetition-aware redraw over the full softmax without that token
    rep = node("ReduceSum", [node("Cast", [node("Equal", ["window", first], ["in_window_b"])], ["in_window"], to=T.FLOAT), "axes1"],
               ["rep"], keepdims=1)
    redraw = node("GreaterOrEqual", [rep, "rep_limit"], ["redraw"])
    others = node("Where", [node("Equal", ["ids", first], ["is_first"]), "zero", probs], ["others"])
    cdf2 = node("CumSum", [others, "axis1"], ["cdf2"])
    total2 = node("Slice", [cdf2, "v_last_start", "v_last_end"], ["total2"])
    u2 = node("Slice", ["uniforms", "u2_start", "u2_end"], ["u2"])
    below2 = node("Cast", [node("LessOrEqual", [cdf2, node("Mul", [u2, total2], ["target2"])], ["below2_b"])], ["below2"], to=T.FLOAT)
    count2 = node("Min", [node("ReduceSum", [below2, "axes1"], ["count2_raw"], keepdims=1), "last_index"], ["count2"])
    second = node("Cast", [count2], ["second"], to=T.INT32)
    node("Where", [redraw, second, first], ["token"])
    node("Concat", [node("Slice", ["window", "w_start", "w_end"], ["window_tail"]), "token"], ["window_next"], axis=1)

    graph = h.make_graph(
        n, name,
        [h.make_tensor_value_info("logprobs", T.FLOAT, [1, V]), h.make_tensor_value_info("uniforms", T.FLOAT, [1, 2]),
         h.make_tensor_value_info("window", T.INT32, [1, W]), h.make_tensor_value_info("mask_eos", T.FLOAT, [1, 1])],
        [h.make_tensor_value_info("token", T.INT32, [1, 1]), h.make_tensor_value_info("window_next", T.INT32, [1, W])],
        initializer=inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], ir_version=8, producer_name="sentis-tts")
    onnx.checker.check_model(model)
    return model


def add_to_bundle(bundle_dir, *, sentis_version: str = "2.1") -> str:
    """Write llm_sample.onnx into an exported bundle (sampling parameters from its manifest) and
    register it (graphs.llm_sample, components.llm.graphs.sample); both files written to a temp
    name, then renamed. Returns the graph name. Fails if the Sentis checker rejects the graph."""
    import hashlib
    import json
    import os
    from pathlib import Path

    from graph_passes.sentis import check_model

    from ..errors import ExportError

    root = Path(bundle_dir)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    llm = manifest.get("components", {}).get("llm")
    if llm is None:
        raise ExportError(f"{root}: the bundle has no llm component; export it first (sentis-tts export llm)")
    sp = llm["sampling"]
    model = build_sample_graph(int(llm["speech_vocab"]), top_k=int(sp["top_k"]), top_p=float(sp["top_p"]),
                               win_size=int(sp["win_size"]), tau_r=float(sp["tau_r"]),
                               eos=int(llm.get("min_len_masked_token", llm["eos_token"])))
    report = check_model(model, sentis_version)
    if not report.ok or report.blocking_readbacks:
        raise ExportError(f"llm_sample is not Sentis-clean for {sentis_version}: {report.format()}")
    data = model.SerializeToString()
    name, file = "llm_sample", "llm_sample.onnx"
    tmp = root / (file + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, root / file)

    def io(vs):
        return [{"name": v.name, "shape": [d.dim_value for d in v.type.tensor_type.shape.dim],
                 "dtype": {1: "float32", 6: "int32"}[v.type.tensor_type.elem_type]} for v in vs]

    manifest["graphs"][name] = {
        "file": file, "component": "llm", "opset": OPSET,
        "description": "RAS sampling in the graph (exporter/llm/sample_graph.py): the token stays on the device; for the runtime's DeviceSampling mode",
        "inputs": io(model.graph.input), "outputs": io(model.graph.output),
        "checker": {"sentis_version": sentis_version, "ok": True, "nodes": len(model.graph.node)},
        "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    llm["graphs"]["sample"] = name
    mtmp = root / "manifest.json.tmp"
    mtmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(mtmp, root / "manifest.json")
    return name


if __name__ == "__main__":
    import sys

    print(add_to_bundle(sys.argv[1]))
