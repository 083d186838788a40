"""CosyVoice3 benchmark: the workload of bench/e2e.py (3 s prompt = 75 speech tokens, 117 LLM input
rows; 250 generated tokens = 10 s of audio, 650 mel frames with the prompt) on a full-size
Fun-CosyVoice3 model directory (random weights: `sentis-tts fixture --family cosyvoice3 --size
full`), onnxruntime (the bundle through runtime_ref) vs our PyTorch modules, interleaved round by
round in one process; and the bundle's size in float32 and with float16 weights (the
`weights_to_fp16` pass that `export --fp16` applies, run on the exported graphs).

    /work/notes/bin/quiet python bench/cosyvoice3.py --model-dir /tmp/cv3-bench/model \
        --bundle /tmp/cv3-bench/bundle [--rounds 1] [--threads 2] [--out FILE]

Stages: LLM prefill + 250 decode steps (fixed token ids: every engine runs exactly 250 steps), flow
token2mel (prompt 75 + 250 tokens -> 500 new frames, one bucket), causal HiFT (the piece's whole mel
in one call, T = the graph's frames). The official CosyVoice3 modules are compared for parity in
tests/cosyvoice3 (tiny dims); they are not timed here. Minimum over rounds; all rounds printed.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from bench.e2e import NEW_TOKENS, PROMPT_TOKENS, bundle_bytes, loadavg, machine_description, peak_rss_gb, time_ort_llm, time_torch_llm, draw_workload, timed


def fp16_bytes(path: Path) -> int:
    """Bytes of the bundle with every graph through graph_passes.weights_to_fp16 (as `export --fp16`
    does; external data loaded first so large weights are converted too) plus its other files."""
    import json
    import tempfile

    import onnx

    from graph_passes.precision import weights_to_fp16

    m = json.loads((path / "manifest.json").read_text())
    total = sum((path / r).stat().st_size for r in m.get("files", {}) if (path / r).is_file())
    for g in m["graphs"].values():
        model = onnx.load(str(path / g["file"]), load_external_data=True)
        half = weights_to_fp16(model)
        del model
        with tempfile.TemporaryDirectory() as t:
            out = Path(t) / "g.onnx"
            onnx.save_model(half, str(out), save_as_external_data=half.ByteSize() > 2**31 - 2**20, location="g.data")
            total += sum(p.stat().st_size for p in Path(t).iterdir())
        del half
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default="/tmp/cv3-bench/model")
    ap.add_argument("--bundle", default="/tmp/cv3-bench/bundle")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stages", default="llm,flow,hift,sizes")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    stages = set(a.stages.split(","))

    from exporter.cosyvoice3.flow import DiTFlow
    from exporter.cosyvoice3.hift import build_causal_hift
    from exporter.cosyvoice3.llm_export import load_model
    from exporter.families import open_model_dir
    from exporter.flow.export import load_flows
    from exporter.flow.model import token2mel_torch
    from runtime_ref import flow as rflow
    from runtime_ref.bundle import Bundle
    from runtime_ref.cosyvoice3 import CausalVocoder, causal_chunk_plan
    from runtime_ref.llm import LLM

    machine, load_start = machine_description(), loadavg()
    md = open_model_dir(a.model_dir)
    bundle = Bundle.open(a.bundle, threads=a.threads)
    rng = np.random.default_rng(0)
    text_ids, prompt, new = draw_workload(rng)
    times: dict[str, dict[str, list[float]]] = {}
    notes: list[str] = []

    def record(stage, engine, seconds):
        times.setdefault(stage, {}).setdefault(engine, []).append(seconds)

    # ---------------- LLM: prefill 117 rows + 250 decode steps (same loops as bench/e2e.py)
    if "llm" in stages:
        llm = LLM(bundle)
        model = load_model(md).eval()
        seq = llm.lm_input(text_ids, (), prompt)

        def ort_llm():
            return time_ort_llm(llm, seq, new)

        def torch_llm():
            return time_torch_llm(model, llm, seq, new)

        ort_llm()  # warm-up
        for r in range(a.rounds):
            for eng, fn in (("ort", ort_llm), ("torch", torch_llm)):
                pre, dec = fn()
                record("llm prefill (117 rows)", eng, pre)
                record(f"llm decode ({NEW_TOKENS} tokens)", eng, dec)
            print(f"llm round {r}: " + ", ".join(f"{e} {v[-1]:.1f} s" for e, v in times[f"llm decode ({NEW_TOKENS} tokens)"].items()), flush=True)
        del model, llm

    # ---------------- flow: 75 prompt + 250 new tokens -> 500 new mel frames
    n_frames = 2 * (PROMPT_TOKENS + NEW_TOKENS)
    pm = rng.standard_normal((1, 2 * PROMPT_TOKENS, 80)).astype(np.float32)
    xv = rng.standard_normal((1, 192)).astype(np.float32)
    pt, tk = prompt[None].astype(np.int32), new[None].astype(np.int32)
    if "flow" in stages or ("hift" in stages and "flow" in bundle.manifest["components"]):
        mel = rflow.token2mel(bundle, pt, tk, pm, xv)  # (also the warm-up)
    elif "hift" in stages:  # a vocoder-only bundle: a smooth random mel of the same length
        from exporter.hift.export import example_mel

        mel = example_mel(2 * NEW_TOKENS, seed=1)
        notes.append("HiFT input: a smooth random log-mel (the bundle has no flow)")
    if "flow" in stages:
        bucket = rflow.pick_bucket([int(n) for n in bundle.component("flow")["mel_lens"]], n_frames)
        flow = load_flows(md, (n_frames,), flow_class=DiTFlow)[n_frames]
        stage = f"flow token2mel ({n_frames} frames, bucket {bucket})"
        engines = {"ort": lambda: rflow.token2mel(bundle, pt, tk, pm, xv),
                   "torch": lambda: token2mel_torch(flow, pt, tk, pm, xv).numpy()}
        outs = {}
        for r in range(a.rounds):
            for eng, fn in engines.items():
                s, outs[eng] = timed(fn)
                record(stage, eng, s)
            print(f"flow round {r}: " + ", ".join(f"{e} {times[stage][e][-1]:.1f} s" for e in engines), flush=True)
        notes.append(f"flow mel max-abs ORT vs our PyTorch {float(np.abs(outs['ort'] - outs['torch']).max()):.2e}")
        del flow, engines

    # ---------------- causal HiFT: the 500 new frames, chunked over the T-frame graph
    if "hift" in stages:
        voc = CausalVocoder(bundle)
        hift = build_causal_hift(md.config.hift, md.load_checkpoint("hift"))
        M = mel.shape[2]
        table = np.random.default_rng(1).random((1, 480 * M, voc.H)).astype(np.float32)

        def ort_hift():
            return voc.vocode(mel, voc.start(None, table[0]), final=True)  # the same table for both engines

        ort_hift()  # warm-up

        def torch_hift():
            with torch.inference_mode():
                return hift(torch.from_numpy(mel), torch.from_numpy(table), True)[0].numpy()

        engines = {"ort": ort_hift, "torch": torch_hift}
        graphs = [voc.graph_for(n)[1] for _, n, _ in causal_chunk_plan(0, M, voc.T, voc.context, voc.lookahead, True)]
        calls = len(graphs)
        stage = f"causal hift ({M} frames, {calls} calls: {' + '.join(graphs)})"
        outs = {}
        for r in range(a.rounds):
            for eng, fn in engines.items():
                s, outs[eng] = timed(fn)
                record(stage, eng, s)
        d = np.abs(outs["ort"] - outs["torch"])
        rms = float(np.sqrt(np.mean(outs["torch"].astype(np.float64) ** 2)))
        notes.append(f"HiFT waveform ORT ({calls} chunked calls) vs our PyTorch (one exact {M}-frame pass): max-abs "
                     f"{float(d.max()):.2e} ({float(d.max()) / rms:.2e} of the RMS; the float32 f0 rounding integrated by the phase)")

        # streaming: the mel as the official schedule delivers it (hop 25 tokens doubling to 100, +3
        # lookahead tokens, 2 mel frames per token), finalize=False until the last step. ORT vocodes
        # only what is new (+ context); the official code re-vocodes the whole mel at every step
        # (our PyTorch module driven that way stands in for it)
        steps, tok, hop_t = [], 0, 25
        while 2 * (tok + hop_t + 3) < M:
            steps.append(2 * (tok + hop_t + 3))
            tok, hop_t = tok + hop_t, min(100, 2 * hop_t)
        steps.append(M)
        first = {}

        def ort_stream():
            state = voc.start(None, table[0])
            out = []
            for i, m in enumerate(steps):
                t0 = time.perf_counter()
                out.append(voc.vocode(mel[:, :, :m], state, final=i == len(steps) - 1))
                first.setdefault("ort", time.perf_counter() - t0)
            return np.concatenate(out)

        def torch_stream():
            out, done = [], 0
            with torch.inference_mode():
                for i, m in enumerate(steps):
                    t0 = time.perf_counter()
                    w = hift(torch.from_numpy(mel[:, :, :m]), torch.from_numpy(table[:, :480 * m]), i == len(steps) - 1)[0].numpy()
                    first.setdefault("torch", time.perf_counter() - t0)
                    out.append(w[done:])
                    done = w.size
            return np.concatenate(out)

        stage = f"causal hift streaming (mel steps {'/'.join(map(str, steps))})"
        for r in range(a.rounds):
            for eng, fn in {"ort": ort_stream, "torch": torch_stream}.items():
                s, outs[eng] = timed(fn)
                record(stage, eng, s)
        notes.append(f"HiFT streaming, the first step ({steps[0]} mel frames): ORT {first['ort']:.2f} s (chunked), "
                     f"our PyTorch re-vocoding the whole mel as the official code does {first['torch']:.2f} s; "
                     f"streamed vs whole: max-abs {float(np.abs(outs['ort'] - outs['torch']).max()):.2e}")
        del hift, engines

    # ---------------- report
    lines = [
        "# CosyVoice3 benchmark (bench/cosyvoice3.py)",
        "",
        f"Machine: {machine}. Load average {load_start} at start, {loadavg()} at end.",
        f"Threads: {a.threads} torch / {a.threads} onnxruntime. Model dir (full-size Fun-CosyVoice3 dims, random weights): "
        f"{a.model_dir}. Workload: 3 s prompt ({PROMPT_TOKENS} tokens, 117 LLM rows), {NEW_TOKENS} tokens = "
        f"{NEW_TOKENS / 25:.0f} s of audio. Rounds: {a.rounds}, engines interleaved; minimum over rounds.",
        "",
        "Command:",
        "",
        f"    /work/notes/bin/quiet python bench/cosyvoice3.py --model-dir {a.model_dir} --bundle {a.bundle} "
        f"--rounds {a.rounds} --threads {a.threads}",
        "",
        "| stage | onnxruntime (s) | our PyTorch (s) | ORT / our PyTorch |",
        "|---|---|---|---|",
    ]
    tot = {"ort": 0.0, "torch": 0.0}
    for stage, d in times.items():
        o, t = min(d["ort"]), min(d["torch"])
        tot["ort"] += o
        tot["torch"] += t
        lines.append(f"| {stage} | {o:.2f} | {t:.2f} | {o / t:.2f} |")
    if times:
        lines.append(f"| **total** | **{tot['ort']:.2f}** | **{tot['torch']:.2f}** | {tot['ort'] / tot['torch']:.2f} |")
        lines.append("")
        lines.append("- all rounds (s): " + "; ".join(f"{s}: " + ", ".join(f"{e} " + "/".join(f"{x:.2f}" for x in v) for e, v in d.items())
                                                   for s, d in times.items()))
        lines.append(f"- RTF (onnxruntime, LLM + flow + HiFT): {tot['ort'] / (NEW_TOKENS / 25):.2f}")
    lines += [f"- {n}" for n in notes]
    if "sizes" in stages:
        lines.append(f"- bundle size: float32 {bundle_bytes(Path(a.bundle)) / 1e9:.2f} GB, float16 weights "
                     f"{fp16_bytes(Path(a.bundle)) / 1e9:.2f} GB ({a.bundle}: "
                     + ", ".join(sorted(bundle.manifest["graphs"])) + ")")
    lines.append(f"- peak RSS of this process: {peak_rss_gb():.2f} GB")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
