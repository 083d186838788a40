"""`sentis-tts demo`: the main job end to end on the built-in tiny model.

1. build a seeded tiny model directory in the official layout;
2. export every component (trace → passes → Sentis checker → parity vs PyTorch);
3. bake a voice from a synthetic prompt WAV with onnxruntime only;
4. synthesize a sentence with runtime_ref (onnxruntime + numpy) and with the PyTorch reference
   (same orchestration, PyTorch stages), non-streaming and streaming;
5. write report.md with the parity table and PNG plots (mel of PyTorch vs bundle, difference,
   waveform).

The tiny model has random weights: the WAV is noise-like babble, not speech. What the demo
proves is the plumbing and the parity, on exactly the code path a real model takes.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

DEMO_TEXT = "Hello from sentis-tts. This sentence was spoken by a tiny random model."
DEMO_FLOW_LENS = (512,)


def synthetic_prompt(seconds: float = 3.2, sr: int = 24000, seed: int = 0) -> np.ndarray:
    """A voiced, vowel-like test signal (glottal-ish harmonics with vibrato and syllable envelope)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum((0.5 / h) * np.sin(h * phase) for h in range(1, 12))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.25 * x * env + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def run_demo(out: Path, *, seed: int = 0, threads: int = 2, log: Callable[[str], None] = print,
             max_new_tokens: int | None = 150) -> dict:
    from runtime_ref.audio import write_wav
    from runtime_ref.bundle import Bundle
    from runtime_ref.pipeline import Pipeline
    from runtime_ref.prompt import add_voice_to_bundle, bake_voice

    from .export import export_components
    from .families import get_family
    from .fixtures import build_model_dir
    from .modeldir import ModelDir
    from .reference_pipeline import TorchPipeline, snr_db
    from .spec import ExportOptions

    t_all = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    md_path = build_model_dir(out / "model", size="tiny", seed=seed)
    log(f"[1/5] tiny model dir (seed {seed}): {md_path}")
    md = ModelDir.open(md_path)

    comps = get_family("cosyvoice2").available_components()
    log(f"[2/5] exporting {', '.join(comps)}")
    t0 = time.perf_counter()

    class GraphLog:
        """Export progress as one line per exported graph (the CLI's ConsoleProgress shows stages)."""

        def component_start(self, comp, graphs):
            pass

        def stage(self, comp, graph, stage):
            pass

        def component_done(self, comp):
            pass

        def graph_done(self, comp, name, res):
            log(f"      {comp:17s} {name:24s} {res.seconds:5.1f} s")

    manifest = export_components(md, out / "bundle", comps, ExportOptions(seed=seed, threads=threads, flow_lens=DEMO_FLOW_LENS),
                                 mode="create", overwrite=True, progress=GraphLog())
    t_export = time.perf_counter() - t0

    log("[3/5] baking voice 'demo' from a synthetic 3.2 s prompt (onnxruntime only)")
    bundle = Bundle.open(out / "bundle", threads=threads)
    prompt = synthetic_prompt(seed=seed)
    write_wav(out / "prompt.wav", prompt, 24000)
    voice = bake_voice(bundle, prompt, 24000, text="Hello, this is a test voice.")
    add_voice_to_bundle(out / "bundle", "demo", voice, source="synthetic prompt (demo)", overwrite=True)
    bundle = Bundle.open(out / "bundle", threads=threads)

    log("[4/5] synthesizing with runtime_ref (onnxruntime + numpy) and with the PyTorch reference")
    import torch

    # onnxruntime's spinning threads and torch's OpenMP threads in one process fight over 2 cores
    # (the PyTorch reference ran ~15x slower); one torch thread avoids it
    torch.set_num_threads(1)
    pipe = Pipeline(bundle)
    ref = TorchPipeline(bundle, md)
    t0 = time.perf_counter()
    ours = pipe.synthesize(DEMO_TEXT, "demo", seed=seed, max_new_tokens=max_new_tokens)
    t_ours = time.perf_counter() - t0
    theirs = ref.synthesize(DEMO_TEXT, "demo", seed=seed, max_new_tokens=max_new_tokens)
    stream_chunks = list(pipe.stream(DEMO_TEXT, "demo", seed=seed, max_new_tokens=max_new_tokens))
    stream = np.concatenate(stream_chunks) if stream_chunks else np.zeros(0, np.float32)
    ref_stream = np.concatenate(list(ref.stream(DEMO_TEXT, "demo", seed=seed, max_new_tokens=max_new_tokens)))
    write_wav(out / "demo.wav", ours.audio, pipe.sample_rate)
    write_wav(out / "demo_stream.wav", stream, pipe.sample_rate)

    same_tokens = ours.tokens == theirs.tokens
    mel_err = max((float(np.abs(a - b).max()) for a, b in zip(ours.mels, theirs.mels)), default=0.0)
    e2e = {
        "tokens_identical": same_tokens,
        "n_tokens": [len(t) for t in ours.tokens],
        "mel_max_abs": mel_err,
        "wave_snr_db": snr_db(theirs.audio, ours.audio),
        "stream_snr_db": snr_db(ref_stream, stream),
        "stream_chunks": len(stream_chunks),
        "seconds_audio": ours.audio.size / pipe.sample_rate,
        "seconds_runtime": t_ours,
    }
    log(f"      tokens identical: {same_tokens}; mel max-abs {mel_err:.2e}; waveform SNR {e2e['wave_snr_db']:.1f} dB; "
        f"streaming SNR {e2e['stream_snr_db']:.1f} dB ({len(stream_chunks)} chunks)")

    log("[5/5] writing report.md and plots")
    write_report(out, manifest, ours, theirs, e2e, t_export=t_export, t_total=time.perf_counter() - t_all)
    ok = same_tokens and mel_err <= 1e-3 and e2e["wave_snr_db"] >= 40 and e2e["stream_snr_db"] >= 40
    e2e["ok"] = ok
    return e2e


