"""Golden traces of runtime_ref's CosyVoice3 pipeline (runtime_ref/cosyvoice3.py), replayed by the
C# Core's CosyVoice3Pipeline (unity_package/Tests/Standalone~/PipelineCase.cs) and re-checked
against runtime_ref by tests/unity/test_cv3_golden_traces.py.

    python -m tests.unity.golden_cv3 [--out tests/golden] [--bundle B] [--only-bistream]

Same trace format and recorder as the CosyVoice2 `pipeline` traces (tests/unity/golden_writer.py
PipelineRecorder: real onnxruntime calls of the tiny bundle, synthetic step logprobs, synthetic
vocoder outputs, provenance-tagged vocoder noise), kind `cv3_pipeline`, on the tiny CosyVoice3
fixture (seed 0) with flow buckets 64/128/160 and the causal vocoder graphs of 64 and 96 frames
(mels of several chunks, calls on either graph). What the
CosyVoice3 traces add: the LM boosts are on the id masked before min_len (speech_token_size), a
scenario boosts a silent token for a run of steps (the long-silence cut), the vocoder noise is one
uniform table per piece drawn as far as it is used, and the vocoder re-reads context frames per chunk.
Support files in tests/golden/cv3/: the bundle's tokenizer (text/), its flow noise table.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from . import golden_writer as gw

SUPPORT = "cv3"
FLOW_LENS = (64, 128, 160)
HIFT_FRAMES = (64, 96)  # causal vocoder graphs: 64 is about the smallest (37 context + 8 lookahead + 16); several chunks per mel
TOP_LOWERED = 64  # stop ids lowered per step: those among the 64 largest synthetic scores
SILENT_BOOST = 16.0
CV3_SCENARIOS = [
    # name, mode, text, instruct, seed, max_new_tokens, streaming, eos_boost, steps where a silent token is boosted
    ("cv3_pipeline_zero_shot", "zero_shot", "A line.", None, 3, 30, False, True, range(1, 8)),
    ("cv3_pipeline_instruct2", "instruct2", "Say it.", "Speak slowly.", 5, 8, False, True, ()),
    ("cv3_pipeline_stream_zero_shot", "zero_shot", "It speaks.", None, 7, 42, True, False, ()),
    ("cv3_pipeline_stream_sft", "sft", "Hello there.", None, 8, 80, True, False, ()),
]


def build_bundle(work: Path) -> Path:
    from exporter.cosyvoice3.fixture import build_model_dir
    from exporter.export import export_components
    from exporter.families import open_model_dir
    from exporter.spec import ExportOptions

    md = build_model_dir(work / "cv3_model", size="tiny", seed=0)
    out = work / "cv3_bundle"
    export_components(open_model_dir(md), out, ["llm", "flow", "hift", "text"],
                      ExportOptions(parity=False, flow_lens=FLOW_LENS, max_cache_len=256, hift_frames=HIFT_FRAMES))
    return out


class _RecordedUniformNoise(gw._RecordedNoise):
    """The vocoder-noise Generator proxy for CosyVoice3's uniform tables."""

    def random(self, size=None):
        x = self.gen.random(size)
        self.draws.append(np.asarray(x).astype(np.float32))
        return x


class CV3Recorder(gw.PipelineRecorder):
    """PipelineRecorder with CosyVoice3's stop rule: the boosted id is the one masked before min_len
    (speech_token_size = sos row), the other stop ids among the TOP_LOWERED largest scores are
    lowered (the rest cannot be drawn by top-k sampling; a repetition-aware fallback draw could,
    and the trace would record it); in the steps of `silent_steps`
    SILENT_BOOST, a different silent token each step (a run the pipeline must cut short)."""

    def __init__(self, bundle, noise, *, eos_boost: bool, silent_steps=()):
        super().__init__(bundle, noise, eos_boost=eos_boost)
        c = bundle.component("llm")
        self.eos = int(c["min_len_masked_token"])
        self.silent, self.silent_steps = [int(t) for t in c["silent_tokens"]], set(silent_steps)
        self.prompt_len = 0  # LM input rows: set before generating

    def run(self, name, feeds, outputs=None):
        res = super().run(name, feeds, outputs)
        if name == self.step_graph:
            e = next(o for o in self.calls[-1]["outputs"] if o["name"] == "logprobs")
            # of the 200 lowered stop ids keep only those a top-k draw could reach (the trace stays small)
            top = set(np.argsort(-gw.synth(int(np.prod(e["shape"])), e["synth"]))[:TOP_LOWERED].tolist())
            e["set"] = [[i, x] for i, x in e["set"] if i == self.eos or i in top]
            # the logprobs of rows position..position+valid_len-1 sample token (that end - prompt_len)
            k = int(np.asarray(feeds["position"]).reshape(-1)[0]) + int(np.asarray(feeds["valid_len"]).reshape(-1)[0]) - self.prompt_len
            if k in self.silent_steps:
                e["set"].append([self.silent[k % len(self.silent)], SILENT_BOOST])  # a different one each step (RAS redraws repeats)
            v = gw.synth_spec(int(np.prod(e["shape"])), e).reshape(e["shape"])
            e["sha256"] = gw.sha256(v)
            res["logprobs"][...] = v
        return res


