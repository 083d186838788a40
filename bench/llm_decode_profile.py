"""Where an onnxruntime LLM decode step goes (full size), for both writers of the KV cache (the
"rows" contract: `llm_step` reads the cache and returns the new rows):

- graph: the weightless `llm_cache_append` graph writes them (the Unity runtime's sequence, and
  runtime_ref before it wrote in place);
- host: runtime_ref writes them into its numpy cache in place (`runtime_ref.llm.write_rows`).

Per token: the speech-embedding lookup, `llm_step`, the write; each mode in its own block of
decode steps (alternating onnxruntime sessions inside a block is part of what is measured: a
session's worker threads spin for a while after its run and take a core from the next session).
Then the kernel time of `llm_step` and `llm_cache_append` by op type, and the step's effective
weight bandwidth.

    python bench/llm_decode_profile.py --bundle /tmp/full-bundle-llm [--position 200] [--steps 30]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.hift_profile import session_profile


def decode_block(llm, cache: dict, position: int, steps: int, mode: str) -> tuple[dict[str, list[float]], dict]:
    """`steps` decode steps (after 2 warm-up steps) from `position`; seconds per token by part."""
    from runtime_ref.llm import write_rows

    b, g = llm.bundle, llm.g
    parts: dict[str, list[float]] = {"embedding": [], "llm_step": [], "write": [], "token": []}
    for i in range(steps + 2):
        t0 = time.perf_counter()
        emb = llm.embed_speech([17 + i])
        t1 = time.perf_counter()
        pos = np.array([position + i], np.int32)
        out = b.run(g["step"], {"inputs_embeds": emb[None], "position": pos, "valid_len": np.array([1], np.int32), **cache})
        t2 = time.perf_counter()
        rows = {k: out[r] for k, r in zip(llm.cache_inputs, llm.cache_rows)}
        if mode == "host":
            write_rows(cache, rows, position + i)
        else:
            new = b.run(g["cache_append"], {"position": pos, **cache, **{r: out[r] for r in llm.cache_rows}})
            cache = {k: new[o] for k, o in zip(llm.cache_inputs, llm.cache_outputs)}
        t3 = time.perf_counter()
        if i >= 2:
            for k, s in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                parts[k].append(s)
    return parts, cache


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--position", type=int, default=200, help="cache slots already filled")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    from runtime_ref.bundle import Bundle
    from runtime_ref.llm import LLM

    llm = LLM(Bundle.open(a.bundle, threads=a.threads))
    rng = np.random.default_rng(0)
    cache = {k: (0.1 * rng.standard_normal(v.shape)).astype(np.float32) for k, v in llm.new_cache().items()}
    results = {}
    for mode in ("graph", "host"):
        results[mode], _ = decode_block(llm, {k: v.copy() for k, v in cache.items()}, a.position, a.steps, mode)
    med = lambda xs: 1e3 * float(np.median(xs))  # noqa: E731
    print(f"capacity {llm.capacity}, position {a.position}, threads {a.threads}, {a.steps} decode steps per mode")
    print(f"{'per token (median ms)':26s} {'embedding':>10s} {'llm_step':>10s} {'write':>10s} {'token':>10s}")
    for mode, what in (("graph", "llm_cache_append graph"), ("host", "host write_rows")):
        p = results[mode]
        print(f"{what:26s} " + " ".join(f"{med(p[k]):10.3f}" for k in ("embedding", "llm_step", "write", "token"))
              + f"   (token min {1e3 * min(p['token']):.1f})")
    print(f"host / graph per token: {med(results['host']['token']) / med(results['graph']['token']):.2f}")
    step_file = Path(a.bundle) / llm.bundle.graph(llm.g["step"]).entry["file"]
    weights_gb = step_file.stat().st_size / 1e9
    step_med = float(np.median(results["host"]["llm_step"]))
    print(f"step weights {weights_gb:.2f} GB: {weights_gb / step_med:.1f} GB/s effective (host block's llm_step median)")
    feeds = {"inputs_embeds": llm.embed_speech([17])[None], "position": np.array([a.position], np.int32),
             "valid_len": np.array([1], np.int32), **cache}
    out = llm.bundle.run(llm.g["step"], dict(feeds))
    app_feeds = {"position": feeds["position"], **cache, **{r: out[r] for r in llm.cache_rows}}
    for key, graph_feeds in (("step", feeds), ("cache_append", app_feeds)):
        name = llm.g[key]
        by_op, _ = session_profile(str(Path(a.bundle) / llm.bundle.graph(name).entry["file"]), graph_feeds, a.threads, 3)
        total = sum(by_op.values())
        print(f"{name}: {1e3 * total:.1f} ms in kernels")
        for op, s in sorted(by_op.items(), key=lambda kv: -kv[1])[:8]:
            print(f"  {op:30s} {1e3 * s:7.2f} ms {100 * s / total:5.1f} %")


if __name__ == "__main__":
    main()
