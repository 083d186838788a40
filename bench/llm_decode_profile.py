"""Where an onnxruntime LLM decode step goes (full size): wall time per step of `llm_step` and of
`llm_cache_append` (the "rows" KV-cache contract: the step reads the cache and returns the new
rows, the append graph writes them), and the kernel time of each graph by op type; against the
memory-bandwidth floor of reading the step's weights once per token.

    python bench/llm_decode_profile.py --bundle /tmp/full-bundle-s3 [--position 200] [--steps 30]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.hift_profile import session_profile


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
    emb = llm.embed_speech([17])
    step_s, app_s = [], []
    g, b = llm.g, llm.bundle
    pos = a.position
    for i in range(a.steps + 2):  # two warm-up steps
        feeds = {"inputs_embeds": emb[None].astype(np.float32), "position": np.array([pos], np.int32),
                 "valid_len": np.array([1], np.int32), **cache}
        t0 = time.perf_counter()
        out = b.run(g["step"], feeds)
        t1 = time.perf_counter()
        new = b.run(g["cache_append"], {"position": feeds["position"], **cache, **{r: out[r] for r in llm.cache_rows}})
        t2 = time.perf_counter()
        cache = {k: new[o] for k, o in zip(llm.cache_inputs, llm.cache_outputs)}
        if i >= 2:
            step_s.append(t1 - t0)
            app_s.append(t2 - t1)
    step_file = Path(a.bundle) / b.graph(g["step"]).entry["file"]
    weights_gb = step_file.stat().st_size / 1e9
    print(f"capacity {llm.capacity}, position {a.position}, threads {a.threads}, {a.steps} steps")
    print(f"llm_step         median {1e3 * np.median(step_s):7.1f} ms  (min {1e3 * min(step_s):.1f})")
    print(f"llm_cache_append median {1e3 * np.median(app_s):7.1f} ms  (min {1e3 * min(app_s):.1f})")
    print(f"step weights {weights_gb:.2f} GB: {weights_gb / np.median(step_s):.1f} GB/s effective")
    for name, graph_feeds in (("llm_step", feeds),
                              ("llm_cache_append", {"position": feeds["position"], **cache, **{r: out[r] for r in llm.cache_rows}})):
        path = str(Path(a.bundle) / b.graph(g["step" if name == "llm_step" else "cache_append"]).entry["file"])
        by_op, _ = session_profile(path, graph_feeds, a.threads, 3)
        total = sum(by_op.values())
        print(f"{name}: {1e3 * total:.1f} ms in kernels")
        for op, s in sorted(by_op.items(), key=lambda kv: -kv[1])[:8]:
            print(f"  {op:22s} {1e3 * s:7.2f} ms {100 * s / total:5.1f} %")


if __name__ == "__main__":
    main()
