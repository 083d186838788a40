"""Named passes and the pipeline that runs them in order."""

from __future__ import annotations

import inspect
from typing import Callable, Mapping, Sequence

import onnx
from onnx import ModelProto

from ._graph import PROTOBUF_LIMIT
from .casts import remove_same_dtype_casts
from .cleanup import constant_value_attrs, remove_dead_nodes, remove_empty_concat_inputs, remove_identity
from .control_flow import fold_if, unroll_loop
from .dtypes import check_int64, fix_cast_to_bool
from .errors import GraphPassError
from .folding import fold_constants, simplify
from .opset import DEFAULT_TARGET_OPSET, convert_opset, normalize_default_domain
from .payloads import double_to_float, tensor_payloads
from .precision import weights_to_fp16
from .shapes import fix_input_shapes, infer_shapes

MAX_FIXED_POINT_ROUNDS = 32


def fold_to_fixed_point(model: ModelProto, *, max_rounds: int = MAX_FIXED_POINT_ROUNDS,
                        notes: list[str] | None = None) -> ModelProto:
    """Shape inference, constant folding (proven), If folding, Loop unrolling and cleanup, again
    and again until a round changes nothing (at most `max_rounds`), so that shape-only If/Loop
    fold whatever order their conditions become known in. An If or Loop still there then raises
    GraphPassError naming the node that blocks its condition. Appends "fixed point after N
    rounds" to `notes`."""
    from .folding import graph_signature

    m = model
    prev = graph_signature(m)
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        m = fold_constants(m, max_rounds=1)  # this loop is the fixed point
        m = fold_if(m, strict=False)
        try:
            m = unroll_loop(m)
        except GraphPassError:
            pass  # reported below if the Loop is still there once nothing else changes
        m = remove_dead_nodes(remove_identity(m))
        sig = graph_signature(m)
        if sig == prev:
            break
        prev = sig
    else:
        raise GraphPassError(f"no fixed point after {max_rounds} rounds of folding (the graph keeps changing)")
    if notes is not None:
        notes.append(f"fold_to_fixed_point: fixed point after {rounds} round{'s' if rounds != 1 else ''}")
    if any(n.op_type in ("If", "Loop", "Scan") for n in m.graph.node):
        unroll_loop(fold_if(m))  # raises the precise error of the first If/Loop/Scan left
    return m


PASSES: dict[str, Callable[..., ModelProto]] = {
    "fix_input_shapes": fix_input_shapes,
    "fold_to_fixed_point": fold_to_fixed_point,
    "fold_if": fold_if,
    "unroll_loop": unroll_loop,
    "fold_constants": fold_constants,
    "simplify": simplify,
    "convert_opset": convert_opset,
    "normalize_default_domain": normalize_default_domain,
    "check_int64": check_int64,
    "fix_cast_to_bool": fix_cast_to_bool,
    "constant_value_attrs": constant_value_attrs,
    "remove_identity": remove_identity,
    "remove_dead_nodes": remove_dead_nodes,
    "remove_empty_concat_inputs": remove_empty_concat_inputs,
    "infer_shapes": infer_shapes,
    "weights_to_fp16": weights_to_fp16,
    "double_to_float": double_to_float,
    "remove_same_dtype_casts": remove_same_dtype_casts,
    "tensor_payloads": tensor_payloads,
}

DEFAULT_PASSES: list[str] = [
    "fix_input_shapes",
    "double_to_float",
    "fold_to_fixed_point",
    "remove_empty_concat_inputs",
    "convert_opset",
    "check_int64",
    "fix_cast_to_bool",
    "constant_value_attrs",
    "remove_same_dtype_casts",
    "remove_identity",
    "remove_dead_nodes",
    "tensor_payloads",
    "infer_shapes",
]


def _validation_error(model: ModelProto) -> str | None:
    if model.ByteSize() >= PROTOBUF_LIMIT:
        return None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def run_pipeline(
    model: ModelProto,
    passes: Sequence[str] | None = None,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    dims: Mapping[str, int] | None = None,
    target_opset: int = DEFAULT_TARGET_OPSET,
    validate: bool = True,
    notes: list[str] | None = None,
) -> tuple[ModelProto, list[str]]:
    """Run named passes in order (None = DEFAULT_PASSES).

    Returns the new model (the input is never modified) and the names of the passes applied.
    `fix_input_shapes` is skipped (and not listed) when neither `input_shapes` nor `dims` are
    given. `input_shapes`, `dims`, `target_opset` and `notes` (a list passes append remarks to,
    e.g. how many folding rounds ran) reach the passes that take them. With `validate`, the
    result must pass `onnx.checker.check_model` (if the input did). Raises GraphPassError (one line, prefixed with
    the pass name) on any failure.
    """
    names = list(DEFAULT_PASSES if passes is None else passes)
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        raise GraphPassError(f"unknown pass(es): {', '.join(unknown)}; known: {', '.join(PASSES)}")
    options = {"input_shapes": dict(input_shapes) if input_shapes else None, "dims": dict(dims) if dims else None,
               "target_opset": int(target_opset), "notes": notes}
    applied: list[str] = []
    current = model
    for name in names:
        fn = PASSES[name]
        if name == "fix_input_shapes" and not input_shapes and not dims:
            continue
        params = inspect.signature(fn).parameters
        kwargs = {k: v for k, v in options.items() if k in params}
        try:
            current = fn(current, **kwargs)
        except GraphPassError as exc:
            raise GraphPassError(f"{name}: {exc}") from None
        except RecursionError:
            raise GraphPassError(f"{name}: graph too deep for this pass (Python recursion limit)") from None
        except MemoryError:
            raise GraphPassError(f"{name}: out of memory (a tensor is too large to fold; see --max-tensor-mb)") from None
        applied.append(name)
    if validate and current.ByteSize() < PROTOBUF_LIMIT:
        problem = _validation_error(current)
        # only our own breakage is an error; a model that was already invalid stays the user's call
        if problem is not None and _validation_error(model) is None:
            raise GraphPassError(f"pipeline produced an invalid model: {problem}")
    if current is model:  # no pass ran: still honour "never return the input"
        from ._graph import copy_model

        current = copy_model(model)
    return current, applied
