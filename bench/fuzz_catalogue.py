"""The reliability catalogue: seeded faulty (and valid) inputs through the real CLI, each run
classified. Used by tests/e2e/test_fuzz_catalogue.py (a bounded CI run) and, as a script, for the
longer release run:

    python bench/fuzz_catalogue.py --base demo_out --random 40 --seed 1 --json catalogue.json

(`--base` is a `sentis-tts demo` output folder: model/, bundle/ and prompt.wav; it is built when
missing.) Cases run in-process through click's CliRunner isolation (stdin/stdout/stderr captured,
`exporter.cli.main` exactly as the console script calls it); the signal cases run a subprocess.

Every case says what a correct CLI does with it — "ok" (exit 0), "error" (refused: exit 1 or 2
with one line `error: …`), "reported" (refused, or exit 0 with a `warning:` line) or "any"
(random mutations whose validity is unknown: anything but a crash is fine) — and each run is
classified as one of:

  traceback       an exception escaped, a traceback was printed, or exit 3 (internal error)
  hang            the case ran past its time limit
  silent_success  exit 0 (and no warning) on input that must be refused
  leftover        a temp file/dir was left next to the target, or data that must not change did
  unclear         refused, but not with one line `error: …` on stderr
  false_refusal   a valid input was refused
  ok              what a correct CLI does
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import traceback
import wave
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CATEGORIES = ("traceback", "hang", "silent_success", "leftover", "unclear", "false_refusal", "ok")


# ---------------------------------------------------------------------------------------- cases
@dataclass
class Case:
    group: str  # wav | text | manifest | modeldir | signal | onnx
    name: str
    expect: str  # ok | error | reported | any
    # setup(work_dir) -> argv (paths inside work_dir); may write files
    setup: Callable[[Path], list[str]]
    stdin: bytes | None = None
    timeout: float = 60.0
    # after(work_dir, exit_code, stderr) -> list of problems ("leftover"-class: damaged data)
    after: Callable[[Path], list[str]] | None = None
    signal: int | None = None  # subprocess case: send this signal once `signal_when(work)` is true
    signal_when: Callable[[Path], bool] | None = None
    slow: bool = False  # left out of the CI run (all_cases(ci=True)); the release run has it


@dataclass
class Result:
    case: Case
    category: str
    code: int | None
    seconds: float
    detail: str = ""


@dataclass
class Base:
    """The inputs every case starts from: a demo model dir, its bundle and the prompt WAV."""

    model: Path
    bundle: Path
    prompt_wav: Path
    samples: np.ndarray = field(default=None, repr=False)  # prompt (n,) float64
    rate: int = 16000


def load_base(root: Path) -> Base:
    import wave as _w

    wav = root / "prompt.wav"
    with _w.open(str(wav)) as w:
        rate, n, width = w.getframerate(), w.getnframes(), w.getsampwidth()
        raw = w.readframes(n)
    assert width == 2
    x = np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
    return Base(root / "model", root / "bundle", wav, x, rate)


# --------------------------------------------------------------------------------- file helpers
def put(path: Path, data: bytes | str) -> Path:
    """Write a fresh file (unlinks first: work dirs hold hard links to the base files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def link_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, copy_function=os.link)
    return dst


