"""Where HiFT's time goes, per mel frame, on onnxruntime (the bundle's static graph) and in our
PyTorch module (one whole-utterance call), and the lower bound that the convolutions alone put
on the ORT/PyTorch ratio.

    flock /tmp/sentis_bench.lock python bench/hift_profile.py --model-dir /tmp/sentis_full_model --bundle /tmp/b_hift_full

Both sides run the same FLOPs per frame; the convolutions dominate and both runtimes execute
them at this CPU's GEMM rate (printed for comparison), so the ratio cannot fall below
ORT-conv-time / PyTorch-total-time however cheap everything else is made.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import shape_inference

from exporter.hift.export import example_mel
from exporter.hift.model import build_hift
from exporter.modeldir import ModelDir
from runtime_ref.bundle import Bundle


def conv_flops(model: onnx.ModelProto) -> dict[str, float]:
    """FLOPs (2 x MACs) of every Conv node, by node name."""
    inferred = shape_inference.infer_shapes(model)
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    out = {}
    for n in model.graph.node:
        if n.op_type == "Conv" and n.input[1] in weights and n.output[0] in dims:
            c_out, c_in_per_group, k = weights[n.input[1]][:3]
            out[n.name] = 2.0 * c_out * c_in_per_group * k * dims[n.output[0]][-1]
    return out


def session_profile(path: str, feeds: dict, threads: int, runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Kernel time (s) of the fastest of `runs` runs of the graph at `path` on `feeds`, by op type
    and by node name (onnxruntime's profiler, graph optimisations as runtime_ref)."""
    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as runtime_ref
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "prof")
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        sess.run(None, feeds)  # warm-up (profiled too; dropped below)
        for _ in range(runs):
            sess.run(None, feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
    runs_at = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[1:]  # drop warm-up
    per_run = [(defaultdict(float), defaultdict(float)) for _ in runs_at]
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            for (t0, t1), (by_op, by_node) in zip(runs_at, per_run):
                if t0 <= e["ts"] <= t1:
                    by_op[e["args"]["op_name"]] += e["dur"] * 1e-6
                    by_node[e["name"][: -len("_kernel_time")]] += e["dur"] * 1e-6
    return min(per_run, key=lambda r: sum(r[0].values()))  # the fastest run


def ort_profile(path: str, frames: int, threads: int, runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """session_profile of the HiFT chunk graph on random inputs and an example mel."""
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sess.get_inputs():
        x = rng.standard_normal(i.shape).astype(np.float32)
        feeds[i.name] = np.zeros_like(x) if i.name in ("phase_ref", "cache_weight") else x
    feeds["mel"] = example_mel(frames, 0)
    if "n_frames" in feeds:
        feeds["n_frames"] = np.array([frames], np.int32)  # a full-length call
    del sess
    return session_profile(path, feeds, threads, runs)


def torch_profile(model, frames: int) -> tuple[dict[str, float], float]:
    """Self CPU time (s) by aten op of one whole-utterance call, and its wall time (best of 3)."""
    from torch.profiler import ProfilerActivity, profile

    mel = torch.from_numpy(example_mel(frames, 0))
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 480 * frames, model.n_harm)).astype(np.float32))
    with torch.inference_mode():
        model.vocode(mel, noise)
        wall = []
        for _ in range(3):
            t0 = time.perf_counter()
            model.vocode(mel, noise)
            wall.append(time.perf_counter() - t0)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model.vocode(mel, noise)
    return {e.key: e.self_cpu_time_total * 1e-6 for e in prof.key_averages()}, min(wall)


def gemm_rate() -> float:
    """torch's 2048x2048 sgemm rate at the current thread count, GFLOP/s."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    return 2 * 2048 ** 3 * 10 / (time.perf_counter() - t0) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--frames", type=int, default=500, help="PyTorch whole-utterance length")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    bundle = Bundle.open(a.bundle, threads=a.threads)
    comp = bundle.component("hift")
    graph_path = str(Path(a.bundle) / bundle.graph(comp.get("graph", "hift")).entry["file"])
    T = comp["frames"]
    by_op, by_node = ort_profile(graph_path, T, a.threads, a.runs)
    flops = conv_flops(onnx.load(graph_path))
    conv_s = sum(by_node[n] for n in flops if n in by_node)
    conv_rate = sum(flops[n] for n in flops if n in by_node) / conv_s / 1e9

    md = ModelDir.open(a.model_dir)
    model = build_hift(md.config.hift, md.load_checkpoint("hift"))
    t_ops, t_wall = torch_profile(model, a.frames)
    t_total = sum(t_ops.values())
    t_conv = sum(v for k, v in t_ops.items() if "convolution" in k and "transpose" not in k)

    ms = lambda s, n: f"{1e3 * s / n:6.3f} ms/frame"  # noqa: E731
    ort_total = sum(by_op.values())
    print(f"threads {a.threads}; GEMM 2048^2 (torch): {gemm_rate():.0f} GFLOP/s")
    print(f"onnxruntime, graph T={T}: {ms(ort_total, T)} in kernels; Conv {ms(conv_s, T)} at {conv_rate:.0f} GFLOP/s")
    for op, s in sorted(by_op.items(), key=lambda kv: -kv[1])[:6]:
        print(f"  {op:22s} {ms(s, T)}  {100 * s / ort_total:5.1f} %")
    print(f"PyTorch, whole call of {a.frames} frames: {ms(t_wall, a.frames)} wall, {ms(t_total, a.frames)} in ops")
    for op, s in sorted(t_ops.items(), key=lambda kv: -kv[1])[:6]:
        print(f"  {op:22s} {ms(s, a.frames)}  {100 * s / t_total:5.1f} %")
    floor = (conv_s / T) / (t_wall / a.frames)
    print(f"lower bound of ORT/PyTorch (ORT convolutions alone, no chunk overhead, everything else free): {floor:.2f}")


if __name__ == "__main__":
    main()