def write_report(out: Path, manifest: dict, ours, theirs, e2e: dict, *, t_export: float, t_total: float) -> None:
    from .png import heatmap, waveform

    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    if ours.mels:
        a, b = theirs.mels[0][0], ours.mels[0][0]
        lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
        heatmap(plots / "mel_pytorch.png", a, vmin=lo, vmax=hi)
        heatmap(plots / "mel_bundle.png", b, vmin=lo, vmax=hi)
        heatmap(plots / "mel_difference.png", np.abs(a - b))
    waveform(plots / "waveform.png", ours.audio)
    lines = [
        "# sentis-tts demo report",
        "",
        "Tiny seeded model (random weights) in the official CosyVoice2 layout → bundle → runtime_ref.",
        f"Export took {t_export:.1f} s; the whole demo {t_total:.1f} s.",
        "",
        "## Graphs (Sentis checker and parity vs PyTorch, measured at export)",
        "",
        "| graph | size | nodes | checker | parity max-abs | tolerance |",
        "|---|---|---|---|---|---|",
    ]
    for name, g in manifest["graphs"].items():
        p = g.get("parity", {})
        mx = max(p.get("max_abs", {}).values(), default=None)
        tol = max((p.get("atol", {}).get(k, 0) for k in p.get("max_abs", {})), default=None)  # of the max-abs outputs
        exact = p.get("exact")
        par = "exact" if exact and all(exact.values()) and mx is None else (f"{mx:.2e}" if mx is not None else "-")
        ck = g["checker"]
        lines.append(f"| {name} | {g['bytes'] / 1e6:.2f} MB | {ck['nodes']} | {'ok' if ck['ok'] else 'FAIL'} "
                     f"(Sentis {ck['sentis_version']}) | {par} | {tol if tol is not None else 'exact'} |")
    lines += [
        "",
        "## End to end: runtime_ref (onnxruntime) vs PyTorch reference, same seed",
        "",
        "| check | value | target |",
        "|---|---|---|",
        f"| speech tokens identical | {e2e['tokens_identical']} ({e2e['n_tokens']} tokens) | identical |",
        f"| mel max-abs | {e2e['mel_max_abs']:.2e} | ≤ 1e-3 |",
        f"| waveform SNR | {e2e['wave_snr_db']:.1f} dB | ≥ 40 dB |",
        f"| streaming waveform SNR | {e2e['stream_snr_db']:.1f} dB ({e2e['stream_chunks']} chunks) | ≥ 40 dB |",
        f"| audio / runtime_ref time | {e2e['seconds_audio']:.2f} s / {e2e['seconds_runtime']:.2f} s | |",
        "",
        "## Plots",
        "",
        "Mel of the first piece, PyTorch reference | bundle | absolute difference (own colour scale):",
        "",
        "![mel pytorch](plots/mel_pytorch.png) ![mel bundle](plots/mel_bundle.png) ![mel difference](plots/mel_difference.png)",
        "",
        "Waveform (runtime_ref):",
        "",
        "![waveform](plots/waveform.png)",
        "",
        "Files: `model/` (tiny model dir), `bundle/` (graphs + manifest.json + voices/demo.npz), `prompt.wav`, "
        "`demo.wav`, `demo_stream.wav`.",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
