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
from graph_passes.ort_eval import check_conversion
from graph_passes.sentis import SUPPORTED_VERSIONS, check_model
from graph_passes.shapes import split_dim_names
from graph_passes.validate import DEFAULT_MAX_DIM, DEFAULT_MAX_TENSOR_MB, Limits, validate_model
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


_MAX_TENSOR_OPT = click.option(
    "--max-tensor-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_MAX_TENSOR_MB,
    show_default=True,
    help="Refuse any tensor (weight, declared or inferred activation, folded constant) larger than this.",
)
_MAX_DIM_OPT = click.option(
    "--max-dim",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_DIM,
    show_default=True,
    help="Refuse any tensor dim larger than this.",
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
@_MAX_TENSOR_OPT
@_MAX_DIM_OPT
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list with one report dict per file instead of text.")
@click.option("--no-policy", "no_policy", is_flag=True, help="Report the project's policy rules (dynamic dims, opset range, "
              "DOUBLE, external data, ...) without failing on them; reject/runtime/semantics still fail.")
@click.option("--dim", "dims", multiple=True, metavar="NAME=VALUE", help="Pin a symbolic dim as the importer's "
              "dynamic-dim setting does (Sentis 2.2+), e.g. --dim query_len=1. Repeatable.")
def check_command(files, sentis_version, allow_dynamic, opset_range, max_tensor_mb, max_dim, as_json, no_policy, dims):
    """Check ONNX FILES against what Unity Sentis can import.

    Reports every finding as `level rule  node(op)  message`: reject (import fails), runtime
    (throws on a backend), semantics (computes something else), perf (CPU fallback, blocking
    readbacks, blocked fusions; never fails) and policy (this project's rules; --no-policy).
    Then the import analysis per file (layers after folding, CPU-read inputs, CPU-fallback
    layers, blocking readbacks per run, 2.4 flushes, rewrites) and a summary.

    A graph inside a sentis-tts bundle may keep the symbolic dims its manifest.json declares
    (each with a written justification); they are allowed automatically and listed.

    Every file is validated first (onnx.checker with full checks, dangling names, cycles, tensor
    payloads vs their dims, dtypes, size limits, an onnxruntime load with default optimizations);
    a file that fails is reported in one line and never called OK.

    Exit status: 0 if every file is clean, 1 if any file has a reject/runtime/semantics (or
    policy) finding, 2 if a file cannot be read as ONNX or is not valid ONNX.
    """
    rng = _parse_opset_range(opset_range)
    limits = Limits.from_mb(max_tensor_mb, max_dim)
    pinned = _parse_dims(dims)
    status = 0
    results = []
    for path in files:
        declared = _declared_symbolic_dims(path)
        if declared and not as_json:
            click.echo(f"{path}: symbolic dims declared in the bundle manifest: {', '.join(sorted(declared))}")
        try:
            validate_model(load_model(path), limits=limits, path=path, what=path)
            report = check_model(path, sentis_version, allowed_symbolic_dims=tuple(allow_dynamic) + tuple(declared),
                                 opset_range=rng, policy=not no_policy, pinned_dims=pinned)
        except ValueError as exc:
            raise GraphCommandError(_one_line(exc)) from None
        except GraphPassError as exc:
            status = 2
            if as_json:
                results.append({"path": path, "ok": False, "error": _one_line(exc)})
            else:
                click.echo(f"Error: {_one_line(exc)}", err=True)
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


def _parse_dims(values) -> dict[str, int]:
    dims: dict[str, int] = {}
    for text in values:
        name, sep, value = text.partition("=")
        name = name.strip()
        try:
            v = int(value)
        except ValueError:
            v = None
        if not sep or not name or v is None:
            raise GraphCommandError(f"--dim must look like NAME=VALUE (a symbolic dim name and an integer), got '{text}'")
        if name in dims and dims[name] != v:
            raise GraphCommandError(f"--dim given twice for '{name}'")
        dims[name] = v
    return dims


def _parse_input_values(values) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for text in values:
        name, sep, rest = text.rpartition("=")
        try:
            nums = [float(x) for x in rest.split(",") if x.strip()]
        except ValueError:
            nums = []
        if not sep or not name or not nums:
            raise GraphCommandError(f"--input-value must look like NAME=V or NAME=V1,V2,..., got '{text}'")
        out[name] = nums
    return out


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
    help="Pin a graph input to a static shape, e.g. --input-shape mel=1,80,256. Repeatable. Each input is "
    "pinned independently: a symbolic dim name shared with inputs given other values is split.",
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
@click.option(
    "--dim",
    "dims",
    multiple=True,
    metavar="NAME=VALUE",
    help="Pin a symbolic dim name everywhere it appears (inputs, outputs), e.g. --dim N=1. Repeatable.",
)
@click.option(
    "--input-value",
    "input_values",
    multiple=True,
    metavar="NAME=V[,V...]",
    help="Value of an input in the parity check instead of a random one (e.g. a length or a speed the "
    "model only accepts in a range), e.g. --input-value speed=1.0. Repeatable.",
)
@click.option("--parity-trials", type=click.IntRange(min=1), default=3, show_default=True,
              help="Random inputs on which OUT.onnx is compared with IN.onnx (onnxruntime).")
@click.option("--parity-tol", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Largest allowed max-abs difference, times max(1, max |reference output|).")
@_MAX_TENSOR_OPT
@_MAX_DIM_OPT
@click.option("--json", "as_json", is_flag=True, help="Print the checker report (plus passes applied) as JSON.")
def convert_command(input_path, output_path, input_shapes, target_opset, sentis_version, allow_dynamic, opset_range, passes,
                    dims, input_values, parity_trials, parity_tol, max_tensor_mb, max_dim, as_json):
    """Rewrite any ONNX model (ours or a third party's) so that Sentis can import it.

    IN.onnx is validated first (onnx.checker full, dangling names, cycles, tensor payloads, size
    limits, onnxruntime load). Then the graph passes run (pin input shapes and dims; shape
    inference, proven constant folding, If folding and Loop unrolling repeated to a fixed point;
    zero-size Concat inputs dropped; convert to the target opset with default domain "";
    saturate harmless int64 sentinels, rewrite Cast-to-bool, Constant attribute forms, cleanup,
    shape inference). The result is validated the same way and compared with IN.onnx on
    onnxruntime over random inputs at the pinned shapes (max-abs reported; an output whose size
    depends on input values is declared symbolic, never fixed). Only then is OUT.onnx written
    atomically (temp file + rename; IN.onnx is never touched), checked by the Sentis checker,
    and the report printed.

    OUT.onnx is written even when the checker finds violations, so that it can be inspected;
    the exit status is then 1. If validation, a pass or the comparison fails (e.g. an If whose
    condition depends on input data) nothing is written and the exit status is 2 with a one-line
    error naming the node.
    """
    rng = _parse_opset_range(opset_range)
    shapes = _parse_input_shapes(input_shapes)
    pinned_dims = _parse_dims(dims)
    fixed = _parse_input_values(input_values)
    limits = Limits.from_mb(max_tensor_mb, max_dim)
    names = _parse_passes(passes)
    if os.path.abspath(input_path) == os.path.abspath(output_path):
        raise GraphCommandError("OUT.onnx must differ from IN.onnx")
    notes: list[str] = []
    try:
        model = load_model(input_path)
        validate_model(model, limits=limits, path=input_path, what=input_path)
        for dim, per_input in split_dim_names(model, shapes).items():
            notes.append(f"symbolic dim '{dim}' split: " + ", ".join(f"{k}={v}" for k, v in per_input.items()))
        out, applied = run_pipeline(model, names, input_shapes=shapes or None, dims=pinned_dims or None,
                                    target_opset=target_opset, notes=notes)
        validate_model(out, limits=limits, what="the converted model")
        unknown = sorted(set(fixed) - {i.name for i in out.graph.input})
        if unknown:
            raise GraphCommandError(f"--input-value given for '{unknown[0]}', which is not a graph input")
        out, parity = check_conversion(model, out, trials=parity_trials, bound=parity_tol, fixed=fixed)
        notes.extend(parity.lines())
    except (GraphPassError, SentisTTSError) as exc:
        raise GraphCommandError(_one_line(exc)) from None
    # what a pass changed beyond a rewrite, e.g. double_to_float's count
    notes.extend(f"{p.key}: {p.value}" for p in out.metadata_props if p.key.startswith("graph_passes."))
    _write_atomic(out, output_path)
    try:
        report = check_model(output_path, sentis_version, allowed_symbolic_dims=allow_dynamic, opset_range=rng)
    except GraphPassError as exc:
        raise GraphCommandError(_one_line(exc)) from None
    if as_json:
        data = report.to_dict()
        data["passes_applied"] = applied
        data["input"] = input_path
        data["conversion_notes"] = notes
        data["parity"] = {"trials": parity.trials, "rejected_inputs": parity.rejected, "max_abs": parity.max_abs,
                          "bound": parity.bound, "data_dependent_dims": {k: {str(d): v for d, v in per.items()}
                                                                         for k, per in parity.data_dependent.items()}}
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(f"wrote {output_path} (passes: {', '.join(applied) or 'none'})")
        for line in notes:
            click.echo(f"  {line}")
        click.echo(report.format())
    click.get_current_context().exit(0 if report.ok else 1)
