"""The export driver: trace a GraphSpec with the TorchScript exporter, run graph_passes, (fp16
weights), run the Sentis checker, measure parity against the PyTorch module, write to a bundle.

Every graph we write goes through `export_graph`, so every graph is checked and every graph has
measured parity figures in the manifest.
"""
from __future__ import annotations

import time
import types
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import onnx
import torch

from .errors import ExportError, SentisTTSError
from .spec import ComponentExport, ExportOptions, GraphSpec

@dataclass
class GraphResult:
    name: str
    entry: dict  # the manifest entry (without sha256/bytes, which the BundleWriter adds)
    seconds: float


def _run_torch(spec: GraphSpec, case: int, module: torch.nn.Module | None = None) -> list[np.ndarray]:
    """The case's outputs of spec.module, or of `module` (a float64 copy: float inputs widened)."""
    args = spec.torch_inputs(case)
    if module is not None:
        args = tuple(t.double() if t.is_floating_point() else t for t in args)
    with torch.inference_mode():
        out = (module or spec.module)(*args)
    if isinstance(out, torch.Tensor):
        out = (out,)
    return [o.detach().cpu().numpy() for o in out]


def measure_parity(spec: GraphSpec, onnx_path: Path, *, threads: int = 2) -> dict:
    """Run the ONNX file in onnxruntime and the PyTorch module on the same inputs; per output the
    worst figure over all cases of its comparison kind (spec.compare, default max-abs; see
    exporter.spec.COMPARE_KINDS). Raises ExportError if any output exceeds its tolerance."""
    import onnxruntime as ort

    from .spec import COMPARE_KINDS, COMPARE_MAX_ABS, compare_error

    kinds = {o.name: spec.compare.get(o.name, COMPARE_MAX_ABS) for o in spec.outputs if o.name not in spec.exact_outputs}
    unknown = {k: v for k, v in kinds.items() if v not in COMPARE_KINDS}
    if unknown:
        raise ExportError(f"{spec.name}: unknown comparison kind(s) {unknown}; one of {', '.join(COMPARE_KINDS)}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    worst: dict[str, float] = {name: 0.0 for name in kinds}
    mismatched: dict[str, int] = {}
    nonfinite: dict[str, int] = {}
    limited = {k: f for k, f in spec.float32_limited.items() if k in kinds} if spec.float64_reference else {}
    module64 = spec.float64_reference() if limited else None
    vs64 = {k: {"onnx": 0.0, "torch_float32": 0.0, "onnx_vs_torch": 0.0, "factor": f} for k, f in limited.items()}
    for case in range(spec.parity_cases):
        feeds = {k: np.ascontiguousarray(v) for k, v in spec.make_inputs(case).items() if k in {i.name for i in spec.inputs}}
        ref = _run_torch(spec, case)
        ref64 = _run_torch(spec, case, module64) if module64 is not None else [None] * len(ref)
        got = sess.run([o.name for o in spec.outputs], feeds)
        region = spec.compare_region(case) if spec.compare_region else {}
        for o, r, g, r64 in zip(spec.outputs, ref, got, ref64):
            if r.shape != g.shape:
                raise ExportError(f"{spec.name}: output {o.name} has shape {g.shape} in ONNX but {r.shape} in PyTorch (case {case})")
            if o.name in region:
                r, g = r[region[o.name]], g[region[o.name]]
                r64 = None if r64 is None else r64[region[o.name]]
            if o.name in limited and np.isfinite(r).all() and np.isfinite(g).all():
                v = vs64[o.name]  # the float64 math is the reference; PyTorch float32's distance from it the floor
                v["onnx"] = max(v["onnx"], compare_error(kinds[o.name], r64, g))
                v["torch_float32"] = max(v["torch_float32"], compare_error(kinds[o.name], r64, r))
                v["onnx_vs_torch"] = max(v["onnx_vs_torch"], compare_error(kinds[o.name], r, g))
                worst[o.name] = v["onnx"]
                continue
            # non-finite values fail the gate: max(0.0, nan) is 0.0, so NaN must never reach the max-abs
            n_bad = int(r.size - np.count_nonzero(np.isfinite(r))) + int(g.size - np.count_nonzero(np.isfinite(g)))
            if n_bad:
                nonfinite[o.name] = nonfinite.get(o.name, 0) + n_bad
                continue
            if o.name in spec.exact_outputs:
                mismatched[o.name] = mismatched.get(o.name, 0) + int(np.sum(r != g))
                continue
            err = compare_error(kinds[o.name], r, g)
            worst[o.name] = err if not err <= worst[o.name] else worst[o.name]  # NaN sticks
    failures = [f"{name}: {n} NaN/Inf value(s) in the ONNX or PyTorch output (the weights or the graph are broken)"
                for name, n in nonfinite.items()]
    tols = {k: spec.atol_per_output.get(k, spec.atol) for k in kinds}
    for k, v in vs64.items():
        v["tolerance"] = tols[k]
        tols[k] = max(tols[k], v["factor"] * v["torch_float32"])
    for name, err in worst.items():
        tol = tols[name]
        if not err <= tol:
            what = "max-abs" if kinds[name] == COMPARE_MAX_ABS else kinds[name].replace("_", " ")
            if name in vs64:
                v = vs64[name]
                failures.append(f"{name} {what} vs the float64 math {err:.3g} > {tol:.3g} (the larger of {v['tolerance']:g} and "
                                f"{v['factor']:g} x PyTorch float32's {v['torch_float32']:.3g})")
            else:
                failures.append(f"{name} {what} {err:.3g} > {tol:g}")
    for name, n in mismatched.items():
        if n:
            failures.append(f"{name}: {n} element(s) differ (exact match required)")
    result = {
        "reference": "torch",
        "cases": spec.parity_cases,
        "max_abs": {k: v for k, v in worst.items() if kinds[k] == COMPARE_MAX_ABS},
        "atol": tols,
    }
    if vs64:  # figures of these outputs are vs the float64 math; atol = max(tolerance, factor x the float32 floor)
        result["float64_reference"] = vs64
    if any(v != COMPARE_MAX_ABS for v in kinds.values()):
        result["compare"] = dict(kinds)
        result["error"] = dict(worst)
    if spec.compare_region_doc:
        result["region"] = spec.compare_region_doc
    if spec.exact_outputs:
        result["exact"] = {k: mismatched.get(k, 0) == 0 for k in spec.exact_outputs}
    if nonfinite:
        result["nonfinite"] = nonfinite
    if failures:
        raise ExportError(f"{spec.name}: parity vs PyTorch failed: " + "; ".join(failures))
    return result


WEIGHT_DETACH_BYTES = 1 << 20


def detach_weights(model: onnx.ModelProto, min_bytes: int = WEIGHT_DETACH_BYTES) -> dict[str, onnx.TensorProto]:
    """Move initializers of >= min_bytes out of `model` (in place), declaring each as a graph input
    of the same dtype/shape, so the graph passes work on a graph of a few MB instead of copying
    gigabytes of weights at every pass (the full-size LLM peaked at 15 GB otherwise). Returns the
    stash for `attach_weights`. Folding never needs these values: the TorchScript exporter has
    already folded everything computed from weights alone."""
    from onnx import helper

    stash: dict[str, onnx.TensorProto] = {}
    keep = []
    for init in model.graph.initializer:
        nbytes = len(init.raw_data) if init.HasField("raw_data") else 0
        if nbytes >= min_bytes:
            stash[init.name] = init
        else:
            keep.append(init)
    if not stash:
        return stash
    taken = {i.name for i in model.graph.input}
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    for name, init in stash.items():
        if name not in taken:
            model.graph.input.append(helper.make_tensor_value_info(name, init.data_type, list(init.dims)))
    return stash


def attach_weights(model: onnx.ModelProto, stash: dict[str, onnx.TensorProto]) -> onnx.ModelProto:
    """Undo `detach_weights` on the passed graph: the weight inputs become initializers again
    (only those still used)."""
    if not stash:
        return model
    used = {n for node in model.graph.node for n in node.input}
    inputs = [i for i in model.graph.input if i.name not in stash]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    model.graph.initializer.extend(as_tensor_proto(name, init) for name, init in stash.items() if name in used)
    return model


def as_tensor_proto(name: str, value) -> onnx.TensorProto:
    """A stash entry as an initializer: TensorProtos as they are, torch tensors (the module's own
    weights, see `trace_detached`) copied into one."""
    if isinstance(value, onnx.TensorProto):
        return value
    return onnx.numpy_helper.from_array(value.detach().contiguous().numpy(), name)


_RAW_DATA_FIELD = 9  # TensorProto.raw_data (onnx.proto)


def _tensor_entry(name: str, value) -> tuple[bytes, memoryview | None]:
    """(serialized TensorProto header, raw bytes to append) for one stash entry: a torch tensor's
    data goes to the file from its own buffer (a transposed view is made contiguous, once),
    without the TensorProto and serialized-string copies."""
    if isinstance(value, onnx.TensorProto):
        return value.SerializeToString(), None
    arr = value.detach().contiguous().numpy()
    head = onnx.TensorProto(name=name, dims=list(arr.shape),
                            data_type=onnx.helper.np_dtype_to_tensor_dtype(arr.dtype)).SerializeToString()
    raw = memoryview(arr).cast("B")
    return head + bytes([_RAW_DATA_FIELD << 3 | 2]) + _varint(raw.nbytes), raw


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


_GRAPH_FIELD, _INITIALIZER_FIELD = 7, 5  # ModelProto.graph, GraphProto.initializer (onnx.proto)


def save_with_weights(model: onnx.ModelProto, stash: dict, path: Path) -> None:
    """Write `model` with the weights `detach_weights` / `trace_detached` took out as initializers
    again (those still used), streaming them into the file one by one: the same file content as
    attach_weights + onnx.save, without a second in-memory copy of every weight and a third as one
    serialized string (the full-size LLM step is 1.45 GB of weights). Encodes the graph field by
    hand: the small graph, then each big initializer as one more length-delimited `initializer`
    entry."""
    used = {n for node in model.graph.node for n in node.input}
    big = [(name, init) for name, init in stash.items() if name in used]
    small = onnx.ModelProto()
    small.CopyFrom(model)
    inputs = [i for i in small.graph.input if i.name not in stash]
    del small.graph.input[:]
    small.graph.input.extend(inputs)
    graph = small.graph.SerializeToString()
    small.ClearField("graph")

    def size(name, init):
        if isinstance(init, onnx.TensorProto):
            return init.ByteSize()
        nbytes = init.nelement() * init.element_size()
        head = onnx.TensorProto(name=name, dims=list(init.shape), data_type=onnx.TensorProto.FLOAT).ByteSize()
        return head + 1 + len(_varint(nbytes)) + nbytes  # data_type's varint is one byte for every dtype

    sizes = [size(*b) for b in big]
    entries = sum(1 + len(_varint(n)) + n for n in sizes)  # tag byte (5 << 3 | 2) + length + payload
    with open(path, "wb") as f:
        f.write(small.SerializeToString())
        f.write(bytes([_GRAPH_FIELD << 3 | 2]) + _varint(len(graph) + entries) + graph)
        for (name, init), n in zip(big, sizes):
            head, raw = _tensor_entry(name, init)
            if len(head) + (raw.nbytes if raw is not None else 0) != n:
                raise ExportError(f"{path.name}: initializer {name} encodes to an unexpected size")
            f.write(bytes([_INITIALIZER_FIELD << 3 | 2]) + _varint(n))
            f.write(head)
            if raw is not None:
                f.write(raw)


STAGES = ("tracing", "graph passes", "Sentis check", "parity")


def trace_to_onnx(module: torch.nn.Module, inputs: tuple, input_names: list[str], output_names: list[str],
                  opset: int, dynamic_axes: dict | None = None, *, scratch: Path, what: str) -> onnx.ModelProto:
    """The TorchScript exporter (dynamo=False) on `module`: the ONNX model with every weight as an
    initializer (`trace_detached` + `attach_weights`)."""
    model, stash = trace_detached(module, inputs, input_names, output_names, opset, dynamic_axes, scratch=scratch, what=what)
    return attach_weights(model, stash)


def _linear_forward_on_view(self, x):
    """nn.Linear as the TorchScript exporter writes it (MatMul with W^T, then Add(bias, .); Gemm
    for a 2-D input with bias), with W^T the parameter `weight_t`: a transposed view of `weight`,
    so the exporter does not fold a transposed copy of every weight."""
    if x.dim() == 2 and self.bias is not None:
        return torch.nn.functional.linear(x, self.weight, self.bias)
    y = torch.matmul(x, self.weight_t)
    return y if self.bias is None else self.bias + y


@contextmanager
def _linear_weights_as_views(module: torch.nn.Module):
    """While tracing: every nn.Linear computes through a transposed view of its weight (no copy;
    a small one too, else its folded transpose would be a value that is no parameter); undone
    afterwards."""
    patched = []
    for m in module.modules():
        if type(m) is torch.nn.Linear:
            m.weight_t = torch.nn.Parameter(m.weight.detach().t(), requires_grad=False)
            m.forward = types.MethodType(_linear_forward_on_view, m)
            patched.append(m)
    try:
        yield
    finally:
        for m in patched:
            del m.weight_t, m.forward


def trace_detached(module: torch.nn.Module, inputs: tuple, input_names: list[str], output_names: list[str],
                   opset: int, dynamic_axes: dict | None = None, *, scratch: Path, what: str,
                   min_bytes: int = WEIGHT_DETACH_BYTES) -> tuple[onnx.ModelProto, dict]:
    """The TorchScript exporter (dynamo=False) on `module` without the weights in the file: weights
    of >= min_bytes stay graph inputs and come back as a stash of the module's own tensors (for
    `save_with_weights` / `attach_weights`), smaller ones become initializers.

    Memory: the exporter with its parameters would hold a folded transposed copy of every Linear
    weight, its C++ proto and the serialized string at once (the full-size LLM step: 2.4 GB of
    modules + ~4 GB). Traced with export_params=False and the Linear weights as transposed views,
    it folds nothing out of the weights and writes no weight bytes. Should the exporter still fold
    some weight into a new value (a graph input that is no parameter), the graph is traced again
    the ordinary way and its big initializers detached."""
    params = dict(module.state_dict(keep_vars=True))
    with _linear_weights_as_views(module):
        params.update((n, p) for n, p in module.named_parameters() if n.endswith(".weight_t"))
        model = _torchscript_export(module, inputs, input_names, output_names, opset, dynamic_axes,
                                    scratch=scratch, what=what, export_params=False)
    declared = set(input_names)
    extra = [i.name for i in model.graph.input if i.name not in declared]
    if any(n not in params for n in extra):  # folded out of a weight: the ordinary export
        model = _torchscript_export(module, inputs, input_names, output_names, opset, dynamic_axes,
                                    scratch=scratch, what=what, export_params=True)
        return model, detach_weights(model, min_bytes)
    stash: dict[str, torch.Tensor] = {}
    small = []
    for name in extra:
        t = params[name].detach()
        if t.nelement() * t.element_size() >= min_bytes:
            stash[name] = t
        else:
            small.append(as_tensor_proto(name, t))
    inputs_kept = [i for i in model.graph.input if i.name in declared] + [i for i in model.graph.input if i.name in stash]
    del model.graph.input[:]
    model.graph.input.extend(inputs_kept)
    model.graph.initializer.extend(small)
    return model, stash


def _torchscript_export(module, inputs, input_names, output_names, opset, dynamic_axes, *, scratch: Path, what: str,
                        export_params: bool) -> onnx.ModelProto:
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, inputs, str(scratch), input_names=input_names, output_names=output_names,
                              opset_version=opset, dynamic_axes=dynamic_axes, do_constant_folding=True, dynamo=False,
                              export_params=export_params)
    except Exception as e:  # noqa: BLE001 - re-raised as a one-line export error
        scratch.unlink(missing_ok=True)
        raise ExportError(f"{what}: torch.onnx.export failed: {str(e).strip().splitlines()[0][:300]}") from e
    model = onnx.load(str(scratch))
    scratch.unlink(missing_ok=True)
    return model


