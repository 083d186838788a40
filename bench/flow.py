"""Flow benchmark: token2mel for a 10 s utterance with a 3 s prompt (75 prompt + 250 new tokens ->
650 mel frames), onnxruntime (runtime_ref, bucketed graphs) vs our PyTorch path (exact length, no
padding), same threads, interleaved; plus the padding waste of bucket sets.

    flock /tmp/sentis_bench.lock python bench/flow.py --model-dir /tmp/sentis_full_model --bundle /tmp/b_flow_full

Optional: --step-bundle B (a bundle exported with extra flow_solver='step') times the host loop
of 10 single-step graphs against the unrolled graph.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def padding_waste(bucket_sets, lo=100, hi=1024):
    """Mean padded fraction over utterance lengths lo..hi frames (even), per bucket set."""
    lens = np.arange(lo, hi + 1, 2)
    out = {}
    for bs in bucket_sets:
        bs = sorted(bs)
        pad = [min(b for b in bs if b >= n) for n in lens]
        out[tuple(bs)] = (1 - lens.sum() / np.sum(pad), 1 - np.sum(lens.astype(float) ** 2) / np.sum(np.array(pad, float) ** 2))
    return out


def make_fp16_copy(src, dst, frames):
    """Copy a bundle's manifest/noise and store the needed bucket's graphs with float16 weights."""
    import json
    import shutil
    from pathlib import Path

    import onnx

    from graph_passes.precision import weights_to_fp16
    from runtime_ref.flow import pick_bucket

    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "manifest.json", dst / "manifest.json")
    (dst / "flow").mkdir(exist_ok=True)
    shutil.copy(src / "flow" / "noise.npy", dst / "flow" / "noise.npy")
    comp = json.loads((src / "manifest.json").read_text())["components"]["flow"]
    n = pick_bucket(comp["mel_lens"], frames)
    for g in comp["graphs"][str(n)].values():
        if not (dst / f"{g}.onnx").is_file():
            onnx.save(weights_to_fp16(onnx.load(str(src / f"{g}.onnx"))), str(dst / f"{g}.onnx"))
    return dst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--step-bundle", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=75)
    ap.add_argument("--tokens", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--fp16-copy", default=None,
                    help="folder for an fp16-weight copy of the bucket's graphs (made with graph_passes' weights_to_fp16); timed and compared too")
    args = ap.parse_args()

    import torch

    from exporter.flow.export import load_flows
    from exporter.flow.model import token2mel_torch
    from exporter.modeldir import ModelDir
    from runtime_ref.bundle import Bundle
    from runtime_ref.flow import pick_bucket, token2mel

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    P, N = args.prompt_tokens, args.tokens
    pt = rng.integers(0, 6561, (1, P))
    tk = rng.integers(0, 6561, (1, N))
    pm = (rng.standard_normal((1, 2 * P, 80)) - 5).astype(np.float32)
    xv = rng.standard_normal((1, 192)).astype(np.float32)
    frames = 2 * (P + N)

    md = ModelDir.open(args.model_dir)
    flow = load_flows(md, (frames,))[frames]
    bundles = {"unrolled": Bundle.open(args.bundle, threads=args.threads)}
    if args.step_bundle:
        bundles["step"] = Bundle.open(args.step_bundle, threads=args.threads)
    if args.fp16_copy:
        bundles["fp16"] = Bundle.open(make_fp16_copy(args.bundle, args.fp16_copy, frames), verify=False, threads=args.threads)
    for name, b in bundles.items():
        comp = b.component("flow")
        n = pick_bucket(comp["mel_lens"], frames)
        t0 = time.perf_counter()
        for g in comp["graphs"][str(n)].values():
            b.session(g)
        print(f"[{name}] bucket {n} for {frames} frames; session load {time.perf_counter() - t0:.1f} s")

    results: dict[str, list[float]] = {k: [] for k in ["torch", *bundles]}
    outs = {}
    for r in range(args.rounds):
        for name, b in bundles.items():
            t0 = time.perf_counter()
            outs[name] = token2mel(b, pt, tk, pm, xv)
            results[name].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        outs["torch"] = token2mel_torch(flow, pt, tk, pm, xv).numpy()
        results["torch"].append(time.perf_counter() - t0)
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in results.items()), flush=True)

    ref = outs["torch"]
    print(f"\nworkload: {P} prompt + {N} new tokens -> {frames} frames, threads {args.threads}")
    for name in bundles:
        err = float(np.abs(outs[name] - ref).max())
        snr = 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(np.sum((outs[name] - ref).astype(np.float64) ** 2), 1e-30))
        ratio = min(results[name]) / min(results["torch"])
        print(f"ORT {name}: {min(results[name]):.2f} s vs torch {min(results['torch']):.2f} s -> ratio {ratio:.3f}; "
              f"mel max-abs vs torch {err:.3g}, SNR {snr:.1f} dB")
    print("\npadding waste over utterances of 100..1024 frames (frames, attention ~ N^2):")
    for bs, (w, w2) in padding_waste([(1024,), (512, 1024), (512, 768, 1024), (256, 512, 768, 1024),
                                      (256, 384, 512, 640, 768, 1024)]).items():
        n = min(b for b in bs if b >= frames)
        print(f"  {bs}: {100 * w:.1f} % frames, {100 * w2:.1f} % attention; this workload -> {n} ({100 * (1 - frames / n):.1f} % frames)")


if __name__ == "__main__":
    main()
