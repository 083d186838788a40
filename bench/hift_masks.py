"""Cost of the HiFT exact-length masks (n_frames input): the same model exported twice at T frames
through the same export path (graph passes, no parity), once as shipped (masks built from
n_frames at every resolution) and once with the masks left out (the module called without
n_frames, i.e. a full-length-only graph). Reports node counts by op and ORT time per call,
interleaved (best of `--rounds`), same threads.

    flock /tmp/sentis_heavy.lock python bench/hift_masks.py --model-dir /tmp/full_model [--frames 128]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from torch import nn

from exporter.export import export_graph
from exporter.hift.export import build
from exporter.modeldir import ModelDir
from exporter.spec import ExportOptions


class WithoutMasks(nn.Module):
    """The shipped module with n_frames ignored (full-length semantics only, no masks in the graph)."""

    def __init__(self, hift):
        super().__init__()
        self.hift = hift

    def forward(self, mel, noise, phase_in, phase_ref, cache_source, cache_weight, n_frames):
        w, s, p = self.hift(mel, noise, phase_in, phase_ref, cache_source, cache_weight)
        return w, s, p + 0 * n_frames.to(p.dtype).reshape(1, 1, 1)  # keeps the input declared


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--frames", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    md = ModelDir.open(a.model_dir)
    opts = ExportOptions(hift_frames=a.frames, parity=False, threads=a.threads)
    spec = build(md, opts).graphs[0]
    feeds = spec.make_inputs(0)  # full length n = T (both graphs compute the same there)
    sessions, counts = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, module in (("masks", spec.module), ("no masks", WithoutMasks(spec.module))):
            spec.module = module
            d = Path(tmp) / name.replace(" ", "_")
            d.mkdir()
            export_graph(spec, d, opts)
            path = d / spec.file
            counts[name] = Counter(n.op_type for n in onnx.load(str(path)).graph.node)
            so = ort.SessionOptions()
            so.intra_op_num_threads = a.threads
            so.inter_op_num_threads = 1
            sessions[name] = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        outs = {k: s.run(None, feeds) for k, s in sessions.items()}  # warm-up
        times = {k: [] for k in sessions}
        for _ in range(a.rounds):
            for k, s in sessions.items():
                t0 = time.perf_counter()
                s.run(None, feeds)
                times[k].append(time.perf_counter() - t0)
    diff = float(np.abs(outs["masks"][0] - outs["no masks"][0]).max())
    print(f"T={a.frames}, threads {a.threads}, n_frames = T, best of {a.rounds} interleaved rounds")
    for k in sessions:
        print(f"  {k:9s}: {sum(counts[k].values()):5d} nodes, {min(times[k]) * 1e3:8.1f} ms/call "
              f"(median {np.median(times[k]) * 1e3:.1f})")
    extra = counts["masks"] - counts["no masks"]
    print("  extra nodes with masks: " + ", ".join(f"{op} {n}" for op, n in sorted(extra.items())))
    print(f"  mask cost: {(min(times['masks']) / min(times['no masks']) - 1) * 100:+.1f} % per call; "
          f"waveform max-abs between the two at n = T: {diff:.2g}")


if __name__ == "__main__":
    main()
