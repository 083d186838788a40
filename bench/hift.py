"""HiFT benchmark (full-size dims): vocode 500 mel frames (10 s) with our PyTorch module (one
whole call) and with onnxruntime (runtime_ref chunked, static graph), interleaved, same threads.

    flock /tmp/sentis_bench.lock python bench/hift.py --model-dir /tmp/sentis_full_model --bundle /tmp/b_hift_full
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from exporter.hift.export import example_mel
from exporter.hift.model import build_hift
from exporter.modeldir import ModelDir
from runtime_ref.bundle import Bundle
from runtime_ref.hift import HiFTVocoder


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--frames", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    md = ModelDir.open(a.model_dir)
    model = build_hift(md.config.hift, md.load_checkpoint("hift"))
    voc = HiFTVocoder.from_bundle(Bundle.open(a.bundle, threads=a.threads))
    N = a.frames
    mel = example_mel(N, 0)
    noise = np.random.default_rng(0).standard_normal((1, 480 * N, 9)).astype(np.float32)
    voc.mel2wav(mel[:, :, : voc.T], noise[:, : 480 * voc.T])  # session warm-up
    t_pt, t_ort = [], []
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        with torch.inference_mode():
            ref = model.vocode(torch.from_numpy(mel), torch.from_numpy(noise))[0].numpy()
        t_pt.append(time.perf_counter() - t0)
        voc.calls = 0
        t0 = time.perf_counter()
        got, _ = voc.mel2wav(mel, noise)
        t_ort.append(time.perf_counter() - t0)
    d = got - ref
    snr = 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum(d.astype(np.float64) ** 2))
    audio_s = 480 * N / 24000
    pt, ort = min(t_pt), min(t_ort)
    print(f"frames {N} ({audio_s:.1f} s audio), threads {a.threads}, graph T={voc.T}, context {voc.context}, calls {voc.calls}")
    print(f"pytorch whole call: {pt:.3f} s (RTF {pt / audio_s:.3f})  rounds {['%.3f' % t for t in t_pt]}")
    print(f"ORT chunked:        {ort:.3f} s (RTF {ort / audio_s:.3f})  rounds {['%.3f' % t for t in t_ort]}")
    print(f"ratio ORT/PyTorch:  {ort / pt:.3f}")
    print(f"ORT chunked vs PyTorch whole: max-abs {np.abs(d).max():.3g}, SNR {snr:.1f} dB")


if __name__ == "__main__":
    main()
