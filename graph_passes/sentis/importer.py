"""What the Sentis importer does to a graph, and where each remaining layer runs on GPUCompute.

A model, on ONNX nodes, of the import-time optimiser (`Runtime/Core/Backends/ModelOptimizer.cs`),
the CPU-fallback calculation (`Runtime/Core/Backends/CPUFallbackCalculator.cs`) and the tensor
moves of the GPUCompute worker, as read in com.unity.sentis 2.1.3 and com.unity.ai.inference
2.2.0-2.4.0 (shared/reference/sentis_importer.md §2.3-2.4; docs/sentis.md lists every rule).

Order of the steps, as in `ModelOptimizer.OptimizeModel`:

1. (2.4 only) ContractSubExpression on the converted graph, before anything else.
2. FuseConstants: a layer whose inputs are all known runs at import; otherwise partial inference
   (element values of small int tensors, at most 16 elements) may make its output known.
3. RemoveNoOps / ContractToSimplerLayer: Identity, same-dtype Cast/CastLike, no-op
   Reshape/Expand/Tile/Transpose, one-input Concat and trivial Reduce become aliases; a binary op
   with a one-element constant becomes ScalarMad (2.4 here, 2.1-2.3 in ContractSubExpression).
4. SimplifyReshapeInput: a Reshape's shape becomes a constant where the partial values allow.
5. RemoveUnused, then (2.1-2.3) ContractSubExpression, FuseDense, FuseActivation.
6. The CPU-fallback walk (seeds: tensors that feed CPU-read inputs; bottom-up through data
   inputs), 2.4's command-buffer flushes, and the residency of every tensor over two executions.

What it does not model is listed in docs/sentis.md ("Not checked").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, TensorProto, numpy_helper

from . import fusions
from .._graph import model_bytes

FLOAT, INT = "float", "int"
_FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
_INTS = {
    TensorProto.INT8, TensorProto.UINT8, TensorProto.INT16, TensorProto.UINT16, TensorProto.INT32,
    TensorProto.UINT32, TensorProto.INT64, TensorProto.UINT64, TensorProto.BOOL,
}

MAX_PARTIAL = 16  # PartialTensor.k_MaxLength = TensorShape.maxRank * 2
_EVAL_LIMIT = 4096  # constant sub-expressions evaluated here (larger ones stay "known, value unread")

# CPU-read inputs per ONNX op and ONNX input index (S-2.1.3 CPUFallbackCalculator.IsInputCPURead l.79;
# IE-2.4.0 [Inputs(inputCPURead=...)] in Runtime/Core/Layers/Layer.*.cs). Resize reads its
# scales/sizes (ONNX 2/3; the roi input 1 is dropped by the converter), Upsample its scales (1).
_REDUCE = ("ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum "
           "ReduceSumSquare").split()
CPU_READ: dict[str, frozenset[int]] = {
    **{op: frozenset({1}) for op in ("Reshape", "Expand", "Tile", "Squeeze", "Unsqueeze", "Split", "Trilu", "TopK", "CumSum", *_REDUCE)},
    "Slice": frozenset({1, 2, 3, 4}),
    "Pad": frozenset({1, 2, 3}),
    "Clip": frozenset({1, 2}),
    "Range": frozenset({0, 1, 2}),
    "ConstantOfShape": frozenset({0}),
    "OneHot": frozenset({1, 2}),
    "NonMaxSuppression": frozenset({2, 3, 4}),
    "Resize": frozenset({2, 3}),
    "Upsample": frozenset({1}),
}
# IE-2.4.0 Runtime/Core/Layers/Layer.Spectral.cs l.6-224 (the ops themselves are 2.4+)
CPU_READ_2_4: dict[str, frozenset[int]] = {
    "DFT": frozenset({1, 2}),
    "STFT": frozenset({1, 3}),
    "HannWindow": frozenset({0}),
    "HammingWindow": frozenset({0}),
    "BlackmanWindow": frozenset({0}),
    "MelWeightMatrix": frozenset({0, 1, 2, 3, 4}),
}
# inputs whose data is never read, only the shape (S-2.1.3 IsInputDataDependency l.108; IE-2.4.0
# inputNoDataDependency in Layer.Dimension.cs l.51/107, Layer.Random.cs, Layer.Transformation.cs l.232)
NO_DATA_DEPENDENCY: dict[str, frozenset[int]] = {
    "Shape": frozenset({0}),
    "Size": frozenset({0}),
    "RandomNormalLike": frozenset({0}),
    "RandomUniformLike": frozenset({0}),
    "CastLike": frozenset({1}),
}
RANDOM_OPS = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"})
# ops whose GPU implementation flushes the command buffer and downloads inside Execute
# (sentis_importer.md §2.3 "NonZero and LRN flush and download"; §2.5 NonMaxSuppression)
GPU_SYNC_OPS = frozenset({"NonZero", "LRN", "NonMaxSuppression"})
# Shape/Size always write CPU tensors (Layer.Dimension.cs)
CPU_OUTPUT_OPS = frozenset({"Shape", "Size"})


def sentis_dtype(onnx_dtype: int | None) -> str | None:
    """ONNXNodeWrapper.DataTypeFromOnnxDataType: floats -> float32, ints and bool -> int32."""
    if onnx_dtype in _FLOATS:
        return FLOAT
    if onnx_dtype in _INTS:
        return INT
    return None


def cpu_read_inputs(op: str, version: tuple[int, int]) -> frozenset[int]:
    if op in CPU_READ:
        return CPU_READ[op]
    if version >= (2, 4):
        return CPU_READ_2_4.get(op, frozenset())
    return frozenset()


@dataclass
class Layer:
    """One layer after import: an ONNX node (possibly with aliased inputs) or a fused layer."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    node: NodeProto | None = None
    fused: list[str] = field(default_factory=list)  # names of the ONNX nodes a fused layer replaced
    cpu_read: frozenset[int] = frozenset()
    no_data: frozenset[int] = frozenset()


