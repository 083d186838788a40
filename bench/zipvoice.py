"""ZipVoice / ZipVoice-Distill benchmark at the published dims (random weights): one utterance
through runtime_ref on the bundle (onnxruntime), through the PyTorch twin (our modules at the
exact length) and, with --official, through the official k2-fsa ZipVoice.sample + Vocos on the
same weights, interleaved, same threads; RTF = seconds / seconds of generated audio, per stage.

    heavy python bench/zipvoice.py --work /tmp/zv_bench --variant zipvoice_distill --prepare-only   # fixture + export
    quiet python bench/zipvoice.py --work /tmp/zv_bench --variant zipvoice_distill --official       # the timing
(the export builds the full-size fixture and text_encoder/fm_decoder/vocos/text at one frame bucket)
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--variant", default="zipvoice_distill", choices=["zipvoice", "zipvoice_distill"])
    ap.add_argument("--frames", type=int, default=512, help="frame bucket (prompt + speech), 93.75 frames per s")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--size", default="full", choices=["full", "tiny"], help="tiny: smoke run of this script")
    ap.add_argument("--num-step", type=int, default=None, help="export a shorter solve (smoke runs)")
    ap.add_argument("--official", action="store_true", help="also time the official k2-fsa ZipVoice.sample + official Vocos "
                    "(scratch copies at /tmp/zipvoice_official, /tmp/vocos_official) on the same weights, interleaved")
    ap.add_argument("--prepare-only", action="store_true", help="build the fixture and export the bundle, then stop "
                    "(run this under `heavy`, the timing run under `quiet`)")
    a = ap.parse_args()
    from exporter.demo import synthetic_prompt
    from exporter.export import export_components
    from exporter.families import get_family
    from exporter.spec import ExportOptions
    from exporter.zipvoice.fixture import build_model_dir
    from exporter.zipvoice.modeldir import ZipVoiceModelDir
    from exporter.zipvoice.reference import TorchZipVoicePipeline
    from exporter.reference_pipeline import snr_db
    from runtime_ref.bundle import Bundle
    from runtime_ref.zipvoice.pipeline import ZipVoicePipeline
    from runtime_ref.zipvoice.voice import bake_voice

    torch.set_num_threads(a.threads)
    md_path, bundle_path = a.work / f"model_{a.size}_{a.variant}", a.work / f"bundle_{a.size}_{a.variant}_{a.frames}"
    if not md_path.exists():
        build_model_dir(md_path, size=a.size, seed=0, variant=a.variant)
    md = ZipVoiceModelDir.open(md_path)
    if not bundle_path.exists():
        t0 = time.perf_counter()
        export_components(md, bundle_path, get_family("zipvoice").available_components(),
                          ExportOptions(threads=a.threads, flow_lens=(a.frames,),
                                                    extra={"token_lens": (256,), "num_step": a.num_step}), mode="create")
        print(f"export: {time.perf_counter() - t0:.0f} s")
    if a.prepare_only:
        return
    import platform
    import sys

    import onnxruntime

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), platform.processor())
    print(f"command: python {' '.join(sys.argv)}\nmachine: {cpu}, {os.cpu_count()} logical CPUs; torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}, threads {a.threads}", flush=True)
    bundle = Bundle.open(bundle_path, threads=a.threads)
    sizes = {n: f"{g['bytes'] / 1e6:.0f} MB" for n, g in bundle.manifest["graphs"].items()}
    voice = bake_voice(bundle, synthetic_prompt(seconds=2.0), 24000, text="this is the prompt of the benchmark voice.")
    # text sized so that prompt + speech fill the bucket: frames = F_p (1 + n_text / n_prompt)
    n_prompt = len(ZipVoicePipeline(bundle).text.ids(str(voice["prompt_text"])))
    Fp = voice["prompt_features"].shape[0]
    n_text = int((a.frames - Fp - 1) / Fp * n_prompt)
    text = ("the quick brown fox jumps over the lazy dog " * 10)[: max(1, n_text - 1)]
    ours, ref = ZipVoicePipeline(bundle), TorchZipVoicePipeline(bundle, md)

    def timed(pipe):
        stages = {}
        for name in ("encode_text", "solve", "vocode"):
            f = getattr(pipe, name)

            def wrap(*x, _f=f, _n=name, **k):
                t0 = time.perf_counter()
                r = _f(*x, **k)
                stages[_n] = stages.get(_n, 0.0) + time.perf_counter() - t0
                return r
            setattr(pipe, name, wrap)
        t0 = time.perf_counter()
        res = pipe.synthesize(text, voice, seed=0)
        for name in ("encode_text", "solve", "vocode"):
            delattr(pipe, name)
        return res, time.perf_counter() - t0, stages

    official = official_runner(md, ours, voice, text) if a.official else None
    for name in bundle.manifest["graphs"]:  # warm-up: session creation (loading the graphs) outside the timing
        bundle.session(name)
    runs = {"ort": [], "torch": [], "official": []}
    for _ in range(a.rounds):
        runs["ort"].append(timed(ours))
        runs["torch"].append(timed(ref))
        if official:
            runs["official"].append(official())
    o = min(runs["ort"], key=lambda r: r[1])
    t = min(runs["torch"], key=lambda r: r[1])
    secs = o[0].audio.size / 24000
    print(f"{a.variant}: {bundle.component('fm_decoder')['num_step']} steps, guidance {md.config.guidance_scale}; bucket {a.frames} frames, "
          f"utterance {o[0].n_frames} frames ({secs:.2f} s of new audio), threads {a.threads}; graphs {sizes}")
    for name, (res, total, st) in (("onnxruntime (bundle)", o), ("PyTorch (ours)", t)):
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in st.items())
        print(f"  {name:22s} {total:6.2f} s  RTF {total / secs:.2f}  ({parts})")
    print(f"  ratio ORT/PyTorch {o[1] / t[1]:.2f}; features max-abs {np.abs(o[0].features - t[0].features).max():.2e}; "
          f"waveform SNR {snr_db(t[0].audio, o[0].audio):.1f} dB")
    if official:
        (feats, wav, noise), total = min(runs["official"], key=lambda r: r[1])
        same = ours.synthesize(text, voice, noise=noise)  # the official's own noise through the bundle (untimed)
        print(f"  {'official PyTorch':22s} {total:6.2f} s  RTF {total / (wav.size / 24000):.2f}  (ZipVoice.sample + Vocos decode); "
              f"ratio ORT/official {o[1] / total:.2f}; bundle vs official on its noise: features max-abs "
              f"{np.abs(same.features - feats).max():.2e}, waveform SNR {snr_db(wav, same.audio):.1f} dB")


def official_runner(md, pipe, voice, text):
    """A timed official run (k2-fsa ZipVoice.sample, duration "predict", + official Vocos) on the model dir's weights."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.zv import official as zo

    off = zo.official_model(zo.import_zipvoice(), md)
    bb, hd = zo.official_vocos(zo.import_vocos(), md)
    c, k = md.config, pipe.bundle.constants
    prompt_ids, ids = pipe.prompt_ids(voice), pipe.text.ids(text)
    pf = torch.from_numpy(np.asarray(voice["prompt_features"], np.float32))[None] * c.feat_scale
    rms = float(voice["prompt_rms"])

    def run():
        t0 = time.perf_counter()
        torch.manual_seed(0)
        with torch.inference_mode():
            feats, lens, _, _ = off.sample(tokens=[ids], prompt_tokens=[prompt_ids], prompt_features=pf,
                                           prompt_features_lens=torch.tensor([pf.shape[1]]), speed=1.0, t_shift=float(k["t_shift"]),
                                           duration="predict", num_step=int(pipe.num_step), guidance_scale=float(k["guidance_scale"]))
            f = feats[0] / c.feat_scale
            wav = hd(bb(f.T[None])).clamp(-1, 1)[0]
            if rms < c.target_rms:
                wav = wav * rms / c.target_rms
        total = time.perf_counter() - t0
        torch.manual_seed(0)
        noise = torch.randn(1, pf.shape[1] + int(lens[0]), c.model.feat_dim)[0].numpy()  # the draw inside sample()
        return (f.numpy(), wav.numpy(), noise), total

    return run


if __name__ == "__main__":
    main()
