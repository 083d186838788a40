"""`sentis-tts check` and `sentis-tts convert`: the Sentis checker and the graph-pass pipeline.

The main group (exporter/cli.py) registers `check_command` and `convert_command`.
Exit codes of both commands: 0 = clean, 1 = Sentis violations, 2 = unreadable input, bad
option or a pass that failed.
"""

from __future__ import annotations

import json
import os
import tempfile

import click

from graph_passes import DEFAULT_PASSES, PASSES, GraphPassError, run_pipeline
from graph_passes._graph import PROTOBUF_LIMIT, load_model
from graph_passes.sentis import SUPPORTED_VERSIONS, check_model
from graph_passes.sentis.rules import DEFAULT_OPSET_RANGE, DEFAULT_VERSION

from .errors import SentisTTSError


class GraphCommandError(click.ClickException):
    """One-line error, exit status 2 (input unreadable, bad option, pass failed)."""

    exit_code = 2


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _parse_opset_range(text: str) -> tuple[int, int]:
    try:
        lo, _, hi = text.partition("-")
        rng = (int(lo), int(hi or lo))
    except ValueError:
        raise GraphCommandError(f"--opset-range must look like 15-17, got '{text}'") from None
    if rng[0] > rng[1]:
        raise GraphCommandError(f"--opset-range {text}: low end above high end")
    return rng


_VERSION_OPT = click.option(
    "--sentis-version",
    type=click.Choice(SUPPORTED_VERSIONS),
    default=DEFAULT_VERSION,
    show_default=True,
    help="Sentis / Inference Engine version whose importer rules apply (op set, Constant forms, "
    "ConvTranspose group). STFT/DFT need 2.4+.",
)
_ALLOW_OPT = click.option(
    "--allow-dynamic",
    "allow_dynamic",
    multiple=True,
    metavar="NAME",
    help="Symbolic dim name (dim_param) allowed to stay dynamic on graph inputs/outputs, e.g. "
    "--allow-dynamic seq_len. Repeatable. Every other input/output dim must be static.",
)
_OPSET_RANGE_OPT = click.option(
    "--opset-range",
    default=f"{DEFAULT_OPSET_RANGE[0]}-{DEFAULT_OPSET_RANGE[1]}",
    show_default=True,
    metavar="LO-HI",
    help="Allowed default-domain opset range.",
)


def _declared_symbolic_dims(path: str) -> list[str]:
    """Symbolic dims that the manifest.json next to a bundle graph declares (with their
    justification) for that file; a file outside a bundle declares none."""
    import json
    from pathlib import Path

    p = Path(path)
    mpath = p.parent / "manifest.json"
    if not mpath.is_file():
        return []
    try:
        graphs = json.loads(mpath.read_text(encoding="utf-8")).get("graphs", {})
    except (OSError, ValueError):
        return []
    for g in graphs.values():
        if isinstance(g, dict) and g.get("file") == p.name:
            return list(g.get("symbolic_dims", {}) or {})
    return []


