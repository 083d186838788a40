"""Constant folding (onnx-graphsurgeon, optionally onnxsim)."""

from __future__ import annotations

import contextlib
import io
import logging

from onnx import ModelProto

from ._const import NONDETERMINISTIC_OPS
from ._graph import PROTOBUF_LIMIT, copy_model
from .errors import GraphPassError
from .shapes import infer_shapes

FOLD_SIZE_THRESHOLD = 16 << 20  # bytes: do not bake Tile/Expand of constants into huge tensors


def _restore_model_fields(src: ModelProto, dst: ModelProto) -> ModelProto:
    """gs/onnxsim rebuild the ModelProto; keep what they drop."""
    dst.ir_version = src.ir_version or dst.ir_version
    dst.producer_name = src.producer_name
    dst.producer_version = src.producer_version
    dst.domain = src.domain
    dst.model_version = src.model_version
    dst.doc_string = src.doc_string
    del dst.metadata_props[:]
    dst.metadata_props.extend(src.metadata_props)
    # keep the opset imports exactly (gs adds custom domains only when used)
    known = {i.domain for i in dst.opset_import}
    for imp in src.opset_import:
        if imp.domain not in known:
            dst.opset_import.append(imp)
    return dst


@contextlib.contextmanager
def _quiet_gs():
    import onnx_graphsurgeon as gs
    import onnxruntime as ort
    from onnx_graphsurgeon.logger import G_LOGGER

    old = G_LOGGER.severity
    G_LOGGER.severity = G_LOGGER.ERROR
    ort.set_default_logger_severity(3)  # gs's sessions would print optimizer warnings
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield gs
    finally:
        G_LOGGER.severity = old
        ort.set_default_logger_severity(2)  # onnxruntime's default (warning)


def fold_constants(model: ModelProto, *, size_threshold: int | None = FOLD_SIZE_THRESHOLD, max_rounds: int = 4) -> ModelProto:
    """Fold every subgraph that depends only on constants and static shapes into initializers.

    Uses onnx-graphsurgeon (`fold_constants(fold_shapes=True, flatten_subgraphs=True)` +
    `cleanup`), evaluated with onnxruntime, after ONNX shape inference so that `Shape` of a
    static tensor folds. Random ops are never folded (Sentis does not fold them either).
    Folded tensors larger than `size_threshold` bytes are left to be computed at runtime.
    Graph inputs are kept even when unused.
    """
    from .cleanup import constant_value_attrs

    # gs reads value_float as a float64 numpy scalar; give it the exact float32 tensor form first
    m = constant_value_attrs(model)
    if m.ByteSize() >= PROTOBUF_LIMIT:
        raise GraphPassError("fold_constants: model is over 2 GB; fold it before adding the weights")
    prev = None
    for _ in range(max_rounds):
        # re-infer every round: folding a Reshape's shape input makes its output shape known,
        # which lets the next round fold Shape nodes downstream
        try:
            m = infer_shapes(m)
        except GraphPassError:
            pass
        m = _fold_once(m, size_threshold)
        sig = (len(m.graph.node), len(m.graph.initializer))
        if sig == prev:
            break
        prev = sig
    return _restore_model_fields(model, m)


def _fold_once(m: ModelProto, size_threshold: int | None) -> ModelProto:
    with _quiet_gs() as gs:
        last_exc = None
        # one onnxruntime session for the whole graph is fast; partition only if that fails
        for partitioning in (None, "basic"):
            try:
                graph = gs.import_onnx(m)
                graph.toposort()
                graph.fold_constants(
                    fold_shapes=True,
                    partitioning=partitioning,
                    error_ok=partitioning is not None,
                    flatten_subgraphs=True,
                    size_threshold=size_threshold,
                    should_exclude_node=lambda n: n.op in NONDETERMINISTIC_OPS,
                )
                graph.cleanup(remove_unused_graph_inputs=False)
                graph.toposort()
                return gs.export_onnx(graph, do_type_check=False)
            except Exception as exc:  # noqa: BLE001
                last_exc = exc
        text = str(last_exc).strip().splitlines()[0] if str(last_exc).strip() else ""
        raise GraphPassError(f"fold_constants failed: {type(last_exc).__name__}: {text}")


def simplify(model: ModelProto) -> ModelProto:
    """onnxsim's simplifier (constant folding + its own graph rewrites), checked with random inputs.

    More aggressive than `fold_constants` (it also fuses some patterns); inputs must be static.
    """
    import onnxsim

    logging.getLogger("onnxsim").setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            out, ok = onnxsim.simplify(copy_model(model), check_n=1)
    except Exception as exc:  # noqa: BLE001
        raise GraphPassError(f"simplify (onnxsim) failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not ok:
        raise GraphPassError("simplify (onnxsim): simplified model does not match the original on random inputs")
    return _restore_model_fields(model, out)
