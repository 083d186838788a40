"""`sentis-tts demo --family cosyvoice3`: tiny seeded CosyVoice3 model dir in the official layout →
export every component (Sentis checker + parity vs PyTorch per graph) → voice 'demo' baked from a
synthetic prompt with onnxruntime only (speech_tokenizer_v3 + CAM++ + prompt mel) → runtime_ref
synthesis in zero-shot mode, non-streaming and streaming (official CosyVoice3 schedule) →
OUT/report.md, OUT/demo.wav, OUT/demo_stream.wav. Parity against the official CosyVoice3 code is
measured in tests/cosyvoice3/test_cv3_official.py."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..demo import DEMO_TEXT, synthetic_prompt

# "full": what `sentis-tts demo --family cosyvoice3` runs; "smoke": the same steps at CI speed
# (shorter prompt, smaller flow bucket / vocoder graph / KV cache, fewer tokens; tests/cosyvoice3/test_cv3_demo.py)
DEMO_PROMPT_TEXT = "Hello, this is a test voice."
# (tokenizer_seconds: the speech tokenizer graph's static buffer; 30 s is the export default)
PROFILES = {"full": dict(prompt_seconds=3.2, flow_lens=(512,), max_cache_len=512, max_new_tokens=100, tokenizer_seconds=30),
            "smoke": dict(prompt_seconds=1.2, flow_lens=(224,), max_cache_len=256, max_new_tokens=12, tokenizer_seconds=12)}


def run_demo(out: Path, *, seed: int = 0, threads: int = 2, log: Callable[[str], None] = print,
             profile: str = "full") -> dict:
    from runtime_ref.audio import write_wav
    from runtime_ref.bundle import Bundle
    from runtime_ref.families import open_pipeline
    from runtime_ref.prompt import add_voice_to_bundle, bake_voice

    from ..export import export_components
    from ..families import get_family, open_model_dir
    from ..spec import ExportOptions
    from .fixture import build_model_dir

    t_all = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    md = open_model_dir(build_model_dir(out / "model", size="tiny", seed=seed))
    fam = get_family("cosyvoice3")
    comps = fam.available_components()
    log(f"[1/4] tiny CosyVoice3 model dir (seed {seed}); exporting {', '.join(comps)}")
    prof = PROFILES[profile]
    max_new_tokens = prof["max_new_tokens"]
    manifest = export_components(md, out / "bundle", comps,
                                 ExportOptions(seed=seed, threads=threads, flow_lens=prof["flow_lens"],
                                               max_cache_len=prof["max_cache_len"],
                                               extra={"prompt_max_seconds": prof["tokenizer_seconds"]}),
                                 mode="create", overwrite=True)
    log(f"[2/4] baking voice 'demo' from a synthetic {prof['prompt_seconds']} s prompt (speech_tokenizer_v3 + CAM++, onnxruntime only)")
    bundle = Bundle.open(out / "bundle", threads=threads)
    prompt = synthetic_prompt(prof["prompt_seconds"], seed=seed)
    write_wav(out / "prompt.wav", prompt, 24000)
    voice = bake_voice(bundle, prompt, 24000, text=DEMO_PROMPT_TEXT)
    add_voice_to_bundle(out / "bundle", "demo", voice, source="synthetic prompt (demo)", overwrite=True)
    log("[3/4] synthesizing with runtime_ref (onnxruntime + numpy), zero-shot, non-streaming and streaming")
    pipe = open_pipeline(out / "bundle", threads=threads)
    t0 = time.perf_counter()
    res = pipe.synthesize(DEMO_TEXT, "demo", mode="zero_shot", seed=seed, max_new_tokens=max_new_tokens)
    t_ours = time.perf_counter() - t0
    chunks = list(pipe.stream(DEMO_TEXT, "demo", mode="zero_shot", seed=seed, max_new_tokens=max_new_tokens))
    stream = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    write_wav(out / "demo.wav", res.audio, pipe.sample_rate)
    write_wav(out / "demo_stream.wav", stream, pipe.sample_rate)
    graphs = manifest["graphs"]
    ok = (all(g["checker"]["ok"] for g in graphs.values()) and res.audio.size > 0 and stream.size == res.audio.size
          and bool(np.isfinite(res.audio).all()))
    lines = ["# sentis-tts demo — CosyVoice3 (tiny random model)", "",
             f"Components: {', '.join(comps)}; voice 'demo' baked from a synthetic prompt ({voice['speech_tokens'].size} "
             "prompt tokens), zero-shot.", "",
             "| graph | checker | parity max-abs (tol) |", "|---|---|---|"]
    for name, g in graphs.items():
        worst = max(g["parity"]["max_abs"].values(), default=0.0)
        tol = min(g["parity"]["atol"].values(), default=0.0)
        lines.append(f"| {name} | {'ok' if g['checker']['ok'] else 'FAIL'} | {worst:.2e} (≤{tol:g}) |")
    lines += ["", f"Speech tokens per piece: {[len(t) for t in res.tokens]}; {res.audio.size / pipe.sample_rate:.2f} s of audio "
              f"in {t_ours:.1f} s (non-streaming); streaming: {len(chunks)} chunks, {stream.size} samples.",
              "", "Official-code parity (tests/cosyvoice3/test_cv3_official.py): see docs/components/cosyvoice3.md.",
              f"Total {time.perf_counter() - t_all:.1f} s."]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    log("[4/4] report.md written")
    return {"ok": ok, "n_tokens": [len(t) for t in res.tokens], "stream_chunks": len(chunks),
            "seconds_audio": res.audio.size / pipe.sample_rate}
