"""Emulation of the Unity Editor's weight quantization (`ModelQuantizer.QuantizeWeights`) on our ONNX
graphs, and its measured effect.

What Sentis does (read in com.unity.ai.inference 2.2.0 and 2.4.0, Runtime/Core/Quantization/
QuantizeConstantsPass.cs and BurstJobsQuantizeTensor.cs; the same algorithm in both): every float
constant that is an input of a Conv, ConvTranspose, Gather, Dense, MatMul or MatMul2D layer (after
import: a MatMul/Gemm with a constant bias is one Dense layer, so the bias is quantized too) is
replaced by
- Float16: `half(clamp(w, -65504, 65504))`, subnormal floats flushed to 0, cast back to float at run
  time;
- Uint8: one scale/zero point per tensor, `scale = (max(0, max w) - min(0, min w)) / 255`,
  `zero = round(clamp(-min w / scale, 0, 255))`, `q = clamp(round(w / scale) + zero, 0, 255)`,
  dequantized as `(q - zero) * scale` (round = round half to even, like Mathf.Round/RoundToInt).
Other constants (norm weights, Mul/Add constants, masks) stay float32.

    python -m tests.unity.sentis_quantizer BUNDLE [--steps 256]   # prints the markdown table
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

QUANTIZED_OPS = {"Conv", "ConvTranspose", "Gather", "MatMul", "Gemm"}


def quantize_fp16(w: np.ndarray) -> np.ndarray:
    w = w.astype(np.float32)
    tiny = np.finfo(np.float32).tiny
    w = np.where(np.abs(w) < tiny, 0.0, w)  # float32 subnormals -> 0 (float.IsSubnormal)
    return np.clip(w, -65504.0, 65504.0).astype(np.float16).astype(np.float32)


def quantize_uint8(w: np.ndarray) -> np.ndarray:
    w = w.astype(np.float32)
    lo, hi = float(w.min()), float(w.max())
    scale = np.float32((max(0.0, hi) - min(0.0, lo)) / 255.0)
    if scale == 0:
        return w.copy()
    zero = float(np.round(np.clip(-lo / scale, 0, 255)))
    q = np.clip(np.round(w / scale) + zero, 0, 255)
    return ((q - zero) * scale).astype(np.float32)


def quantized_initializers(model: onnx.ModelProto) -> set[str]:
    """Float initializers Sentis quantizes: inputs of Conv/ConvTranspose/Gather(data)/MatMul/Gemm, and
    the constant bias of an Add that follows a MatMul (imported as one Dense layer)."""
    inits = {i.name: i for i in model.graph.initializer}
    floats = {n for n, i in inits.items() if i.data_type == onnx.TensorProto.FLOAT}
    names: set[str] = set()
    producer = {o: n for n in model.graph.node for o in n.output}
    for n in model.graph.node:
        if n.op_type in QUANTIZED_OPS:
            ins = n.input[:1] if n.op_type == "Gather" else n.input
            names |= {x for x in ins if x in floats}
        if n.op_type == "Add":
            src = [producer.get(x) for x in n.input]
            if any(p is not None and p.op_type == "MatMul" for p in src):
                names |= {x for x in n.input if x in floats and len(inits[x].dims) <= 1}
    return names


def initializers_of_module(model: onnx.ModelProto, module: str) -> set[str]:
    """Initializers read by nodes of one torch module (node names carry the module path, e.g.
    /f0_predictor/classifier/MatMul) — for diagnostics only: Sentis quantizes a whole model."""
    inits = {i.name for i in model.graph.initializer}
    return {x for n in model.graph.node if n.name.startswith(f"/{module}/") for x in n.input if x in inits}


def quantize_model(model: onnx.ModelProto, kind: str, keep: set[str] = frozenset()) -> tuple[onnx.ModelProto, int]:
    """`keep`: initializers left float32 (diagnostics; the Editor cannot do that within one model)."""
    fn = {"float16": quantize_fp16, "uint8": quantize_uint8}[kind]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    names = quantized_initializers(m) - set(keep)
    n = 0
    for i, init in enumerate(m.graph.initializer):
        if init.name in names:
            w = numpy_helper.to_array(init)
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(fn(w), init.name))
            n += int(w.size)
    return m, n


def quantized_bundle(src: Path, dst: Path, kind: str, graphs: set[str] | None = None, keep_module: str | None = None) -> dict[str, int]:
    """Copy of bundle `src` with the given graphs (default all) quantized like the Editor would (other
    files are symlinked). `keep_module`: that module's weights stay float32 (diagnostic)."""
    manifest = json.loads((src / "manifest.json").read_text(encoding="utf-8"))
    dst.mkdir(parents=True)
    for p in src.rglob("*"):
        if p.is_file():
            (dst / p.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (dst / p.relative_to(src)).symlink_to(p.resolve())
    counts = {}
    for name, g in manifest["graphs"].items():
        if graphs is not None and name not in graphs:
            continue
        p = dst / g["file"]
        p.unlink()
        model = onnx.load(str(src / g["file"]))
        m, n = quantize_model(model, kind, initializers_of_module(model, keep_module) if keep_module else frozenset())
        onnx.save(m, str(p), save_as_external_data=m.ByteSize() > 1_900_000_000)
        counts[name] = n
    return counts


def snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    ref, x = np.asarray(ref, np.float64).ravel(), np.asarray(x, np.float64).ravel()
    err = float(np.sum((ref - x) ** 2))
    return float("inf") if err == 0 else 10 * np.log10(float(np.sum(ref ** 2)) / err)


def _greedy_tokens(llm, text_ids, steps: int) -> tuple[list[int], list[np.ndarray]]:
    seq = llm.lm_input(text_ids)
    logp, cache, pos = llm.prefill(seq)
    toks, logps = [], []
    for _ in range(steps):
        scores = logp.copy()
        scores[list(llm.stop_ids)] = -np.inf  # run the full length
        t = int(np.argmax(scores))
        toks.append(t)
        logps.append(scores)
        logp, cache = llm.step(llm.embed_speech([t]), cache, pos)
        pos += 1
    return toks, logps


def _teacher_forced_argmax(llm, text_ids, toks: list[int]) -> list[int]:
    seq = llm.lm_input(text_ids)
    logp, cache, pos = llm.prefill(seq)
    out = []
    for t in toks:
        scores = logp.copy()
        scores[list(llm.stop_ids)] = -np.inf
        out.append(int(np.argmax(scores)))
        logp, cache = llm.step(llm.embed_speech([t]), cache, pos)
        pos += 1
    return out


def _release(*bundles) -> None:
    """Drop the onnxruntime sessions (a full-size bundle's LLM holds ~2 GB per copy)."""
    import gc

    for b in bundles:
        b._sessions.clear()
    gc.collect()


def _log(msg: str) -> None:
    import sys
    import time

    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def measure(bundle_dir: Path, work: Path, *, steps: int = 256, seed: int = 0) -> list[dict]:
    """Rows of the quantization table for `bundle_dir` (needs llm, flow, hift). One bundle's sessions
    are alive at a time, so a full-size bundle fits in memory."""
    from runtime_ref.bundle import Bundle
    from runtime_ref.flow import token2mel
    from runtime_ref.hift import mel2wav
    from runtime_ref.llm import LLM

    base = Bundle.open(bundle_dir)
    rng = np.random.default_rng(seed)
    llm32 = LLM(base)
    cap = llm32.capacity
    steps = min(steps, cap - 40)
    text_ids = rng.integers(0, int(base.component("llm")["text_vocab_size"]), size=12).astype(np.int32)
    toks32, _ = _greedy_tokens(llm32, text_ids, steps)
    _log(f"float32 LLM: {len(toks32)} greedy steps")
    _release(base)
    flow_c = base.component("flow")
    max_tokens = max(flow_c["mel_lens"]) // flow_c["token_mel_ratio"]
    ftoks = np.asarray(toks32[:max_tokens], np.int64) % int(flow_c["vocab_size"])
    spk = rng.standard_normal(int(flow_c["spk_embed_dim"])).astype(np.float32)
    empty = np.zeros((0,), np.int64)
    no_mel = np.zeros((0, flow_c["n_mels"]), np.float32)
    mel32 = token2mel(base, empty, ftoks, no_mel, spk)
    _release(base)
    noise_seed = 7
    wav32 = mel2wav(base, mel32, rng=np.random.default_rng(noise_seed))
    _release(base)
    _log(f"float32 flow + HiFT: mel {mel32.shape}, wave {wav32.shape}")
    tts = set(base.graphs_of("llm")) | set(base.graphs_of("flow")) | set(base.graphs_of("hift"))
    rows = []
    for kind in ("float16", "uint8"):
        counts = {}
        # per component: only that component quantized, the rest float32
        d = work / f"q_{kind}_llm"
        counts.update(quantized_bundle(bundle_dir, d, kind, set(base.graphs_of("llm"))))
        b = Bundle.open(d, verify=False)
        tf = _teacher_forced_argmax(LLM(b), text_ids, toks32)
        agree = float(np.mean(np.asarray(tf) == np.asarray(toks32)))
        _release(b); shutil.rmtree(d)
        _log(f"{kind} LLM: top-1 agreement {agree:.4f}")
        d = work / f"q_{kind}_flow"
        counts.update(quantized_bundle(bundle_dir, d, kind, set(base.graphs_of("flow"))))
        b = Bundle.open(d, verify=False)
        mel_q = token2mel(b, empty, ftoks, no_mel, spk)
        _release(b); shutil.rmtree(d)
        d = work / f"q_{kind}_hift"
        counts.update(quantized_bundle(bundle_dir, d, kind, set(base.graphs_of("hift"))))
        b = Bundle.open(d, verify=False)
        wav_q = mel2wav(b, mel32, rng=np.random.default_rng(noise_seed))
        _release(b); shutil.rmtree(d)
        # where HiFT's error comes from: its f0 predictor kept float32 (a pitch change makes the sine
        # source's phase drift, which the waveform SNR counts in full)
        d = work / f"q_{kind}_hift_f0"
        quantized_bundle(bundle_dir, d, kind, set(base.graphs_of("hift")), keep_module="f0_predictor")
        b = Bundle.open(d, verify=False)
        wav_f0 = mel2wav(b, mel32, rng=np.random.default_rng(noise_seed))
        _release(b); shutil.rmtree(d)
        _log(f"{kind} flow / HiFT alone done")
        d = work / f"q_{kind}"
        quantized_bundle(bundle_dir, d, kind, tts)
        b = Bundle.open(d, verify=False)
        mel_all = token2mel(b, empty, ftoks, no_mel, spk)
        _release(b)
        wav_all = mel2wav(b, mel_all, rng=np.random.default_rng(noise_seed))
        _release(b); shutil.rmtree(d)
        _log(f"{kind} flow + HiFT together done")
        rows.append({"kind": kind, "llm_token_agreement": agree, "llm_steps": len(toks32),
                     "flow_mel_snr_db": snr_db(mel32, mel_q), "hift_wave_snr_db": snr_db(wav32, wav_q),
                     "hift_wave_snr_db_f0_float32": snr_db(wav32, wav_f0),
                     "e2e_mel_snr_db": snr_db(mel32, mel_all), "e2e_wave_snr_db": snr_db(wav32, wav_all),
                     "quantized_weights": sum(counts.values()),
                     "weights_per_graph": counts})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| weights | LLM top-1 agreement (teacher-forced, steps) | flow mel SNR | HiFT waveform SNR (f0 predictor float32) | flow+HiFT mel / waveform SNR |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {100 * r['llm_token_agreement']:.1f} % ({r['llm_steps']}) | {r['flow_mel_snr_db']:.1f} dB | "
                     f"{r['hift_wave_snr_db']:.1f} dB ({r['hift_wave_snr_db_f0_float32']:.1f} dB) | {r['e2e_mel_snr_db']:.1f} / {r['e2e_wave_snr_db']:.1f} dB |")
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--steps", type=int, default=256)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="unity-quant-") as t:
        rows = measure(a.bundle, Path(t), steps=a.steps)
    print(table(rows))
    print(json.dumps(rows, indent=1))
