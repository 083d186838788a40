"""`sentis-tts`: export text-to-speech models (CosyVoice2, ZipVoice families) to Sentis-clean ONNX
bundles, check them, run them. Family-specific steps are asked of exporter/families/.

Every failure is printed as one line on stderr, `error: <what> (<how to fix>)`, with a documented
exit code (docs/user_guide.md): 0 ok, 1 bad input (a project error or an OS error on a file), 2
usage (bad option or argument), 3 internal error (a bug: the line says so and asks for a report),
128+N killed by signal N (SIGINT 130, SIGTERM 143, SIGHUP 129; temp files are removed first).
`sentis-tts --debug ...` (or SENTIS_TTS_DEBUG=1) also prints the traceback.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

import click

from . import __version__
from .errors import SentisTTSError
from .families import family_names

ALL = "all"
FAMILY_NAMES = family_names()
EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
SEED = click.IntRange(0, 2 ** 63 - 1)  # numpy SeedSequence and torch.manual_seed both take these
THREADS = click.IntRange(1, 256)
POSITIVE = click.IntRange(1, 1 << 24)
REPORT_HINT = "this is a bug in sentis-tts: please report it with the output of `sentis-tts --debug <same command>`"


class Terminated(BaseException):
    """SIGTERM/SIGHUP as an exception, so that every `with`/`finally` (temp dirs) cleans up."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum, frame):
    for s in (signal.SIGTERM, signal.SIGHUP):  # a second signal must not interrupt the cleanup
        signal.signal(s, signal.SIG_IGN)
    raise Terminated(signum)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def format_failure(exc: BaseException) -> tuple[str, int]:
    """(one-line message without the 'error: ' prefix, exit code) for any exception."""
    from graph_passes.errors import GraphPassError
    from runtime_ref.errors import RuntimeRefError

    if isinstance(exc, click.exceptions.UsageError):
        ctx = exc.ctx
        cmd = ctx.command_path if ctx is not None else "sentis-tts"
        return f"{_one_line(exc.format_message()).rstrip('.')} (see `{cmd} --help`)", EXIT_USAGE
    if isinstance(exc, click.exceptions.ClickException):
        return _one_line(exc.format_message()), exc.exit_code
    if isinstance(exc, (SentisTTSError, RuntimeRefError, GraphPassError)):
        return _one_line(str(exc)), EXIT_INPUT
    if isinstance(exc, (click.exceptions.Abort, KeyboardInterrupt)):
        return "interrupted (temporary files were removed)", 128 + signal.SIGINT
    if isinstance(exc, Terminated):
        return f"terminated by {signal.Signals(exc.signum).name} (temporary files were removed)", 128 + exc.signum
    if isinstance(exc, MemoryError):
        return "out of memory (close other programs, or use a machine with more RAM)", EXIT_INPUT
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc} (check the path and its permissions)", EXIT_INPUT
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{exc.strerror or exc} (check the disk and the paths given)", EXIT_INPUT
    msg = _one_line(str(exc))[:300]
    return f"internal error: {type(exc).__name__}{': ' + msg if msg else ''} ({REPORT_HINT})", EXIT_INTERNAL


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {_one_line(str(message))}", err=True)


