"""Run a ModelProto on onnxruntime quietly, with seeded random inputs at its static shapes.

Shared by the folding proof (folded constants re-computed from the unfolded graph), the
structural validation (an onnxruntime load with default optimizations) and the parity check of
`convert` (converted vs input model on the same random inputs).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import ModelProto

from ._graph import PROTOBUF_LIMIT
from .errors import GraphPassError

# onnxruntime severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal. Fatal only: every error we
# care about comes back as an exception, and an absurd graph makes it log thousands of error lines
ORT_LOG_ERROR = 4
DEFAULT_FREE_DIM = 7  # value of a symbolic dim nobody pinned, in random inputs


def _ort():
    import onnxruntime as ort

    ort.set_default_logger_severity(ORT_LOG_ERROR)  # optimizer warnings would flood the terminal
    return ort


def session(model: ModelProto, *, optimize: bool = True, threads: int = 1):
    """An InferenceSession on CPU (default optimizations unless `optimize` is False), logging
    errors only. Raises whatever onnxruntime raises."""
    ort = _ort()
    opts = ort.SessionOptions()
    opts.log_severity_level = ORT_LOG_ERROR
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if model.ByteSize() >= PROTOBUF_LIMIT:
        raise GraphPassError("model is over 2 GB; onnxruntime checks need inline weights below 2 GB")
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:400] if text else type(exc).__name__


@dataclass
class InputSpec:
    name: str
    dtype: np.dtype
    shape: list[int]


def input_specs(model: ModelProto, free_dim: int = DEFAULT_FREE_DIM) -> list[InputSpec]:
    """The graph inputs (initializers excluded) with concrete shapes: static dims as declared,
    each symbolic or unknown dim a fixed value (`free_dim`, one value per dim name)."""
    inits = {i.name for i in model.graph.initializer}
    specs = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise GraphPassError(f"graph input '{vi.name}' is not a tensor; random inputs need tensors")
        dims = [d.dim_value if d.HasField("dim_value") else free_dim for d in t.shape.dim] if t.HasField("shape") else []
        specs.append(InputSpec(vi.name, onnx.helper.tensor_dtype_to_np_dtype(t.elem_type), dims))
    return specs


def random_feeds(specs: Sequence[InputSpec], seed: int, fixed: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Seeded inputs: floats in [0.5, 1.5) for seed 0 (valid as lengths, speeds, scales) and
    standard normal after; integers in [0, 8) (valid token ids, small lengths); bools random."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for s in specs:
        if fixed and s.name in fixed:
            value = np.asarray(fixed[s.name], dtype=s.dtype)
            try:
                feeds[s.name] = value.reshape(s.shape) if value.size == int(np.prod(s.shape)) else \
                    np.broadcast_to(value.reshape(-1)[0] if value.size == 1 else value, s.shape).copy()
            except ValueError:
                raise GraphPassError(f"--input-value for '{s.name}': {value.size} value(s) do not fit its shape {s.shape}") from None
            continue
        if s.dtype == np.bool_:
            feeds[s.name] = rng.random(s.shape) < 0.5
        elif np.issubdtype(s.dtype, np.integer):
            feeds[s.name] = rng.integers(0, 8, size=s.shape).astype(s.dtype)
        elif seed == 0:
            feeds[s.name] = rng.uniform(0.5, 1.5, size=s.shape).astype(s.dtype)
        else:
            feeds[s.name] = rng.standard_normal(s.shape).astype(s.dtype)
    return feeds


@dataclass
class Trials:
    """Outputs of one model over several seeded inputs (inputs the model rejects are skipped)."""

    feeds: list[dict[str, np.ndarray]] = field(default_factory=list)
    outputs: list[dict[str, np.ndarray]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one line per rejected input


def run_trials(model: ModelProto, n: int = 3, *, output_names: Sequence[str] | None = None,
               fixed: Mapping[str, np.ndarray] | None = None, max_draws: int | None = None,
               optimize: bool = False) -> Trials:
    """Run `model` on up to `n` seeded random inputs it accepts (drawing at most `max_draws`).
    `output_names` may name intermediate values (they are added as graph outputs)."""
    m = model
    if output_names is not None:
        m = ModelProto()
        m.CopyFrom(model)
        have = {o.name for o in m.graph.output}
        for name in output_names:
            if name not in have:
                m.graph.output.append(onnx.ValueInfoProto(name=name))
    sess = session(m, optimize=optimize)
    wanted = list(output_names) if output_names is not None else [o.name for o in model.graph.output]
    specs = input_specs(model)
    res = Trials()
    for seed in range(max_draws or 3 * n):
        if len(res.outputs) >= n:
            break
        feeds = random_feeds(specs, seed, fixed)
        try:
            with _no_fpe():
                outs = sess.run(wanted, feeds)
        except Exception as exc:  # noqa: BLE001 - the model refuses this input: draw another
            res.rejected.append(one_line(exc))
            continue
        res.feeds.append(feeds)
        res.outputs.append(dict(zip(wanted, outs)))
    return res


@contextlib.contextmanager
def _no_fpe():
    with np.errstate(all="ignore"):
        yield


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    """max |a-b| over finite pairs; inf when shapes differ or finiteness differs."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return float("inf")
    if a.dtype == np.bool_ or b.dtype == np.bool_:
        return float(np.count_nonzero(a != b))
    fa, fb = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(fa, fb) or not np.array_equal(a[~fa], b[~fb], equal_nan=a.dtype.kind in "fc"):
        return float("inf")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a[fa].astype(np.float64) - b[fb].astype(np.float64)), initial=0.0))


