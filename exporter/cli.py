"""`sentis-tts`: export text-to-speech models (CosyVoice2, ZipVoice families) to Sentis-clean ONNX
bundles, check them, run them. Family-specific steps are asked of exporter/families/.

Every user error is printed as one line (`error: …`) with a non-zero exit code.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from . import __version__
from .errors import SentisTTSError
from .families import family_names

ALL = "all"
FAMILY_NAMES = family_names()


def _max_abs(parity: dict) -> str:
    if parity.get("skipped"):
        return "skipped"
    vals = list(parity.get("max_abs", {}).values())
    exact = parity.get("exact", {})
    parts = []
    if vals:
        tol = max([parity.get("atol", {}).get(k, 0) for k in parity.get("max_abs", {})] or [0])  # max-abs outputs
        parts.append(f"{max(vals):.2e} (≤{tol:g})")
    if exact:
        parts.append("exact" if all(exact.values()) else "MISMATCH")
    return ", ".join(parts) or "-"


def print_graph_table(manifest: dict, names: list[str] | None = None) -> None:
    from graph_passes.sentis.check import human_size

    rows = [("graph", "size", "nodes", "checker", "parity max-abs (tol)")]
    for name, g in manifest["graphs"].items():
        if names is not None and name not in names:
            continue
        ck = g.get("checker", {})
        rows.append((
            name,
            human_size(g.get("bytes", 0)),
            str(ck.get("nodes", "?")),
            f"ok ({ck.get('sentis_version')})" if ck.get("ok") else "FAIL",
            _max_abs(g.get("parity", {})),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sentis-tts")
def cli() -> None:
    """Turn a text-to-speech model (CosyVoice2, ZipVoice / ZipVoice-Distill) into ONNX graphs that
    Unity Sentis imports, prove they compute what PyTorch computes, and run them without PyTorch.

    \b
    Typical use:
      sentis-tts demo                                   # tiny seeded model, end to end
      sentis-tts demo --family zipvoice                 # the same for the ZipVoice family
      sentis-tts inspect --model-dir CosyVoice2-0.5B    # what is in a model directory
      sentis-tts export all --model-dir CosyVoice2-0.5B --out bundle/
      sentis-tts check bundle/*.onnx                    # Sentis compatibility report
      sentis-tts convert third_party.onnx clean.onnx --input-shape x=1,80,256
    """


# ------------------------------------------------------------------------------------------------
@cli.command()
@click.option("--model-dir", "-m", required=True, type=click.Path(path_type=Path),
              help="Model directory in its official layout (the family is detected from its files).")
@click.option("--json", "as_json", is_flag=True, help="Print the parsed configuration as JSON.")
def inspect(model_dir: Path, as_json: bool) -> None:
    """Read a model directory (safely: nothing in the yaml is imported or executed) and show
    its hyper-parameters and which files are present."""
    import json

    from .families import detect_family

    fam = detect_family(model_dir)
    md = fam.open(model_dir)
    if as_json:
        click.echo(json.dumps({"family": fam.name, "config": fam.config_dict(md), "files": fam.inventory(md)}, indent=2))
        return
    click.echo(f"model dir: {md.root}")
    click.echo(f"  family: {fam.name} ({fam.title})")
    for line in fam.describe(md):
        click.echo(line)
    for name, state in fam.inventory(md).items():
        click.echo(f"  {name:32s} {state}")


# ------------------------------------------------------------------------------------------------
@cli.command()
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Directory to create.")
@click.option("--family", type=click.Choice(FAMILY_NAMES), default="cosyvoice2", show_default=True, help="Model family.")
@click.option("--size", type=click.Choice(["tiny", "full"]), default="tiny", show_default=True,
              help="tiny: small dims for tests; full: the family's real dims (CosyVoice2-0.5B ≈3 GB) for benchmarks.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["pt", "safetensors"]), default="pt", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing directory.")
def fixture(out: Path, family: str, size: str, seed: int, fmt: str, overwrite: bool) -> None:
    """Write a model directory in the family's official layout with seeded random weights
    (weights cannot be downloaded here; this exercises the real loading path)."""
    from .families import get_family

    if out.exists() and not overwrite:
        raise SentisTTSError(f"{out} exists; pass --overwrite to replace it")
    t0 = time.perf_counter()
    get_family(family).build_fixture(out, size=size, seed=seed, fmt=fmt, overwrite=overwrite)
    click.echo(f"wrote {size} {family} model dir {out} in {time.perf_counter() - t0:.1f} s")


# ------------------------------------------------------------------------------------------------
def _export_options(fp16, opset, sentis_version, no_parity, seed, threads, flow_len, max_cache_len, prefill_chunk, hift_frames):
    from .spec import ExportOptions

    return ExportOptions(fp16=fp16, opset=opset, sentis_version=sentis_version, parity=not no_parity, seed=seed,
                         threads=threads, flow_lens=tuple(flow_len), max_cache_len=max_cache_len,
                         prefill_chunk=prefill_chunk, hift_frames=hift_frames)


class ConsoleProgress:
    """Export progress: on a terminal one progress bar per component (graphs × stages, with the
    current graph and stage); in logs/CI one line per stage and per finished graph."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.tty = sys.stdout.isatty()
        self.bar = None
        self.t0 = time.perf_counter()

    def component_start(self, comp: str, graphs: list[str]) -> None:
        self.t0 = time.perf_counter()
        if self.quiet:
            return
        if self.tty:
            from .export import STAGES

            self.bar = click.progressbar(length=max(1, len(graphs) * len(STAGES)), label=f"[{comp}] {len(graphs)} graph(s)",
                                         item_show_func=lambda x: x or "", show_eta=False)
            self.bar.__enter__()
        else:
            click.echo(f"[{comp}] {len(graphs)} graph(s): {', '.join(graphs)}")

    def stage(self, comp: str, graph: str, stage: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:  # a stage starting completes the one before it (not the first of a graph)
            self.bar.update(0 if stage == "tracing" else 1, f"{graph}: {stage}")
        else:
            click.echo(f"[{comp}]   {graph}: {stage} …")

    def graph_done(self, comp: str, graph: str, res) -> None:
        if self.bar is not None:
            self.bar.update(1, f"{graph}: done in {res.seconds:.1f} s")
        elif not self.quiet:
            click.echo(f"[{comp}]   {graph}: done in {res.seconds:.1f} s")

    def component_done(self, comp: str) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        if not self.quiet:
            click.echo(f"[{comp}] done in {time.perf_counter() - self.t0:.1f} s")


def run_export(model_dir: Path, out: Path, components: list[str], options, *, overwrite: bool, quiet: bool = False) -> dict:
    from .export import export_components
    from .families import open_model_dir

    md = open_model_dir(model_dir)
    mode = "create" if overwrite else "update"
    progress = ConsoleProgress(quiet)
    try:
        manifest = export_components(md, out, components, options, mode=mode, overwrite=overwrite, progress=progress)
    finally:
        if progress.bar is not None:
            progress.bar.__exit__(None, None, None)
    if not quiet:
        click.echo("")
        print_graph_table(manifest)
        click.echo(f"\nbundle: {out}")
    return manifest


_COMPONENT_HELP = ("Component(s) to export: all, or the family's: cosyvoice2: llm, flow, hift, speech_tokenizer, campplus, text; "
                   "zipvoice: text_encoder, fm_decoder, vocos, text.")


@cli.command()
@click.argument("components", nargs=-1, required=True)
@click.option("--model-dir", "-m", required=True, type=click.Path(path_type=Path),
              help="Model directory in its official layout (CosyVoice2, ZipVoice; detected from its files).")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Bundle folder (created, or updated in place atomically).")
@click.option("--fp16", is_flag=True, help="Store weights as float16 (graph inputs/outputs stay float32).")
@click.option("--opset", type=click.IntRange(15, 17), default=17, show_default=True, help="ONNX opset (Sentis-safe range 15-17).")
@click.option("--sentis-version", default="2.1", show_default=True, help="Oldest Sentis version the graphs must import in.")
@click.option("--flow-len", type=int, multiple=True, help="Fixed mel length(s) of the flow graphs; repeat for buckets (e.g. --flow-len 256 --flow-len 512).")
@click.option("--max-cache-len", type=int, default=None, help="LLM KV-cache capacity in positions (default from the component).")
@click.option("--prefill-chunk", type=int, default=None, help="LLM prefill chunk length (default from the component).")
@click.option("--hift-frames", type=int, default=None, help="Mel frames per HiFT chunk graph (default from the component).")
@click.option("--no-parity", is_flag=True, help="Skip the PyTorch-vs-ONNX parity measurement (not recommended).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the parity inputs.")
@click.option("--threads", type=int, default=max(1, min(4, os.cpu_count() or 1)), show_default=True, help="CPU threads for parity runs.")
@click.option("--overwrite", is_flag=True, help="Replace the bundle instead of updating it.")
@click.option("--profile", default=None, help="Export profile: a yaml file or a name from configs/ (e.g. 'full', 'tiny'). "
              "Options given on the command line win over the profile.")
@click.pass_context
def export(ctx, components, model_dir, out, fp16, opset, sentis_version, flow_len, max_cache_len, prefill_chunk, hift_frames,
           no_parity, seed, threads, overwrite, profile) -> None:
    """Export COMPONENTS of a model directory into a bundle: every graph is traced, run through
    the graph passes, checked for Sentis, and compared with its PyTorch module (max-abs error
    and tolerance are written to manifest.json).

    \b
    Examples:
      sentis-tts export all  --model-dir CosyVoice2-0.5B --out bundle/
      sentis-tts export llm  --model-dir CosyVoice2-0.5B --out bundle/ --fp16
      sentis-tts export flow --model-dir CosyVoice2-0.5B --out bundle/ --flow-len 256 --flow-len 512
    """
    from .families import detect_family

    family = detect_family(model_dir)
    comps = list(components)
    if ALL in comps:
        comps = family.available_components()
    unknown = [c for c in comps if c not in family.components]
    if unknown:
        raise SentisTTSError(f"unknown {family.name} component(s) {', '.join(unknown)}; "
                             f"choose from: all, {', '.join(family.components)}")
    opts = _export_options(fp16, opset, sentis_version, no_parity, seed, threads, flow_len, max_cache_len, prefill_chunk, hift_frames)
    if profile:
        from click.core import ParameterSource

        from .profiles import apply_profile, load_profile

        param_to_field = {"flow_len": "flow_lens", "no_parity": "parity"}
        explicit = {param_to_field.get(n, n) for n in ctx.params if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE}
        apply_profile(opts, load_profile(profile), explicit)
    run_export(model_dir, out, comps, opts, overwrite=overwrite)


# ------------------------------------------------------------------------------------------------
@cli.command()
@click.option("--bundle", "-b", required=True, type=click.Path(path_type=Path), help="Bundle folder.")
@click.option("--sentis-version", default=None, help="Re-check the graphs for this Sentis version (default: the one recorded).")
def verify(bundle: Path, sentis_version: str | None) -> None:
    """Verify a bundle: every file's sha256 matches the manifest and every graph passes the
    Sentis checker again."""
    from graph_passes import GraphPassError
    from graph_passes._graph import load_model
    from graph_passes.sentis import check_model
    from graph_passes.validate import validate_model
    from runtime_ref.bundle import Bundle

    b = Bundle.open(bundle, verify=True)
    bad = 0
    for name, g in b.manifest["graphs"].items():
        ver = sentis_version or g.get("checker", {}).get("sentis_version", "2.1")
        try:  # structural validation first: a broken graph is never "checker ok"
            validate_model(load_model(bundle / g["file"]), path=str(bundle / g["file"]), what=f"{name} ({g['file']})")
        except GraphPassError as exc:
            raise SentisTTSError(str(exc)) from None
        rep = check_model(bundle / g["file"], ver, allowed_symbolic_dims=g.get("symbolic_dims", {}).keys())
        click.echo(f"{name:28s} sha256 ok  checker {'ok' if rep.ok else 'FAIL'} ({ver})")
        if not rep.ok:
            bad += 1
            click.echo(rep.format())
    if bad:
        raise SentisTTSError(f"{bad} graph(s) failed the Sentis checker")
    click.echo(f"{len(b.manifest['graphs'])} graph(s) verified")


# ------------------------------------------------------------------------------------------------
@cli.command()
@click.option("--bundle", "-b", required=True, type=click.Path(path_type=Path, file_okay=False), help="Bundle folder.")
@click.option("--voice", "-v", "voice_name", required=True, help="Voice name in the bundle (sentis-tts voice add / import-spk2info).")
@click.option("--text", "-t", default=None, help="Text to speak. Use --text-file, or pipe it on stdin, for long text.")
@click.option("--text-file", type=click.File("r", encoding="utf-8"), default=None, help="Read the text from a file ('-' = stdin).")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path, dir_okay=False), help="Output WAV (16-bit PCM).")
@click.option("--mode", type=click.Choice(["zero_shot", "cross_lingual", "instruct2", "sft"]), default=None,
              help="Default: zero_shot when the voice has a transcript, instruct2 with --instruct, else cross_lingual.")
@click.option("--instruct", default=None, help="Instruction for instruct2 mode, e.g. 'Speak slowly and calmly.'")
@click.option("--stream", is_flag=True, help="Run the streaming path (official chunk schedule) and report time to first audio.")
@click.option("--bistream", is_flag=True, help="Text arrives as a stream: each line of --text-file/stdin is fed as it is read "
              "(official bistream schedule; speech starts before the text is complete). Implies --stream.")
@click.option("--seed", type=int, default=0, show_default=True, help="One seed for every random draw (sampling, vocoder noise).")
@click.option("--no-normalize", is_flag=True, help="Skip text normalisation (numbers, symbols).")
@click.option("--no-japanese-reading", is_flag=True, help="Keep kanji as written instead of kana readings (Japanese).")
@click.option("--threads", type=int, default=max(1, min(4, os.cpu_count() or 1)), show_default=True)
def synthesize(bundle, voice_name, text, text_file, out, mode, instruct, stream, bistream, seed, no_normalize, no_japanese_reading,
               threads) -> None:
    """Speak TEXT with a voice of the bundle, on onnxruntime + numpy only (no PyTorch), and write
    a WAV. Same seed, same bundle → same samples.

    \b
    Examples:
      sentis-tts synthesize -b bundle/ -v alice -t "Hello there." -o hello.wav
      cat chapter.txt | sentis-tts synthesize -b bundle/ -v alice --text-file - -o chapter.wav
      sentis-tts synthesize -b bundle/ -v alice -t "Hi!" --instruct "Speak happily." -o hi.wav --stream
    """
    from runtime_ref.audio import write_wav
    from runtime_ref.bundle import Bundle
    from runtime_ref.families import check_request_options, runtime_family

    if text is not None and text_file is not None:
        raise SentisTTSError("give the text either with --text or with --text-file, not both")
    lines = None
    if bistream:
        if text is not None:
            lines = iter([text])
        elif text_file is not None:
            lines = iter(text_file)
        elif sys.stdin is not None and not sys.stdin.isatty():
            lines = iter(sys.stdin)
        else:
            raise SentisTTSError("no text: --bistream reads --text-file FILE (or stdin) line by line")
        text = "(streamed)"
    elif text is None:
        if text_file is None:
            if sys.stdin is None or sys.stdin.isatty():
                raise SentisTTSError("no text: pass --text \"...\", --text-file FILE, or pipe the text on stdin")
            text = sys.stdin.read()
        else:
            text = text_file.read()
    if not text.strip():
        raise SentisTTSError("the text to synthesize is empty")
    t0 = time.perf_counter()
    b = Bundle.open(bundle, threads=threads)
    family = runtime_family(b.manifest)
    check_request_options(family, {"mode": mode, "instruct": instruct, "bistream": bistream})
    if stream and not family.streaming:
        raise SentisTTSError(f"{family.name} bundles have no streaming path (the whole utterance is one solve); drop --stream")
    popts = {k: False for k, off in (("normalize", no_normalize), ("japanese_reading", no_japanese_reading)) if off}
    pipe = family.open(b, **popts)
    request = {k: v for k, v in (("mode", mode), ("instruct", instruct)) if v is not None}
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    if stream or bistream:
        import numpy as np

        chunks, first = [], None
        gen = (pipe.stream_bistream(lines, voice_name, seed=seed, **request) if bistream
               else pipe.stream(text, voice_name, seed=seed, **request))
        for chunk in gen:
            if first is None:
                first = time.perf_counter() - t0
            chunks.append(chunk)
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    else:
        audio = pipe.synthesize(text, voice_name, seed=seed, **request).audio
        first = None
    dt = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    write_wav(out, audio, pipe.sample_rate)
    secs = audio.size / pipe.sample_rate
    msg = f"wrote {out}: {secs:.2f} s of audio in {dt:.2f} s (RTF {dt / max(secs, 1e-9):.2f}; bundle load {t_load:.1f} s)"
    if first is not None:
        msg += f"; first audio after {first:.2f} s"
    click.echo(msg)


# ------------------------------------------------------------------------------------------------
@cli.command()
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("demo_out"), show_default=True,
              help="Folder for the demo model dir, bundle and outputs (replaced if it exists).")
@click.option("--family", type=click.Choice(FAMILY_NAMES), default="cosyvoice2", show_default=True,
              help="Model family of the built-in tiny model.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=max(1, min(4, os.cpu_count() or 1)), show_default=True)
def demo(out: Path, family: str, seed: int, threads: int) -> None:
    """Run the main job on the built-in tiny model: build a seeded tiny model directory in the
    official layout, export every component (Sentis checker + parity vs PyTorch per graph), bake a
    voice from a synthetic prompt with onnxruntime only, synthesize a sentence with runtime_ref and
    with the PyTorch reference (non-streaming and streaming), and write OUT/report.md with the
    parity table and PNG plots, plus OUT/demo.wav."""
    from .families import get_family

    t0 = time.perf_counter()
    res = get_family(family).run_demo(out, seed=seed, threads=threads, log=click.echo)
    click.echo(f"report: {out / 'report.md'}   audio: {out / 'demo.wav'}")
    if not res["ok"]:
        raise SentisTTSError("end-to-end parity is outside its targets; see report.md")
    click.echo(f"demo finished in {time.perf_counter() - t0:.1f} s: every graph Sentis-clean, parity within tolerance")


def _add_graph_commands() -> None:
    try:
        from .cli_graph import check_command, convert_command
    except ImportError:  # pragma: no cover - during development only
        return
    cli.add_command(check_command, "check")
    cli.add_command(convert_command, "convert")


_add_graph_commands()

from .cli_voice import voice_group  # noqa: E402  (prompt voices: `sentis-tts voice add|import-spk2info`)
cli.add_command(voice_group, "voice")


def main(argv: list[str] | None = None) -> None:
    from runtime_ref.errors import RuntimeRefError

    try:
        rv = cli.main(args=argv, prog_name="sentis-tts", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (SentisTTSError, RuntimeRefError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    else:
        sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
