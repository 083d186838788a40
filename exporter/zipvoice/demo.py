"""`sentis-tts demo --family zipvoice`: the ZipVoice job end to end on a tiny seeded model dir in
the published layout: export every component (checker + parity per graph), bake a voice from a
synthetic prompt with numpy only, synthesize with runtime_ref (onnxruntime) and with the PyTorch
reference, write report.md (graph table, end-to-end figures) and demo.wav. Random weights: the
audio is noise-like, the plumbing and the parity are what the demo shows."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

DEMO_TEXT = "hello from sentis-tts!"
PROMPT_TEXT = "this is a test voice."
DEMO_FRAME_LENS = (256,)
DEMO_TOKEN_LENS = (64,)


def run_demo(out: Path, *, seed: int = 0, threads: int = 2, log: Callable[[str], None] = print) -> dict:
    import torch

    from runtime_ref.audio import write_wav
    from runtime_ref.bundle import Bundle
    from runtime_ref.prompt import add_voice_to_bundle
    from runtime_ref.zipvoice.pipeline import ZipVoicePipeline
    from runtime_ref.zipvoice.voice import bake_voice, voice_entry

    from ..demo import synthetic_prompt
    from ..export import export_components
    from ..families import get_family
    from ..reference_pipeline import snr_db
    from ..spec import ExportOptions
    from .fixture import build_model_dir
    from .modeldir import ZipVoiceModelDir
    from .reference import TorchZipVoicePipeline

    t_all = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    md = ZipVoiceModelDir.open(build_model_dir(out / "model", size="tiny", seed=seed))
    log(f"[1/5] tiny ZipVoice model dir (seed {seed}): {md.root}")
    comps = get_family("zipvoice").available_components()
    log(f"[2/5] exporting {', '.join(comps)}")

    class GraphLog:
        def component_start(self, comp, graphs): pass
        def stage(self, comp, graph, stage): pass
        def component_done(self, comp): pass
        def graph_done(self, comp, name, res): log(f"      {comp:13s} {name:20s} {res.seconds:5.1f} s")

    t0 = time.perf_counter()
    opts = ExportOptions(seed=seed, threads=threads, flow_lens=DEMO_FRAME_LENS, extra={"token_lens": DEMO_TOKEN_LENS})
    manifest = export_components(md, out / "bundle", comps, opts, mode="create", overwrite=True, progress=GraphLog())
    t_export = time.perf_counter() - t0

    log("[3/5] baking voice 'demo' from a synthetic 1.2 s prompt (numpy only)")
    bundle = Bundle.open(out / "bundle", threads=threads)
    prompt = synthetic_prompt(seconds=1.2, seed=seed)
    write_wav(out / "prompt.wav", prompt, 24000)
    voice = bake_voice(bundle, prompt, 24000, text=PROMPT_TEXT)
    add_voice_to_bundle(out / "bundle", "demo", voice, source="synthetic prompt (demo)", overwrite=True, extra=voice_entry(voice))
    bundle = Bundle.open(out / "bundle", threads=threads)

    log("[4/5] synthesizing with runtime_ref (onnxruntime + numpy) and with the PyTorch reference")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ours = ZipVoicePipeline(bundle).synthesize(DEMO_TEXT, "demo", seed=seed)
    t_ours = time.perf_counter() - t0
    theirs = TorchZipVoicePipeline(bundle, md).synthesize(DEMO_TEXT, "demo", seed=seed)
    write_wav(out / "demo.wav", ours.audio, ours.sample_rate)
    e2e = {"mel_max_abs": float(np.abs(ours.features - theirs.features).max()), "wave_snr_db": snr_db(theirs.audio, ours.audio),
           "frames": ours.n_frames, "n_ids": len(ours.ids), "seconds_audio": ours.audio.size / ours.sample_rate,
           "seconds_runtime": t_ours}
    e2e["ok"] = e2e["mel_max_abs"] <= 1e-3 and e2e["wave_snr_db"] >= 40
    log(f"      features max-abs {e2e['mel_max_abs']:.2e}; waveform SNR {e2e['wave_snr_db']:.1f} dB "
        f"({e2e['seconds_audio']:.2f} s of audio, {ours.n_frames} frames)")

    log("[5/5] writing report.md")
    lines = ["# sentis-tts demo report (ZipVoice)", "",
             "Tiny seeded ZipVoice model dir (random weights, published layout) → bundle → runtime_ref.",
             f"Export took {t_export:.1f} s; the whole demo {time.perf_counter() - t_all:.1f} s.", "",
             "| graph | size | nodes | checker | parity max-abs |", "|---|---|---|---|---|"]
    for name, g in manifest["graphs"].items():
        mx = max(g["parity"].get("max_abs", {}).values(), default=None)
        lines.append(f"| {name} | {g['bytes'] / 1e6:.2f} MB | {g['checker']['nodes']} | "
                     f"{'ok' if g['checker']['ok'] else 'FAIL'} (Sentis {g['checker']['sentis_version']}) | "
                     f"{'-' if mx is None else f'{mx:.2e}'} |")
    lines += ["", "| end to end (runtime_ref vs PyTorch, same seed) | value | target |", "|---|---|---|",
              f"| generated features max-abs | {e2e['mel_max_abs']:.2e} | ≤ 1e-3 |",
              f"| waveform SNR | {e2e['wave_snr_db']:.1f} dB | ≥ 40 dB |",
              f"| audio / runtime_ref time | {e2e['seconds_audio']:.2f} s / {e2e['seconds_runtime']:.2f} s | |", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return e2e