def write_trace(path: Path, kind: str, description: str, bundle, rec, proxies, request: dict, text_ids, llm_text,
                llm_speech, extra_params: dict, result: dict, pcm) -> None:
    """One CosyVoice3 trace file: the request (`request` first, then the shared support files, ids,
    `extra_params`, the recorded streams), the recorded calls, `result` + the PCM chunks."""
    u, nz = proxies["u"], proxies["n"]
    gw.write_json(path, {
        "format": gw.FORMAT, "kind": kind, "description": description,
        "manifest": dict(gw.manifest_subset(bundle.manifest, ["llm", "flow", "hift", "text"]), family=bundle.manifest["family"]),
        "params": {**request, "voice_file": "voice_tiny.npz", "flow_noise_file": f"{SUPPORT}/flow_noise.npy",
                   "tokenizer_dir": f"{SUPPORT}/text", "text_ids": np.asarray(text_ids).tolist(),
                   "llm_prompt_text_ids": np.asarray(llm_text).tolist(), "llm_prompt_speech_tokens": np.asarray(llm_speech).tolist(),
                   **extra_params, "uniforms_2p53": u.drawn, "noise_tag_stride": gw.NOISE_TAG_STRIDE,
                   "noise_draws": [gw.tensor_entry(f"noise{i}", d) for i, d in enumerate(nz.draws)]},
        "outputs": "recorded+synthetic", "calls": rec.calls,
        "result": {**result, "pcm": [gw.tensor_entry(f"pcm{i}", np.ascontiguousarray(c, np.float32)) for i, c in enumerate(pcm)]}})


def cv3_golden(bundle, out: Path) -> None:
    import runtime_ref.pipeline as pl
    from runtime_ref.cosyvoice3 import CosyVoice3Pipeline

    support = out / SUPPORT
    (support / "text").mkdir(parents=True, exist_ok=True)
    for f in sorted((Path(bundle.root) / "text").iterdir()):
        shutil.copyfile(f, support / "text" / f.name)
    np.save(support / "flow_noise.npy", bundle.load_array(bundle.component("flow")["noise_file"]).astype(np.float32))
    v = np.load(out / "voice_tiny.npz")
    voice = pl.Voice.from_arrays("tiny", {k: v[k] for k in v.files})
    for name, mode, text, instruct, seed, max_new, streaming, eos_boost, silent_steps in CV3_SCENARIOS:
        rec = CV3Recorder(bundle, _RecordedUniformNoise(None), eos_boost=eos_boost, silent_steps=silent_steps)
        with gw.recorded_streams(rec, _RecordedUniformNoise) as proxies:
            pipe = CosyVoice3Pipeline(rec)
            lm_tokens = gw.record_tokens(pipe.llm, "iter_tokens")
            flow_tokens = gw.record_tokens(pipe, "iter_tokens_for")
            reqs = pipe.requests(text, voice, mode, instruct=instruct)
            assert len(reqs) == 1 and reqs[0].text == text, f"{name}: text must be one already-normalised piece"
            req = reqs[0]
            rec.calls.clear()
            rec.prompt_len = 2 + req.llm_prompt_text_ids.size + req.text_ids.size + req.llm_prompt_speech.size
            if streaming:
                chunks = list(pipe.stream(text, voice, mode=mode, instruct=instruct, seed=seed, max_new_tokens=max_new))
            else:
                chunks = [pipe.synthesize(text, voice, mode=mode, instruct=instruct, seed=seed, max_new_tokens=max_new).audio]
        cap = pipe.token_cap(req, max_new)
        max_len = min(int(req.text_ids.size * pipe.llm.max_ratio), cap)
        write_trace(out / f"{name}.json", "cv3_pipeline",
                    f"runtime_ref.cosyvoice3.CosyVoice3Pipeline.{'stream' if streaming else 'synthesize'} on the tiny "
                    f"CosyVoice3 bundle (llm, flow buckets {'/'.join(map(str, FLOW_LENS))}, causal hift, text; onnxruntime), "
                    "voice voice_tiny.npz; step logprobs and vocoder outputs synthetic (tests/unity/golden_cv3.py "
                    "CV3Recorder); sampling uniforms and the uniform noise tables are the real PCG64 child streams of the seed",
                    bundle, rec, proxies,
                    {"mode": mode, "text": text, "instruct": instruct, "seed": seed, "max_new_tokens": max_new,
                     "token_cap": cap, "streaming": streaming},
                    req.text_ids, req.llm_prompt_text_ids, req.llm_prompt_speech, {"silent_boost_steps": list(silent_steps)},
                    {"lm_tokens": lm_tokens, "tokens": flow_tokens,
                     "stop_reason": "max_len" if len(lm_tokens) >= max_len else "stop_token",
                     "min_len": int(req.text_ids.size * pipe.llm.min_ratio)}, chunks)


