"""Static checker: what happens to this ONNX model in Unity Sentis, per version.

Every finding has a stable rule id, a level and the Unity source file its rule comes from:

- ``reject``    the import fails;
- ``runtime``   it imports, then throws on a named backend;
- ``semantics`` it imports and computes something else than ONNX;
- ``perf``      CPU fallback, blocking GPU->CPU readbacks, lost import-time fusions;
- ``policy``    this project's stricter rule (named as such; ``policy=False`` switches them off).

reject/runtime/semantics (and policy unless disabled) fail the report. The rules, their levels per
version and their sources are listed in docs/sentis.md; the import model (folding, fusions, CPU
fallback, residency) is in `importer.py`.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterable

import numpy as np
import onnx
from onnx import ModelProto, TensorProto

from .._graph import (DEFAULT_DOMAINS, PROTOBUF_LIMIT, copy_model, has_subgraph, load_model, model_bytes, subgraphs,
                      without_weights)
from ..dtypes import cast_to_bool_nodes, elem_types, find_int64_issues
from . import rules as R
from .importer import ImportAnalysis, analyze_import, pin_dims

REJECT, RUNTIME, SEMANTICS, PERF, POLICY = "reject", "runtime", "semantics", "perf", "policy"
LEVELS = (REJECT, RUNTIME, SEMANTICS, PERF, POLICY)
FAILING = frozenset({REJECT, RUNTIME, SEMANTICS})
VERSION_BUCKETS = ("2.1", "2.2", "2.3", "2.4")

_CONV = "Editor/ONNX/ONNXModelConverter.cs"
_LOADER = "Editor/ONNX/ONNXConstantsLoader.cs"
_WRAPPER = "Editor/ONNX/ONNXNodeWrapper.cs"
_IMPORTER = "Editor/ONNX/ONNXModelImporter.cs"
_CAST = "Runtime/Core/BurstJobsCastTensor.cs"
_GPU = "Runtime/Core/Backends/GPUCompute/GPUCompute.cs"
_FALLBACK = "Runtime/Core/Backends/CPUFallbackCalculator.cs"
_WORKER = "Runtime/Core/Backends/Worker.cs + Runtime/Core/Backends/GPUCompute/ComputeTensorData.cs (WaitForCompletion)"
_CSE = "Runtime/Core/Compiler/Passes/ContractSubExpressionsPass.cs"
_SHAPE = "Runtime/Core/ShapeInference/TensorShape.cs"
_PROJECT = "project rule (docs/sentis.md)"


@dataclass(frozen=True)
class Rule:
    what: str
    levels: dict  # version bucket ("2.1".."2.4") -> level; a bucket that is absent: rule not applicable
    source: str


def _all(level: str) -> dict:
    return {v: level for v in VERSION_BUCKETS}


def _upto(last: str, level: str) -> dict:
    return {v: level for v in VERSION_BUCKETS if v <= last}


def _from(first: str, level: str) -> dict:
    return {v: level for v in VERSION_BUCKETS if v >= first}


RULES: dict[str, Rule] = {
    # -- converter ------------------------------------------------------------------------------
    "op-unsupported": Rule("op type not handled by the converter of this version (not in its op set)", _all(REJECT), _CONV + " OnNode, final else"),
    "op-domain": Rule("node of a non-ONNX domain whose op type the converter knows: imported as the ONNX op (node.domain is never read)", _all(POLICY), _CONV + " OnNode (matches op_type only)"),
    "subgraph": Rule("If/Loop/Scan or any node with a graph attribute: graph attributes are never read", _all(REJECT), _CONV + " OnNode"),
    "local-function": Rule("model-local functions: model.functions is never read (a call is op-unsupported)", _all(POLICY), _CONV),
    "opset-range": Rule("default-domain opset outside the allowed range (the importer has no range check)", _all(POLICY), _PROJECT),
    "opset-domain": Rule("default domain spelled 'ai.onnx' or missing: opset 15 is assumed (harmless for these nodes)", _all(POLICY), _CONV + " (defaultOpsetVersion, S l.1359-1366, IE l.1517-1524)"),
    "opset-assumed": Rule("default domain spelled 'ai.onnx' or missing and the real opset changes how a node is read (Reduce axes input at 18+, Squeeze/Unsqueeze/Split/ReduceSum axes before 13)", _all(SEMANTICS), _CONV + " (defaultOpsetVersion)"),
    "io-name-trimmed": Rule("graph input/output name ending in ':0' is trimmed before 2.4 (TrimTensorflowNames)", _upto("2.3", POLICY), _CONV + " TrimTensorflowNames (S l.1510, IE-2.2.0 l.1563; gone in 2.4)"),
    "constant-attr": Rule("Constant given by value_float(s)/value_int(s) before 2.3 (throws), or by sparse_value/value_string(s) (Error)", _all(REJECT), _CONV + " Constant (S l.105-111, IE l.95-130)"),
    "concat-axis": Rule("Concat without the axis attribute (GetRequiredInt throws)", _all(REJECT), _CONV + " Concat"),
    "attr-gridsample-mode": Rule("GridSample mode/padding_mode the converter does not know: throws before 2.4, falls back with a warning in 2.4", {**_upto("2.3", REJECT), "2.4": SEMANTICS}, _CONV + " GridSample"),
    "gelu-tanh": Rule("Gelu(approximate='tanh'): 2.1 never reads approximate and runs exact erf Gelu", _upto("2.1", SEMANTICS), _CONV + " Gelu (IE 2.2+ maps tanh to GeluFast)"),
    "scatter-reduction-minmax": Rule("ScatterElements/ScatterND reduction max/min: 2.1 runs it as none", _upto("2.1", SEMANTICS), _WRAPPER + " ScatterReductionMode"),
    "attr-layernorm-axis": Rule("LayerNormalization over an axis other than the last: always the last axis", _all(SEMANTICS), _CONV + " LayerNormalization (S l.590, IE l.663)"),
    "attr-resize-mode": Rule("Resize/Upsample mode, nearest_mode or option the converter ignores (falls back to nearest / not read)", _all(SEMANTICS), _CONV + " Resize"),
    "attr-resize-coord": Rule("Resize coordinate_transformation_mode it does not implement (falls back to half_pixel; roi dropped)", _all(SEMANTICS), _CONV + " Resize"),
    "attr-pad-mode": Rule("Pad mode other than constant/reflect/edge/wrap (falls back to constant)", _all(SEMANTICS), _CONV + " Pad"),
    "attr-convtranspose-output-shape": Rule("ConvTranspose output_shape (ignored)", _all(SEMANTICS), _CONV + " ConvTranspose"),
    "attr-convtranspose-group": Rule("ConvTranspose group/dilations before 2.3 (ignored, S l.220-221)", _upto("2.2", SEMANTICS), _CONV + " ConvTranspose"),
    "attr-pool": Rule("MaxPool/AveragePool ceil_mode, dilations, storage_order or count_include_pad with padding (ignored)", _all(SEMANTICS), _CONV + " MaxPool/AveragePool"),
    "cast-to-bool": Rule("Cast to bool from a non-bool input: Sentis truncates ((int)v) instead of testing non-zero", _all(SEMANTICS), "Runtime/Core/Resources/Sentis/ComputeShaders/Compute.Shaders.PointwiseUnary.gen.compute (OpperationCastFloatToInt)"),
    # -- tensors ----------------------------------------------------------------------------------
    "dtype-unsupported": Rule("initializer/Constant payload of a dtype the loader throws on (INT16/UINT16/UINT32/UINT64/BFLOAT16 raw_data, STRING, COMPLEX), Cast to STRING/COMPLEX, non-tensor or string I/O", _all(REJECT), _LOADER + " GetTensorData (S l.262, IE l.178); " + _WRAPPER + " DataTypeFromOnnxDataType"),
    "dtype-double": Rule("DOUBLE initializer, Constant, Cast target or graph I/O: imported as float32", _all(POLICY), _WRAPPER + " DataTypeFromOnnxDataType"),
    "double-clamp": Rule("DOUBLE constant values outside [-2^31, 2^31-1] (or inf): clamped when converted to float (a -1e30 mask becomes -2.1e9)", _all(SEMANTICS), _CAST + " l.21"),
    "io-dtype": Rule("graph input/output of a dtype other than float32/float16/int32/int64/bool (runs as float32/int32)", _all(POLICY), _PROJECT),
    "typed-data-float16": Rule("FLOAT16 payload in int32_data: read as integers before 2.4 (wrong values), throws in 2.4", {**_upto("2.3", SEMANTICS), "2.4": REJECT}, _LOADER + " LoadConstant (S l.72-78; IE l.48-113)"),
    "typed-data-int32": Rule("BOOL/INT8/UINT8/INT16/UINT16 payload in int32_data: 2.4 reads int32_data only for INT32 and throws", _from("2.4", REJECT), _LOADER + " LoadConstant (IE l.60-67, l.113)"),
    "typed-data-double": Rule("DOUBLE payload in double_data: not read before 2.4 ('Could not read tensor data')", _upto("2.3", REJECT), _LOADER + " LoadConstant (S l.59-103)"),
    "sparse-initializer": Rule("sparse initializer: never loaded, its reader fails", _all(REJECT), _CONV + " (graph.initializer only)"),
    "int64-range": Rule("int64 value outside int32 where saturation changes the result", _all(SEMANTICS), _CAST + " Int64BytesAsIntJob; " + _WRAPPER + " GetRequiredInt(s)"),
    "rank": Rule("tensor rank above 8", _all(REJECT), _SHAPE + " (maxRank = 8)"),
    "dynamic-dim": Rule("graph input/output dim that is not static and not declared as allowed", _all(POLICY), _PROJECT),
    "file-size": Rule("serialized model of 2 GB or more (protobuf cannot parse it)", _all(REJECT), _IMPORTER),
    "external-data": Rule("weights stored outside the .onnx file (read correctly: contiguous, in order, from byte 0)", _all(POLICY), _PROJECT),
    "external-data-layout": Rule("external data that is not contiguous in initializer order from byte 0 (the offset key is never read; a Constant re-reads from byte 0): wrong weights", _all(SEMANTICS), _LOADER + " LoadConstant(tensor, stream) (S l.16-36, IE l.11-30)"),
    "external-data-missing": Rule("external data file missing", _all(REJECT), _LOADER + " LoadConstant"),
    # -- GPUCompute backend -------------------------------------------------------------------------
    "scatter-elements-reduction": Rule("ScatterElements with a reduction: GPUCompute throws NotImplementedException", _all(RUNTIME), _GPU + " ScatterElements (S l.2721-2729, IE l.2968)"),
    "conv-rank-gpu": Rule("Conv/ConvTranspose of rank > 5: GPUCompute throws NotImplementedException", _all(RUNTIME), _GPU + " Conv/ConvTranspose"),
    "pool-rank-gpu": Rule("MaxPool/AveragePool other than 1-D/2-D: the GPU kernels switch on rank 3/4 only", _all(RUNTIME), "Runtime/Core/Backends/GPUCompute/Compute.Backend.gen.cs"),
    "compress-gpu-condition": Rule("Compress whose condition sits on the GPU: read with the CPU indexer, Tensor.GetItem throws", _all(RUNTIME), "Runtime/Core/Layers/Layer.Logical.cs (S l.104) + Tensor.cs (S l.247, IE l.267)"),
    "cpu-fallback-unflushed": Rule("a CPU-fallback layer moves a tensor that an earlier GPU layer of the same run still has bound in the unsubmitted command buffer (2.4 flushes first) [inference]", _upto("2.3", SEMANTICS), _FALLBACK + " (IE l.95-147 adds the flush)"),
    # -- performance ------------------------------------------------------------------------------
    "cpu-read-input": Rule("a layer input read on the CPU that is not constant after import folding", _all(PERF), _FALLBACK + " IsInputCPURead (S l.79) / Layer.*.cs inputCPURead (IE)"),
    "cpu-fallback": Rule("layer that runs on the CPU backend because its output feeds a CPU-read input", _all(PERF), _FALLBACK + " Calculate"),
    "blocking-readback": Rule("blocking GPU->CPU readback (AsyncGPUReadback.WaitForCompletion) in an execution", _all(PERF), _WORKER),
    "gpu-flush": Rule("CPU-fallback layer before which 2.4 submits the command buffer (ExecuteCommandBufferAndClear)", _from("2.4", PERF), _FALLBACK + " layerCPUFallbackShouldFlushGPU (IE l.95-147); Runtime/Core/Backends/Worker.cs l.215-225"),
    "import-analysis-failed": Rule("the import model could not run on this graph: CPU fallback and readbacks are not analysed", _all(PERF), "graph_passes/sentis/importer.py"),
    "fusion-blocked": Rule("import-time fusion (RMSNorm, LayerNorm, Gelu, GeluFast, Swish) blocked by a same-dtype Cast or Identity inside the pattern (2.4 matches before removing them)", _from("2.4", PERF), _CSE + " (IE l.24-125; ModelOptimizer.cs runs it first)"),
}
# Rules the checker implements, by the level each has in each version bucket.


def rule_counts() -> dict[str, dict[str, int]]:
    """{version bucket: {level: number of rules}}."""
    out = {}
    for v in VERSION_BUCKETS:
        c = Counter(r.levels[v] for r in RULES.values() if v in r.levels)
        out[v] = {lvl: c.get(lvl, 0) for lvl in LEVELS}
    return out


def version_bucket(version: str) -> str:
    key = R.parse_version(version)
    if key < (2, 2):
        return "2.1"
    if key >= (2, 4):
        return "2.4"
    return f"{key[0]}.{key[1]}"


@dataclass
class Violation:
    """One finding (the historical name is kept: reports and tests use it)."""

    rule: str
    message: str
    node: str | None = None
    op: str | None = None
    level: str = REJECT
    source: str = ""

    def line(self) -> str:
        where = f"{self.node or '-'}({self.op})" if self.op else (self.node or "-")
        return f"{self.level:9s} {self.rule}  {where}  {self.message}"


Finding = Violation


@dataclass
class CheckReport:
    path: str | None
    sentis_version: str
    findings: list[Violation]
    op_counts: dict[str, int]
    n_nodes: int
    opset: int
    file_size: int | None
    allowed_symbolic_dims: list[str] = field(default_factory=list)
    policy: bool = True
    importer: ImportAnalysis | None = None
    pinned_dims: dict[str, int] = field(default_factory=dict)
    other_imports: dict[str, ImportAnalysis] = field(default_factory=dict)  # import_versions of check_model

    def _fails(self, f: Violation) -> bool:
        return f.level in FAILING or (self.policy and f.level == POLICY)

    @property
    def violations(self) -> list[Violation]:
        """Findings that fail the report."""
        return [f for f in self.findings if self._fails(f)]

    @property
    def notes(self) -> list[Violation]:
        """Findings that do not fail it (perf, and policy when disabled)."""
        return [f for f in self.findings if not self._fails(f)]

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def blocking_readbacks(self) -> int:
        return self.importer.summary()["blocking_readbacks"] if self.importer is not None else 0

    @property
    def blocked_fusions(self) -> int:
        return sum(len(v) for v in self.importer.blocked_rewrites.values()) if self.importer is not None else 0

    def by_level(self) -> dict[str, int]:
        c = Counter(f.level for f in self.findings)
        return {lvl: c.get(lvl, 0) for lvl in LEVELS}

    def format(self) -> str:
        name = self.path or "<model>"
        n = len(self.violations)
        status = "OK" if self.ok else f"FAIL ({n} finding{'s' if n != 1 else ''} that fail{'' if n != 1 else 's'})"
        lines = [f"{name}: {status} for Sentis {self.sentis_version}" + ("" if self.policy else " (policy rules off)")]
        for v in self.violations:
            lines.append("  " + v.line())
        notes = self.notes
        shown = Counter()
        for v in notes:
            shown[v.rule] += 1
            if shown[v.rule] <= 8:
                lines.append("  note: " + v.line())
        for rule, k in shown.items():
            if k > 8:
                lines.append(f"  note: ... {k - 8} more {rule} (--json lists all)")
        if self.importer is not None:
            lines.append(self.importer.format())
        ops = ", ".join(f"{op}x{n}" for op, n in sorted(self.op_counts.items(), key=lambda kv: (-kv[1], kv[0])))
        size = human_size(self.file_size) if self.file_size is not None else "unknown size"
        lines.append(f"  summary: opset {self.opset}, {self.n_nodes} nodes, {len(self.op_counts)} op types, {size}; "
                     + ", ".join(f"{k} {v}" for k, v in self.by_level().items()))
        if ops:
            lines.append(f"  ops: {ops}")
        if self.allowed_symbolic_dims:
            lines.append(f"  allowed dynamic dims: {', '.join(self.allowed_symbolic_dims)}")
        if self.pinned_dims:
            lines.append("  dims pinned at import: " + ", ".join(f"{k}={v}" for k, v in self.pinned_dims.items()))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "sentis_version": self.sentis_version,
            "ok": self.ok,
            "policy": self.policy,
            "findings": [asdict(v) for v in self.findings],
            "violations": [asdict(v) for v in self.violations],
            "notes": [asdict(v) for v in self.notes],
            "by_level": self.by_level(),
            "import": self.importer.summary() if self.importer is not None else None,
            "import_detail": self.importer.detail() if self.importer is not None else None,
            "other_imports": {v: a.summary() for v, a in sorted(self.other_imports.items())},
            "op_counts": dict(sorted(self.op_counts.items())),
            "n_nodes": self.n_nodes,
            "opset": self.opset,
            "file_size": self.file_size,
            "allowed_symbolic_dims": list(self.allowed_symbolic_dims),
            "pinned_dims": dict(self.pinned_dims),
        }


def human_size(n: int) -> str:
    """1536 -> "1.5 KiB" (reports, CLI tables)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _dtype_name(t: int) -> str:
    try:
        return TensorProto.DataType.Name(t)
    except ValueError:
        return str(t)


