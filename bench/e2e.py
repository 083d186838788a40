"""End-to-end benchmark: the workload of shared/reference/baseline.md — a 3 s prompt (75 speech
tokens, 117 LLM input rows), 250 generated tokens (10 s of audio, 500 mel frames) — through every
stage, timed in ONE process on one machine for three engines, interleaved round by round:

- onnxruntime: the bundle graphs through runtime_ref (what the C# runtime mirrors);
- our PyTorch modules (exporter/*/model.py, exact lengths, no padding);
- the official CosyVoice2 modules (fetched scratch copy, bench/official.py), same random weights,
  same threads; skipped with the reason where the copy is absent.

    flock /tmp/sentis_heavy.lock python bench/e2e.py --model-dir /tmp/perf-full-model \
        --bundle /tmp/perf-bundle [--rounds 2] [--out FILE]

(--llm-bundle/--flow-bundle/--hift-bundle override --bundle per component.) Token ids are fixed
(greedy decoding of random weights would stop at arbitrary points): every LLM engine runs exactly
250 decode steps. Each figure is the minimum over the rounds (the machine is shared; the minimum is
the least disturbed run); all rounds are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

PROMPT_TOKENS, NEW_TOKENS, TEXT_TOKENS = 75, 250, 40  # 1 + 40 text + 1 + 75 = 117 LLM input rows
FLAG_KEYS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_tile", "amx_bf16")


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def bundle_bytes(path: Path) -> int:
    """Bytes of the graphs and files a bundle's manifest lists (sizes read from disk)."""
    m = json.loads((path / "manifest.json").read_text())
    rels = [g["file"] for g in m["graphs"].values()] + list(m.get("files", {}))
    return sum((path / r).stat().st_size for r in rels if (path / r).is_file())


def machine_description() -> str:
    """CPU model, core count, the SIMD flags that matter for GEMM, memory, versions, load."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        model = info.get("Model name", "?").strip()
        flags = set(info.get("Flags", "").split())
    except (OSError, subprocess.CalledProcessError):
        model, flags = platform.processor() or "?", set()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import onnxruntime as ort

    have = [f for f in FLAG_KEYS if f in flags]
    return (f"{model}, {os.cpu_count()} cores, flags {' '.join(have) or 'none of ' + '/'.join(FLAG_KEYS)}"
            f"{'' if 'avx512f' in flags else ' (no AVX-512)'}; {mem:.0f} GiB; {platform.platform()}; "
            f"torch {torch.__version__}, onnxruntime {ort.__version__}")


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def draw_workload(rng: np.random.Generator):
    """The workload's text ids, prompt speech tokens and new speech tokens, drawn from `rng` in this
    order (the flow/HiFT inputs are drawn from the same generator afterwards)."""
    return rng.integers(0, 500, TEXT_TOKENS), rng.integers(0, 6561, PROMPT_TOKENS), rng.integers(0, 6561, NEW_TOKENS)


def timed(fn):
    """(seconds, result) of one call of fn."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def time_ort_llm(llm, seq, new) -> tuple[float, float]:
    """Seconds of the chunked prefill of `seq` and of one decode step per token of `new` (runtime_ref)."""
    t0 = time.perf_counter()
    logp, cache, pos = llm.prefill(seq)
    t1 = time.perf_counter()
    for tok in new:
        logp, cache = llm.step(llm.embed_speech([int(tok)]), cache, pos)
        pos += 1
    return t1 - t0, time.perf_counter() - t1