def import_figures(path: Path, report) -> dict:
    """The import analysis of a checked graph for its export version and the newest Sentis
    (`check_model(..., import_versions=[DEFAULT_VERSION])`: layers, CPU-read inputs, CPU-fallback
    layers, readbacks, rewrites); raises ExportError when either has a blocking GPU->CPU readback
    (docs/sentis.md)."""
    analyses = dict(report.other_imports)
    if report.importer is not None:
        analyses[report.sentis_version] = report.importer
    figures = {}
    for ver, a in sorted(analyses.items()):
        figures[ver] = a.summary()
        n = figures[ver]["blocking_readbacks"]
        if n:
            where = "; ".join(f"{r.layer}({r.op}) '{r.tensor}' ({r.scenario})" for r in a.readbacks)[:400]
            raise ExportError(f"{path.stem}: {n} blocking GPU->CPU readback(s) per run in Sentis {ver}: {where}")
    return figures


def export_graph(spec: GraphSpec, out_dir: Path, options: ExportOptions,
                 on_stage: Callable[[str], None] | None = None) -> GraphResult:
    """Trace, pass, check and measure one graph; writes out_dir/<name>.onnx. `on_stage(name)` is
    called as each of STAGES starts (progress display)."""
    stage = on_stage or (lambda name: None)
    from graph_passes import run_pipeline
    from graph_passes.precision import weights_to_fp16
    from graph_passes.sentis import DEFAULT_VERSION as SENTIS_NEWEST
    from graph_passes.sentis import check_model

    t0 = time.perf_counter()
    path = out_dir / spec.file
    raw = out_dir / f".{spec.name}.raw.onnx"
    spec.module.eval()
    dynamic_axes: dict[str, dict[int, str]] = {}
    for t in list(spec.inputs) + list(spec.outputs):
        axes = {i: d for i, d in enumerate(t.shape) if isinstance(d, str)}
        undeclared = [d for d in axes.values() if d not in spec.symbolic_dims]
        if undeclared:
            raise ExportError(f"{spec.name}: symbolic dim(s) {undeclared} of {t.name} are not declared with a justification")
        if axes:
            dynamic_axes[t.name] = axes
    stage("tracing")
    if spec.build_onnx is not None:
        model = spec.build_onnx(options.opset, raw)
        weights = detach_weights(model)
    else:
        model, weights = trace_detached(spec.module, spec.torch_inputs(0), [t.name for t in spec.inputs],
                                        [t.name for t in spec.outputs], options.opset, dynamic_axes or None,
                                        scratch=raw, what=spec.name)
    stage("graph passes")
    model, applied = run_pipeline(model, spec.passes, input_shapes=spec.static_shapes(), target_opset=options.opset)
    weights_dtype = "float32"
    if options.fp16 and not spec.fp16_exempt:
        model = attach_weights(model, weights)
        weights = {}
        keep = frozenset(i.name for i in model.graph.initializer if i.name.startswith(spec.fp16_keep_prefixes)) \
            if spec.fp16_keep_prefixes else frozenset()
        model = weights_to_fp16(model, keep=keep)
        applied = list(applied) + ["weights_to_fp16"]
        weights_dtype = "float16"
    save_with_weights(model, weights, path)
    del model, weights
    stage("Sentis check")
    report = check_model(path, options.sentis_version, allowed_symbolic_dims=spec.symbolic_dims.keys(),
                         import_versions=[SENTIS_NEWEST])
    if not report.ok:
        lines = "; ".join(f"{v.rule} {v.node or ''}({v.op or ''}) {v.message}" for v in report.violations[:5])
        raise ExportError(f"{spec.name}: Sentis checker found {len(report.violations)} violation(s): {lines}")
    imports = import_figures(path, report)
    stage("parity")
    parity = measure_parity(spec, path, threads=options.threads) if options.parity else {"skipped": True}
    if options.fp16 and not spec.fp16_exempt:
        parity["note"] = "float16 weights vs float32 PyTorch module"
    entry = {
        "file": spec.file,
        "component": spec.component,
        "description": spec.description,
        "opset": options.opset,
        "inputs": [t.to_dict() for t in spec.inputs],
        "outputs": [t.to_dict() for t in spec.outputs],
        "fixed_dims": dict(spec.fixed_dims),
        "symbolic_dims": dict(spec.symbolic_dims),
        "passes": list(applied),
        "weights_dtype": weights_dtype,
        "checker": {"sentis_version": options.sentis_version, "ok": report.ok, "nodes": report.n_nodes,
                    "op_counts": dict(sorted(report.op_counts.items())), "import": imports},
        "parity": parity,
    }
    if spec.metadata:
        entry["metadata"] = spec.metadata
    return GraphResult(spec.name, entry, time.perf_counter() - t0)