class SentisGroup(click.Group):
    """The top-level group: `main` turns every failure into one `error:` line and an exit code
    (also when invoked through click's CliRunner), and turns SIGTERM/SIGHUP into an exception
    so temp dirs are cleaned up before the process exits."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: D102
        args = list(sys.argv[1:] if args is None else args)
        debug = bool(os.environ.get("SENTIS_TTS_DEBUG")) or "--debug" in args[: next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))]
        old = {}
        for s in (signal.SIGTERM, signal.SIGHUP):
            try:
                old[s] = signal.signal(s, _on_signal)
            except ValueError:  # not the main thread: leave signals alone
                pass
        code = EXIT_OK
        show_warning = warnings.showwarning
        warnings.showwarning = _show_warning
        try:
            rv = super().main(args=args, prog_name=prog_name or "sentis-tts", complete_var=complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else EXIT_OK
        except click.exceptions.Exit as e:
            code = e.exit_code
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (EXIT_OK if e.code is None else EXIT_INPUT)
        except BaseException as e:  # noqa: BLE001 - every failure becomes one line
            msg, code = format_failure(e)
            if debug:
                traceback.print_exception(e, file=sys.stderr)
            try:
                click.echo(f"error: {msg}", err=True)
            except Exception:  # noqa: BLE001 - stderr gone (closed pipe): the exit code still tells
                pass
        finally:
            warnings.showwarning = show_warning
            for s, h in old.items():
                signal.signal(s, h)
        if standalone_mode:
            sys.exit(code)
        return code


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
    for k, kind in parity.get("compare", {}).items():  # outputs compared another way (relative RMS, circular)
        if kind != "max_abs" and k in parity.get("error", {}):
            parts.append(f"{k} {kind.replace('_', ' ')} {parity['error'][k]:.2e} (≤{parity['atol'][k]:g})")
    return ", ".join(parts) or "-"


def print_graph_table(manifest: dict, names: list[str] | None = None) -> None:
    from graph_passes.sentis.check import human_size

    rows = [("graph", "size", "nodes", "checker", "parity vs PyTorch (tol)")]
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


@click.group(cls=SentisGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sentis-tts")
@click.option("--debug", is_flag=True, help="On an error, also print the Python traceback (for bug reports).")
def cli(debug: bool) -> None:
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
@click.option("--seed", type=SEED, default=0, show_default=True)
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
                         prefill_chunk=prefill_chunk, hift_frames=_one_or_tuple(hift_frames))


def _one_or_tuple(values):
    values = tuple(values or ())
    return None if not values else values[0] if len(values) == 1 else values


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
@click.option("--flow-len", type=POSITIVE, multiple=True, help="Fixed mel length(s) of the flow graphs; repeat for buckets (e.g. --flow-len 256 --flow-len 512).")
@click.option("--max-cache-len", type=POSITIVE, default=None, help="LLM KV-cache capacity in positions (default from the component).")
@click.option("--prefill-chunk", type=POSITIVE, default=None, help="LLM prefill chunk length (default from the component).")
@click.option("--hift-frames", type=POSITIVE, multiple=True,
              help="Mel frames per HiFT chunk graph (default from the component); CosyVoice3: repeat for several graph sizes.")
@click.option("--no-parity", is_flag=True, help="Skip the PyTorch-vs-ONNX parity measurement (not recommended).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the parity inputs.")
@click.option("--threads", type=THREADS, default=max(1, min(4, os.cpu_count() or 1)), show_default=True, help="CPU threads for parity runs.")
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
        ck = g.get("checker") if isinstance(g.get("checker"), dict) else {}
        ver = sentis_version or str(ck.get("sentis_version", "2.1"))
        dims = g.get("symbolic_dims") if isinstance(g.get("symbolic_dims"), dict) else {}
        try:  # structural validation first: a broken graph is never "checker ok"
            validate_model(load_model(bundle / g["file"]), path=str(bundle / g["file"]), what=f"{name} ({g['file']})")
            rep = check_model(bundle / g["file"], ver, allowed_symbolic_dims=dims.keys())
        except GraphPassError as exc:
            raise SentisTTSError(f"{exc} (the file matches its sha256, so the bundle was written broken: re-export it)") from None
        click.echo(f"{name:28s} sha256 ok  checker {'ok' if rep.ok else 'FAIL'} ({ver})")
        if not rep.ok:
            bad += 1
            click.echo(rep.format())
    if bad:
        raise SentisTTSError(f"{bad} graph(s) failed the Sentis checker")
    click.echo(f"{len(b.manifest['graphs'])} graph(s) verified")


# ------------------------------------------------------------------------------------------------
def decode_text(data: bytes, where: str) -> str:
    """UTF-8 (a BOM is dropped) or one clear error naming the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SentisTTSError(f"{where}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                             "save it as UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8 in.txt > out.txt`)") from None


def _text_lines(stream, where: str):
    """Lines of a binary stream, decoded one by one as they arrive (bistream)."""
    offset = 0
    for raw in stream:
        try:
            yield raw.decode("utf-8-sig" if offset == 0 else "utf-8")
        except UnicodeDecodeError as e:
            raise SentisTTSError(f"{where}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {offset + e.start}); "
                                 "save it as UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8 in.txt > out.txt`)") from None
        offset += len(raw)