@torch.inference_mode()
def time_torch_llm(model, llm, seq, new) -> tuple[float, float]:
    """The same workload on the PyTorch module: the graph's chunked prefill, then one step per token."""
    cache = model.new_cache(llm.capacity)
    x = torch.from_numpy(seq)[None]
    t0 = time.perf_counter()
    pos, n, chunk = 0, x.shape[1], llm.chunk
    while pos < n:
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default="/tmp/perf-full-model")
    ap.add_argument("--bundle", default="/tmp/perf-bundle")
    ap.add_argument("--llm-bundle", default=None)
    ap.add_argument("--flow-bundle", default=None)
    ap.add_argument("--hift-bundle", default=None)
    ap.add_argument("--official", default="/tmp/cv_official", help="scratch copy of the official CosyVoice code")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stages", default="llm,flow,hift,ttfa")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    llm_b, flow_b, hift_b = (Path(x or a.bundle) for x in (a.llm_bundle, a.flow_bundle, a.hift_bundle))
    stages = set(a.stages.split(","))

    from bench.official import OfficialCode, official_llm_run, why_absent
    from exporter.flow.export import load_flows
    from exporter.flow.model import token2mel_torch
    from exporter.hift.model import build_hift
    from exporter.llm.export import load_model
    from exporter.modeldir import ModelDir
    from runtime_ref import flow as rflow
    from runtime_ref.bundle import Bundle
    from runtime_ref.hift import HiFTVocoder
    from runtime_ref.llm import LLM

    machine, load_start = machine_description(), loadavg()
    absent = why_absent(a.official)
    off = None if absent else OfficialCode(a.official)
    md = ModelDir.open(a.model_dir)
    rng = np.random.default_rng(0)
    text_ids, prompt, new = draw_workload(rng)
    times: dict[str, dict[str, list[float]]] = {}
    notes: list[str] = []

    def record(stage, engine, seconds):
        times.setdefault(stage, {}).setdefault(engine, []).append(seconds)

    llm = LLM(Bundle.open(llm_b, threads=a.threads)) if stages & {"llm", "ttfa"} else None
    # ---------------- LLM: prefill 117 rows + 250 decode steps
    if "llm" in stages:
        model = load_model(md)
        seq = llm.lm_input(text_ids, (), prompt)
        off_llm = off.llm(md) if off else None

        def ort_llm():
            return time_ort_llm(llm, seq, new)

        def torch_llm():
            return time_torch_llm(model, llm, seq, new)

        ort_llm()  # warm-up (session creation, first-run allocations)
        engines = {"ort": ort_llm, "torch": torch_llm}
        if off_llm is not None:
            engines["official"] = lambda: official_llm_run(off_llm, torch.from_numpy(seq)[None], new)
        for r in range(a.rounds):
            for eng, fn in engines.items():
                pre, dec = fn()
                record("llm prefill (117 rows)", eng, pre)
                record(f"llm decode ({NEW_TOKENS} tokens)", eng, dec)
            print(f"llm round {r}: " + ", ".join(f"{e} {times[f'llm decode ({NEW_TOKENS} tokens)'][e][-1]:.1f} s" for e in engines), flush=True)
        del model, off_llm, engines

    # ---------------- flow: 75 prompt + 250 new tokens -> 500 new mel frames
    fb = Bundle.open(flow_b, threads=a.threads) if stages & {"flow", "hift", "ttfa"} else None
    n_frames = 2 * (PROMPT_TOKENS + NEW_TOKENS)
    pm = rng.standard_normal((1, 2 * PROMPT_TOKENS, 80)).astype(np.float32)
    xv = rng.standard_normal((1, 192)).astype(np.float32)
    pt, tk = prompt[None].astype(np.int32), new[None].astype(np.int32)
    mel = None
    if "flow" in stages:
        comp = fb.component("flow")
        bucket = rflow.pick_bucket([int(n) for n in comp["mel_lens"]], n_frames)
        flow = load_flows(md, (n_frames,))[n_frames]
        off_flow = off.flow(md) if off else None
        stage = f"flow token2mel ({n_frames} frames, bucket {bucket})"
        rflow.token2mel(fb, pt, tk, pm, xv)  # warm-up
        engines = {
            "ort": lambda: rflow.token2mel(fb, pt, tk, pm, xv),
            "torch": lambda: token2mel_torch(flow, torch.from_numpy(pt).long(), torch.from_numpy(tk).long(),
                                             torch.from_numpy(pm), torch.from_numpy(xv)).numpy(),
        }
        if off_flow is not None:
            def official_flow():
                with torch.inference_mode():
                    m, _ = off_flow.inference(
                        token=torch.from_numpy(tk), token_len=torch.tensor([NEW_TOKENS]), prompt_token=torch.from_numpy(pt),
                        prompt_token_len=torch.tensor([PROMPT_TOKENS]), prompt_feat=torch.from_numpy(pm),
                        prompt_feat_len=torch.tensor([2 * PROMPT_TOKENS]), embedding=torch.from_numpy(xv),
                        streaming=False, finalize=True)
                return m.numpy()
            engines["official"] = official_flow
        outs = {}
        for r in range(a.rounds):
            for eng, fn in engines.items():
                s, outs[eng] = timed(fn)
                record(stage, eng, s)
            print(f"flow round {r}: " + ", ".join(f"{e} {times[stage][e][-1]:.1f} s" for e in engines), flush=True)
        mel = outs["ort"]
        notes.append(f"flow mel max-abs: ORT vs our PyTorch {float(np.abs(mel - outs['torch']).max()):.2e}"
                     + (f", ORT vs official {float(np.abs(mel - outs['official']).max()):.2e}" if "official" in outs else ""))
        del flow, off_flow, engines

    # ---------------- HiFT: 500 frames -> 240,000 samples
    voc = HiFTVocoder.from_bundle(Bundle.open(hift_b, threads=a.threads)) if stages & {"hift", "ttfa"} else None
    noise = rng.standard_normal((1, 480 * 2 * (PROMPT_TOKENS + NEW_TOKENS), 9)).astype(np.float32)
    if "hift" in stages:
        if mel is None:
            mel = rflow.token2mel(fb, pt, tk, pm, xv)
        hift = build_hift(md.config.hift, md.load_checkpoint("hift"))
        off_hift = off.hift(md) if off else None
        nz = noise[:, : 480 * mel.shape[2]]
        voc.mel2wav(mel[:, :, : voc.T], nz[:, : 480 * voc.T])  # warm-up
        engines = {"ort": lambda: voc.mel2wav(mel, nz)[0]}

        def torch_hift():
            with torch.inference_mode():
                return hift.vocode(torch.from_numpy(mel), torch.from_numpy(nz))[0].numpy()
        engines["torch"] = torch_hift
        if off_hift is not None:
            def official_hift():  # its own random source noise: timed, not compared (tests/hift/test_official.py does)
                with torch.inference_mode():
                    return off_hift.inference(speech_feat=torch.from_numpy(mel))[0].numpy()
            engines["official"] = official_hift
        stage = f"hift ({mel.shape[2]} frames)"
        outs = {}
        for r in range(a.rounds):
            for eng, fn in engines.items():
                s, outs[eng] = timed(fn)
                record(stage, eng, s)
        notes.append(f"HiFT waveform max-abs ORT vs our PyTorch {float(np.abs(outs['ort'] - outs['torch']).max()):.2e}")
        del hift, off_hift, engines

    # ---------------- streaming: time to first PCM (ORT), official schedule
    ttfa = None
    if "ttfa" in stages:
        seq = llm.lm_input(text_ids, (), prompt)
        pad = -(-PROMPT_TOKENS // 25) * 25 - PROMPT_TOKENS
        first_hop = 25 + pad + 3
        first_bucket = rflow.pick_bucket([int(n) for n in fb.component("flow")["mel_lens"]], 2 * (PROMPT_TOKENS + first_hop))
        # sessions open at load time in an app: open the first bucket's graphs before timing (the
        # first run of a session includes its creation, ~5 s for flow_solve at full size)
        rflow.token2mel(fb, pt, new[None, :first_hop].astype(np.int32), pm, xv, streaming=True, finalize=False)
        parts = []
        for r in range(a.rounds):
            t0 = time.perf_counter()
            logp, cache, pos = llm.prefill(seq)
            t1 = time.perf_counter()
            for tok in new[:first_hop]:
                logp, cache = llm.step(llm.embed_speech([int(tok)]), cache, pos)
                pos += 1
            t2 = time.perf_counter()
            m1 = rflow.token2mel(fb, pt, new[None, :first_hop].astype(np.int32), pm, xv, streaming=True, finalize=False)
            t3 = time.perf_counter()
            voc.mel2wav(m1, noise[:, : 480 * m1.shape[2]])
            t4 = time.perf_counter()
            parts.append((t4 - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3))
        best = min(parts)
        ttfa = (f"streaming time to first PCM (ORT; prefill + {first_hop} decode steps + flow chunk in bucket "
                f"{first_bucket} + HiFT chunk): **{best[0]:.2f} s** = {best[1]:.2f} + {best[2]:.2f} + {best[3]:.2f} + {best[4]:.2f} s "
                f"(rounds: {', '.join(f'{p[0]:.2f}' for p in parts)})")

    # ---------------- report
    def best(stage, eng):
        v = times[stage].get(eng)
        return min(v) if v else None

    engines_seen = [e for e in ("ort", "torch", "official") if any(e in v for v in times.values())]
    secs = NEW_TOKENS / 25
    head = {"ort": "onnxruntime (s)", "torch": "our PyTorch (s)", "official": "official PyTorch (s)"}
    lines = [
        "# End-to-end benchmark",
        "",
        f"Machine: {machine}. Shared with other jobs (load average {load_start} at start, {loadavg()} at end).",
        f"Threads: {a.threads} torch / {a.threads} onnxruntime. Model dir (random weights) "
        f"({a.model_dir}). Workload: 3 s prompt ({PROMPT_TOKENS} tokens, 117 LLM rows), {NEW_TOKENS} tokens = {secs:.0f} s of audio.",
        f"Rounds: {a.rounds}, engines interleaved within each round; figures are the minimum over rounds.",
        "",
        "Command:",
        "",
        f"    flock /tmp/sentis_heavy.lock python bench/e2e.py --model-dir {a.model_dir} --bundle {a.bundle} --rounds {a.rounds} --threads {a.threads}"
        + "".join(f" --{k}-bundle {v}" for k, v in (("llm", a.llm_bundle), ("flow", a.flow_bundle), ("hift", a.hift_bundle)) if v),
        "",
        "| stage | " + " | ".join(head[e] for e in engines_seen) + " | ORT / our PyTorch | "
        + ("ORT / official |" if "official" in engines_seen else ""),
        "|---|" + "---|" * len(engines_seen) + "---|" + ("---|" if "official" in engines_seen else ""),
    ]
    totals = {e: 0.0 for e in engines_seen}
    for stage in times:
        row = [best(stage, e) for e in engines_seen]
        for e, v in zip(engines_seen, row):
            totals[e] += v or 0.0
        cells = " | ".join("—" if v is None else f"{v:.2f}" for v in row)
        ratio_t = best(stage, "ort") / best(stage, "torch")
        line = f"| {stage} | {cells} | {ratio_t:.2f} |"
        if "official" in engines_seen:
            line += f" **{best(stage, 'ort') / best(stage, 'official'):.2f}** |"
        lines.append(line)
    if {"ort", "torch"} <= set(totals):  # (a --stages ttfa run times no stage)
        cells = " | ".join(f"**{totals[e]:.2f}**" for e in engines_seen)
        line = f"| **total** | {cells} | {totals['ort'] / totals['torch']:.2f} |"
        if "official" in engines_seen:
            line += f" **{totals['ort'] / totals['official']:.2f}** |"
        lines += [line]
    lines += [""]
    if absent:
        lines.append(f"- official code: skipped — {absent}")
    lines.append("- all rounds (s): " + "; ".join(
        f"{stage}: " + ", ".join(f"{e} " + "/".join(f"{x:.2f}" for x in v) for e, v in d.items()) for stage, d in times.items()))
    if "ort" in totals and totals["ort"]:
        lines.append(f"- RTF (onnxruntime, whole pipeline): {totals['ort'] / secs:.2f}"
                     + (f" (official PyTorch: {totals['official'] / secs:.2f})" if "official" in totals else ""))
    if ttfa:
        lines.append(f"- {ttfa}")
    lines += [f"- {n}" for n in notes]
    lines.append(f"- peak RSS of this process (all engines loaded in turn): {peak_rss_gb():.2f} GB")
    seen = {}
    for k, p in (("LLM", llm_b), ("flow", flow_b), ("HiFT", hift_b)):
        seen.setdefault(p, []).append(k)
    lines.append("- bundle sizes: " + ", ".join(f"{'+'.join(v)} {bundle_bytes(p) / 1e9:.2f} GB ({p})" for p, v in seen.items()))
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