def export_components(
    model_dir,
    out: str | Path,
    components: Iterable[str],
    options: ExportOptions,
    *,
    mode: str = "update",
    overwrite: bool = False,
    progress=None,
) -> dict:
    """Export `components` of `model_dir` into the bundle `out` (atomically). Returns the manifest.
    `progress` (optional) gets component_start(comp, graph_names), stage(comp, graph, stage),
    graph_done(comp, graph, result) and component_done(comp)."""
    from .bundle import BundleWriter, sha256_file
    from .families import family_of

    family = family_of(model_dir)
    components = list(components)
    builders = {c: family.component_builder(c) for c in components}
    torch.manual_seed(options.seed)
    with BundleWriter(out, mode=mode, overwrite=overwrite, family=family.name) as bw:
        m = bw.manifest
        if m.get("family", "cosyvoice2") != family.name:
            raise SentisTTSError(f"{out} holds a {m.get('family')} bundle; export the {family.name} model into a new folder "
                                 "(or pass --overwrite)")
        m["source"]["model_dir"] = str(Path(model_dir.root).resolve())
        m["constants"].update(family.constants(model_dir))
        m.setdefault("export_options", {})
        for comp in components:
            ce: ComponentExport = builders[comp](model_dir, options)
            bw.drop_component(comp)
            for ck in family.checkpoint_files(model_dir, comp):
                m["source"].setdefault("checkpoints", {})[comp] = {"file": ck.name, "sha256": sha256_file(ck)}
            if progress:
                progress.component_start(comp, [g.name for g in ce.graphs])
            for spec in ce.graphs:
                on_stage = (lambda st, c=comp, n=spec.name: progress.stage(c, n, st)) if progress else None
                res = export_graph(spec, bw.path, options, on_stage=on_stage)
                bw.add_graph(spec.name, res.entry)
                if progress:
                    progress.graph_done(comp, spec.name, res)
            if progress:
                progress.component_done(comp)
            for rel, content in ce.files.items():
                bw.add_file(rel, content, component=comp)
            m["components"][comp] = ce.manifest
            m["export_options"][comp] = {"fp16": options.fp16, "opset": options.opset, "sentis_version": options.sentis_version}
            ce = spec = res = None  # this component's modules (the LLM's 2 GB) go before the next one is built
        return m