@click.command(
    "check",
    epilog="Examples:\n\n\b\n  sentis-tts check flow.onnx hift.onnx --sentis-version 2.4\n"
    "  sentis-tts check llm_step.onnx --allow-dynamic past_len --json > report.json\n\n"
    "Rule ids and what they mean: docs/sentis.md.",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_VERSION_OPT
@_ALLOW_OPT
@_OPSET_RANGE_OPT
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list with one report dict per file instead of text.")
def check_command(files, sentis_version, allow_dynamic, opset_range, as_json):
    """Check ONNX FILES against what Unity Sentis can import.

    Reports every violation as `rule  node(op)  message` (stable rule ids such as
    op-unsupported, subgraph, dynamic-dim, int64-range, cast-to-bool, attr-resize-mode), notes
    that do not fail (e.g. NonZero runs on CPU only), and a summary (opset, node count, op
    counts, file size).

    A graph inside a sentis-tts bundle may keep the symbolic dims its manifest.json declares
    (each with a written justification); they are allowed automatically and listed.

    Exit status: 0 if every file is clean, 1 if any file has a violation, 2 if a file cannot be
    read as ONNX.
    """
    rng = _parse_opset_range(opset_range)
    status = 0
    results = []
    for path in files:
        declared = _declared_symbolic_dims(path)
        if declared and not as_json:
            click.echo(f"{path}: symbolic dims declared in the bundle manifest: {', '.join(sorted(declared))}")
        try:
            report = check_model(path, sentis_version, allowed_symbolic_dims=tuple(allow_dynamic) + tuple(declared),
                                 opset_range=rng)
        except GraphPassError as exc:
            status = 2
            if as_json:
                results.append({"path": path, "ok": False, "error": _one_line(exc)})
            else:
                click.echo(f"error: {_one_line(exc)}", err=True)
            continue
        if not report.ok and status == 0:
            status = 1
        if as_json:
            results.append(report.to_dict())
        else:
            click.echo(report.format())
    if as_json:
        click.echo(json.dumps(results, indent=2))
    click.get_current_context().exit(status)


def _parse_input_shapes(values) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for text in values:
        name, sep, dims = text.rpartition("=")
        if not sep or not name:
            raise GraphCommandError(f"--input-shape must look like NAME=1,80,256, got '{text}'")
        try:
            shape = [int(d) for d in dims.replace("x", ",").split(",") if d.strip() != ""]
        except ValueError:
            raise GraphCommandError(f"--input-shape {text}: dims must be integers") from None
        if name in shapes:
            raise GraphCommandError(f"--input-shape given twice for '{name}'")
        shapes[name] = shape
    return shapes


def _parse_passes(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part == "default":
            names.extend(DEFAULT_PASSES)
        elif part not in PASSES:
            raise GraphCommandError(f"unknown pass '{part}' (known: {', '.join(PASSES)})")
        else:
            names.append(part)
    return names


def _write_atomic(model, out_path: str) -> None:
    if model.ByteSize() >= PROTOBUF_LIMIT:
        raise GraphCommandError(f"{out_path}: converted model is over 2 GB; Sentis needs inline weights below 2 GB")
    directory = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(model.SerializeToString())
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_PASS_HELP = "\n".join(f"  {name}" for name in PASSES)


@click.command(
    "convert",
    epilog="Examples:\n\n\b\n"
    "  sentis-tts convert third_party.onnx clean.onnx --input-shape mel=1,80,256\n"
    "  sentis-tts convert in.onnx out.onnx --passes default,simplify --sentis-version 2.4\n"
    "  sentis-tts convert in.onnx out.onnx --passes fold_if,remove_dead_nodes\n\n"
    "\b\nDefault passes, in order:\n" + "\n".join(f"  {n}" for n in DEFAULT_PASSES) + "\n\n"
    "\b\nAll passes:\n" + _PASS_HELP,
)
@click.argument("input_path", metavar="IN.onnx", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUT.onnx", type=click.Path(dir_okay=False))
@click.option(
    "--input-shape",
    "input_shapes",
    multiple=True,
    metavar="NAME=D0,D1,...",
    help="Pin a graph input to a static shape, e.g. --input-shape mel=1,80,256. Repeatable. "
    "Symbolic dims shared with other inputs/outputs get the same value.",
)
@click.option("--opset", "target_opset", type=int, default=17, show_default=True, help="Target default-domain opset.")
@_VERSION_OPT
@_ALLOW_OPT
@_OPSET_RANGE_OPT
@click.option(
    "--passes",
    default=None,
    metavar="a,b,c",
    help="Comma-separated pass names to run instead of the default list; 'default' expands to the "
    "default list (e.g. default,simplify).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the checker report (plus passes applied) as JSON.")
def convert_command(input_path, output_path, input_shapes, target_opset, sentis_version, allow_dynamic, opset_range, passes, as_json):
    """Rewrite any ONNX model (ours or a third party's) so that Sentis can import it.

    Runs the graph passes (pin input shapes, fold If with constant conditions, unroll Loops with
    constant trip counts, fold constants, convert to the target opset with default domain "",
    saturate harmless int64 sentinels, rewrite Cast-to-bool, Constant attribute forms, cleanup,
    shape inference), writes OUT.onnx atomically (temp file + rename; IN.onnx is never touched),
    then runs the Sentis checker on OUT.onnx and prints its report.

    OUT.onnx is written even when the checker finds violations, so that it can be inspected;
    the exit status is then 1. If a pass fails (e.g. an If whose condition depends on input
    data) nothing is written and the exit status is 2 with a one-line error naming the node.
    """
    rng = _parse_opset_range(opset_range)
    shapes = _parse_input_shapes(input_shapes)
    names = _parse_passes(passes)
    if os.path.abspath(input_path) == os.path.abspath(output_path):
        raise GraphCommandError("OUT.onnx must differ from IN.onnx")
    try:
        model = load_model(input_path)
        out, applied = run_pipeline(model, names, input_shapes=shapes or None, target_opset=target_opset)
    except (GraphPassError, SentisTTSError) as exc:
        raise GraphCommandError(_one_line(exc)) from None
    _write_atomic(out, output_path)
    try:
        report = check_model(output_path, sentis_version, allowed_symbolic_dims=allow_dynamic, opset_range=rng)
    except GraphPassError as exc:
        raise GraphCommandError(_one_line(exc)) from None
    if as_json:
        data = report.to_dict()
        data["passes_applied"] = applied
        data["input"] = input_path
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(f"wrote {output_path} (passes: {', '.join(applied) or 'none'})")
        click.echo(report.format())
    click.get_current_context().exit(0 if report.ok else 1)