# bistream (runtime_ref CosyVoice3Pipeline.stream_bistream): the shared schedule with the CosyVoice3
# ids and the prompt text up to <|endofprompt|> fed right after sos. No EOS boost: the synthetic
# scores would boost eos_token (6562) while text streams too, where only speech_token_size (6561) is
# masked (a special token there is an error), so both run to their cap.
CV3_BISTREAM_SCENARIOS = [
    # name, mode, text chunks, instruct, seed, max_new_tokens
    # zero-shot: prefix = system prompt + <|endofprompt|>, the rest of the prompt text (the voice's
    # transcript) mixed with its 13 prompt speech tokens (5 + 15 rows per group), then the streamed
    # text rows 5 per fill token (every 15 tokens); capped while text streams, a streaming chunk
    ("cv3_bistream_zero_shot", "zero_shot", ["Once upon ", "a time, ", "a sea."], None, 9, 40),
    # cross-lingual: the whole prompt text is the prefix, no prompt speech: decoding starts at the
    # first text id (sos + prefix is more than one row: the official schedule), a fill after 15
    # tokens; the text ends (its rest + task_id), then unmasked decoding to the cap
    ("cv3_bistream_cross_lingual", "cross_lingual", ["Hi ", "there."], None, 10, 36),
]


def cv3_bistream_golden(bundle, out: Path) -> None:
    """CosyVoice3Pipeline.stream_bistream traces (kind `cv3_pipeline_bistream`), recorded as the
    cv3_pipeline traces (CV3Recorder, no silent boost) with the text chunks as params."""
    import runtime_ref.pipeline as pl
    from runtime_ref.cosyvoice3 import CosyVoice3Pipeline

    v = np.load(out / "voice_tiny.npz")
    voice = pl.Voice.from_arrays("tiny", {k: v[k] for k in v.files})
    for name, mode, chunks, instruct, seed, max_new in CV3_BISTREAM_SCENARIOS:
        rec = CV3Recorder(bundle, _RecordedUniformNoise(None), eos_boost=False)
        with gw.recorded_streams(rec, _RecordedUniformNoise) as proxies:
            pipe = CosyVoice3Pipeline(rec)
            tokens = gw.record_tokens(pipe, "bistream_tokens_for")
            _, llm_text, llm_speech, f_tok, _ = pipe.prompts(voice, mode, instruct=instruct)
            req = pl.PieceRequest("<stream>", np.zeros(0, np.int32), llm_text, llm_speech, f_tok, None, voice.embedding)
            cap = pipe.token_cap(req, max_new)
            rec.calls.clear()
            pcm = list(pipe.stream_bistream(iter(chunks), voice, mode=mode, instruct=instruct, seed=seed, max_new_tokens=max_new))
        # runtime_ref's bistream does not cut long silences (its non-bistream path and the official
        # llm_job do); the C# session cuts them in both: a trace must not hold such a run
        silent, run = {int(t) for t in bundle.component("llm")["silent_tokens"]}, 0
        for t in tokens:
            run = run + 1 if t in silent else 0
            assert run <= int(bundle.component("llm")["max_silent_tokens"]), f"{name}: a long silent run; pick another seed"
        write_trace(out / f"{name}.json", "cv3_pipeline_bistream",
                    "runtime_ref.cosyvoice3.CosyVoice3Pipeline.stream_bistream on the tiny CosyVoice3 bundle (as the "
                    "cv3_pipeline traces: step logprobs and vocoder outputs synthetic, no EOS boost; real PCG64 streams); "
                    "text_chunks arrive as a stream",
                    bundle, rec, proxies,
                    {"mode": mode, "text_chunks": chunks, "instruct": instruct, "seed": seed, "max_new_tokens": max_new,
                     "token_cap": cap, "streaming": True},
                    [i for c in chunks for i in pipe.text.encode(c)], llm_text, llm_speech, {},
                    {"tokens": tokens, "stop_reason": "max_len" if len(tokens) >= cap else "stop_token"}, pcm)


if __name__ == "__main__":
    import tempfile

    from runtime_ref.bundle import Bundle

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=gw.GOLDEN)
    ap.add_argument("--bundle", type=Path, help="an already exported tiny CosyVoice3 bundle (build_bundle's)")
    ap.add_argument("--only-bistream", action="store_true", help="write only the cv3_bistream_* traces")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        b = Bundle.open(a.bundle or build_bundle(Path(t)))
        if not a.only_bistream:
            cv3_golden(b, a.out)
        cv3_bistream_golden(b, a.out)
    print(f"CosyVoice3 golden traces written to {a.out}")