def check_output_path(out: Path) -> None:
    """Refuse an output file that cannot be written, before any work is done."""
    if out.is_dir():
        raise SentisTTSError(f"-o {out} is a directory (give a file name, e.g. -o {out / 'speech.wav'})")
    anc = out.parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise SentisTTSError(f"-o {out}: {anc} is a file, not a directory (choose another output path)")
    if not os.access(anc, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise SentisTTSError(f"-o {out}: permission denied (choose a path you can write to)")


def write_wav_atomic(out: Path, audio, rate: int) -> None:
    """Write the WAV next to its final name and rename it into place (no half-written file)."""
    from runtime_ref.audio import write_wav

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # plain open(): the file gets the user's umask
    try:
        write_wav(tmp, audio, rate)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _progress_kw(method, progress) -> dict:
    """{'progress': progress} if the family's pipeline method reports progress, else {}."""
    import inspect as _inspect

    return {"progress": progress} if "progress" in _inspect.signature(method).parameters else {}


class SynthProgress:
    """On a terminal: one self-overwriting stderr line for texts of several pieces (pieces done /
    total, audio seconds, ETA). Elsewhere (logs, pipes): silent."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.t0 = time.perf_counter()
        self.shown = False

    def __call__(self, done: int, total: int | None, audio_s: float) -> None:
        if not self.enabled or (total is not None and total < 2):
            return
        dt = time.perf_counter() - self.t0
        line = f"[synthesize] piece {done}/{total if total is not None else '?'}, {audio_s:.1f} s of audio"
        if total and done:
            eta = dt / done * (total - done)
            line += f", ETA {int(eta // 60)}:{int(eta % 60):02d}"
        click.echo(f"\r{line}\x1b[K", err=True, nl=False)
        self.shown = True

    def close(self) -> None:
        if self.shown:
            click.echo("", err=True)
            self.shown = False


@cli.command()
@click.option("--bundle", "-b", required=True, type=click.Path(path_type=Path, file_okay=False), help="Bundle folder.")
@click.option("--voice", "-v", "voice_name", required=True, help="Voice name in the bundle (sentis-tts voice add / import-spk2info).")
@click.option("--text", "-t", default=None, help="Text to speak. Use --text-file, or pipe it on stdin, for long text.")
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default=None,
              help="Read the text (UTF-8) from a file ('-' = stdin).")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Output WAV (16-bit PCM); checked before synthesis.")
@click.option("--mode", type=click.Choice(["zero_shot", "cross_lingual", "instruct2", "sft"]), default=None,
              help="Default: zero_shot when the voice has a transcript, instruct2 with --instruct, else cross_lingual.")
@click.option("--instruct", default=None, help="Instruction for instruct2 mode, e.g. 'Speak slowly and calmly.'")
@click.option("--stream", is_flag=True, help="Run the streaming path (official chunk schedule) and report time to first audio.")
@click.option("--bistream", is_flag=True, help="Text arrives as a stream: each line of --text-file/stdin is fed as it is read "
              "(official bistream schedule; speech starts before the text is complete). Implies --stream. One utterance: "
              "text beyond the flow's capacity is reported as not spoken.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="One seed for every random draw (sampling, vocoder noise).")
@click.option("--speed", type=click.FloatRange(0.25, 4.0), default=None, help="ZipVoice: speaking rate (1.0 = the prompt's; >1 faster).")
@click.option("--kana", is_flag=True, help="ZipVoice Japanese accent bundles: the text is accent kana (' after the accent nucleus, "
              "’ after a devoiced mora; docs/components/zipvoice.md), read without OpenJTalk as the Unity runtime does.")
@click.option("--no-normalize", is_flag=True, help="Skip text normalisation (numbers, symbols).")
@click.option("--no-japanese-reading", is_flag=True, help="Keep kanji as written instead of kana readings (Japanese).")
@click.option("--threads", type=THREADS, default=max(1, min(4, os.cpu_count() or 1)), show_default=True)
def synthesize(bundle, voice_name, text, text_file, out, mode, instruct, stream, bistream, seed, speed, kana, no_normalize,
               no_japanese_reading, threads) -> None:
    """Speak TEXT with a voice of the bundle, on onnxruntime + numpy only (no PyTorch), and write
    a WAV. Same seed, same bundle → same samples. Text the bundle cannot speak (a piece that
    fills the flow's capacity, text after the capacity in --bistream) is reported on stderr
    as `warning: …`; a long text shows its progress on a terminal.

    \b
    Examples:
      sentis-tts synthesize -b bundle/ -v alice -t "Hello there." -o hello.wav
      cat chapter.txt | sentis-tts synthesize -b bundle/ -v alice --text-file - -o chapter.wav
      sentis-tts synthesize -b bundle/ -v alice -t "Hi!" --instruct "Speak happily." -o hi.wav --stream
    """
    import itertools

    import numpy as np

    from runtime_ref.bundle import Bundle
    from runtime_ref.families import check_request_options, runtime_family

    if text is not None and text_file is not None:
        raise SentisTTSError("give the text either with --text or with --text-file, not both")
    check_output_path(out)
    stdin = getattr(sys.stdin, "buffer", sys.stdin)
    if text is None and text_file is None and (sys.stdin is None or sys.stdin.isatty()):
        raise SentisTTSError("no text: pass --text \"...\", --text-file FILE, or pipe the text on stdin")
    source = "stdin" if text_file in (None, "-") else text_file
    lines = None
    if bistream:
        if text is not None:
            lines = iter([text])
        else:
            fh = stdin if text_file in (None, "-") else open(text_file, "rb")  # noqa: SIM115 - read lazily, closed by exit
            lines = _text_lines(fh, source)
        head = []
        for line in lines:  # wait for the first non-blank line: an empty stream is an error, not 7 s of babble
            head.append(line)
            if line.strip():
                break
        else:
            raise SentisTTSError(f"no text: {'--text' if text is not None else source} is empty (nothing to speak)")
        lines = itertools.chain(head, lines)
        text = "(streamed)"
    elif text is None:
        data = stdin.read() if text_file in (None, "-") else Path(text_file).read_bytes()
        text = decode_text(data, source)
    if not text.strip():
        raise SentisTTSError("the text to synthesize is empty (pass the text with --text, --text-file or stdin)")
    t0 = time.perf_counter()
    b = Bundle.open(bundle, threads=threads)
    family = runtime_family(b.manifest)
    check_request_options(family, {"mode": mode, "instruct": instruct, "bistream": bistream, "speed": speed, "kana": kana})
    if stream and not family.streaming:
        raise SentisTTSError(f"{family.name} bundles have no streaming path (the whole utterance is one solve); drop --stream")
    popts = {k: False for k, off in (("normalize", no_normalize), ("japanese_reading", no_japanese_reading)) if off}
    pipe = family.open(b, **popts)
    request = {k: v for k, v in (("mode", mode), ("instruct", instruct), ("speed", speed), ("kana", kana or None)) if v is not None}
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    progress = SynthProgress()
    try:
        if stream or bistream:
            chunks, first = [], None
            gen = (pipe.stream_bistream(lines, voice_name, seed=seed, **request) if bistream
                   else pipe.stream(text, voice_name, seed=seed, **request, **_progress_kw(pipe.stream, progress)))
            for chunk in gen:
                if first is None:
                    first = time.perf_counter() - t0
                chunks.append(chunk)
            audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        else:
            audio = pipe.synthesize(text, voice_name, seed=seed, **request, **_progress_kw(pipe.synthesize, progress)).audio
            first = None
    finally:
        progress.close()
    dt = time.perf_counter() - t0
    if audio.size == 0:
        raise SentisTTSError("the model produced no speech for this text (nothing was written; check the text and the voice)")
    bad = int(audio.size - np.count_nonzero(np.isfinite(audio)))
    if bad:
        raise SentisTTSError(f"the synthesized audio has {bad} NaN/Inf sample(s), nothing was written "
                             "(the bundle or the voice is broken: run `sentis-tts verify`, re-bake the voice)")
    write_wav_atomic(out, audio, pipe.sample_rate)
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
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--threads", type=THREADS, default=max(1, min(4, os.cpu_count() or 1)), show_default=True)
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
    """The console script: exits with the documented code (see the module docstring)."""
    cli.main(args=argv, prog_name="sentis-tts")


if __name__ == "__main__":
    main()
