"""Where the flow solver's time goes: FLOPs of every MatMul/Gemm/Conv in a flow_solve graph
(shape inference), onnxruntime kernel time per op type, achieved GFLOP/s per op type and the
fraction of this machine's sustained SGEMM rate, measured in the same run (torch and onnxruntime,
square 2048 matmuls and the estimator's own (2N x 256) x (256 x 1024) shape).

    flock /tmp/sentis_heavy.lock python bench/flow_profile.py --bundle /tmp/perf-bundle --frames 768

The time floor of the graph = its FLOPs / the SGEMM rate (everything that is not a matmul free).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, shape_inference

from bench.hift_profile import session_profile


def matmul_flops(model: onnx.ModelProto) -> tuple[dict[str, float], dict[str, str]]:
    """FLOPs (2 x MACs) per MatMul/Gemm/Conv node (by name) and each node's class (Conv, weight
    GEMM = one operand an initializer, activation MatMul = attention QK^T / AV) or op type."""
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(g.value_info) + list(g.output) + list(g.input)}
    dims.update({i.name: list(i.dims) for i in g.initializer})
    weights = {i.name for i in g.initializer}
    flops, ops = {}, {}
    for n in g.node:
        ops[n.name] = ("Conv" if n.op_type == "Conv" else
                       "weight GEMM" if any(i in weights for i in n.input[1:2]) else "activation MatMul (attention)"
                       ) if n.op_type in ("MatMul", "Gemm", "Conv") else n.op_type
        try:
            if n.op_type == "MatMul":
                a, b, y = dims[n.input[0]], dims[n.input[1]], dims[n.output[0]]
                flops[n.name] = 2.0 * float(np.prod(y)) * a[-1]
            elif n.op_type == "Gemm":
                a, y = dims[n.input[0]], dims[n.output[0]]
                trans_a = next((at.i for at in n.attribute if at.name == "transA"), 0)
                flops[n.name] = 2.0 * float(np.prod(y)) * (a[0] if trans_a else a[1])
            elif n.op_type == "Conv":
                w, y = dims[n.input[1]], dims[n.output[0]]
                flops[n.name] = 2.0 * float(np.prod(y)) * float(np.prod(w[1:]))
        except (KeyError, IndexError):
            pass
    return flops, ops


def torch_sgemm(m, k, n, threads) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    reps = max(3, int(2e10 / (2 * m * k * n)))
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


def ort_sgemm(m, k, n, threads) -> float:
    import onnxruntime as ort

    w = np.random.default_rng(0).standard_normal((k, n)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["a", "w"], ["y"])], "mm",
                          [helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [m, k])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [m, n])],
                          [onnx.numpy_helper.from_array(w, "w")])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    a = np.random.default_rng(1).standard_normal((m, k)).astype(np.float32)
    for _ in range(3):
        sess.run(None, {"a": a})
    reps = max(3, int(2e10 / (2 * m * k * n)))
    t0 = time.perf_counter()
    for _ in range(reps):
        sess.run(None, {"a": a})
    return 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--frames", type=int, default=768, help="bucket (mel frames) of the flow_solve graph")
    ap.add_argument("--graph", default=None, help="profile this .onnx instead of the bundle's flow_solve_{frames}")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--exact-frames", type=int, default=650,
                    help="the workload's real length (what the official code computes, unpadded): FLOP floor of the ratio")
    a = ap.parse_args()

    path = a.graph or str(Path(a.bundle) / f"flow_solve_{a.frames}.onnx")
    N = a.frames
    rates = {
        "torch 2048^3": torch_sgemm(2048, 2048, 2048, a.threads),
        "ORT 2048^3": ort_sgemm(2048, 2048, 2048, a.threads),
        f"ORT ({2 * N}x256)x(256x1024)": ort_sgemm(2 * N, 256, 1024, a.threads),
    }
    peak = max(rates.values())
    model = onnx.load(path, load_external_data=False)
    flops, ops = matmul_flops(model)
    del model
    rng = np.random.default_rng(0)
    feeds = {"noise": rng.standard_normal((1, 80, N)).astype(np.float32),
             "mu": rng.standard_normal((1, 80, N)).astype(np.float32),
             "cond": np.zeros((1, 80, N), np.float32), "spks": rng.standard_normal((1, 80)).astype(np.float32),
             "mel_mask": np.ones((1, 1, N), np.float32), "streaming": np.zeros((1,), np.float32)}
    t0 = time.perf_counter()
    by_op, by_node = session_profile(path, feeds, a.threads, a.runs)
    wall = (time.perf_counter() - t0) / (a.runs + 1)
    total = sum(by_op.values())
    flop_total = sum(flops.values())
    # ORT names a fused node after the first original node ("<name>/MatMulAddFusion"): match prefixes
    cls_s, cls_f = defaultdict(float), defaultdict(float)
    for node, sec in by_node.items():
        key = node
        while key and key not in ops:
            key = key.rsplit("/", 1)[0] if "/" in key else ""
        c = ops.get(key, "other")
        if key in flops and c in ("Conv", "weight GEMM", "activation MatMul (attention)"):
            cls_s[c] += sec
            cls_f[c] += flops[key]
        else:
            cls_s["non-GEMM: " + c] += sec
    print(f"graph {path}: {len(ops)} nodes; threads {a.threads}")
    print("SGEMM rate measured now: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rates.items()))
    print(f"FLOPs (MatMul/Gemm/Conv): {flop_total / 1e9:.1f} GFLOP -> floor at {peak:.0f} GFLOP/s: {flop_total / peak / 1e9:.2f} s")
    print(f"kernel time {total:.2f} s (wall per run incl. session overhead ~{wall:.2f} s); achieved overall "
          f"{flop_total / total / 1e9:.0f} GFLOP/s = {100 * flop_total / total / 1e9 / peak:.0f} % of peak")
    print("\n| class / op type | kernel s | % of time | GFLOP | GFLOP/s | % of peak |\n|---|---|---|---|---|---|")
    for c, sec in sorted(cls_s.items(), key=lambda kv: -kv[1])[:16]:
        f = cls_f.get(c, 0.0)
        rate = f / sec / 1e9 if f and sec else 0.0
        print(f"| {c} | {sec:.2f} | {100 * sec / total:.1f} | {f / 1e9:.1f} | {rate:.0f} | {100 * rate / peak:.0f} |" if f else
              f"| {c} | {sec:.2f} | {100 * sec / total:.1f} | — | — | — |")
    # padding: weight GEMMs and convs scale with N, attention with N^2
    lin = cls_f.get("weight GEMM", 0.0) + cls_f.get("Conv", 0.0)
    att = cls_f.get("activation MatMul (attention)", 0.0)
    r = a.exact_frames / N
    exact = lin * r + att * r * r
    print(f"\nexact length {a.exact_frames} frames (no padding, as the official code runs): {exact / 1e9:.1f} GFLOP; "
          f"bucket {N} / exact = {(lin + att) / exact:.3f} -> at equal GEMM efficiency the ratio to the official flow "
          f"cannot be below {(lin + att) / exact:.2f}; below 0.6 needs {(lin + att) / exact / 0.6:.2f}x the official's FLOP rate")
    print("\nby ORT op type: " + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])[:12]))


if __name__ == "__main__":
    main()
