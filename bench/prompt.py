"""Benchmark: baking a 10 s prompt with the FULL-size speech tokenizer (123.7 M params) and CAM++
(random weights) on this CPU. ORT (exported bundle graphs) vs the PyTorch modules, interleaved,
2 threads each. Run alone:  flock /tmp/sentis_bench.lock python bench/prompt.py

Writes the official-structure full-size ONNX files to --work (default /tmp/sentis_prompt_bench),
maps them into the ports, exports the bundle graphs through the normal driver, then times.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch


def timed(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/sentis_prompt_bench"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    from exporter.campplus.fixture import write_official_onnx as write_cam
    from exporter.campplus.onnx_weights import load_campplus
    from exporter.export import export_graph
    from exporter.speech_tokenizer.fixture import write_official_onnx as write_tok
    from exporter.speech_tokenizer.export import test_signal
    from exporter.spec import ExportOptions
    from runtime_ref import audio as A

    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    if not (w / "speech_tokenizer_v2.onnx").exists():
        write_tok(w / "speech_tokenizer_v2.onnx", "full", 0)
    if not (w / "campplus.onnx").exists():
        write_cam(w / "campplus.onnx", "full", 0)

    class MD:  # the two files a ModelDir would provide
        speech_tokenizer_onnx = w / "speech_tokenizer_v2.onnx"
        campplus_onnx = w / "campplus.onnx"

    from exporter.campplus.export import make_spec as cam_spec
    from exporter.speech_tokenizer.export import make_spec as tok_spec

    opts = ExportOptions(parity=False)
    out = w / "bundle"
    out.mkdir(exist_ok=True)
    specs = {"speech_tokenizer": tok_spec(MD, opts), "campplus": cam_spec(MD, opts)}
    t_export = {}
    for name, spec in specs.items():
        t0 = time.perf_counter()
        export_graph(spec, out, opts)
        t_export[name] = time.perf_counter() - t0
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 2, 1
    sess = {n: ort.InferenceSession(str(out / f"{n}.onnx"), so, providers=["CPUExecutionProvider"]) for n in specs}

    n = int(args.seconds * 16000)
    x = test_signal(n, 0)
    tok_in = specs["speech_tokenizer"].make_inputs(0)
    tok_in["waveform"][:] = 0
    tok_in["waveform"][0, :n] = x
    tok_in["waveform_length"][:] = n
    fb = A.kaldi_fbank(x)
    cam_in = {"fbank": np.zeros((1, 2998, 80), np.float32), "n_frames": np.array([fb.shape[0]], np.int32)}
    cam_in["fbank"][0, : fb.shape[0]] = fb
    tok_mod, cam_mod = specs["speech_tokenizer"].module, specs["campplus"].module
    official_cam = load_campplus(MD.campplus_onnx)

    def run_torch_tok():
        with torch.inference_mode():
            return tok_mod(*(torch.from_numpy(tok_in[k]) for k in ("waveform", "waveform_length")))

    def run_torch_tok_exact():  # the port on exactly 10 s (no 30 s buffer), for reference
        with torch.inference_mode():
            feats, fr = tok_mod.front(torch.from_numpy(tok_in["waveform"]), torch.from_numpy(tok_in["waveform_length"]))
            return tok_mod.tokenizer(feats[:, :, : int(fr[0])], fr)

    def run_torch_cam():
        with torch.inference_mode():
            return cam_mod(torch.from_numpy(cam_in["fbank"]), torch.from_numpy(cam_in["n_frames"]))

    def run_torch_cam_exact():
        with torch.inference_mode():
            return official_cam(torch.from_numpy(fb[None]))

    rows = {k: [] for k in ("tok_ort", "tok_torch", "tok_torch_exact", "cam_ort", "cam_torch", "cam_torch_exact", "host", "bake_ort")}
    wav44 = A.resample(x, 16000, 44100)
    for _ in range(args.reps + 1):  # first round = warm-up, dropped
        rows["tok_ort"] += timed(lambda: sess["speech_tokenizer"].run(None, tok_in), 1)
        rows["tok_torch"] += timed(run_torch_tok, 1)
        rows["tok_torch_exact"] += timed(run_torch_tok_exact, 1)
        rows["cam_ort"] += timed(lambda: sess["campplus"].run(None, cam_in), 1)
        rows["cam_torch"] += timed(run_torch_cam, 1)
        rows["cam_torch_exact"] += timed(run_torch_cam_exact, 1)

        def host():
            w16 = A.resample(wav44, 44100, 16000)
            A.kaldi_fbank(w16)
            A.flow_mel(A.resample(wav44, 44100, 24000))
        rows["host"] += timed(host, 1)
        rows["bake_ort"].append(rows["host"][-1] + rows["tok_ort"][-1] + rows["cam_ort"][-1])
    med = {k: float(np.median(v[1:])) for k, v in rows.items()}
    res = {"seconds_of_audio": args.seconds, "threads": 2, "reps": args.reps, "median_s": med,
           "ratio_tok_ort_over_torch": med["tok_ort"] / med["tok_torch"],
           "ratio_cam_ort_over_torch": med["cam_ort"] / med["cam_torch"],
           "ratio_bake_ort_over_torch": med["bake_ort"] / (med["host"] + med["tok_torch"] + med["cam_torch"]),
           "export_s": t_export, "tokenizer_params": sum(p.numel() for p in tok_mod.parameters()),
           "campplus_params": sum(p.numel() for p in cam_mod.parameters())}
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