def riff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"WAVE" + b"".join(cid + struct.pack("<I", len(d)) + d + (b"\0" if len(d) & 1 else b"") for cid, d in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt_chunk(tag: int, ch: int, rate: int, bits: int, *, extensible_sub: int | None = None, valid_bits: int | None = None) -> bytes:
    block = ch * bits // 8
    base = struct.pack("<HHIIHH", 0xFFFE if extensible_sub is not None else tag, ch, rate, rate * block, block, bits)
    if extensible_sub is None:
        return base
    guid = struct.pack("<H", extensible_sub) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    return base + struct.pack("<HHI", 22, valid_bits or bits, 0) + guid


def pcm_bytes(x: np.ndarray, bits: int) -> bytes:
    full = float(1 << (bits - 1))
    q = np.clip(np.round(x * full), -full, full - 1).astype(np.int64)
    if bits == 16:
        return q.astype("<i2").tobytes()
    if bits == 24:
        u = (q & 0xFFFFFF).astype(np.uint32)
        return np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    return q.astype("<i4").tobytes()


def wav_file(x: np.ndarray, rate: int, *, kind: str = "pcm16", channels: int = 1) -> bytes:
    """kind: pcm16 | pcm24 | pcm32 | float32 | float64 | ext_pcm24 | ext_pcm16 | ext_float32."""
    xs = np.repeat(x[:, None], max(channels, 1), axis=1).reshape(-1)
    if kind.startswith("float"):
        bits = int(kind[5:])
        return riff([(b"fmt ", fmt_chunk(3, channels, rate, bits)), (b"data", xs.astype("<f4" if bits == 32 else "<f8").tobytes())])
    if kind == "ext_float32":
        return riff([(b"fmt ", fmt_chunk(3, channels, rate, 32, extensible_sub=3)), (b"data", xs.astype("<f4").tobytes())])
    bits = int(kind[-2:])
    if kind.startswith("ext_"):
        return riff([(b"fmt ", fmt_chunk(1, channels, rate, bits, extensible_sub=1)), (b"data", pcm_bytes(xs, bits))])
    return riff([(b"fmt ", fmt_chunk(1, channels, rate, bits)), (b"data", pcm_bytes(xs, bits))])


def manifest_of(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def write_manifest(bundle: Path, m) -> None:
    put(bundle / "manifest.json", json.dumps(m, indent=1))


def sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def replace_listed_file(bundle: Path, rel: str, data: bytes) -> None:
    """Replace a file of the bundle AND its sha256 in the manifest (malformed but hash-consistent)."""
    put(bundle / rel, data)
    m = manifest_of(bundle)
    for g in m["graphs"].values():
        if g.get("file") == rel:
            g["sha256"], g["bytes"] = sha(data), len(data)
    if rel in m.get("files", {}):
        m["files"][rel].update(sha256=sha(data), bytes=len(data))
    write_manifest(bundle, m)


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def voice_unchanged(name: str = "demo") -> Callable[[Path], list[str]]:
    """After-check: the bundle's voice `name` still has its original bytes."""

    def check(work: Path) -> list[str]:
        b = work / "bundle"
        m = manifest_of(b)
        entry = m.get("voices", {}).get(name)
        if entry is None:
            return [f"voice {name} vanished from the manifest"]
        data = (b / entry["file"]).read_bytes()
        if sha(data) != (work / f".orig_{name}.sha").read_text():
            return [f"voice {name} was replaced"]
        return []

    return check


def remember_voice(work: Path, name: str = "demo") -> None:
    b = work / "bundle"
    entry = manifest_of(b)["voices"][name]
    (work / f".orig_{name}.sha").write_text(sha((b / entry["file"]).read_bytes()))


def bundle_unchanged(work: Path) -> list[str]:
    b = work / "bundle"
    return [] if (b / "manifest.json").read_bytes() == (work / ".orig_manifest").read_bytes() else ["bundle manifest changed"]


# ------------------------------------------------------------------------------------- the groups
def wav_cases(base: Base, rng: np.random.Generator, n_random: int) -> list[Case]:
    x, r = base.samples, base.rate
    cases: list[Case] = []

    def add(name, expect, data_fn, *, overwrite=False, after=None):
        def setup(work: Path, data_fn=data_fn, overwrite=overwrite):
            link_tree(base.bundle, work / "bundle")
            remember_voice(work)
            wav = put(work / "in.wav", data_fn())
            return ["voice", "add", "--bundle", str(work / "bundle"), "--name", "demo" if overwrite else "v1", "--wav", str(wav),
                    "--text", "Hello."] + (["--overwrite"] if overwrite else [])

        cases.append(Case("wav", name, expect, setup, after=after or voice_unchanged()))

    for kind in ("pcm16", "pcm24", "pcm32", "float32", "float64", "ext_pcm16", "ext_pcm24", "ext_float32"):
        add(f"valid_{kind}", "ok", lambda kind=kind: wav_file(x, r, kind=kind))
    add("valid_stereo_pcm16", "ok", lambda: wav_file(x, r, channels=2))
    add("valid_22050", "ok", lambda: wav_file(x, 22050))
    nan = x.copy()
    nan[len(x) // 3] = np.nan
    inf = x.copy()
    inf[100] = np.inf
    add("nan_float32", "error", lambda: wav_file(nan, r, kind="float32"))
    add("inf_float32", "error", lambda: wav_file(inf, r, kind="float32"))
    add("all_nan_float64", "error", lambda: wav_file(np.full_like(x, np.nan), r, kind="float64"))
    add("nan_overwrite_good_voice", "error", lambda: wav_file(nan, r, kind="float32"), overwrite=True)
    add("inf_ext_float32_overwrite", "error", lambda: wav_file(inf, r, kind="ext_float32"), overwrite=True)
    add("rate_0_pcm", "error", lambda: riff([(b"fmt ", fmt_chunk(1, 1, 0, 16)), (b"data", pcm_bytes(x, 16))]))
    add("rate_0_float", "error", lambda: riff([(b"fmt ", fmt_chunk(3, 1, 0, 32)), (b"data", x.astype("<f4").tobytes())]))
    add("channels_0_pcm", "error", lambda: riff([(b"fmt ", struct.pack("<HHIIHH", 1, 0, r, 0, 0, 16)), (b"data", pcm_bytes(x, 16))]))
    add("channels_0_float", "error", lambda: riff([(b"fmt ", struct.pack("<HHIIHH", 3, 0, r, 0, 0, 32)), (b"data", x.astype("<f4").tobytes())]))
    add("bits_12", "error", lambda: riff([(b"fmt ", fmt_chunk(1, 1, r, 12)), (b"data", pcm_bytes(x, 16))]))
    add("float_16bit", "error", lambda: riff([(b"fmt ", fmt_chunk(3, 1, r, 16)), (b"data", pcm_bytes(x, 16))]))
    add("alaw", "error", lambda: riff([(b"fmt ", fmt_chunk(6, 1, r, 8)), (b"data", pcm_bytes(x, 16)[: len(x)])]))
    add("no_data_chunk", "error", lambda: riff([(b"fmt ", fmt_chunk(1, 1, r, 16))]))
    add("no_fmt_chunk", "error", lambda: riff([(b"data", pcm_bytes(x, 16))]))
    add("fmt_too_short", "error", lambda: riff([(b"fmt ", b"\x01\x00\x01"), (b"data", pcm_bytes(x, 16))]))
    add("ext_fmt_too_short", "error", lambda: riff([(b"fmt ", fmt_chunk(1, 1, r, 24, extensible_sub=1)[:20]), (b"data", pcm_bytes(x, 24))]))
    add("empty_file", "error", lambda: b"")
    add("not_riff", "error", lambda: b"ID3" + bytes(rng.integers(0, 256, 400, dtype=np.uint8)))
    add("too_short_0.3s", "error", lambda: wav_file(x[: int(0.3 * r)], r))
    add("silent", "error", lambda: wav_file(np.zeros_like(x), r))
    add("empty_data", "error", lambda: wav_file(x[:0], r))
    def spk(name, expect, obj):  # `voice import-spk2info` with a crafted spk2info.pt
        def setup(work: Path, obj=obj):
            import torch

            link_tree(base.bundle, work / "bundle")
            remember_voice(work)
            buf = io.BytesIO()
            torch.save(obj() if callable(obj) else obj, buf)
            f = put(work / "spk2info.pt", buf.getvalue())
            return ["voice", "import-spk2info", "--bundle", str(work / "bundle"), "--spk2info", str(f), "--overwrite"]

        cases.append(Case("wav", f"spk2info_{name}", expect, setup, after=voice_unchanged()))

    def spk_entry(emb):
        import torch

        return {"demo": {"embedding": emb, "speech_token": torch.zeros(1, 4, dtype=torch.int32), "speech_feat": torch.zeros(1, 8, 80)}}

    spk("list", "error", [1, 2])
    spk("entry_string", "error", {"demo": "oops"})
    spk("entry_nan_embedding", "error", lambda: spk_entry(__import__("torch").full((1, 192), float("nan"))))
    spk("entry_no_embedding", "error", {"demo": {"speech_token": [1, 2]}})
    valid = wav_file(x, r)
    for i in range(n_random):
        how = i % 3
        if how == 0:  # truncate anywhere in the first 2 KB (header and the start of the data)
            cut = int(rng.integers(0, 2048))
            add(f"random_truncate_{cut}", "error" if cut < 44 else "any", lambda cut=cut: valid[:cut])
        elif how == 1:  # flip header bytes
            pos = rng.integers(0, 44, size=int(rng.integers(1, 4)))
            vals = rng.integers(0, 256, size=pos.size, dtype=np.uint8)

            def flipped(pos=pos, vals=vals):
                b = bytearray(valid)
                for p, v in zip(pos, vals):
                    b[int(p)] = int(v)
                return bytes(b)

            add(f"random_header_bytes_{'_'.join(map(str, pos))}", "any", flipped)
        else:  # garbage of a random length
            n = int(rng.integers(0, 4000))
            add(f"random_garbage_{n}", "error", lambda n=n: b"RIFF" + bytes(rng.integers(0, 256, n, dtype=np.uint8)))
    return cases


def text_cases(base: Base, rng: np.random.Generator, n_random: int) -> list[Case]:
    cases: list[Case] = []

    def add(name, expect, args_fn, *, stdin=None, after=None, timeout=120.0, slow=False):
        def setup(work: Path, args_fn=args_fn):
            link_tree(base.bundle, work / "bundle")
            return ["synthesize", "-b", str(work / "bundle"), "-v", "demo"] + args_fn(work)

        cases.append(Case("text", name, expect, setup, stdin=stdin, after=after, timeout=timeout, slow=slow))

    def out_wav(work):
        return ["-o", str(work / "out.wav")]

    def no_wav(work: Path) -> list[str]:
        return ["out.wav was written"] if (work / "out.wav").exists() else []

    add("valid_short", "ok", lambda w: ["-t", "Hi there."] + out_wav(w))
    add("valid_stdin", "ok", lambda w: out_wav(w), stdin=b"Hello.\n")
    add("valid_bistream_stdin", "ok", lambda w: out_wav(w) + ["--bistream"], stdin=b"Hello.\nThere.\n")
    add("empty_text", "error", lambda w: ["-t", ""] + out_wav(w), after=no_wav)
    add("whitespace_text", "error", lambda w: ["-t", " \t\n "] + out_wav(w), after=no_wav)
    add("empty_stdin", "error", lambda w: out_wav(w), stdin=b"", after=no_wav)
    add("bistream_empty_stdin", "error", lambda w: out_wav(w) + ["--bistream"], stdin=b"", after=no_wav)
    add("bistream_blank_lines", "error", lambda w: out_wav(w) + ["--bistream"], stdin=b"\n \n\t\n", after=no_wav)
    add("bistream_20000_chars", "reported", lambda w: out_wav(w) + ["--bistream"],
        stdin=("A long sentence that keeps going. " * 600).encode())
    add("non_utf8_text_file", "error", lambda w: ["--text-file", str(put(w / "t.txt", b"Hello \xff\xfe world"))] + out_wav(w), after=no_wav)
    add("non_utf8_bistream_file", "error",
        lambda w: ["--text-file", str(put(w / "t.txt", b"\xc3\x28 bad"))] + out_wav(w) + ["--bistream"], after=no_wav)
    add("empty_text_file", "error", lambda w: ["--text-file", str(put(w / "t.txt", b""))] + out_wav(w), after=no_wav)
    add("text_file_is_dir", "error", lambda w: ["--text-file", str(w)] + out_wav(w), after=no_wav)
    add("text_and_text_file", "error", lambda w: ["-t", "Hi", "--text-file", str(put(w / "t.txt", "Hi"))] + out_wav(w), after=no_wav)
    add("seed_minus_1", "error", lambda w: ["-t", "Hi.", "--seed", "-1"] + out_wav(w), after=no_wav)
    add("seed_2_pow_70", "error", lambda w: ["-t", "Hi.", "--seed", str(2 ** 70)] + out_wav(w), after=no_wav)
    add("threads_0", "error", lambda w: ["-t", "Hi.", "--threads", "0"] + out_wav(w), after=no_wav)
    add("out_is_dir", "error", lambda w: ["-t", "Hi.", "-o", str(w / "bundle")])
    add("out_parent_is_file", "error", lambda w: ["-t", "Hi.", "-o", str(put(w / "f", "x") / "o.wav")])
    if os.geteuid() != 0:  # root writes into read-only dirs
        add("out_in_readonly_dir", "error", lambda w: ["-t", "Hi.", "-o", str(_readonly_dir(w) / "o.wav")])
    add("unknown_voice", "error", lambda w: ["-t", "Hi.", "-v", "ghost"] + out_wav(w), after=no_wav)
    add("unknown_mode", "error", lambda w: ["-t", "Hi.", "--mode", "nope"] + out_wav(w), after=no_wav)
    add("instruct2_without_instruct", "error", lambda w: ["-t", "Hi.", "--mode", "instruct2"] + out_wav(w), after=no_wav)
    add("sft_without_speaker_data", "any", lambda w: ["-t", "Hi.", "--mode", "sft"] + out_wav(w), slow=True)
    add("stream_two_sentences", "ok", lambda w: ["-t", "Hi. Bye.", "--stream"] + out_wav(w), slow=True)
    add("only_punctuation", "any", lambda w: ["-t", "?!…"] + out_wav(w))
    add("only_emoji", "any", lambda w: ["-t", "🙂🙂"] + out_wav(w))
    add("control_chars", "any", lambda w: ["-t", "Hi\x00\x07\x1b[31m there"] + out_wav(w))
    alphabet = list("abcdefgh ,'0123456789") + ["é", "ß", "中", "文", "日", "本", "ا", "ل", "\u200b", "\u0301", "🙂", "\t", "\x00"]
    for i in range(n_random):  # short, one piece each: every one that speaks costs a full synthesis
        n = int(rng.integers(1, 12))
        s = "".join(alphabet[int(j)] for j in rng.integers(0, len(alphabet), n))
        add(f"random_text_{i}", "any", lambda w, s=s: ["-t", s] + out_wav(w))
    return cases


def _readonly_dir(work: Path) -> Path:
    d = work / "ro"
    d.mkdir(exist_ok=True)
    d.chmod(0o555)
    return d


def manifest_cases(base: Base, rng: np.random.Generator, n_random: int) -> list[Case]:
    cases: list[Case] = []

    def add(name, expect, mutate, cmd="verify", after=None):
        def setup(work: Path, mutate=mutate, cmd=cmd):
            b = link_tree(base.bundle, work / "bundle")
            mutate(b)
            (work / ".orig_manifest").write_bytes((b / "manifest.json").read_bytes())
            if cmd == "verify":
                return ["verify", "--bundle", str(b)]
            if cmd == "synthesize":
                return ["synthesize", "-b", str(b), "-v", "demo", "-t", "Hi.", "-o", str(work / "out.wav")]
            if cmd == "voice":
                wav = put(work / "in.wav", wav_file(base.samples, base.rate))
                return ["voice", "add", "--bundle", str(b), "--name", "v2", "--wav", str(wav)]
            if cmd == "export":
                return ["export", "hift", "--model-dir", str(base.model), "--out", str(b), "--no-parity"]
            raise ValueError(cmd)

        cases.append(Case("manifest", f"{cmd}:{name}", expect, setup, after=after, timeout=120.0))

    def m_set(fn):
        def mutate(b: Path):
            m = manifest_of(b)
            fn(m)
            write_manifest(b, m)
        return mutate

    def first_graph(m):
        return next(iter(m["graphs"].values()))

    bad_manifests = {
        "json_list": lambda b: put(b / "manifest.json", "[1, 2, 3]"),
        "json_string": lambda b: put(b / "manifest.json", '"bundle"'),
        "bad_json": lambda b: put(b / "manifest.json", '{"schema_version": 1, "graphs": {'),
        "non_utf8": lambda b: put(b / "manifest.json", b'{"schema_version": 1, "x": "\xff\xfe"}'),
        "empty_file": lambda b: put(b / "manifest.json", b""),
        "schema_2": m_set(lambda m: m.update(schema_version=2)),
        "schema_string": m_set(lambda m: m.update(schema_version="1")),
        "graphs_list": m_set(lambda m: m.update(graphs=list(m["graphs"]))),
    }
    for name, mut in bad_manifests.items():
        for cmd in ("verify", "synthesize", "voice", "export"):
            add(name, "error", mut, cmd, after=bundle_unchanged if cmd in ("voice", "export") else None)

    def graph_without_file(m):
        del first_graph(m)["file"]

    def flow_mel_lens_empty(m):
        m["components"]["flow"]["mel_lens"] = []

    def graph_entry_string(m):
        k = next(iter(m["graphs"]))
        m["graphs"][k] = "oops"

    def voices_entry_no_file(m):
        del m["voices"]["demo"]["file"]

    def files_entry_list(m):
        m["files"] = ["a", "b"]

    def llm_component_missing_key(m):
        del m["components"]["llm"]["max_cache_len"]

    def constants_sample_rate_str(m):
        m["constants"]["sample_rate"] = "fast"

    def graph_inputs_missing(m):
        for g in m["graphs"].values():
            if g.get("component") == "hift":
                g["inputs"] = [{"name": "mel"}]

    for name, fn in [("graph_without_file", graph_without_file), ("graph_entry_string", graph_entry_string),
                     ("files_entry_list", files_entry_list)]:
        for cmd in ("verify", "synthesize"):
            add(name, "error", m_set(fn), cmd)
    for name, fn in [("flow_mel_lens_empty", flow_mel_lens_empty), ("voices_entry_no_file", voices_entry_no_file),
                     ("llm_component_missing_key", llm_component_missing_key), ("constants_sample_rate_str", constants_sample_rate_str),
                     ("graph_inputs_missing", graph_inputs_missing)]:
        add(name, "error", m_set(fn), "synthesize")

    def missing_graph_file(b: Path):
        (b / first_graph(manifest_of(b))["file"]).unlink()

    def flipped_graph_byte(b: Path):
        rel = first_graph(manifest_of(b))["file"]
        data = bytearray((b / rel).read_bytes())
        data[len(data) // 2] ^= 0xFF
        put(b / rel, bytes(data))

    def garbage_graph_matching_sha(b: Path):
        m = manifest_of(b)
        rel = next(g["file"] for g in m["graphs"].values() if g.get("component") == "hift")
        replace_listed_file(b, rel, bytes(rng.integers(0, 256, 3000, dtype=np.uint8)))

    def truncated_graph_matching_sha(b: Path):
        m = manifest_of(b)
        rel = next(g["file"] for g in m["graphs"].values() if g.get("component") == "hift")
        replace_listed_file(b, rel, (b / rel).read_bytes()[:5000])

    def voice_garbage_matching_sha(b: Path):
        replace_listed_file(b, "voices/demo.npz", b"PK\x03\x04 this is not a zip")

    def voice_missing_arrays_matching_sha(b: Path):
        replace_listed_file(b, "voices/demo.npz", npz_bytes(embedding=np.zeros(192, np.float32)))

    def voice_wrong_shapes_matching_sha(b: Path):
        replace_listed_file(b, "voices/demo.npz", npz_bytes(embedding=np.zeros(7, np.float32), speech_tokens=np.zeros((2, 3), np.int32),
                                                            prompt_mel=np.zeros(5, np.float32), prompt_text=np.array("hi")))

    def voice_nan_matching_sha(b: Path):
        with np.load(b / "voices/demo.npz") as z:
            v = {k: z[k] for k in z.files}
        v["embedding"] = np.full_like(v["embedding"], np.nan)
        replace_listed_file(b, "voices/demo.npz", npz_bytes(**v))

    def voice_pickled_object_matching_sha(b: Path):
        replace_listed_file(b, "voices/demo.npz", npz_bytes(embedding=np.array([object()], dtype=object)))

    def noise_garbage_matching_sha(b: Path):
        replace_listed_file(b, "flow/noise.npy", b"\x93NUMPY garbage")

    def noise_wrong_shape_matching_sha(b: Path):
        buf = io.BytesIO()
        np.save(buf, np.zeros((3,), np.float32))
        replace_listed_file(b, "flow/noise.npy", buf.getvalue())

    def vocab_garbage_matching_sha(b: Path):
        replace_listed_file(b, "text/vocab.json", b"[not json")

    for name, fn, cmds in [
        ("missing_graph_file", missing_graph_file, ("verify", "synthesize")),
        ("flipped_graph_byte", flipped_graph_byte, ("verify", "synthesize")),
        ("garbage_graph_matching_sha", garbage_graph_matching_sha, ("verify", "synthesize")),
        ("truncated_graph_matching_sha", truncated_graph_matching_sha, ("verify", "synthesize")),
        ("voice_garbage_matching_sha", voice_garbage_matching_sha, ("synthesize",)),
        ("voice_missing_arrays_matching_sha", voice_missing_arrays_matching_sha, ("synthesize",)),
        ("voice_wrong_shapes_matching_sha", voice_wrong_shapes_matching_sha, ("synthesize",)),
        ("voice_nan_matching_sha", voice_nan_matching_sha, ("synthesize",)),
        ("voice_pickled_object_matching_sha", voice_pickled_object_matching_sha, ("synthesize",)),
        ("noise_garbage_matching_sha", noise_garbage_matching_sha, ("synthesize",)),
        ("noise_wrong_shape_matching_sha", noise_wrong_shape_matching_sha, ("synthesize",)),
        ("vocab_garbage_matching_sha", vocab_garbage_matching_sha, ("synthesize",)),
    ]:
        for cmd in cmds:
            add(name, "error", fn, cmd)

    # random structural edits of the manifest: delete a key or swap a value's type somewhere
    def paths(obj, prefix=()):
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield prefix + (k,)
                yield from paths(v, prefix + (k,))
        elif isinstance(obj, list):
            for i, v in enumerate(obj[:3]):
                yield prefix + (i,)
                yield from paths(v, prefix + (i,))

    all_paths = list(paths(manifest_of(base.bundle)))
    replacements = [None, [], {}, "x", -1, 1e308, True, [[1]], {"a": 1}]
    for i in range(n_random):
        p = all_paths[int(rng.integers(0, len(all_paths)))]
        rep = (replacements + ["<delete>"])[int(rng.integers(0, len(replacements) + 1))] if i % 2 else "<delete>"

        def edit(m, p=p, rep=rep):
            node = m
            for k in p[:-1]:
                node = node[k]
            if rep == "<delete>":
                del node[p[-1]]
            else:
                node[p[-1]] = rep

        add(f"random_{'.'.join(map(str, p))}={rep!r}"[:120], "any", m_set(edit), "synthesize" if i % 3 else "verify")
    return cases


# a 1 KB YAML alias bomb: 9 levels, each a list of 9 references to the level below (9^9 leaves)
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def modeldir_cases(base: Base, rng: np.random.Generator, n_random: int) -> list[Case]:
    import torch

    cases: list[Case] = []
    yaml_text = (base.model / "cosyvoice2.yaml").read_text()
    hift_sd = torch.load(base.model / "hift.pt", weights_only=True)

    def add(name, expect, mutate, cmd="inspect", timeout=90.0, check=None, slow=False):
        def setup(work: Path, mutate=mutate, cmd=cmd):
            md = link_tree(base.model, work / "model")
            mutate(md)
            if cmd == "inspect":
                return ["inspect", "--model-dir", str(md)]
            return ["export", "hift", "--model-dir", str(md), "--out", str(work / "bundle")]

        def after(work: Path, check=check):
            probs = ["a bundle was written from a refused model dir"] if expect == "error" and (work / "bundle").exists() else []
            return probs + (check(work) if check else [])

        cases.append(Case("modeldir", f"{cmd}:{name}", expect, setup, timeout=timeout, after=after, slow=slow))

    def yaml_put(text):
        return lambda md: put(md / "cosyvoice2.yaml", text)

    nested_bomb = "extra:\n" + "".join("  " + ln + "\n" for ln in ALIAS_BOMB.splitlines())
    add("alias_bomb_top", "error", yaml_put(ALIAS_BOMB + yaml_text), timeout=10)
    add("alias_bomb_nested", "error", yaml_put(yaml_text + "\n" + nested_bomb), timeout=10)
    add("alias_bomb_export", "error", yaml_put(ALIAS_BOMB + yaml_text), cmd="export", timeout=10)
    add("yaml_list", "error", yaml_put("- 1\n- 2\n"))
    add("yaml_empty", "error", yaml_put(""))
    add("yaml_non_utf8", "error", yaml_put(b"sample_rate: 24000\nname: \xff\xfe\n"))
    add("yaml_python_object", "error", yaml_put("x: !!python/object/apply:os.system ['echo pwned']\n" + yaml_text))
    add("yaml_deep_nesting", "error", yaml_put("x: " + "[" * 5000 + "]" * 5000 + "\n" + yaml_text))
    add("yaml_bad_syntax", "error", yaml_put(yaml_text + "\n  : : :\n\t-"))
    add("yaml_ref_cycle", "error", yaml_put("a: !ref <b>\nb: !ref <a>\n" + yaml_text))
    add("config_json_list", "error", lambda md: put(md / "CosyVoice-BlankEN" / "config.json", "[]"))
    add("config_json_bad", "error", lambda md: put(md / "CosyVoice-BlankEN" / "config.json", "{"))

    def ckpt(sd, path="hift.pt"):
        def mutate(md):
            buf = io.BytesIO()
            torch.save(sd, buf)
            put(md / path, buf.getvalue())
        return mutate

    def with_value(fn):
        sd = {k: v.clone() for k, v in hift_sd.items()}
        fn(sd)
        return sd

    k0 = next(k for k, v in hift_sd.items() if v.is_floating_point() and v.numel() > 4)
    add("ckpt_nan_one_tensor", "error", ckpt(with_value(lambda sd: sd[k0].view(-1).__setitem__(0, float("nan")))), cmd="export")
    add("ckpt_inf_all", "error", ckpt({k: torch.full_like(v, float("inf")) if v.is_floating_point() else v for k, v in hift_sd.items()}),
        cmd="export")
    add("ckpt_nan_all", "error", ckpt({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in hift_sd.items()}),
        cmd="export")
    add("ckpt_int32", "error", ckpt({k: v.to(torch.int32) for k, v in hift_sd.items()}), cmd="export")
    add("ckpt_float16", "any", ckpt({k: v.half() for k, v in hift_sd.items()}), cmd="export", timeout=120, slow=True)
    add("ckpt_bool_tensor", "error", ckpt(with_value(lambda sd: sd.__setitem__(k0, sd[k0] > 0))), cmd="export")
    add("ckpt_missing_key", "error", ckpt(with_value(lambda sd: sd.pop(k0))), cmd="export")
    add("ckpt_wrong_shape", "error", ckpt(with_value(lambda sd: sd.__setitem__(k0, sd[k0].reshape(-1)[:3].clone()))), cmd="export")
    add("ckpt_list", "error", ckpt([1, 2, 3]), cmd="export")
    add("ckpt_empty_dict", "error", ckpt({}), cmd="export")

    class _Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    def pickle_payload(md):
        import pickle

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("archive/data.pkl", pickle.dumps({"x": _Evil()}))
            z.writestr("archive/version", "3\n")
        put(md / "hift.pt", buf.getvalue())

    def legacy_pickle(md):
        import pickle

        put(md / "hift.pt", pickle.dumps({"x": _Evil()}))

    # (run_case also flags any message that advises weights_only=False)
    add("ckpt_pickle_payload_zip", "error", pickle_payload, cmd="export")
    add("ckpt_pickle_payload_legacy", "error", legacy_pickle, cmd="export")
    add("ckpt_empty", "error", lambda md: put(md / "hift.pt", b""), cmd="export")
    add("ckpt_garbage", "error", lambda md: put(md / "hift.pt", bytes(rng.integers(0, 256, 5000, dtype=np.uint8))), cmd="export")
    good_ckpt = (base.model / "hift.pt").read_bytes()
    add("ckpt_truncated_half", "error", lambda md: put(md / "hift.pt", good_ckpt[: len(good_ckpt) // 2]), cmd="export")

    def safetensors_nan(md):
        from safetensors.torch import save_file

        (md / "hift.pt").unlink()
        save_file(with_value(lambda sd: sd[k0].view(-1).__setitem__(1, float("nan"))), str(md / "hift.safetensors"))

    add("safetensors_nan", "error", safetensors_nan, cmd="export")
    add("safetensors_garbage", "error", lambda md: ((md / "hift.pt").unlink(), put(md / "hift.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{bad}xxx")),
        cmd="export")
    for i in range(n_random):
        if i % 2 == 0:
            pos = int(rng.integers(0, len(yaml_text)))
            specials = "[]{}:&*!-\n'\"#|>"
            ch = specials[int(rng.integers(0, len(specials)))]
            add(f"random_yaml_char_{pos}_{ch!r}", "any", yaml_put(yaml_text[:pos] + ch + yaml_text[pos + 1:]))
        else:
            cut = int(rng.integers(0, len(good_ckpt)))
            add(f"random_ckpt_truncate_{cut}", "error", lambda md, cut=cut: put(md / "hift.pt", good_ckpt[:cut]), cmd="export")
    return cases


def signal_cases(base: Base) -> list[Case]:
    cases = []

    def tmp_exists(work: Path) -> bool:
        return any(p.name.startswith(".bundle.tmp-") for p in work.iterdir())

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        def setup(work: Path):
            link_tree(base.bundle, work / "bundle")
            (work / ".orig_manifest").write_bytes((work / "bundle" / "manifest.json").read_bytes())
            return ["export", "hift", "--model-dir", str(base.model), "--out", str(work / "bundle")]

        cases.append(Case("signal", f"export_update_{signal.Signals(sig).name}", "error", setup, signal=sig, signal_when=tmp_exists,
                          after=bundle_unchanged, timeout=120, slow=sig == signal.SIGHUP))

        def setup_new(work: Path):
            return ["export", "hift", "--model-dir", str(base.model), "--out", str(work / "bundle")]

        cases.append(Case("signal", f"export_new_{signal.Signals(sig).name}", "error", setup_new, signal=sig, signal_when=tmp_exists,
                          after=lambda w: ["a half bundle was left"] if (w / "bundle").exists() else [], timeout=120,
                          slow=sig != signal.SIGHUP))
    return cases


def onnx_cases(base: Base, rng: np.random.Generator, n_random: int) -> list[Case]:
    """Broken ONNX through `check` and `convert` (structural validation: the convert branch's job)."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh

    def small_model():
        w = nh.from_array(rng.standard_normal((4, 4)).astype(np.float32), "w")
        b = nh.from_array(np.zeros(4, np.float32), "b")
        shape = nh.from_array(np.array([1, 4], np.int64), "shape")
        nodes = [h.make_node("MatMul", ["x", "w"], ["y"], name="mm"), h.make_node("Add", ["y", "b"], ["z"], name="add"),
                 h.make_node("Relu", ["z"], ["r"], name="relu"), h.make_node("Reshape", ["r", "shape"], ["out"], name="reshape")]
        g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, [1, 4])],
                         [h.make_tensor_value_info("out", T.FLOAT, [1, 4])], [w, b, shape])
        return h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8)

    def mutated(fn):
        def build():
            m = small_model()
            fn(m)
            return m.SerializeToString()
        return build

    def drop_init(m):
        del m.graph.initializer[0]

    def dangling(m):
        m.graph.node[1].input[0] = "nowhere"

    def cycle(m):
        m.graph.node[0].input[0] = "r"

    def truncated_tensor(m):
        m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:10]

    def bad_int64(m):
        m.graph.initializer[2].raw_data = b"\x01\x02\x03"

    def wrong_dtype(m):
        m.graph.initializer[0].data_type = T.DOUBLE

    def huge_dims(m):
        m.graph.initializer[1].dims[:] = [1 << 40]

    def range_huge(m):
        m.graph.initializer.extend([nh.from_array(np.array(0, np.int64), "r0"), nh.from_array(np.array(1 << 62, np.int64), "r1"),
                                    nh.from_array(np.array(1, np.int64), "r2")])
        m.graph.node.append(h.make_node("Range", ["r0", "r1", "r2"], ["big"], name="range"))
        m.graph.output.append(h.make_tensor_value_info("big", T.INT64, None))

    def unknown_op(m):
        m.graph.node[2].op_type = "NoSuchOp"

    def duplicate_output(m):
        m.graph.node[1].output[0] = "y"

    broken = {"missing_initializer": drop_init, "dangling_input": dangling, "cycle": cycle, "truncated_tensor": truncated_tensor,
              "malformed_int64_initializer": bad_int64, "initializer_dtype_mismatch": wrong_dtype, "huge_dims": huge_dims,
              "range_2_pow_62": range_huge, "unknown_op": unknown_op, "duplicate_output_name": duplicate_output}
    builders = {k: mutated(v) for k, v in broken.items()}
    builders["garbage_bytes"] = lambda: bytes(rng.integers(0, 256, 500, dtype=np.uint8))
    builders["empty_file"] = lambda: b""
    valid = small_model().SerializeToString()
    builders["truncated_file"] = lambda: valid[: len(valid) // 2]
    cases: list[Case] = []

    def add(name, expect, build):
        for cmd in ("check", "convert"):
            def setup(work: Path, build=build, cmd=cmd):
                f = put(work / "in.onnx", build())
                return ["check", str(f)] if cmd == "check" else ["convert", str(f), str(work / "out.onnx")]

            def after(work: Path, expect=expect, cmd=cmd):
                return ["convert wrote OUT.onnx from a broken input"] if cmd == "convert" and expect == "error" and (work / "out.onnx").exists() else []

            cases.append(Case("onnx", f"{cmd}:{name}", expect, setup, after=after, timeout=60))

    add("valid", "ok", lambda: valid)
    for name, b in builders.items():
        add(name, "error", b)
    for i in range(n_random):
        pos = rng.integers(0, len(valid), size=int(rng.integers(1, 6)))

        def flip(pos=pos):
            b = bytearray(valid)
            for p in pos:
                b[int(p)] ^= 0xFF
            return bytes(b)

        add(f"random_flip_{'_'.join(map(str, pos))}", "any", flip)
    return cases


def all_cases(base: Base, *, seed: int = 0, n_random: int = 4, groups=None, ci: bool = False) -> list[Case]:
    out = []
    makers = {"wav": lambda rng: wav_cases(base, rng, n_random), "text": lambda rng: text_cases(base, rng, n_random),
              "manifest": lambda rng: manifest_cases(base, rng, n_random), "modeldir": lambda rng: modeldir_cases(base, rng, n_random),
              "signal": lambda rng: signal_cases(base), "onnx": lambda rng: onnx_cases(base, rng, n_random * 4)}
    for i, (g, make) in enumerate(makers.items()):
        if groups is None or g in groups:  # one generator per group: a group's cases do not depend on the others
            out.extend(c for c in make(np.random.default_rng([seed, i])) if not (ci and c.slow))
    return out


# ------------------------------------------------------------------------------------------ running
class _CaseTimeout(BaseException):
    pass


def _snapshot(work: Path) -> set[str]:
    return {str(p.relative_to(work)) for p in work.rglob("*")}


def _hidden_new(before: set[str], after: set[str]) -> list[str]:
    return sorted(p for p in after - before if any(part.startswith(".") and not part.startswith(".orig_") for part in Path(p).parts))


def run_inprocess(argv: list[str], stdin: bytes | None, timeout: float) -> tuple[int | None, str, str, str | None]:
    """(exit code, stdout, stderr, escaped exception text or 'timeout') of `sentis-tts ARGV`."""
    from click.testing import CliRunner

    from exporter.cli import main

    runner = CliRunner()
    escaped = None
    code: int | None = 0

    def on_alarm(signum, frame):
        raise _CaseTimeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    with runner.isolation(input=stdin or b"") as streams:
        out, err = streams[0], streams[1]
        try:
            main(list(argv))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except _CaseTimeout:
            escaped, code = "timeout", None
        except BaseException:  # noqa: BLE001 - the point: anything that escapes is a traceback
            escaped = traceback.format_exc()
            code = None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        stdout, stderr = out.getvalue().decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace")
    return code, stdout, stderr, escaped


def run_subprocess(case: Case, argv: list[str], work: Path) -> tuple[int | None, str, str, str | None]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    def default_signals():  # a background parent (nohup, `cmd &`) ignores SIGINT; the child must not inherit that
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)

    p = subprocess.Popen([sys.executable, "-m", "exporter.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         cwd=work, start_new_session=True, preexec_fn=default_signals)
    t0 = time.perf_counter()
    sent = False
    while p.poll() is None and time.perf_counter() - t0 < case.timeout:
        if not sent and case.signal_when(work):
            time.sleep(0.3)
            p.send_signal(case.signal)
            sent = True
        time.sleep(0.05)
    if p.poll() is None:
        p.kill()
        p.wait()
        return None, "", "", "timeout"
    out, err = p.communicate()
    if not sent:
        return p.returncode, out.decode(), err.decode(), "the signal was never sent (the temp dir never appeared)"
    return p.returncode, out.decode(), err.decode(), None


def one_line_error(stderr: str) -> bool:
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("warning: ")]
    return len(lines) == 1 and lines[0].startswith("error: ")


def classify(case: Case, code, stdout: str, stderr: str, escaped: str | None, problems: list[str]) -> tuple[str, str]:
    text = stdout + stderr
    if escaped == "timeout":
        return "hang", f"ran past {case.timeout:g} s"
    if escaped is not None and case.signal is None:
        return "traceback", escaped.strip().splitlines()[-1]
    if "Traceback (most recent call last)" in text or code == 3:
        return "traceback", (stderr.strip().splitlines() or ["exit 3"])[-1]
    if problems:
        return "leftover", "; ".join(problems)
    if case.signal is not None:
        want = 128 + int(case.signal)
        if escaped:
            return "unclear", escaped
        return ("ok", "") if code == want else ("unclear", f"exit {code}, expected {want} after {signal.Signals(case.signal).name}")
    warned = any(ln.startswith("warning: ") for ln in stderr.splitlines())
    if code == 0:
        if case.expect == "error" or (case.expect == "reported" and not warned):
            return "silent_success", stdout.strip().splitlines()[-1] if stdout.strip() else "exit 0"
        return "ok", ""
    if case.expect == "ok":
        return "false_refusal", stderr.strip()[-300:]
    if code in (1, 2) and one_line_error(stderr):
        return "ok", ""
    if case.group == "onnx" and code == 1 and ": FAIL (" in stdout and not stderr.strip():
        return "ok", ""  # `check`/`convert` refusing with their violation report (documented exit 1)
    return "unclear", f"exit {code}: {stderr.strip()[-300:]!r}"


def run_case(case: Case, root: Path, index: int) -> Result:
    work = root / f"{index:04d}_{case.group}"
    work.mkdir(parents=True)
    argv = case.setup(work)
    before = _snapshot(work)
    t0 = time.perf_counter()
    if case.signal is not None:
        code, out, err, escaped = run_subprocess(case, argv, work)
    else:
        code, out, err, escaped = run_inprocess(argv, case.stdin, case.timeout)
    dt = time.perf_counter() - t0
    problems = [f"left behind: {', '.join(_hidden_new(before, _snapshot(work))[:3])}"] if _hidden_new(before, _snapshot(work)) else []
    if case.after is not None and escaped != "timeout":
        try:
            problems += case.after(work)
        except Exception as e:  # noqa: BLE001
            problems.append(f"after-check failed: {type(e).__name__}: {e}")
    if "weights_only=False" in out + err:
        problems.append("the message advises weights_only=False")
    cat, detail = classify(case, code, out, err, escaped, problems)
    for p in work.rglob("*"):  # undo read-only dirs so the tree can be removed
        if p.is_dir():
            p.chmod(0o755)
    shutil.rmtree(work, ignore_errors=True)
    return Result(case, cat, code, dt, detail)


def summarize(results: list[Result]) -> dict:
    counts = {c: 0 for c in CATEGORIES}
    per_group: dict[str, dict[str, int]] = {}
    for r in results:
        counts[r.category] += 1
        g = per_group.setdefault(r.case.group, {c: 0 for c in CATEGORIES})
        g[r.category] += 1
    return {"cases": len(results), "counts": counts, "per_group": per_group,
            "seconds": round(sum(r.seconds for r in results), 1),
            "failures": [{"case": f"{r.case.group}/{r.case.name}", "category": r.category, "exit": r.code, "detail": r.detail}
                         for r in results if r.category != "ok"]}


def run_catalogue(base: Base, root: Path, *, seed: int = 0, n_random: int = 4, groups=None, ci: bool = False, log=None) -> dict:
    import warnings

    root.mkdir(parents=True, exist_ok=True)
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        for i, case in enumerate(all_cases(base, seed=seed, n_random=n_random, groups=groups, ci=ci)):
            r = run_case(case, root, i)
            results.append(r)
            if log:
                log(f"{r.category:15s} {r.seconds:6.1f}s  {case.group}/{case.name}  {r.detail[:150]}")
    return summarize(results)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, default=Path("demo_out"), help="a `sentis-tts demo` output folder (built if missing)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--random", type=int, default=40, help="random mutations per group (the CI run uses 3)")
    ap.add_argument("--groups", default=None, help="comma-separated subset of wav,text,manifest,modeldir,signal,onnx")
    ap.add_argument("--json", type=Path, default=None, help="write the summary here")
    ap.add_argument("--ci", action="store_true", help="only the cases the CI run has (no slow ones)")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if not (a.base / "bundle" / "manifest.json").is_file():
        from exporter.demo import run_demo

        run_demo(a.base, seed=0, threads=2, log=print, max_new_tokens=40)
    import tempfile

    work = a.work or Path(tempfile.mkdtemp(prefix="fuzz-catalogue-"))
    summary = run_catalogue(load_base(a.base), work, seed=a.seed, n_random=a.random,
                            groups=a.groups.split(",") if a.groups else None, ci=a.ci, log=print)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=1))
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))
    bad = sum(summary["counts"][c] for c in CATEGORIES if c != "ok")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
