"""End-to-end benchmark (issue 7): the workload of shared/reference/baseline.md — a 3 s prompt
(75 speech tokens, 117 LLM input rows), 250 generated tokens (10 s of audio, 500 mel frames) —
through every stage, onnxruntime (bundle graphs, runtime_ref code) vs our PyTorch modules, same
threads, stages interleaved (ORT then PyTorch per stage), full CosyVoice2-0.5B dims with random
weights.

    flock /tmp/sentis_bench.lock python bench/e2e.py --model-dir /tmp/sentis_full_model \
        --llm-bundle /tmp/b_llm_full --flow-bundle /tmp/b_flow_full --hift-bundle /tmp/b_hift_full \
        [--out bench/results_e2e.md]

(one bundle with every component works too: pass it three times). Token ids are fixed (greedy
decoding of random weights would stop at arbitrary points): the LLM stage runs exactly 250 decode
steps, like the official baseline.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

PROMPT_TOKENS, NEW_TOKENS, TEXT_TOKENS = 75, 250, 40  # 1 + 40 text + 1 + 75 = 117 LLM input rows


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def bundle_bytes(path: Path) -> int:
    """Bytes of the graphs and files a bundle's manifest lists (sizes read from disk)."""
    m = json.loads((path / "manifest.json").read_text())
    rels = [g["file"] for g in m["graphs"].values()] + list(m.get("files", {}))
    return sum((path / r).stat().st_size for r in rels if (path / r).is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default="/tmp/sentis_full_model")
    ap.add_argument("--llm-bundle", default="/tmp/b_llm_full")
    ap.add_argument("--flow-bundle", default="/tmp/b_flow_full")
    ap.add_argument("--hift-bundle", default="/tmp/b_hift_full")
    ap.add_argument("--fp16-bundles", nargs="*", default=[], help="fp16-weight bundles to report sizes of")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from exporter.flow.export import load_flows
    from exporter.flow.model import token2mel_torch
    from exporter.hift.model import build_hift
    from exporter.llm.export import load_model
    from exporter.modeldir import ModelDir
    from runtime_ref import flow as rflow
    from runtime_ref.bundle import Bundle
    from runtime_ref.hift import HiFTVocoder
    from runtime_ref.llm import LLM

    md = ModelDir.open(a.model_dir)
    rng = np.random.default_rng(0)
    text_ids = rng.integers(0, 500, TEXT_TOKENS)
    prompt = rng.integers(0, 6561, PROMPT_TOKENS)
    new = rng.integers(0, 6561, NEW_TOKENS)
    res: dict[str, dict[str, float]] = {}

    # ---------------- LLM: prefill 117 rows + 250 decode steps with the fixed-capacity cache
    llm = LLM(Bundle.open(a.llm_bundle, threads=a.threads))
    model = load_model(md)
    seq = llm.lm_input(text_ids, (), prompt)
    cap = llm.capacity

    def ort_llm():
        t0 = time.perf_counter()
        logp, cache, pos = llm.prefill(seq)
        t1 = time.perf_counter()
        for tok in new:
            logp, cache = llm.step(llm.embed_speech([int(tok)]), cache, pos)
            pos += 1
        return t1 - t0, time.perf_counter() - t1

    @torch.inference_mode()
    def torch_llm():
        cache = model.new_cache(cap)
        x = torch.from_numpy(seq)[None]
        t0 = time.perf_counter()
        pos, n = 0, x.shape[1]
        chunk = llm.chunk
        while pos < n:  # the same chunked prefill as the graph
            rows = x[:, pos: pos + chunk]
            k = rows.shape[1]
            if k < chunk:
                rows = torch.cat([rows, torch.zeros(1, chunk - k, rows.shape[2])], 1)
            logp, cache = model.step(rows, cache, torch.tensor([pos], dtype=torch.int32), torch.tensor([k], dtype=torch.int32))
            pos += k
        t1 = time.perf_counter()
        emb = model.speech_embedding.weight
        for tok in new:
            logp, cache = model.step(emb[int(tok)][None, None], cache, torch.tensor([pos], dtype=torch.int32),
                                     torch.tensor([1], dtype=torch.int32))
            pos += 1
        return t1 - t0, time.perf_counter() - t1

    ort_llm()  # warm-up (session creation, first-run allocations)
    o_pre, o_dec = ort_llm()
    t_pre, t_dec = torch_llm()
    res["llm prefill (117 rows)"] = {"ort": o_pre, "torch": t_pre}
    res["llm decode (250 tokens)"] = {"ort": o_dec, "torch": t_dec}
    del model

    # ---------------- flow: 75 prompt + 250 new tokens -> 500 new mel frames
    fb = Bundle.open(a.flow_bundle, threads=a.threads)
    comp = fb.component("flow")
    frames = rflow.pick_bucket([int(n) for n in comp["mel_lens"]], 2 * (PROMPT_TOKENS + NEW_TOKENS))
    flow = load_flows(md, (2 * (PROMPT_TOKENS + NEW_TOKENS),))[2 * (PROMPT_TOKENS + NEW_TOKENS)]
    pm = rng.standard_normal((1, 2 * PROMPT_TOKENS, 80)).astype(np.float32)
    xv = rng.standard_normal((1, 192)).astype(np.float32)
    pt, tk = prompt[None].astype(np.int32), new[None].astype(np.int32)
    rflow.token2mel(fb, pt, tk, pm, xv)  # warm-up
    t0 = time.perf_counter()
    mel = rflow.token2mel(fb, pt, tk, pm, xv)
    o_flow = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref_mel = token2mel_torch(flow, torch.from_numpy(pt).long(), torch.from_numpy(tk).long(), torch.from_numpy(pm), torch.from_numpy(xv)).numpy()
    t_flow = time.perf_counter() - t0
    res[f"flow token2mel (650 frames, bucket {frames})"] = {"ort": o_flow, "torch": t_flow}
    mel_err = float(np.abs(mel - ref_mel).max())
    del flow

    # ---------------- HiFT: 500 frames -> 240,000 samples
    voc = HiFTVocoder.from_bundle(Bundle.open(a.hift_bundle, threads=a.threads))
    hift = build_hift(md.config.hift, md.load_checkpoint("hift"))
    noise = rng.standard_normal((1, 480 * mel.shape[2], 9)).astype(np.float32)
    voc.mel2wav(mel[:, :, : voc.T], noise[:, : 480 * voc.T])
    t0 = time.perf_counter()
    wav, _ = voc.mel2wav(mel, noise)
    o_hift = time.perf_counter() - t0
    with torch.inference_mode():
        t0 = time.perf_counter()
        ref_wav = hift.vocode(torch.from_numpy(mel), torch.from_numpy(noise))[0].numpy()
        t_hift = time.perf_counter() - t0
    res["hift (500 frames)"] = {"ort": o_hift, "torch": t_hift}

    # ---------------- streaming: time to first PCM (ORT), official schedule
    pad = -(-PROMPT_TOKENS // 25) * 25 - PROMPT_TOKENS
    first_hop = 25 + pad + 3
    t0 = time.perf_counter()
    logp, cache, pos = llm.prefill(seq)
    for tok in new[:first_hop]:
        logp, cache = llm.step(llm.embed_speech([int(tok)]), cache, pos)
        pos += 1
    m1 = rflow.token2mel(fb, pt, new[None, :first_hop].astype(np.int32), pm, xv, streaming=True, finalize=False)
    voc.mel2wav(m1, noise[:, : 480 * m1.shape[2]])
    ttfa = time.perf_counter() - t0

    total_o = sum(v["ort"] for v in res.values())
    total_t = sum(v["torch"] for v in res.values())
    secs = NEW_TOKENS / 25
    lines = [
        "# End-to-end benchmark",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads / {a.threads} onnxruntime threads, "
        f"torch {torch.__version__}; full CosyVoice2-0.5B dims, random weights. Workload: 3 s prompt ({PROMPT_TOKENS} tokens, "
        f"117 LLM rows), {NEW_TOKENS} tokens = {secs:.0f} s of audio.",
        "",
        "Command:",
        "",
        "    flock /tmp/sentis_bench.lock python bench/e2e.py --model-dir /tmp/sentis_full_model \\",
        f"        --llm-bundle {a.llm_bundle} --flow-bundle {a.flow_bundle} --hift-bundle {a.hift_bundle}",
        "",
        "| stage | onnxruntime (s) | our PyTorch (s) | ratio | official PyTorch (baseline.md) |",
        "|---|---|---|---|---|",
    ]
    official = {"llm prefill (117 rows)": "0.88 s", "llm decode (250 tokens)": "31.3 s (126 ms/token)",
                "hift (500 frames)": "2.43 s"}
    for k, v in res.items():
        off = official.get(k, "24.1 s" if k.startswith("flow") else "")
        lines.append(f"| {k} | {v['ort']:.2f} | {v['torch']:.2f} | {v['ort'] / v['torch']:.2f} | {off} |")
    lines += [
        f"| **total** | **{total_o:.2f}** | **{total_t:.2f}** | **{total_o / total_t:.2f}** | 58.2 s |",
        "",
        f"- RTF (onnxruntime, whole pipeline): {total_o / secs:.2f} (official PyTorch: 5.82)",
        f"- streaming time to first PCM (prefill + {first_hop} decode steps + flow chunk + HiFT chunk): {ttfa:.2f} s",
        f"- peak RSS of this process (both engines loaded): {peak_rss_gb():.2f} GB",
        f"- parity on this run: flow mel max-abs {mel_err:.2e}; HiFT waveform max-abs "
        f"{float(np.abs(wav - ref_wav).max()):.2e}",
        f"- bundle sizes: LLM {bundle_bytes(Path(a.llm_bundle)) / 1e9:.2f} GB, flow {bundle_bytes(Path(a.flow_bundle)) / 1e9:.2f} GB, "
        f"HiFT {bundle_bytes(Path(a.hift_bundle)) / 1e6:.1f} MB (fp32)",
    ]
    for b in a.fp16_bundles:
        lines.append(f"- fp16-weight bundle {b}: {bundle_bytes(Path(b)) / 1e9:.2f} GB")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