@dataclass
class ConversionParity:
    """How a converted model compares with its input model on onnxruntime."""

    trials: int
    rejected: int  # random inputs the input model itself refused (skipped)
    max_abs: dict[str, float]
    bound: float
    data_dependent: dict[str, dict[int, list[int]]]  # output -> dim -> sizes seen over the trials

    def lines(self) -> list[str]:
        errs = ", ".join(f"{k} {v:.3g}" for k, v in self.max_abs.items())
        out = [f"parity vs the input model on onnxruntime: {self.trials} random inputs"
               f"{f' ({self.rejected} refused by the input model, skipped)' if self.rejected else ''}, max-abs {errs} "
               f"(bound {self.bound:g} x max(1, |reference|))"]
        for name, per_dim in self.data_dependent.items():
            for k, sizes in per_dim.items():
                out.append(
                    f"output '{name}' dim {k} depends on input values (sizes {sizes} over the trials): declared symbolic "
                    f"'{data_dim_name(name, k)}', not fixed; to make it static give the graph an explicit length input, "
                    f"or a fixed maximum length with a mask")
        return out


def data_dim_name(output: str, k: int) -> str:
    return f"{output}_dim{k}"


def check_conversion(original: ModelProto, converted: ModelProto, *, trials: int = 3, bound: float = 1e-4,
                     fixed: Mapping[str, np.ndarray] | None = None) -> tuple[ModelProto, ConversionParity]:
    """Run `original` and `converted` on the same seeded random inputs (at the converted model's
    static input shapes; inputs the original refuses are skipped) and compare every output.

    Returns `converted` with honest output shapes (a dim whose size changes with input values is
    declared symbolic, never fixed) and the comparison. Raises GraphPassError when an output
    differs by more than `bound` x max(1, max |reference|), the converted model fails where the
    original runs, no random input runs the original, or a declared static output shape is not
    what onnxruntime returns."""
    specs = input_specs(converted)
    orig_inputs = {i.name for i in original.graph.input} - {i.name for i in original.graph.initializer}
    extra = orig_inputs - {s.name for s in specs}
    if extra:
        raise GraphPassError(f"the converted model lost graph input(s) {sorted(extra)}")
    names = [o.name for o in original.graph.output]
    if [o.name for o in converted.graph.output] != names:
        raise GraphPassError(f"the converted model's outputs {[o.name for o in converted.graph.output]} differ from {names}")
    try:
        s_orig = session(original, optimize=False)
    except Exception as exc:  # noqa: BLE001
        raise GraphPassError(f"cannot compare with the input model: onnxruntime cannot load it ({one_line(exc)})") from None
    try:
        s_conv = session(converted, optimize=False)  # our passes, not onnxruntime's fusions (validated apart)
    except Exception as exc:  # noqa: BLE001
        raise GraphPassError(f"onnxruntime cannot load the converted model ({one_line(exc)})") from None
    worst = {n: 0.0 for n in names}
    shapes: dict[str, list[tuple[int, ...]]] = {n: [] for n in names}
    rejected = 0
    done = 0
    first_reject = ""
    for seed in range(6 * trials):
        if done >= trials:
            break
        feeds = random_feeds(specs, seed, fixed)
        try:
            with _no_fpe():
                ref = s_orig.run(names, {k: v for k, v in feeds.items() if k in orig_inputs})
        except Exception as exc:  # noqa: BLE001 - not a valid input for this model
            rejected += 1
            first_reject = first_reject or one_line(exc)
            continue
        try:
            with _no_fpe():
                got = s_conv.run(names, feeds)
        except Exception as exc:  # noqa: BLE001
            raise GraphPassError(f"the converted model fails on an input the original runs (seed {seed}): {one_line(exc)}") from None
        for n, r, c in zip(names, ref, got):
            r, c = np.asarray(r), np.asarray(c)
            err = max_abs(c, r)
            scale = float(np.max(np.abs(r[np.isfinite(r)]), initial=0.0)) if r.dtype.kind in "fc" and r.size else 0.0
            if not err <= bound * max(1.0, scale):
                what = f"shape {list(c.shape)} instead of {list(r.shape)}" if c.shape != r.shape else f"max-abs {err:.3g}"
                raise GraphPassError(
                    f"the converted model differs from the input model on output '{n}' ({what}, seed {seed}; bound "
                    f"{bound:g} x max(1, {scale:.3g})); not written")
            worst[n] = max(worst[n], err)
            shapes[n].append(tuple(c.shape))
        done += 1
    if done == 0:
        raise GraphPassError(
            f"cannot compare with the input model: it refuses all {rejected} random inputs ({first_reject}); "
            f"give realistic values with --input-value NAME=V")
    out = ModelProto()
    out.CopyFrom(converted)
    dependent: dict[str, dict[int, list[int]]] = {}
    for vi in out.graph.output:
        seen = shapes[vi.name]
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            continue
        if not t.HasField("shape") or len(t.shape.dim) != len(seen[0]):
            t.ClearField("shape")
            for k in range(len(seen[0])):
                t.shape.dim.add()
        for k, d in enumerate(t.shape.dim):
            sizes = sorted({s[k] for s in seen})
            if len(sizes) > 1:
                dependent.setdefault(vi.name, {})[k] = [s[k] for s in seen]
                if d.HasField("dim_value") or not d.dim_param or d.dim_param.startswith("unk__"):
                    d.dim_param = data_dim_name(vi.name, k)
            elif d.HasField("dim_value") and d.dim_value != sizes[0]:
                raise GraphPassError(
                    f"output '{vi.name}' declares dim {k} = {d.dim_value}, but onnxruntime returns {sizes[0]}")
    return out, ConversionParity(done, rejected, worst, bound, dependent)
