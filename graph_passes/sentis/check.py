"""Static checker: will this ONNX model import into (and behave the same in) Unity Sentis?

Every finding has a stable rule id. Violations make the report fail; notes (warn level) do not.
The rules and their sources are listed in docs/sentis.md.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterable

import onnx
from onnx import ModelProto, TensorProto

from .._graph import DEFAULT_DOMAINS, PROTOBUF_LIMIT, copy_model, has_subgraph, load_model, subgraphs
from ..dtypes import cast_to_bool_nodes, elem_types, find_int64_issues
from . import rules as R

RULES = {
    "op-unsupported": "op type not handled by the Sentis ONNX converter of this version (or a non-ONNX domain)",
    "subgraph": "node with a graph attribute (If/Loop/Scan bodies); Sentis never reads subgraphs",
    "local-function": "model-local functions; Sentis never reads them",
    "opset-range": "default-domain opset outside the allowed range (15-17 by default)",
    "opset-domain": "default domain spelled 'ai.onnx' or missing; Sentis only reads domain ''",
    "dtype": "graph input/output, initializer or Constant of a dtype Sentis cannot load",
    "int64-range": "int64 value outside int32 (Sentis saturates) where it changes results",
    "rank": "tensor rank above 8",
    "dynamic-dim": "graph input/output dim that is not static and not declared as allowed",
    "file-size": "serialized model of 2 GB or more",
    "external-data": "weights stored outside the .onnx file",
    "attr-layernorm-axis": "LayerNormalization over an axis other than the last",
    "attr-resize-mode": "Resize/Upsample mode, nearest_mode or options Sentis does not implement",
    "attr-resize-coord": "Resize coordinate_transformation_mode Sentis does not implement",
    "attr-pad-mode": "Pad mode other than constant/reflect/edge/wrap",
    "attr-convtranspose-output-shape": "ConvTranspose output_shape attribute (ignored by Sentis)",
    "attr-convtranspose-group": "ConvTranspose group/dilations before Sentis 2.3",
    "attr-pool": "MaxPool/AveragePool ceil_mode, dilations, storage_order or count_include_pad with padding",
    "constant-attr": "Constant given by value_float(s)/value_int(s) (before 2.3), sparse_value or strings",
    "cast-to-bool": "Cast to bool from a non-bool input (Sentis truncates instead of testing non-zero)",
    "nonzero-data-dependent": "NonZero/Compress: data-dependent shape, CPU only, GPU sync every run (note)",
}


@dataclass
class Violation:
    rule: str
    message: str
    node: str | None = None
    op: str | None = None

    def line(self) -> str:
        where = f"{self.node or '-'}({self.op})" if self.op else (self.node or "-")
        return f"{self.rule}  {where}  {self.message}"


@dataclass
class CheckReport:
    path: str | None
    sentis_version: str
    violations: list[Violation]
    op_counts: dict[str, int]
    n_nodes: int
    opset: int
    file_size: int | None
    notes: list[Violation] = field(default_factory=list)
    allowed_symbolic_dims: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def format(self) -> str:
        name = self.path or "<model>"
        status = "OK" if self.ok else f"FAIL ({len(self.violations)} violation{'s' if len(self.violations) != 1 else ''})"
        lines = [f"{name}: {status} for Sentis {self.sentis_version}"]
        for v in self.violations:
            lines.append("  " + v.line())
        for v in self.notes:
            lines.append("  note: " + v.line())
        ops = ", ".join(f"{op}x{n}" for op, n in sorted(self.op_counts.items(), key=lambda kv: (-kv[1], kv[0])))
        size = human_size(self.file_size) if self.file_size is not None else "unknown size"
        lines.append(f"  summary: opset {self.opset}, {self.n_nodes} nodes, {len(self.op_counts)} op types, {size}")
        if ops:
            lines.append(f"  ops: {ops}")
        if self.allowed_symbolic_dims:
            lines.append(f"  allowed dynamic dims: {', '.join(self.allowed_symbolic_dims)}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "sentis_version": self.sentis_version,
            "ok": self.ok,
            "violations": [asdict(v) for v in self.violations],
            "notes": [asdict(v) for v in self.notes],
            "op_counts": dict(sorted(self.op_counts.items())),
            "n_nodes": self.n_nodes,
            "opset": self.opset,
            "file_size": self.file_size,
            "allowed_symbolic_dims": list(self.allowed_symbolic_dims),
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


WEIGHT_BYTES = 1 << 20


def _without_weights(model: ModelProto) -> ModelProto:
    """A copy for shape inference in which initializers of >= 1 MB (weights) are graph inputs of
    the same type and shape: inference reads only their shapes (data propagation reads small
    integer tensors), and copying/serialising the weights made checking the full-size LLM step
    cost 5.6 GB above the export's working set."""
    g = model.graph
    big = [i for i in g.initializer if i.ByteSize() >= WEIGHT_BYTES]
    if not big:
        return copy_model(model)
    big_names = {i.name for i in big}

    def copy_fields(src, dst, skip):
        for fd, val in src.ListFields():
            if fd.name in skip:
                continue
            if hasattr(val, "extend"):  # repeated
                getattr(dst, fd.name).extend(val)
            elif hasattr(val, "CopyFrom"):  # message
                getattr(dst, fd.name).CopyFrom(val)
            else:
                setattr(dst, fd.name, val)

    out = ModelProto()
    copy_fields(model, out, {"graph"})
    copy_fields(g, out.graph, {"initializer"})
    out.graph.initializer.extend(i for i in g.initializer if i.name not in big_names)
    declared = {i.name for i in g.input}
    out.graph.input.extend(onnx.helper.make_tensor_value_info(i.name, i.data_type, list(i.dims))
                           for i in big if i.name not in declared)
    return out


