"""LLM step benchmark: onnxruntime (exported llm_step) vs our PyTorch module with the same fixed
KV cache, interleaved in one run, same threads; decode time vs the memory-bandwidth floor.

Run alone (heavy):
    flock /tmp/sentis_bench.lock python bench/llm.py --model-dir /tmp/sentis_full_model \
        --bundle /tmp/b_llm_full [--static-variant] [--out bench/results_llm.md]

Workloads (same as shared/reference/baseline.md): one decode token at position ~ 117 + k
(a 117-row prompt already in the cache), and one 32-row prefill chunk.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

REPO = Path(__file__).resolve().parents[1]


def copy_bandwidth(nbytes: int = 1 << 29, reps: int = 5) -> float:
    """GB/s of bytes *read* by a large numpy copy (source not in cache)."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return nbytes / best / 1e9


def session(path: Path, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def pinned_copy(src: Path, dst: Path, query_len: int) -> Path:
    """The same graph with query_len pinned to a constant (what two static graphs would give)."""
    m = onnx.load(str(src))
    for t in list(m.graph.input) + list(m.graph.output):
        for d in t.type.tensor_type.shape.dim:
            if d.dim_param == "query_len":
                d.Clear()
                d.dim_value = query_len
    onnx.save(m, str(dst))
    return dst


def cache_update_microbench(n_caches: int, kv: int, cap: int, hd: int, threads: int, reps: int = 30) -> dict[str, float]:
    """Decode-step cache write (T=1) of n_caches caches in ORT: the exported one-hot arithmetic
    (cache*keep + onehot@new) vs ScatterElements at computed indices. Median ms per step."""

    class OneHot(torch.nn.Module):
        def forward(self, new, position, *caches):
            slots = torch.arange(cap, dtype=torch.int32)
            pos = position.reshape(1) + torch.arange(new.shape[2], dtype=torch.int32)
            write = (slots[:, None] == pos[None, :]).float()
            keep = 1.0 - write.sum(dim=1, keepdim=True)
            return tuple(c * keep + torch.matmul(write, new) for c in caches)

    class Scatter(torch.nn.Module):
        def forward(self, new, position, *caches):
            pos = position.reshape(1).long() + torch.arange(new.shape[2])
            idx = pos.view(1, 1, -1, 1).expand(1, kv, new.shape[2], hd)
            return tuple(c.scatter(2, idx, new) for c in caches)

    rng = np.random.default_rng(0)
    new = rng.standard_normal((1, kv, 1, hd)).astype(np.float32)
    caches = [rng.standard_normal((1, kv, cap, hd)).astype(np.float32) for _ in range(n_caches)]
    feeds = {"new": new, "position": np.array([100], np.int32)}
    feeds.update({f"c{i}": c for i, c in enumerate(caches)})
    out = {}
    with tempfile.TemporaryDirectory(dir="/tmp") as td:
        sessions = {}
        for name, mod in (("one-hot arithmetic", OneHot()), ("ScatterElements", Scatter())):
            p = Path(td) / f"{name[:3]}.onnx"
            torch.onnx.export(mod, (torch.from_numpy(new), torch.tensor([100], dtype=torch.int32), *map(torch.from_numpy, caches)),
                              str(p), input_names=list(feeds), opset_version=17, dynamo=False)
            sessions[name] = session(p, threads)
        ref = None
        for name, s in sessions.items():
            got = s.run(None, feeds)
            ref = got if ref is None else ref
            assert all(np.array_equal(a, b) for a, b in zip(ref, got)), "cache update variants disagree"
        times = {k: [] for k in sessions}
        for _ in range(reps):
            for name, s in sessions.items():
                t = time.perf_counter()
                s.run(None, feeds)
                times[name].append(time.perf_counter() - t)
        out = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default="/tmp/sentis_full_model")
    ap.add_argument("--bundle", default="/tmp/b_llm_full")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=4, help="decode steps per round per engine")
    ap.add_argument("--static-variant", action="store_true", help="also time the graph with query_len pinned to 1")
    ap.add_argument("--out", default=None, help="append a markdown table here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    from exporter.llm.export import cache_names, load_model
    from exporter.modeldir import ModelDir

    bundle = Path(args.bundle)
    md = ModelDir.open(args.model_dir)
    model = load_model(md)
    model.llm.model.model.embed_tokens = torch.nn.Embedding(1, 1)  # the step path never reads it: free 545 MB
    q = model.cfg.qwen
    import json

    comp = json.loads((bundle / "manifest.json").read_text())["components"]["llm"]
    cap, chunk = comp["max_cache_len"], comp["prefill_chunk"]
    step_path = bundle / "llm_step.onnx"
    weight_bytes = sum(int(np.prod(i.dims)) * 4 for i in onnx.load(str(step_path), load_external_data=False).graph.initializer
                       if i.data_type == onnx.TensorProto.FLOAT)
    cache_bytes = 2 * q.num_hidden_layers * q.num_key_value_heads * cap * q.head_dim * 4
    sess = session(step_path, args.threads)
    past, present = cache_names(q.num_hidden_layers)
    rng = np.random.default_rng(0)
    shape = (1, q.num_key_value_heads, cap, q.head_dim)
    base_cache = [rng.standard_normal(shape).astype(np.float32) * 0.5 for _ in past]
    prompt = 117

    def ort_step(x, position, n, cache):
        feeds = {"inputs_embeds": x, "position": np.array([position], np.int32), "valid_len": np.array([n], np.int32)}
        feeds.update(dict(zip(past, cache)))
        out = sess.run(None, feeds)
        return out[0], out[1:]

    tcache0 = [torch.from_numpy(c.copy()) for c in base_cache]

    @torch.inference_mode()
    def torch_step(x, position, n, cache):
        lp, c = model.step(torch.from_numpy(x), cache, torch.tensor([position], dtype=torch.int32), torch.tensor([n], dtype=torch.int32))
        return lp, c

    results: dict[str, list[float]] = {"ort_decode": [], "torch_decode": [], "ort_prefill": [], "torch_prefill": []}
    x1 = rng.standard_normal((1, 1, q.hidden_size)).astype(np.float32)
    xc = rng.standard_normal((1, chunk, q.hidden_size)).astype(np.float32)
    # warm-up
    ort_step(x1, prompt, 1, base_cache)
    torch_step(x1, prompt, 1, tcache0)
    for r in range(args.rounds):
        for eng in ("ort", "torch"):
            cache = base_cache if eng == "ort" else tcache0
            f = ort_step if eng == "ort" else torch_step
            for k in range(args.steps):
                t = time.perf_counter()
                _, cache = f(x1, prompt + k, 1, cache)
                results[f"{eng}_decode"].append(time.perf_counter() - t)
            t = time.perf_counter()
            f(xc, prompt, chunk, base_cache if eng == "ort" else tcache0)
            results[f"{eng}_prefill"].append(time.perf_counter() - t)
        print(f"round {r}: " + ", ".join(f"{k} {statistics.median(v) * 1e3:.1f} ms" for k, v in results.items()), flush=True)

    static = None
    if args.static_variant:
        del sess
        with tempfile.TemporaryDirectory(dir="/tmp") as td:
            s1 = session(pinned_copy(step_path, Path(td) / "step1.onnx", 1), args.threads)
            sess = session(step_path, args.threads)
            times = {"pinned": [], "symbolic": []}
            for r in range(args.rounds):
                for name, s in (("pinned", s1), ("symbolic", sess)):
                    for k in range(args.steps):
                        feeds = {"inputs_embeds": x1, "position": np.array([prompt + k], np.int32), "valid_len": np.array([1], np.int32)}
                        feeds.update(dict(zip(past, base_cache)))
                        t = time.perf_counter()
                        s.run(None, feeds)
                        times[name].append(time.perf_counter() - t)
            static = {k: statistics.median(v) for k, v in times.items()}
            del s1

    upd = cache_update_microbench(len(past), q.num_key_value_heads, cap, q.head_dim, args.threads)
    bw = copy_bandwidth()
    med = {k: statistics.median(v) for k, v in results.items()}
    floor_measured = weight_bytes / (bw * 1e9)
    floor_baseline = weight_bytes / 22.2e9
    lines = [
        f"| max_cache_len / prefill_chunk | {cap} / {chunk} |",
        f"| threads (torch / ORT intra-op) | {args.threads} / {args.threads} |",
        f"| decode step, ORT (median of {len(results['ort_decode'])}) | {med['ort_decode'] * 1e3:.1f} ms |",
        f"| decode step, our PyTorch module, same fixed cache | {med['torch_decode'] * 1e3:.1f} ms |",
        f"| decode ratio ORT / PyTorch | {med['ort_decode'] / med['torch_decode']:.2f} |",
        f"| prefill chunk ({chunk} rows), ORT | {med['ort_prefill'] * 1e3:.1f} ms |",
        f"| prefill chunk ({chunk} rows), PyTorch | {med['torch_prefill'] * 1e3:.1f} ms |",
        f"| weight bytes read per decode token (llm_step fp32 initializers) | {weight_bytes / 1e9:.3f} GB |",
        f"| KV cache bytes (in + out each, all layers) | {cache_bytes / 1e6:.1f} MB |",
        f"| measured copy bandwidth (bytes read / s, numpy 512 MB copy) | {bw:.1f} GB/s |",
        f"| floor at measured bandwidth / ORT decode ÷ floor | {floor_measured * 1e3:.1f} ms / {med['ort_decode'] / floor_measured:.2f} |",
        f"| floor at baseline.md 22.2 GB/s / ORT decode ÷ floor | {floor_baseline * 1e3:.1f} ms / {med['ort_decode'] / floor_baseline:.2f} |",
    ]
    if static:
        lines.append(f"| decode, same graph with query_len pinned to 1 / symbolic | {static['pinned'] * 1e3:.1f} ms / {static['symbolic'] * 1e3:.1f} ms |")
    lines += [f"| cache write only, all {len(past)} caches, {k} | {v:.2f} ms |" for k, v in upd.items()]
    table = "| measure | value |\n|---|---|\n" + "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(f"\n### run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{table}\n")


if __name__ == "__main__":
    main()