_REDUCE_OPS = frozenset({"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
                         "ReduceMin", "ReduceProd", "ReduceSumSquare"})
_UNLOADABLE = frozenset({TensorProto.INT16, TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64, TensorProto.BFLOAT16,
                         TensorProto.STRING, TensorProto.COMPLEX64, TensorProto.COMPLEX128, TensorProto.UNDEFINED})
_TYPED_INT32_OK_2_1 = frozenset({TensorProto.INT32, TensorProto.BOOL, TensorProto.INT8, TensorProto.UINT8, TensorProto.INT16,
                                 TensorProto.UINT16})
INT32_LIMIT = 2.0**31


class _Checker:
    def __init__(self, model: ModelProto, version: str, allowed: set[str], opset_range: tuple[int, int],
                 model_dir: str | None = None):
        self.m = model
        self.version = version
        self.v = R.parse_version(version)
        self.bucket = version_bucket(version)
        self.ops = R.supported_ops(version)
        self.allowed = allowed
        self.opset_range = opset_range
        self.model_dir = model_dir
        self.findings: list[Violation] = []
        self.inferred = self._infer()
        g = self.inferred.graph
        self.shapes: dict[str, list] = {}
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            t = vi.type.tensor_type
            if vi.type.HasField("tensor_type") and t.HasField("shape"):
                self.shapes[vi.name] = list(t.shape.dim)

    def _infer(self) -> ModelProto:
        if model_bytes(self.m) >= PROTOBUF_LIMIT:
            return self.m
        try:
            light = without_weights(self.m)
            inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
        except Exception:  # noqa: BLE001 - checking continues with the declared shapes
            return self.m
        if len(light.graph.initializer) == len(self.m.graph.initializer):
            return inferred  # nothing was taken out
        # the inferred shapes on the model with its weights as initializers (the import analysis
        # folds them as constants); a model the checker loaded itself is annotated in place
        target = self.m if self.model_dir is not None else copy_model(self.m)
        del target.graph.value_info[:]
        target.graph.value_info.extend(inferred.graph.value_info)
        del target.graph.output[:]
        target.graph.output.extend(inferred.graph.output)
        return target

    def _emit(self, rule, message, name, op):
        r = RULES[rule]
        level = r.levels.get(self.bucket)
        if level is None:  # the rule does not apply to this version
            return
        self.findings.append(Violation(rule, message, name, op, level, r.source))

    def add(self, rule, message, node=None):
        self._emit(rule, message, (node.name or (node.output[0] if node.output else None)) if node is not None else None,
                   node.op_type if node is not None else None)

    def add_named(self, rule, message, name=None, op=None):
        self._emit(rule, message, name, op)

    # ---------------------------------------------------------------------------------------
    def run(self) -> None:
        self.check_opset()
        self.check_functions()
        self.check_nodes()
        self.check_io()
        self.check_initializers()
        self.check_external_layout()
        self.check_int64()
        self.check_cast_to_bool()
        self.check_rank()

    def check_opset(self):
        defaults = [imp for imp in self.m.opset_import if imp.domain in DEFAULT_DOMAINS]
        spelled = [imp for imp in defaults if imp.domain == ""]
        real = defaults[0].version if defaults else None
        if not spelled:
            why = "default domain spelled 'ai.onnx'" if defaults else "no opset import for the default domain ''"
            misread = self._opset_misread(real) if real is not None else []
            for n, reason in misread:
                self.add("opset-assumed", f"{why}: Sentis assumes opset 15 and reads this node's {reason} (real opset {real})", n)
            self.add_named("opset-domain", f"{why}; Sentis only reads domain '' and assumes opset 15 (fix: normalize_default_domain / convert_opset)")
        ver = real if real is not None else 0
        lo, hi = self.opset_range
        if defaults and not lo <= ver <= hi:
            self.add_named("opset-range", f"default-domain opset {ver} outside {lo}-{hi} (project range; fix: convert_opset)")

    def _opset_misread(self, real: int):
        out = []
        for n in self.m.graph.node:
            if n.domain not in DEFAULT_DOMAINS:
                continue
            if real >= 18 and n.op_type in _REDUCE_OPS and len(n.input) > 1 and n.input[1]:
                out.append((n, "axes input through the opset-15 attribute path (the axes are lost)"))
            elif real < 13 and n.op_type in ("Squeeze", "Unsqueeze", "Split", "ReduceSum"):
                out.append((n, "axes/split attribute through the opset-13+ input path (the attribute is lost)"))
        return out

    def check_functions(self):
        for f in self.m.functions:
            self.add_named("local-function", f"model-local function '{f.domain}:{f.name}'; Sentis never reads functions (inline it)", f.name)

    def check_nodes(self):
        functions = {(f.domain, f.name) for f in self.m.functions}
        for n in self.m.graph.node:
            op = n.op_type
            if (n.domain, op) in functions:
                self.add("op-unsupported", f"calls model-local function '{n.domain}:{op}'; functions are never read", n)
            elif op not in self.ops:
                self.add("op-unsupported", self._unsupported_message(op, n.domain), n)
            elif n.domain not in DEFAULT_DOMAINS:
                self.add("op-domain", f"op '{op}' of domain '{n.domain}' imports as the ONNX op '{op}' (node.domain is never read); "
                         "make sure both compute the same", n)
            if has_subgraph(n) or op in R.CONTROL_FLOW_OPS:
                names = sorted({name for name, _ in subgraphs(n)})
                self.add("subgraph", f"{op} with subgraph attribute(s) {', '.join(names) or '-'}: Sentis never reads subgraphs "
                         "(fix: fold_if / unroll_loop)", n)
            check = getattr(self, f"attr_{op}", None)
            if check is not None and op in self.ops:
                check(n)

    def _unsupported_message(self, op: str, domain: str = "") -> str:
        text = f"{op} is not supported by Sentis {self.version}"
        if domain not in DEFAULT_DOMAINS:
            text = f"op '{op}' of domain '{domain}' is not an op the converter knows (it reads op types only)"
        elif op in R.OPS_2_4:
            first = [v for v in R.SUPPORTED_VERSIONS if op in R.supported_ops(v)]
            if first:
                text += f" (available from Sentis {first[0]})"
        elif op in R.EXPLICITLY_UNSUPPORTED:
            text += " (listed as unsupported in the Sentis docs)"
        hint = R.HINTS.get(op)
        if hint and not (op in ("STFT", "DFT") and self.v >= (2, 4)):
            text += f"; {hint}"
        return text

    # -- attribute rules --------------------------------------------------------------------
    def attr_LayerNormalization(self, n):
        axis = _attr(n, "axis", -1)
        if axis == -1:
            return
        dims = self.shapes.get(n.input[0]) if n.input else None
        if dims is not None and axis == len(dims) - 1:
            return
        self.add("attr-layernorm-axis", f"axis={axis}: Sentis only normalizes over the last axis (-1) and silently uses -1", n)

    def attr_Resize(self, n):
        mode = _s(_attr(n, "mode", b"nearest"))
        if mode not in R.RESIZE_MODES:
            self.add("attr-resize-mode", f"mode '{mode}' not implemented (Sentis supports nearest, linear; falls back to nearest)", n)
        coord = _s(_attr(n, "coordinate_transformation_mode", b"half_pixel"))
        if coord not in R.RESIZE_COORD_MODES:
            self.add(
                "attr-resize-coord",
                f"coordinate_transformation_mode '{coord}' not implemented (Sentis supports {', '.join(sorted(R.RESIZE_COORD_MODES))}; falls back to half_pixel)",
                n,
            )
        if mode == "nearest":
            nm = _s(_attr(n, "nearest_mode", b"round_prefer_floor"))
            if nm not in R.RESIZE_NEAREST_MODES:
                self.add("attr-resize-mode", f"nearest_mode '{nm}' not implemented", n)
        if _attr(n, "exclude_outside", 0):
            self.add("attr-resize-mode", "exclude_outside=1 is ignored", n)
        if _attr(n, "antialias", 0):
            self.add("attr-resize-mode", "antialias=1 is never read by Sentis", n)
        policy = _s(_attr(n, "keep_aspect_ratio_policy", b"stretch"))
        if policy != "stretch":
            self.add("attr-resize-mode", f"keep_aspect_ratio_policy '{policy}' is never read by Sentis", n)

    def attr_Upsample(self, n):
        mode = _s(_attr(n, "mode", b"nearest"))
        if mode not in R.RESIZE_MODES:
            self.add("attr-resize-mode", f"mode '{mode}' not implemented (Sentis supports nearest, linear)", n)

    def attr_Pad(self, n):
        mode = _s(_attr(n, "mode", b"constant"))
        if mode not in R.PAD_MODES:
            self.add("attr-pad-mode", f"mode '{mode}' not implemented (Sentis supports {', '.join(sorted(R.PAD_MODES))}; falls back to constant)", n)

    def attr_ConvTranspose(self, n):
        if _attr(n, "output_shape") is not None:
            self.add("attr-convtranspose-output-shape", "output_shape is ignored; express it with pads/output_padding", n)
        group = _attr(n, "group", 1)
        dil = list(_attr(n, "dilations", []) or [])
        if group != 1 or any(d != 1 for d in dil):
            self.add("attr-convtranspose-group", f"group={group}, dilations={dil or [1]} are ignored before Sentis 2.3", n)
        self._conv_rank(n)

    def attr_Conv(self, n):
        self._conv_rank(n)

    def _conv_rank(self, n):
        dims = self.shapes.get(n.input[0]) if n.input else None
        rank = len(dims) if dims is not None else None
        if rank is None and len(n.input) > 1:
            w = next((i for i in self.m.graph.initializer if i.name == n.input[1]), None)
            rank = len(w.dims) if w is not None else None
        if rank is not None and rank > 5:
            self.add("conv-rank-gpu", f"rank-{rank} {n.op_type}: GPUCompute throws NotImplementedException above rank 5", n)

    def _pool(self, n):
        problems = []
        if _attr(n, "ceil_mode", 0):
            problems.append("ceil_mode=1")
        dil = list(_attr(n, "dilations", []) or [])
        if any(d != 1 for d in dil):
            problems.append(f"dilations={dil}")
        if _attr(n, "storage_order", 0):
            problems.append("storage_order=1")
        if _attr(n, "count_include_pad", 0):
            pads = list(_attr(n, "pads", []) or [])
            auto = _s(_attr(n, "auto_pad", b"NOTSET"))
            if any(pads) or auto.startswith("SAME"):
                problems.append("count_include_pad=1 with padding")
        if problems:
            self.add("attr-pool", f"{', '.join(problems)} ignored by Sentis pooling", n)
        kernel = _attr(n, "kernel_shape")
        rank = len(kernel) + 2 if kernel is not None else None
        if rank is not None and rank not in (3, 4):
            self.add("pool-rank-gpu", f"{len(kernel)}-D {n.op_type}: the GPUCompute kernels handle 1-D and 2-D pooling only", n)

    attr_MaxPool = _pool
    attr_AveragePool = _pool

    def attr_Constant(self, n):
        names = {a.name for a in n.attribute}
        if names & {"sparse_value", "value_string", "value_strings"}:
            bad = sorted(names & {"sparse_value", "value_string", "value_strings"})
            self.add("constant-attr", f"Constant with {', '.join(bad)} is never read by Sentis (fix: constant_value_attrs)", n)
        scalar = sorted(names & {"value_float", "value_floats", "value_int", "value_ints"})
        if scalar and self.v < R.CONSTANT_SCALAR_ATTRS_SINCE:
            self.add(
                "constant-attr",
                f"Constant with {', '.join(scalar)}: Sentis {self.version} only reads the tensor 'value' and throws (fix: constant_value_attrs)",
                n,
            )
        for a in n.attribute:
            if a.name == "value":
                self._tensor(a.t, f"Constant value of node '{n.name}'", n)

    def attr_Cast(self, n):
        to = _attr(n, "to")
        if to in (TensorProto.STRING, TensorProto.COMPLEX64, TensorProto.COMPLEX128):
            self.add("dtype-unsupported", f"Cast to {_dtype_name(to)} is not supported (Error at import)", n)
        elif to == TensorProto.DOUBLE:
            self.add("dtype-double", "Cast to DOUBLE runs as float32 (fix: double_to_float)", n)

    def attr_Concat(self, n):
        if _attr(n, "axis") is None:
            self.add("concat-axis", "Concat without 'axis': the converter's GetRequiredInt throws", n)

    def attr_Gelu(self, n):
        if _s(_attr(n, "approximate", b"none")) == "tanh":
            self.add("gelu-tanh", "approximate='tanh' is never read by Sentis 2.1: it runs the exact erf Gelu (2.2+ runs GeluFast)", n)

    def _scatter(self, n):
        red = _s(_attr(n, "reduction", b"none"))
        if red in ("max", "min"):
            self.add("scatter-reduction-minmax", f"reduction '{red}' runs as 'none' in Sentis 2.1 (2.2+ implements it)", n)
        if n.op_type == "ScatterElements" and red != "none":
            self.add("scatter-elements-reduction", f"reduction '{red}': GPUCompute ScatterElements throws NotImplementedException for any reduction", n)

    attr_ScatterElements = _scatter
    attr_ScatterND = _scatter

    def attr_GridSample(self, n):
        mode = _s(_attr(n, "mode", b"linear"))
        pad = _s(_attr(n, "padding_mode", b"zeros"))
        bad = []
        if mode not in ("bilinear", "linear", "cubic", "bicubic", "nearest"):
            bad.append(f"mode '{mode}'")
        if pad not in ("zeros", "border", "reflection"):
            bad.append(f"padding_mode '{pad}'")
        if bad:
            what = "throws (ArgumentOutOfRangeException)" if self.v < (2, 4) else "warns and falls back to the default"
            self.add("attr-gridsample-mode", f"{' and '.join(bad)}: the converter {what}", n)

    # -- tensors ----------------------------------------------------------------------------
    def _tensor(self, t: TensorProto, what: str, node=None):
        def emit(rule, msg):
            if node is not None:
                self.add(rule, msg, node)
            else:
                self.add_named(rule, msg, t.name)

        dt = t.data_type
        has_raw = bool(t.raw_data)
        external = t.data_location == TensorProto.EXTERNAL
        if dt in _UNLOADABLE and (has_raw or external or dt in (TensorProto.STRING, TensorProto.COMPLEX64, TensorProto.COMPLEX128, TensorProto.UNDEFINED)):
            emit("dtype-unsupported", f"{what} has dtype {_dtype_name(dt)}, which the Sentis constants loader throws on (fix: cast at export)")
            return
        if dt == TensorProto.DOUBLE:
            emit("dtype-double", f"{what} is DOUBLE: imported as float32 (fix: double_to_float)")
            arr = None
            if not external:
                arr = onnx.numpy_helper.to_array(t)
            elif self.model_dir is not None:
                try:
                    arr = onnx.numpy_helper.to_array(t, base_dir=self.model_dir)
                except Exception:  # noqa: BLE001 - unreadable external data is reported by its own rules
                    arr = None
            if arr is not None:
                bad = np.abs(arr.astype(np.float64)) > INT32_LIMIT
                if bad.any():
                    first = float(arr.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]])
                    emit("double-clamp", f"{what} holds {first:g} ({int(bad.sum())} values beyond +-2^31): Sentis clamps doubles to "
                         "[-2147483648, 2147483647] when it converts them to float (fix: double_to_float)")
            if not has_raw and len(t.double_data):
                emit("typed-data-double", f"{what} stores DOUBLE in double_data, which Sentis < 2.4 never reads (fix: tensor_payloads)")
        if not has_raw and not external and len(t.int32_data):
            if dt == TensorProto.FLOAT16:
                emit("typed-data-float16", f"{what} stores FLOAT16 in int32_data: " + (
                    "Sentis 2.4 throws 'Could not read tensor data'" if self.v >= (2, 4) else
                    f"Sentis {self.version} reads the bit patterns as integers (wrong values)") + " (fix: tensor_payloads)")
            elif dt != TensorProto.INT32 and dt in _TYPED_INT32_OK_2_1:
                emit("typed-data-int32", f"{what} stores {_dtype_name(dt)} in int32_data; Sentis 2.4 reads int32_data only for INT32 "
                     "and throws (fix: tensor_payloads)")
            elif dt in _UNLOADABLE:
                emit("dtype-unsupported", f"{what} has dtype {_dtype_name(dt)} in int32_data, which Sentis cannot load")

    def check_io(self):
        g = self.m.graph
        inits = {i.name for i in g.initializer}
        for kind, vis in (("input", [i for i in g.input if i.name not in inits]), ("output", list(g.output))):
            for vi in vis:
                if not vi.type.HasField("tensor_type"):
                    self.add_named("dtype-unsupported", f"graph {kind} '{vi.name}' is not a tensor", vi.name)
                    continue
                if vi.name.endswith(":0"):
                    self.add_named("io-name-trimmed", f"graph {kind} '{vi.name}' is renamed '{vi.name[:-2]}' by Sentis {self.version} (TrimTensorflowNames)", vi.name)
                et = vi.type.tensor_type.elem_type
                if et in (TensorProto.STRING, TensorProto.COMPLEX64, TensorProto.COMPLEX128, TensorProto.UNDEFINED):
                    self.add_named("dtype-unsupported", f"graph {kind} '{vi.name}' has dtype {_dtype_name(et)}", vi.name)
                elif et == TensorProto.DOUBLE:
                    self.add_named("dtype-double", f"graph {kind} '{vi.name}' is DOUBLE: Sentis runs it as float32 (fix: double_to_float)", vi.name)
                elif et not in R.IO_DTYPES:
                    self.add_named(
                        "io-dtype", f"graph {kind} '{vi.name}' has dtype {_dtype_name(et)}, run as "
                        f"{'float32' if et == TensorProto.BFLOAT16 else 'int32'} (use float32/float16/int32/int64/bool)", vi.name
                    )
                dims = self._io_dims(vi, kind)
                if dims is None:
                    self.add_named("dynamic-dim", f"graph {kind} '{vi.name}' has no shape", vi.name)
                    continue
                for k, d in enumerate(dims):
                    if d.HasField("dim_value") and d.dim_value >= 0:
                        continue
                    if d.HasField("dim_param") and d.dim_param in self.allowed:
                        continue
                    desc = f"symbolic '{d.dim_param}'" if d.HasField("dim_param") else (
                        f"negative {d.dim_value}" if d.HasField("dim_value") else "unknown"
                    )
                    self.add_named(
                        "dynamic-dim",
                        f"graph {kind} '{vi.name}' dim {k} is {desc}; pin it (fix_input_shapes) or declare it allowed",
                        vi.name,
                    )

    def _io_dims(self, vi, kind):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            dims = list(t.shape.dim)
            if kind == "output":  # prefer what inference found when the declaration is vaguer
                inferred = self.shapes.get(vi.name)
                if inferred is not None and len(inferred) == len(dims):
                    dims = [i if i.HasField("dim_value") and not d.HasField("dim_value") else d for d, i in zip(dims, inferred)]
            return dims
        return self.shapes.get(vi.name)

    def check_initializers(self):
        g = self.m.graph
        for init in g.initializer:
            self._tensor(init, f"initializer '{init.name}'")
        for sp in g.sparse_initializer:
            self.add_named("sparse-initializer", f"sparse initializer '{sp.values.name}' is never loaded by Sentis", sp.values.name)

    def check_external_layout(self):
        """ONNXConstantsLoader: one stream per file, each tensor reads `length` bytes from the current
        position (the whole file without a length); `offset` is never read; a Constant reopens the file."""
        g = self.m.graph
        pos: dict[str, int] = {}
        entries = [(init, None) for init in g.initializer] + [
            (a.t, n) for n in g.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
        for t, node in entries:
            if t.data_location != TensorProto.EXTERNAL:
                continue
            info = {e.key: e.value for e in t.external_data}
            loc = info.get("location", "")
            off = int(info.get("offset", 0) or 0)
            name = f"Constant '{node.name}'" if node is not None else f"initializer '{t.name}'"
            where = (lambda rule, msg: self.add(rule, msg, node)) if node is not None else (lambda rule, msg: self.add_named(rule, msg, t.name))
            where("external-data", f"{name} is stored in external file '{loc}'; keep weights inline (convert does)")
            if self.model_dir is not None and not os.path.exists(os.path.join(self.model_dir, loc)):
                where("external-data-missing", f"{name}: external file '{loc}' not found next to the model")
                continue
            expected = 0 if node is not None else pos.get(loc, 0)
            if off != expected:
                where("external-data-layout", f"{name} sits at offset {off} of '{loc}' but Sentis reads it from byte {expected} "
                      "(the offset key is never read): wrong weights (fix: convert re-saves them inline)")
            if node is None:
                if "length" in info:
                    pos[loc] = expected + int(info["length"])
                else:
                    pos[loc] = 1 << 62  # reads to the end of the file: nothing after it is right

    def check_int64(self):
        for iss in find_int64_issues(self.m):
            if iss.harmless:
                continue
            name = iss.node.name if iss.node is not None else iss.name
            op = iss.node.op_type if iss.node is not None else None
            self.add_named("int64-range", iss.describe() + " (fix or run check_int64)", name or None, op)

    def check_cast_to_bool(self):
        types = elem_types(self.inferred, infer=False)
        for n, src in cast_to_bool_nodes(self.m, types):
            srcname = _dtype_name(src) if src is not None else "unknown dtype"
            self.add(
                "cast-to-bool",
                f"Cast from {srcname} to BOOL: Sentis truncates to int instead of testing non-zero (fix: fix_cast_to_bool)",
                n,
            )

    def check_rank(self):
        g = self.inferred.graph
        seen = set()
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            dims = self.shapes.get(vi.name)
            if dims is not None and len(dims) > R.MAX_RANK and vi.name not in seen:
                seen.add(vi.name)
                self.add_named("rank", f"tensor '{vi.name}' has rank {len(dims)} > {R.MAX_RANK}", vi.name)
        for init in g.initializer:
            if len(init.dims) > R.MAX_RANK and init.name not in seen:
                self.add_named("rank", f"initializer '{init.name}' has rank {len(init.dims)} > {R.MAX_RANK}", init.name)

    # -- import model: folding, fusions, CPU fallback, residency ----------------------------------
    def check_import(self, pinned: dict[str, int]) -> ImportAnalysis | None:
        if any(f.level == REJECT for f in self.findings) or self.inferred is self.m and model_bytes(self.m) >= PROTOBUF_LIMIT:
            return None  # the import fails (or the graph is too big to infer): nothing runs
        try:
            a = analyze_import(self.inferred, self.version, pinned_dims=pinned)
        except Exception as exc:  # noqa: BLE001 - the static rules still stand
            self.add_named("import-analysis-failed", f"{type(exc).__name__}: {exc}"[:300])
            return None
        n_cpu = len(a.cpu_layers)
        for layer, op, k, t in a.cpu_read_inputs:
            self.add_named("cpu-read-input", f"input {k} ('{t}') is read on the CPU and is not constant after import folding; "
                           f"its producers run on the CPU every execution ({n_cpu} CPU-fallback layers in the graph)", layer, op)
        for L in a.cpu_layers:
            self.add_named("cpu-fallback", "runs on the CPU backend (its output feeds a CPU-read input)", L.name, L.op)
        seen = {}
        for rb in a.readbacks:
            key = (rb.layer, rb.tensor, rb.scenario)
            seen.setdefault(key, []).append(rb)
        for (layer, tensor, scenario), rbs in seen.items():
            runs = sorted({r.run for r in rbs})
            self.add_named("blocking-readback", f"{rbs[0].why}: '{tensor}' (graph inputs {scenario.split(' on ')[1]}, run{'s' if len(runs) > 1 else ''} "
                           f"{'/'.join(map(str, runs))})", layer, rbs[0].op)
        for L in a.flush_layers:
            self.add_named("gpu-flush", "Sentis 2.4 submits the command buffer before this CPU-fallback layer (it reads a tensor an earlier GPU layer reads)", L.name, L.op)
        for rb in a.unflushed_repins:
            self.add_named("cpu-fallback-unflushed", f"moves '{rb.tensor}' to the CPU while an earlier GPU layer of the same run may still "
                           f"have it bound in the unsubmitted command buffer (2.4 flushes first) [inference from IE-2.4.0's fix]", rb.layer, rb.op)
        for layer, t in a.compress_gpu_condition:
            self.add_named("compress-gpu-condition", f"condition '{t}' sits on the GPU when Compress reads it with the CPU indexer: throws", layer, "Compress")
        for kind, roots in a.blocked_rewrites.items():
            for root in roots:
                self.add_named("fusion-blocked", f"{kind} would fuse here but a same-dtype Cast or Identity inside the pattern blocks it "
                               "(fix: remove_same_dtype_casts)", root, kind)
        return a


def check_model(
    model_or_path,
    sentis_version: str = R.DEFAULT_VERSION,
    *,
    allowed_symbolic_dims: Iterable[str] = (),
    opset_range: tuple[int, int] = R.DEFAULT_OPSET_RANGE,
    policy: bool = True,
    pinned_dims: dict[str, int] | None = None,
    analyze: bool = True,
    import_versions: Iterable[str] = (),
) -> CheckReport:
    """Check a model (ModelProto or path) against the rules of one Sentis version.

    `policy=False` keeps the project's own rules as non-failing notes. `pinned_dims` fixes named
    symbolic dims as the importer's dynamic-dim setting does (Inference Engine 2.2+). `analyze`
    runs the import model (folding, fusions, CPU fallback, readbacks; `report.importer`);
    `import_versions` runs it for other versions too, on the same inferred model
    (`report.other_imports[version]`; figures only, no rule findings for those versions).

    Raises ModelLoadError (a GraphPassError) when the file cannot be read and ValueError for an
    unknown Sentis version or a pin the version cannot apply. For a path, the file is read
    without its external data (its layout is checked) and `file_size` is the size on disk; for a
    ModelProto it is the serialized size.
    """
    key = R.parse_version(sentis_version)
    pinned = {str(k): int(v) for k, v in (pinned_dims or {}).items()}
    if pinned and key < (2, 2):
        raise ValueError("pinning a dim at import needs Sentis 2.2+ (DynamicDimConfigs); for 2.1 export the graph with the dim fixed")
    model_dir = None
    if isinstance(model_or_path, ModelProto):
        model = model_or_path
        path = None
        file_size = model_bytes(model)
    else:
        path = os.fspath(model_or_path)
        model = load_model(path, load_external_data=False)
        file_size = os.path.getsize(path)
        model_dir = os.path.dirname(os.path.abspath(path))
    if pinned:
        model = pin_dims(model, pinned)
    allowed = sorted(set(allowed_symbolic_dims))
    checker = _Checker(model, sentis_version, set(allowed), opset_range, model_dir)
    checker.run()
    if file_size is not None and file_size >= R.MAX_FILE_SIZE:
        checker.add_named("file-size", f"model is {human_size(file_size)}; keep each file under 2 GB with inline weights")
    importer = checker.check_import(pinned) if analyze else None
    others = {}
    if importer is not None:
        for ver in import_versions:
            if ver != sentis_version:
                others[ver] = analyze_import(checker.inferred, ver, pinned_dims=pinned)
    counts = Counter(n.op_type if n.domain in DEFAULT_DOMAINS else f"{n.domain}:{n.op_type}" for n in model.graph.node)
    opset = next((imp.version for imp in model.opset_import if imp.domain in DEFAULT_DOMAINS), 0)
    return CheckReport(
        path=path,
        sentis_version=sentis_version,
        findings=checker.findings,
        op_counts=dict(counts),
        n_nodes=len(model.graph.node),
        opset=int(opset),
        file_size=file_size,
        allowed_symbolic_dims=allowed,
        policy=policy,
        importer=importer,
        pinned_dims=pinned,
        other_imports=others,
    )


def rules_markdown() -> str:
    """The rules table of docs/sentis.md (rule, level per version, what, source) and the count
    of rules per level and version."""
    rows = ["| rule | 2.1 | 2.2 | 2.3 | 2.4 | what | Unity source |", "|---|---|---|---|---|---|---|"]
    for k, r in RULES.items():
        rows.append(f"| `{k}` | " + " | ".join(r.levels.get(v, "–") for v in VERSION_BUCKETS) + f" | {r.what} | `{r.source}` |")
    rows += ["", "Rules per level and version (`graph_passes.sentis.rule_counts()`):", "",
             "| version | " + " | ".join(LEVELS) + " | total |", "|---|---|---|---|---|---|---|"]
    for v, c in rule_counts().items():
        rows.append(f"| {v} | " + " | ".join(str(c[lvl]) for lvl in LEVELS) + f" | {sum(c.values())} |")
    return "\n".join(rows)