@dataclass
class Readback:
    layer: str
    op: str
    tensor: str
    scenario: str  # "inputs on GPU" / "inputs on CPU"
    run: int
    why: str


@dataclass
class ImportAnalysis:
    version: str
    n_nodes: int
    n_layers: int  # layers after folding and aliasing, before fusions
    n_layers_fused: int  # after the fusions
    folded: list[str]
    aliased: list[str]
    rewrites: dict[str, int]
    rewrite_nodes: dict[str, list[str]]
    blocked_rewrites: dict[str, list[str]]  # fusions that a same-dtype Cast/Identity blocks
    cpu_read_inputs: list[tuple[str, str, int, str]]  # (layer, op, input index, tensor), non-constant
    cpu_layers: list[Layer]
    flush_layers: list[Layer]
    readbacks: list[Readback]
    unflushed_repins: list[Readback]
    compress_gpu_condition: list[tuple[str, str]]
    layers: list[Layer]
    simplified_reshapes: list[str]
    pinned_dims: dict[str, int]

    def readbacks_per_run(self, scenario: str) -> list[int]:
        return [sum(1 for r in self.readbacks if r.scenario == scenario and r.run == run) for run in (1, 2)]

    def summary(self) -> dict:
        gpu, cpu = self.readbacks_per_run("inputs on GPU"), self.readbacks_per_run("inputs on CPU")
        return {
            "sentis_version": self.version,
            "nodes": self.n_nodes,
            "layers": self.n_layers,
            "layers_after_fusions": self.n_layers_fused,
            "rewrites": dict(sorted(self.rewrites.items())),
            "blocked_rewrites": {k: len(v) for k, v in sorted(self.blocked_rewrites.items())},
            "cpu_read_inputs": len(self.cpu_read_inputs),
            "cpu_layers": len(self.cpu_layers),
            "readbacks_per_run": {"inputs_on_gpu": gpu, "inputs_on_cpu": cpu},
            "blocking_readbacks": max(gpu + cpu),
            "gpu_flushes_per_run": len(self.flush_layers),
            "pinned_dims": dict(self.pinned_dims),
        }

    def detail(self) -> dict:
        """Everything behind the summary, by name (for --json)."""
        return {
            "folded": list(self.folded),
            "aliased": list(self.aliased),
            "simplified_reshapes": list(self.simplified_reshapes),
            "rewrite_roots": {k: list(v) for k, v in sorted(self.rewrite_nodes.items())},
            "blocked_rewrite_roots": {k: list(v) for k, v in sorted(self.blocked_rewrites.items())},
            "cpu_read_inputs": [{"layer": a, "op": b, "input": k, "tensor": t} for a, b, k, t in self.cpu_read_inputs],
            "cpu_layers": [{"layer": L.name, "op": L.op} for L in self.cpu_layers],
            "flush_layers": [L.name for L in self.flush_layers],
            "readbacks": [asdict(r) for r in self.readbacks],
        }

    def format(self) -> str:
        s = self.summary()
        rb = s["readbacks_per_run"]
        rw = ", ".join(f"{k}x{v}" for k, v in s["rewrites"].items()) or "none"
        blocked = ", ".join(f"{k}x{v}" for k, v in s["blocked_rewrites"].items())
        text = (
            f"  import (Sentis {self.version}): {s['layers']} layers after folding ({s['layers_after_fusions']} after fusions), "
            f"{s['cpu_read_inputs']} non-constant CPU-read inputs, {s['cpu_layers']} CPU-fallback layers, "
            f"blocking readbacks per run {rb['inputs_on_gpu'][0]}/{rb['inputs_on_gpu'][1]} (inputs on GPU, runs 1/2) "
            f"{rb['inputs_on_cpu'][0]}/{rb['inputs_on_cpu'][1]} (inputs on CPU)"
        )
        if self.version_key >= (2, 4):
            text += f", {s['gpu_flushes_per_run']} GPU flushes per run"
        text += f"\n  rewrites: {rw}" + (f"; blocked: {blocked}" if blocked else "")
        return text

    @property
    def version_key(self) -> tuple[int, int]:
        from .rules import parse_version

        return parse_version(self.version)