class _Checker:
    def __init__(self, model: ModelProto, version: str, allowed: set[str], opset_range: tuple[int, int]):
        self.m = model
        self.version = version
        self.v = R.parse_version(version)
        self.ops = R.supported_ops(version)
        self.allowed = allowed
        self.opset_range = opset_range
        self.violations: list[Violation] = []
        self.notes: list[Violation] = []
        self.inferred = self._infer()
        g = self.inferred.graph
        self.shapes: dict[str, list] = {}
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            t = vi.type.tensor_type
            if vi.type.HasField("tensor_type") and t.HasField("shape"):
                self.shapes[vi.name] = list(t.shape.dim)

    def _infer(self) -> ModelProto:
        if self.m.ByteSize() >= PROTOBUF_LIMIT:
            return self.m
        try:
            return onnx.shape_inference.infer_shapes(_without_weights(self.m), strict_mode=False, data_prop=True)
        except Exception:  # noqa: BLE001 - checking continues with the declared shapes
            return self.m

    def add(self, rule, message, node=None, *, note=False):
        v = Violation(rule, message, (node.name or None) if node is not None else None, node.op_type if node is not None else None)
        (self.notes if note else self.violations).append(v)

    def add_named(self, rule, message, name=None, op=None, *, note=False):
        (self.notes if note else self.violations).append(Violation(rule, message, name, op))

    # ---------------------------------------------------------------------------------------
    def run(self) -> None:
        self.check_opset()
        self.check_functions()
        self.check_nodes()
        self.check_io()
        self.check_initializers()
        self.check_int64()
        self.check_cast_to_bool()
        self.check_rank()

    def check_opset(self):
        defaults = [imp for imp in self.m.opset_import if imp.domain in DEFAULT_DOMAINS]
        if not defaults:
            self.add_named("opset-domain", "no opset import for the default domain ''; Sentis assumes opset 15")
            return
        for imp in defaults:
            if imp.domain == "ai.onnx":
                self.add_named(
                    "opset-domain",
                    "default domain spelled 'ai.onnx'; Sentis only reads domain '' and would assume opset 15 "
                    "(fix: normalize_default_domain / convert_opset)",
                )
        ver = defaults[0].version
        lo, hi = self.opset_range
        if not lo <= ver <= hi:
            self.add_named("opset-range", f"default-domain opset {ver} outside {lo}-{hi} (fix: convert_opset)")

    def check_functions(self):
        for f in self.m.functions:
            self.add_named("local-function", f"model-local function '{f.domain}:{f.name}'; Sentis never reads functions (inline it)", f.name)

    def check_nodes(self):
        functions = {(f.domain, f.name) for f in self.m.functions}
        for n in self.m.graph.node:
            op = n.op_type
            if (n.domain, op) in functions:
                self.add("op-unsupported", f"calls model-local function '{n.domain}:{op}'", n)
            elif n.domain not in DEFAULT_DOMAINS:
                self.add(
                    "op-unsupported",
                    f"op '{op}' of domain '{n.domain}' is not an ONNX op; Sentis matches op types only and fails or misreads it",
                    n,
                )
            elif op not in self.ops:
                self.add("op-unsupported", self._unsupported_message(op), n)
            if has_subgraph(n):
                names = sorted({name for name, _ in subgraphs(n)})
                self.add("subgraph", f"has subgraph attribute(s) {', '.join(names)}; Sentis never reads subgraphs", n)
            check = getattr(self, f"attr_{op}", None)
            if check is not None and n.domain in DEFAULT_DOMAINS:
                check(n)
            if op in R.DATA_DEPENDENT_SHAPE_OPS:
                self.add(
                    "nonzero-data-dependent",
                    f"{op} has a data-dependent output shape: CPU only in Sentis, flushes and reads back the GPU every run",
                    n,
                    note=True,
                )

    def _unsupported_message(self, op: str) -> str:
        text = f"{op} is not supported by Sentis {self.version}"
        if op in R.OPS_2_4:
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
                f"coordinate_transformation_mode '{coord}' not implemented (Sentis supports {', '.join(sorted(R.RESIZE_COORD_MODES))})",
                n,
            )
        if mode == "nearest":
            nm = _s(_attr(n, "nearest_mode", b"round_prefer_floor"))
            if nm not in R.RESIZE_NEAREST_MODES:
                self.add("attr-resize-mode", f"nearest_mode '{nm}' not implemented", n)
        if _attr(n, "exclude_outside", 0):
            self.add("attr-resize-mode", "exclude_outside=1 not implemented", n)
        if _attr(n, "antialias", 0):
            self.add("attr-resize-mode", "antialias=1 is not read by Sentis", n)
        policy = _s(_attr(n, "keep_aspect_ratio_policy", b"stretch"))
        if policy != "stretch":
            self.add("attr-resize-mode", f"keep_aspect_ratio_policy '{policy}' is not read by Sentis", n)

    def attr_Upsample(self, n):
        mode = _s(_attr(n, "mode", b"nearest"))
        if mode not in R.RESIZE_MODES:
            self.add("attr-resize-mode", f"mode '{mode}' not implemented (Sentis supports nearest, linear)", n)

    def attr_Pad(self, n):
        mode = _s(_attr(n, "mode", b"constant"))
        if mode not in R.PAD_MODES:
            self.add("attr-pad-mode", f"mode '{mode}' not implemented (Sentis supports {', '.join(sorted(R.PAD_MODES))})", n)

    def attr_ConvTranspose(self, n):
        if _attr(n, "output_shape") is not None:
            self.add("attr-convtranspose-output-shape", "output_shape is not supported; express it with pads/output_padding", n)
        if self.v < R.CONVTRANSPOSE_GROUP_SINCE:
            group = _attr(n, "group", 1)
            dil = list(_attr(n, "dilations", []) or [])
            if group != 1 or any(d != 1 for d in dil):
                self.add(
                    "attr-convtranspose-group",
                    f"group={group}, dilations={dil or [1]}: ConvTranspose group/dilations need Sentis >= 2.3",
                    n,
                )

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
            self.add("attr-pool", f"{', '.join(problems)} not supported by Sentis pooling", n)

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
                f"Constant with {', '.join(scalar)}: Sentis {self.version} only reads the tensor 'value' (fix: constant_value_attrs)",
                n,
            )
        for a in n.attribute:
            if a.name == "value":
                self._tensor_dtype(a.t, f"Constant value of node '{n.name}'", n)
                if a.t.data_location == TensorProto.EXTERNAL:
                    self.add("external-data", "Constant tensor stored as external data (Sentis re-reads the file from byte 0)", n)

    def attr_Cast(self, n):
        to = _attr(n, "to")
        if to in (TensorProto.STRING, TensorProto.COMPLEX64, TensorProto.COMPLEX128):
            self.add("dtype", f"Cast to {_dtype_name(to)} is not supported", n)

    # -- tensors ----------------------------------------------------------------------------
    def _tensor_dtype(self, t: TensorProto, what: str, node=None):
        if t.data_type not in R.INITIALIZER_DTYPES:
            msg = f"{what} has dtype {_dtype_name(t.data_type)}, which Sentis cannot load"
            if node is not None:
                self.add("dtype", msg, node)
            else:
                self.add_named("dtype", msg, t.name)
        elif t.data_type == TensorProto.BOOL and not t.raw_data and len(t.int32_data):
            msg = f"{what} stores bool in int32_data; Sentis only reads bool from raw_data"
            if node is not None:
                self.add("dtype", msg, node)
            else:
                self.add_named("dtype", msg, t.name)

    def check_io(self):
        g = self.m.graph
        inits = {i.name for i in g.initializer}
        for kind, vis in (("input", [i for i in g.input if i.name not in inits]), ("output", list(g.output))):
            for vi in vis:
                if not vi.type.HasField("tensor_type"):
                    self.add_named("dtype", f"graph {kind} '{vi.name}' is not a tensor", vi.name)
                    continue
                et = vi.type.tensor_type.elem_type
                if et not in R.IO_DTYPES:
                    self.add_named(
                        "dtype", f"graph {kind} '{vi.name}' has dtype {_dtype_name(et)} (use float32/float16/int32/int64/bool)", vi.name
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
            self._tensor_dtype(init, f"initializer '{init.name}'")
            if init.data_location == TensorProto.EXTERNAL:
                self.add_named("external-data", f"initializer '{init.name}' is stored as external data; keep weights inline", init.name)
        for sp in g.sparse_initializer:
            self.add_named("dtype", f"sparse initializer '{sp.values.name}' is not read by Sentis", sp.values.name)

    def check_int64(self):
        for iss in find_int64_issues(self.m):
            name = iss.node.name if iss.node is not None else iss.name
            op = iss.node.op_type if iss.node is not None else None
            self.add_named("int64-range", iss.describe() + ("" if iss.harmless else " (fix or run check_int64)"), name or None, op, note=iss.harmless)

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


def check_model(
    model_or_path,
    sentis_version: str = R.DEFAULT_VERSION,
    *,
    allowed_symbolic_dims: Iterable[str] = (),
    opset_range: tuple[int, int] = R.DEFAULT_OPSET_RANGE,
) -> CheckReport:
    """Check a model (ModelProto or path) against the import rules of one Sentis version.

    Raises ModelLoadError (a GraphPassError) when the file cannot be read and ValueError for an
    unknown Sentis version. For a path, the file is read without its external data (its presence
    is itself a violation) and `file_size` is the size on disk; for a ModelProto it is the
    serialized size.
    """
    R.parse_version(sentis_version)
    if isinstance(model_or_path, ModelProto):
        model = model_or_path
        path = None
        file_size = model.ByteSize()
    else:
        path = os.fspath(model_or_path)
        model = load_model(path, load_external_data=False)
        file_size = os.path.getsize(path)
    allowed = sorted(set(allowed_symbolic_dims))
    checker = _Checker(model, sentis_version, set(allowed), opset_range)
    checker.run()
    if file_size is not None and file_size >= R.MAX_FILE_SIZE:
        checker.add_named("file-size", f"model is {human_size(file_size)}; keep each file under 2 GB with inline weights")
    counts = Counter(n.op_type if n.domain in DEFAULT_DOMAINS else f"{n.domain}:{n.op_type}" for n in model.graph.node)
    opset = next((imp.version for imp in model.opset_import if imp.domain in DEFAULT_DOMAINS), 0)
    return CheckReport(
        path=path,
        sentis_version=sentis_version,
        violations=checker.violations,
        op_counts=dict(counts),
        n_nodes=len(model.graph.node),
        opset=int(opset),
        file_size=file_size,
        notes=checker.notes,
        allowed_symbolic_dims=allowed,
    )
