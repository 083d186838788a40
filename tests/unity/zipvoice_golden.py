"""Golden traces of runtime_ref's ZipVoice pipeline, replayed by the C# Core (ZipVoicePipeline) and
by runtime_ref itself (tests/unity/test_zipvoice_golden.py). Same trace format as golden_writer.py
(`sentis-tts-trace/1`), kind "zipvoice":

    python -m tests.unity.zipvoice_golden           # rewrite tests/golden/zipvoice_*.json (+ their token tables)

Each scenario exports a tiny ZipVoice bundle (seed 0, 2-step solve, token bucket 48, frame buckets
64/128), bakes a voice from a seeded synthetic prompt and records ZipVoicePipeline.synthesize:
the three graph calls (text_encoder -> fm_solve -> vocos) with every input hashed and the outputs
the host reads stored (text_embed, features, waveform), the voice (features, baked transcript ids,
RMS), the solver noise, and the PCM hash. A long text runs as two pieces joined by the cross-fade. The Japanese scenario is a Japanese-accent bundle fed
accent kana (runtime_ref/zipvoice/kana.py), with a table of kana -> token cases for the C# reader
(rule cases written here, and accent kana of Japanese sentences written by pyopenjtalk).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from . import golden_writer as gw

FRAMES = (32, 128)
TOKENS = (48,)
STEPS = 2

SCENARIOS = [
    # name, tokenizer, prompt seconds, prompt transcript, text, kana, seed, speed
    ("zipvoice_kana", "japanese_accent", 1.0, "今日は、天気がいいですね。", "ア'メデス’カ？", True, 5, 1.3),
    # characters, two pieces (the budget of this prompt is 9 ids): the shared splitter + the 0.1 s cross-fade
    ("zipvoice_long", "simple", 1.0, "this is a tiny prompt clip.", "hi there. go now.", False, 7, 1.0),
]

# accent kana -> tokens cases for the C# reader (hand-written: every rule of kana.py)
KANA_RULE_CASES = [
    "ハ'シ", "ハシ", "ハシ'", "ワタシワ", "コンニチワ", "トーキョー", "キョ'オワ、テ'ンキガ イ'イデス’カ？", "デス’", "きゃんぷ",
    "チョコレ'エト/タ'ベタ", "ヴァイオリン　ファ'イル", "ティ'イ ディ'ス’ク", "イッ'タ。", "、、アメ。。ガ、", "アメ?", "カ'ーン",
    "ぢゃ ヂュ ヰヱヲ ゔ ゎ ヵヶ", "シェ ジェ チェ ツァ ツィ ツェ ツォ ウィ ウェ ウォ イェ テュ デュ フュ ヴュ トゥ ドゥ",
]
KANA_ERROR_CASES = ["'ア", "ア漢字", "ーア", "ンー", "ab"]
JAPANESE_SENTENCES = [
    "明日は晴れです。", "今日は、天気がいいですか？", "私の名前は田中です。", "キャンプでチョコレートを食べた。",
    "東京特許許可局に行った。", "朝7時30分に起きて、8時に家を出ます。", "吾輩は猫である。名前はまだ無い。",
    "ヴァイオリンとファイル、ティーとディスク。", "雨が降っていますか？", "カタカナのテキスト：コンピューター、インターネット、ゲーム。",
]


def build_bundle(work: Path, tokenizer: str) -> Path:
    if (work / f"bundle_{tokenizer}").is_dir():
        return work / f"bundle_{tokenizer}"
    from exporter.export import export_components
    from exporter.families import get_family
    from exporter.spec import ExportOptions
    from exporter.zipvoice.fixture import build_model_dir
    from exporter.zipvoice.modeldir import ZipVoiceModelDir

    md = build_model_dir(work / f"model_{tokenizer}", size="tiny", seed=0, tokenizer=tokenizer)
    out = work / f"bundle_{tokenizer}"
    export_components(ZipVoiceModelDir.open(md), out, get_family("zipvoice").available_components(),
                      ExportOptions(parity=False, flow_lens=FRAMES, extra={"token_lens": TOKENS, "num_step": STEPS}), mode="create")
    return out


def kana_cases(frontend) -> list[dict]:
    from runtime_ref.errors import RuntimeRefError
    from runtime_ref.zipvoice.kana import accent_kana_tokens, to_accent_kana

    cases = [{"kana": k} for k in KANA_RULE_CASES]
    for s in JAPANESE_SENTENCES:
        cases.append({"text": s, "kana": to_accent_kana(s)})
    for c in cases:
        c["tokens"] = accent_kana_tokens(c["kana"], frontend.accent_rule)
        c["ids"] = frontend.ids(c["kana"], kana=True)
    for k in KANA_ERROR_CASES:
        try:
            accent_kana_tokens(k)
            raise AssertionError(f"{k!r} must be refused")
        except RuntimeRefError:
            cases.append({"kana": k, "error": True})
    return cases


def scenario(out: Path, work: Path, name, tokenizer, prompt_s, prompt_text, text, kana, seed, speed) -> None:
    from exporter.demo import synthetic_prompt
    from runtime_ref.bundle import Bundle
    from runtime_ref.zipvoice.pipeline import ZipVoicePipeline
    from runtime_ref.zipvoice.voice import bake_voice

    bdir = build_bundle(work, tokenizer)
    bundle = Bundle.open(bdir)
    voice = bake_voice(bundle, synthetic_prompt(seconds=prompt_s, sr=24000, seed=seed), 24000, text=prompt_text)
    rec = gw.RecordingBundle(bundle, {"text_embed", "features", "waveform"})
    pipe = ZipVoicePipeline(rec)
    pieces = pipe.pieces(text, voice, speed=speed, kana=kana)
    rng = np.random.default_rng(seed)
    noise = [rng.standard_normal((pipe_total(pipe, voice, pipe.text.ids(p, kana=kana), speed), pipe.feat_dim)).astype(np.float32)
             for p in pieces]
    syn = pipe.synthesize(text, voice, seed=seed, speed=speed, kana=kana)
    assert syn.pieces == pieces and syn.n_frames == sum(x.shape[0] for x in noise) and len(rec.calls) == 3 * len(pieces)
    ids = pipe.text.ids(text, kana=kana)
    tdir = out / f"zipvoice_{tokenizer}_text"
    tdir.mkdir(parents=True, exist_ok=True)
    comp = bundle.component("text")
    files = {"tokens": Path(comp["tokens"]).name}
    shutil.copyfile(bdir / comp["tokens"], tdir / files["tokens"])
    if "kana_table" in comp:
        files["kana_table"] = Path(comp["kana_table"]).name
        shutil.copyfile(bdir / comp["kana_table"], tdir / files["kana_table"])
    trace = {
        "format": gw.FORMAT, "kind": "zipvoice",
        "description": f"runtime_ref.zipvoice.ZipVoicePipeline.synthesize on a tiny {tokenizer} ZipVoice bundle (seed 0, "
                       f"{STEPS}-step solve, token bucket {TOKENS}, frame buckets {FRAMES}; onnxruntime), voice baked by "
                       "runtime_ref.zipvoice.voice.bake_voice from a seeded synthetic prompt; noise = default_rng(seed) normal",
        "manifest": dict(gw.manifest_subset(bundle.manifest, ["text_encoder", "fm_decoder", "vocos", "text"]), family="zipvoice"),
        "params": {"text": text, "kana": kana, "seed": seed, "speed": speed, "text_dir": tdir.name, "text_files": files,
                   "ids": ids, "n_frames": syn.n_frames, "pieces": pieces,
                   "budget": pipe.text_budget(voice["prompt_features"].shape[0], len(voice["prompt_ids"]), speed),
                   "voice": {"prompt_text": prompt_text, "prompt_ids": [int(i) for i in voice["prompt_ids"]],
                             "prompt_rms": gw.tensor_entry("prompt_rms", np.asarray(voice["prompt_rms"], np.float32).reshape(1), data=True),
                             "prompt_features": gw.tensor_entry("prompt_features", voice["prompt_features"], data=True)},
                   "noise": [gw.tensor_entry(f"noise{k}", x, data=True) for k, x in enumerate(noise)]},
        "outputs": "recorded", "calls": rec.calls,
        "result": {"pcm": gw.tensor_entry("pcm", np.ascontiguousarray(syn.audio, np.float32)), "samples": int(syn.audio.size)},
    }
    if tokenizer == "japanese_accent":
        trace["kana_cases"] = kana_cases(pipe.text)
    gw.write_json(out / f"{name}.json", trace)


def pipe_total(pipe, voice, ids, speed) -> int:
    from runtime_ref.zipvoice.solve import total_frames

    return total_frames(np.asarray(voice["prompt_features"]).shape[0], len(pipe.prompt_ids(voice)), len(ids), speed)


def write_all(out: Path, work: Path) -> None:
    for old in out.glob("zipvoice_*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    for s in SCENARIOS:
        scenario(out, work, *s)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=gw.GOLDEN)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="zipvoice-golden-") as t:
        write_all(a.out, Path(t))
    print(f"ZipVoice golden traces written to {a.out}")