# ---------------------------------------------------------------------------------------------
def _attr(node: NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _dims(vi) -> list | None:
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
        return None
    out: list = []
    for d in t.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:
            out.append(int(d.dim_value))
        elif d.HasField("dim_param") and not d.dim_param.startswith("unk__"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def _numel(shape) -> int | None:
    if shape is None or any(not isinstance(d, int) for d in shape):
        return None
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


class _Import:
    def __init__(self, model: ModelProto, version: tuple[int, int], version_text: str, pinned: dict[str, int]):
        self.m = model
        self.g = model.graph
        self.v = version
        self.version_text = version_text
        self.pinned = dict(pinned)
        self.shape: dict[str, list | None] = {}
        self.dtype: dict[str, int] = {}
        for vi in list(self.g.input) + list(self.g.output) + list(self.g.value_info):
            if vi.type.HasField("tensor_type"):
                self.shape[vi.name] = _dims(vi)
                self.dtype[vi.name] = vi.type.tensor_type.elem_type
        self.values: dict[str, np.ndarray] = {}  # known constants whose value was read (small)
        self.known: set[str] = set()  # every tensor known at import (constants and folded)
        self.partial: dict[str, list] = {}
        self.initializers = {i.name for i in self.g.initializer}
        for init in self.g.initializer:
            self._add_constant(init.name, init)
        for node in self.g.node:  # Constant nodes are constants of the converted model
            if node.op_type == "Constant" and node.output:
                val = self._constant_node_value(node)
                if val is not None and val.size <= _EVAL_LIMIT:
                    self.values[node.output[0]] = val
                    self.shape[node.output[0]] = list(val.shape)
        inits = self.initializers
        self.graph_inputs = [i.name for i in self.g.input if i.name not in inits]
        self.graph_outputs = [o.name for o in self.g.output]

    # -- constants ------------------------------------------------------------------------------
    def _add_constant(self, name: str, t: TensorProto) -> None:
        self.known.add(name)
        self.dtype.setdefault(name, t.data_type)
        self.shape[name] = [int(d) for d in t.dims]
        n = int(np.prod(t.dims, dtype=np.int64)) if len(t.dims) else 1
        if n <= _EVAL_LIMIT and t.data_location != TensorProto.EXTERNAL:
            try:
                self.values[name] = numpy_helper.to_array(t)
            except Exception:  # noqa: BLE001 - a payload the loader rejects is reported elsewhere
                pass

    def _constant_node_value(self, node: NodeProto) -> np.ndarray | None:
        for a in node.attribute:
            if a.name == "value":
                return numpy_helper.to_array(a.t) if a.t.data_location != TensorProto.EXTERNAL else None
            if a.name == "value_float":
                return np.array(a.f, np.float32)
            if a.name == "value_floats":
                return np.array(list(a.floats), np.float32)
            if a.name == "value_int":
                return np.array(a.i, np.int64)
            if a.name == "value_ints":
                return np.array(list(a.ints), np.int64)
        return None

    def value(self, name: str):
        return self.values.get(name)

    def is_known(self, name: str) -> bool:
        return name == "" or name in self.known

    # -- 2. FuseConstants -----------------------------------------------------------------------
    def fold(self, nodes: list[NodeProto]) -> tuple[list[NodeProto], list[str]]:
        kept, folded = [], []
        for node in nodes:
            if node.op_type == "Constant":
                val = self._constant_node_value(node)
                out = node.output[0]
                self.known.add(out)
                if val is not None:
                    self.values[out] = val
                    self.shape[out] = list(val.shape)
                folded.append(node.name or out)
                continue
            deterministic = node.op_type not in RANDOM_OPS
            if deterministic and all(self.is_known(i) for i in node.input):
                self._evaluate(node)
                folded.append(node.name or node.output[0])
                continue
            self._infer_partial(node)
            outs = [o for o in node.output if o]
            static = [o for o in outs if o in self.partial and all(isinstance(e, int) for e in self.partial[o])]
            if outs and len(static) == len(outs) and deterministic:
                for o in outs:
                    self.known.add(o)
                    self.values[o] = np.array(self.partial[o], np.int64).reshape(self.shape.get(o) or [len(self.partial[o])])
                folded.append(node.name or node.output[0])
                continue
            kept.append(node)
        return kept, folded

    def _evaluate(self, node: NodeProto) -> None:
        for o in node.output:
            if o:
                self.known.add(o)
        ins = [self.values.get(i) if i else None for i in node.input]
        if any(i and v is None for i, v in zip(node.input, ins)):
            return
        if sum(int(np.asarray(v).size) for v in ins if v is not None) > _EVAL_LIMIT:
            return
        try:
            from onnx.reference import ReferenceEvaluator

            names = [f"i{k}" if i else "" for k, i in enumerate(node.input)]
            n = onnx.helper.make_node(node.op_type, names, [f"o{k}" for k in range(len(node.output))], domain=node.domain)
            n.attribute.extend(node.attribute)
            feeds = {nm: np.asarray(v) for nm, v in zip(names, ins) if nm}
            ref = ReferenceEvaluator(self._one_node_model(n, feeds))
            res = ref.run(None, feeds)
        except Exception:  # noqa: BLE001 - value unknown, the tensor is still known at import
            return
        for o, r in zip(node.output, res):
            if o and r is not None and np.asarray(r).size <= _EVAL_LIMIT:
                self.values[o] = np.asarray(r)
                self.shape[o] = list(np.asarray(r).shape)

    def _one_node_model(self, n: NodeProto, feeds: dict) -> ModelProto:
        inputs = [onnx.helper.make_tensor_value_info(k, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in feeds.items()]
        outputs = [onnx.helper.make_empty_tensor_value_info(o) for o in n.output]
        g = onnx.helper.make_graph([n], "one", inputs, outputs)
        return onnx.helper.make_model(g, opset_imports=list(self.m.opset_import))

    # -- partial inference (element values of small int tensors) --------------------------------
    def elems(self, name: str) -> list | None:
        if name in self.partial:
            return self.partial[name]
        v = self.values.get(name)
        if v is not None and v.size <= MAX_PARTIAL and sentis_dtype(self.dtype.get(name)) == INT:
            return [int(x) for x in np.asarray(v).reshape(-1)]
        return None

    def _set_partial(self, name: str, elems: list) -> None:
        if len(elems) <= MAX_PARTIAL:
            self.partial[name] = list(elems)

    def _infer_partial(self, node: NodeProto, cast_drops: bool | None = None) -> None:
        op = node.op_type
        if cast_drops is None:
            cast_drops = self.v < (2, 4)  # 2.1-2.3 Cast drops element values, 2.4 converts them
        out = node.output[0] if node.output else ""
        if not out:
            return
        if op == "Shape":
            shape = self.shape.get(node.input[0])
            if shape is None:
                return
            start = _attr(node, "start", 0)
            end = _attr(node, "end", len(shape))
            self._set_partial(out, list(shape[slice(start, end)]))
            return
        if op == "Size":
            n = _numel(self.shape.get(node.input[0]))
            self._set_partial(out, [n])
            return
        if op in ("Identity", "Unsqueeze", "Squeeze", "Reshape", "Flatten"):
            e = self.elems(node.input[0])
            if e is not None:
                self._set_partial(out, e)
            return
        if op == "Cast":
            e = self.elems(node.input[0])
            if e is not None and not cast_drops and sentis_dtype(_attr(node, "to")) == INT:
                self._set_partial(out, e)
            return
        if op == "Gather":
            e, idx = self.elems(node.input[0]), self.values.get(node.input[1])
            if e is None or idx is None or _attr(node, "axis", 0) != 0:
                return
            try:
                self._set_partial(out, [e[int(i)] for i in np.asarray(idx).reshape(-1)])
            except IndexError:
                pass
            return
        if op == "Concat":
            parts = [self.elems(i) for i in node.input]
            if all(p is not None for p in parts):
                self._set_partial(out, [x for p in parts for x in p])
            return
        if op == "Slice":
            e = self.elems(node.input[0])
            params = [self.values.get(i) if i else None for i in list(node.input[1:]) + [""] * (5 - len(node.input))]
            if e is None or params[0] is None or params[1] is None:
                return
            axes = params[2]
            if axes is not None and [int(a) for a in np.asarray(axes).reshape(-1)] not in ([0], [-1]):
                return
            step = int(np.asarray(params[3]).reshape(-1)[0]) if params[3] is not None else 1
            start, end = (int(np.asarray(p).reshape(-1)[0]) for p in params[:2])
            self._set_partial(out, e[slice(start, end, step)])
            return
        if op == "Range":  # S Layer.Generator.cs l.144-160: Range(0, p, 1) keeps the dim p
            start, limit, delta = (self.elems(i) for i in node.input[:3])
            if start == [0] and delta == [1] and limit is not None and len(limit) == 1 and limit[0] is not None:
                known = self.shape.get(out)
                if known is None or (len(known) == 1 and not isinstance(known[0], int)):
                    self.shape[out] = [limit[0]]
            return
        if op == "ConstantOfShape":
            e, cur = self.elems(node.input[0]), self.shape.get(out)
            if e is not None and (cur is None or any(not isinstance(d, int) for d in cur)):
                self.shape[out] = list(e)
            return
        if op in ("Add", "Sub", "Mul", "Div"):
            a, b = self.elems(node.input[0]), self.elems(node.input[1])
            if a is None or b is None:
                return
            n = max(len(a), len(b))
            if len(a) not in (1, n) or len(b) not in (1, n):
                return
            a = a * n if len(a) == 1 else a
            b = b * n if len(b) == 1 else b
            self._set_partial(out, [_partial_op(op, x, y) for x, y in zip(a, b)])
            return

    # -- 3. RemoveNoOps / ContractToSimplerLayer ------------------------------------------------
    def alias_of(self, node: NodeProto) -> str | None:
        """The input this node is an alias of after ContractToSimplerLayer, or None."""
        op = node.op_type
        x = node.input[0] if node.input else ""
        if op in ("Identity", "Dropout"):
            return x
        if op == "Cast":
            src = sentis_dtype(self.dtype.get(x))
            return x if src is not None and src == sentis_dtype(_attr(node, "to")) else None
        if op == "CastLike":
            a, b = sentis_dtype(self.dtype.get(x)), sentis_dtype(self.dtype.get(node.input[1]))
            return x if a is not None and a == b else None
        if op == "Concat" and len(node.input) == 1:
            return x
        if op == "Transpose":
            perm = _attr(node, "perm")
            return x if perm is not None and list(perm) == list(range(len(perm))) else None
        if op in ("Reshape", "Expand"):
            si, so = self.shape.get(x), self.shape.get(node.output[0])
            if si is not None and so is not None and len(si) == len(so) and all(a is not None and a == b for a, b in zip(si, so)):
                return x
            return None
        if op == "Tile":
            reps = self.values.get(node.input[1])
            return x if reps is not None and np.all(np.asarray(reps) == 1) else None
        if op in _REDUCE:
            axes = _attr(node, "axes")
            if axes is None and len(node.input) > 1 and node.input[1]:
                axes = self.values.get(node.input[1])
                if axes is None:
                    return None
                axes = [int(a) for a in np.asarray(axes).reshape(-1)]
            if axes is None or len(axes) == 0:
                return x if _attr(node, "noop_with_empty_axes", 0) else None
            shape = self.shape.get(x)
            if op in ("ReduceMin", "ReduceMax", "ReduceSum", "ReduceLogSumExp", "ReduceProd") and shape is not None:
                if _attr(node, "keepdims", 1) and all(shape[a] == 1 for a in axes if -len(shape) <= a < len(shape)):
                    return x
            return None
        return None

    def scalar_mad(self, node: NodeProto) -> str | None:
        """Add/Sub/Mul/Div with a one-element float or int constant -> ScalarMad (the input kept)."""
        if node.op_type not in ("Add", "Sub", "Mul", "Div") or len(node.input) != 2:
            return None
        a, b = node.input
        ca, cb = self._one_element(a), self._one_element(b)
        if cb and not ca and not (node.op_type == "Div" and sentis_dtype(self.dtype.get(b)) == INT):
            return a
        if ca and not cb and node.op_type in ("Add", "Mul", "Sub"):
            return b
        return None

    def _one_element(self, name: str) -> bool:
        v = self.values.get(name)
        return v is not None and v.size == 1 and v.ndim <= 1


def _partial_op(op: str, x, y):
    if isinstance(x, int) and isinstance(y, int):
        if op == "Add":
            return x + y
        if op == "Sub":
            return x - y
        if op == "Mul":
            return x * y
        return x // y if y and x % y == 0 else None
    # PartialTensorElement: a param survives +0, *1, /1 and p - p = 0
    if op == "Add":
        return x if y == 0 else y if x == 0 else None
    if op == "Mul":
        return x if y == 1 else y if x == 1 else None
    if op == "Sub":
        return x if y == 0 else 0 if (x is not None and x == y) else None
    if op == "Div":
        return x if y == 1 else None
    return None


def analyze_import(model: ModelProto, version: str, *, pinned_dims: dict[str, int] | None = None,
                   refine_shapes: bool = True) -> ImportAnalysis:
    """Run the import model on `model` (shape-inferred, pinned dims already applied to its inputs).

    With `refine_shapes`, tensors that FuseConstants computes at import (e.g. a Range over known
    bounds) are written as initializers into a copy whose shapes are inferred again, so that the
    shapes downstream of them are as static as Sentis' own partial inference makes them."""
    from .rules import parse_version

    v = parse_version(version)
    imp = _Import(model, v, version, pinned_dims or {})
    nodes = list(model.graph.node)
    if refine_shapes:
        _refine_shapes(model, imp, v, version, pinned_dims)
    n_nodes = len(nodes)

    # 1. (2.4) ContractSubExpression before anything else: patterns see Casts and Identities
    rewrites: dict[str, int] = {}
    rewrite_nodes: dict[str, list[str]] = {}
    fused_24: list[fusions.Match] = []
    if v >= (2, 4):
        fused_24 = fusions.find_matches(nodes, imp, v, alias=None)

    # 2. FuseConstants
    fused_members = {n for m in fused_24 for n in m.members}
    kept, folded = imp.fold([n for n in nodes if id(n) not in fused_members])

    # 3. aliases (RemoveNoOps / ContractToSimplerLayer)
    alias: dict[str, str] = {}
    aliased: list[str] = []
    mads: set[int] = set()
    layers_src: list[NodeProto] = []
    for n in kept:
        src = imp.alias_of(n)
        if src is not None:
            alias[n.output[0]] = src
            aliased.append(n.name or n.output[0])
            continue
        layers_src.append(n)

    def resolve(name: str) -> str:
        seen = 0
        while name in alias and seen < 10000:
            name = alias[name]
            seen += 1
        return name

    # 4. SimplifyReshapeInput (partial inference again, on the graph without the aliases)
    reshape_const: set[int] = set()
    simplified: list[str] = []
    for n in layers_src:
        resolved = [resolve(i) if i else "" for i in n.input]
        if n.op_type == "Reshape":
            if imp.is_known(resolved[1]):
                continue
            new_shape = _simplify_reshape(imp, n, resolved)
            if new_shape is not None:
                reshape_const.add(id(n))
                simplified.append(n.name or n.output[0])
        else:
            # values flowing through the remaining shape chain (casts removed now)
            tmp = onnx.NodeProto()
            tmp.CopyFrom(n)
            del tmp.input[:]
            tmp.input.extend(resolved)
            imp._infer_partial(tmp)

    # build layers
    layers: list[Layer] = []
    for n in layers_src:
        ins = [resolve(i) if i else "" for i in n.input]
        if id(n) in reshape_const:
            ins[1] = ""  # now a constant
        mad_input = imp.scalar_mad(n) if v >= (2, 4) else None
        if mad_input is not None:
            ins = [resolve(mad_input)]
            mads.add(id(n))
        layers.append(Layer(n.name or n.output[0], n.op_type, ins, [o for o in n.output], node=n,
                            cpu_read=cpu_read_inputs(n.op_type, v) if mad_input is None else frozenset(),
                            no_data=NO_DATA_DEPENDENCY.get(n.op_type, frozenset())))
    for m in fused_24:
        layers.append(Layer(m.root_name, m.kind, [resolve(i) for i in m.inputs], [m.output], fused=m.member_names))
    # keep graph order for the fused layers: put each at its root's position
    order = {id(n): k for k, n in enumerate(nodes)}
    root_pos = {m.root_name: order[id(m.root)] for m in fused_24}
    layers.sort(key=lambda L: order[id(L.node)] if L.node is not None else root_pos[L.name])

    # graph outputs that became aliases keep their producer alive
    outputs = [resolve(o) for o in imp.graph_outputs]

    # 5. RemoveUnused
    layers = _live(layers, outputs)
    n_layers = len(layers) + sum(len(m.members) - 1 for m in fused_24)

    # ContractSubExpression 2.1-2.3 (after the casts are gone), then the potential/blocked count
    if v < (2, 4):
        matches = fusions.find_matches([L.node for L in layers if L.node is not None], imp, v, alias=resolve)
        layers = fusions.apply(layers, matches)
        for L in layers:  # the ScalarMad rules come last in the 2.1 remapping table (S l.300-316)
            x = imp.scalar_mad(L.node) if L.node is not None else None
            if x is not None:
                L.inputs = [resolve(x)]
                mads.add(id(L.node))
        fired = matches
    else:
        fired = fused_24
    for m in fired:
        rewrites[m.kind] = rewrites.get(m.kind, 0) + 1
        rewrite_nodes.setdefault(m.kind, []).append(m.root_name)
    if mads:
        rewrites["ScalarMad"] = len(mads)
    potential = fusions.find_matches(nodes, imp, (2, 1), alias=resolve)  # as if the Casts/Identities were gone
    fired_roots = {(m.kind, m.root_name) for m in fired}
    blocked: dict[str, list[str]] = {}
    for m in potential:
        if (m.kind, m.root_name) not in fired_roots:
            blocked.setdefault(m.kind, []).append(m.root_name)
    dense = fusions.count_dense(layers, imp)
    if dense:
        rewrites["Dense"] = dense
    n_layers_fused = len(layers) - dense

    # 6. CPU fallback, flushes and residency
    known = imp.known
    cpu_read_list = []
    seeds: set[str] = set()
    for L in layers:
        for k in L.cpu_read:
            if k < len(L.inputs) and L.inputs[k]:
                t = L.inputs[k]
                seeds.add(t)
                if t not in known:
                    cpu_read_list.append((L.name, L.op, k, t))
    cpu_set = set(seeds)
    cpu_layer_ids: set[int] = set()
    for idx in range(len(layers) - 1, -1, -1):
        L = layers[idx]
        if not any(o in cpu_set for o in L.outputs if o):
            continue
        cpu_layer_ids.add(idx)
        if v >= (2, 4):
            cpu_set.update(o for o in L.outputs if o)
        for k, t in enumerate(L.inputs):
            if t and k not in L.no_data:
                cpu_set.add(t)
    cpu_layers = [layers[i] for i in sorted(cpu_layer_ids)]

    flush: list[Layer] = []
    earliest_gpu: dict[str, int] = {}
    for i, L in enumerate(layers):
        if i not in cpu_layer_ids:
            for t in L.inputs:
                if t and t not in earliest_gpu:
                    earliest_gpu[t] = i
    if v >= (2, 4):
        for i, L in enumerate(layers):
            if i in cpu_layer_ids:
                hit = False
                for t in L.inputs:
                    if t in earliest_gpu and i > earliest_gpu[t]:
                        hit = True
                        del earliest_gpu[t]
                if hit:
                    flush.append(L)

    readbacks, repins, compress = _residency(layers, cpu_layer_ids, imp, v)
    return ImportAnalysis(
        version=version, n_nodes=n_nodes, n_layers=n_layers, n_layers_fused=n_layers_fused, folded=folded,
        aliased=aliased, rewrites=rewrites, rewrite_nodes=rewrite_nodes, blocked_rewrites=blocked,
        cpu_read_inputs=cpu_read_list, cpu_layers=cpu_layers, flush_layers=flush, readbacks=readbacks,
        unflushed_repins=repins, compress_gpu_condition=compress, layers=layers, simplified_reshapes=simplified,
        pinned_dims=dict(pinned_dims or {}),
    )


def _refine_shapes(model: ModelProto, imp: _Import, v, version, pinned_dims) -> None:
    probe = _Import(model, v, version, pinned_dims or {})
    _, folded = probe.fold(list(model.graph.node))
    folded_set = set(folded)
    extra = {}
    for n in model.graph.node:
        if n.op_type != "Constant" and (n.name or n.output[0]) in folded_set:
            for o in n.output:
                if o in probe.values and o not in probe.initializers:
                    extra[o] = probe.values[o]
    if not extra or model_bytes(model) > 2**30:
        return
    m2 = ModelProto()
    m2.CopyFrom(model)
    keep = [n for n in m2.graph.node if not any(o in extra for o in n.output)]
    del m2.graph.node[:]
    m2.graph.node.extend(keep)
    del m2.graph.value_info[:]
    for name, val in extra.items():
        m2.graph.initializer.append(numpy_helper.from_array(np.asarray(val), name))
    try:
        m2 = onnx.shape_inference.infer_shapes(m2, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - keep the first shapes
        return
    for vi in m2.graph.value_info:
        new = _dims(vi)
        old = imp.shape.get(vi.name)
        if new is not None and (old is None or sum(isinstance(d, int) for d in new) > sum(isinstance(d, int) for d in old)):
            imp.shape[vi.name] = new


def _simplify_reshape(imp: _Import, node: NodeProto, ins: list[str]) -> list | None:
    """SimplifyReshapeInputPass.Run (S-2.1.3 l.19-80, IE-2.4.0 l.16-77): the new constant shape, or None."""
    elems = imp.elems(ins[1])
    if elems is None:
        return None
    new = list(elems)
    allow_zero = bool(_attr(node, "allowzero", 0))
    in_shape = imp.shape.get(ins[0])
    out_shape = _reshape_shape(in_shape, elems, allow_zero)
    if out_shape is not None:
        for i, d in enumerate(out_shape[: len(new)]):
            if isinstance(d, int):
                new[i] = d
    if in_shape is not None and out_shape is not None and not allow_zero:
        for i in range(min(len(in_shape), len(new))):
            if isinstance(in_shape[i], str) and i < len(out_shape) and in_shape[i] == out_shape[i]:
                new[i] = 0
    unknown = [i for i, e in enumerate(new) if not isinstance(e, int)]
    if -1 not in new and len(unknown) == 1 and (not allow_zero or 0 not in new):
        new[unknown[0]] = -1
    return new if all(isinstance(e, int) for e in new) else None


def _reshape_shape(in_shape, elems, allow_zero) -> list | None:
    """Reshape's output shape from its partial shape values (dims: int, param name or None)."""
    out = []
    for i, e in enumerate(elems):
        if e == 0 and not allow_zero:
            out.append(in_shape[i] if in_shape is not None and i < len(in_shape) else None)
        elif isinstance(e, int) and e > 0 or isinstance(e, str):
            out.append(e)
        else:
            out.append(None)
    if -1 in elems:
        k = elems.index(-1)
        total = _numel(in_shape)
        rest = [d for j, d in enumerate(out) if j != k]
        if total is not None and all(isinstance(d, int) for d in rest):
            prod = int(np.prod(rest, dtype=np.int64)) if rest else 1
            out[k] = total // prod if prod else None
    return out


def _live(layers: list[Layer], outputs: list[str]) -> list[Layer]:
    needed = set(outputs)
    keep = [False] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        L = layers[i]
        if any(o in needed for o in L.outputs if o):
            keep[i] = True
            needed.update(t for t in L.inputs if t)
    return [L for L, k in zip(layers, keep) if k]


def _residency(layers: list[Layer], cpu_ids: set[int], imp: _Import, v) -> tuple[list[Readback], list[Readback], list]:
    """Where every tensor sits, for two executions, graph inputs passed on the GPU or on the CPU.

    Constants start on the CPU and stay where the last reader moved them (they persist across
    executions); graph inputs and intermediates are fresh every run.
    - a GPU layer uploads (moves) its data inputs; it reads a GPU-resident CPU-read input with
      ModelStorage.GetInt(s), a blocking download that does not move it;
    - a CPU-fallback layer moves every data input it reads to the CPU (blocking when on the GPU);
    - Shape/Size write CPU tensors; NonZero/LRN/NonMaxSuppression on the GPU flush and download;
    - Compress reads its condition with the CPU indexer: on the GPU it throws.
    """
    readbacks: list[Readback] = []
    repins: list[Readback] = []
    compress: list[tuple[str, str]] = []
    for scenario, input_loc in (("inputs on GPU", "gpu"), ("inputs on CPU", "cpu")):
        const_loc: dict[str, str] = {}
        for run in (1, 2):
            loc: dict[str, str] = {t: input_loc for t in imp.graph_inputs}
            gpu_readers: set[str] = set()  # tensors read by a GPU layer earlier in this run

            def where(t: str) -> str:
                if t in imp.known:
                    return const_loc.get(t, "cpu")
                return loc.get(t, "gpu")

            def move(t: str, to: str) -> None:
                if t in imp.known:
                    const_loc[t] = to
                else:
                    loc[t] = to

            for i, L in enumerate(layers):
                on_cpu = i in cpu_ids
                for k, t in enumerate(L.inputs):
                    if not t or k in L.no_data:
                        continue
                    here = where(t)
                    if on_cpu:
                        if here == "gpu":
                            rb = Readback(L.name, L.op, t, scenario, run, "CPU-fallback layer moves a GPU tensor to the CPU")
                            readbacks.append(rb)
                            if t in gpu_readers and v < (2, 4):
                                repins.append(rb)
                            move(t, "cpu")
                    elif k in L.cpu_read:
                        if here == "gpu":
                            readbacks.append(Readback(L.name, L.op, t, scenario, run, "GPU layer downloads a GPU-resident CPU-read input"))
                    elif L.op == "Compress" and k == 1:
                        # a condition the graph puts on the GPU (computed there, or an input a GPU
                        # layer uploaded); a caller passing a GPU tensor is the caller's choice
                        if here == "gpu" and (t not in imp.graph_inputs or input_loc == "cpu") and (L.name, t) not in compress:
                            compress.append((L.name, t))
                    else:
                        if here == "cpu":
                            move(t, "gpu")
                        gpu_readers.add(t)
                if not on_cpu and L.op in GPU_SYNC_OPS:
                    readbacks.append(Readback(L.name, L.op, L.outputs[0], scenario, run, f"GPU {L.op} flushes and downloads inside Execute"))
                out_loc = "cpu" if on_cpu or L.op in CPU_OUTPUT_OPS else "gpu"
                for o in L.outputs:
                    if o:
                        loc[o] = out_loc
    return readbacks, repins, compress


def pin_dims(model: ModelProto, dims: dict[str, int]) -> ModelProto:
    """The importer's dynamic-dim setting (IE-2.2+ DynamicDimConfigs): named symbolic dims of the
    graph inputs become fixed values. Returns a copy."""
    out = ModelProto()
    out.CopyFrom(model)
    for vi in out.graph.input:
        t = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and t.HasField("shape"):
            for d in t.shape.dim:
                if d.HasField("dim_param") and d.dim_param in dims:
                    d.dim_value = int(dims[d.dim_param])
    return out

