"""Small helpers shared by the passes: copying, name maps, opset lookup, loading."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Iterable, Iterator

import onnx
from onnx import AttributeProto, GraphProto, ModelProto, NodeProto

from .errors import ModelLoadError

DEFAULT_DOMAINS = ("", "ai.onnx")
PROTOBUF_LIMIT = 2**31  # 2 GiB: protobuf cannot serialize a message this large


def copy_model(model: ModelProto) -> ModelProto:
    """Deep copy, so that passes never mutate their input."""
    out = ModelProto()
    out.CopyFrom(model)
    return out


def _varint_len(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def copy_fields(src, dst, skip=()) -> None:
    """Copy the set fields of message `src` into `dst` (same type), except the names in `skip`."""
    for fd, val in src.ListFields():
        if fd.name in skip:
            continue
        if hasattr(val, "extend"):  # repeated
            getattr(dst, fd.name).extend(val)
        elif hasattr(val, "CopyFrom"):  # message
            getattr(dst, fd.name).CopyFrom(val)
        else:
            setattr(dst, fd.name, val)


def model_bytes(model: ModelProto) -> int:
    """`model.ByteSize()` without serialising the model whole (ByteSize serialises it: a transient
    copy of every weight, +1.45 GB on the full-size LLM step): each initializer is measured on
    its own, the rest on a copy without them."""
    inits = model.graph.initializer
    if not inits:
        return model.ByteSize()
    rest = ModelProto()
    copy_fields(model, rest, {"graph"})
    copy_fields(model.graph, rest.graph, {"initializer"})
    sizes = [i.ByteSize() for i in inits]
    graph = rest.graph.ByteSize() + sum(1 + _varint_len(n) + n for n in sizes)  # tag + length + payload each
    rest.ClearField("graph")
    return rest.ByteSize() + 1 + _varint_len(graph) + graph


WEIGHT_BYTES = 1 << 20


def _payload_bytes(init: onnx.TensorProto) -> int:
    """An initializer's serialized size, from its raw bytes when it has them (ByteSize would
    serialise a 544 MB embedding table to measure it)."""
    return len(init.raw_data) if init.HasField("raw_data") else init.ByteSize()


def without_weights(model: ModelProto, min_bytes: int = WEIGHT_BYTES) -> ModelProto:
    """A copy for shape inference and the ONNX checker in which initializers of >= min_bytes
    (weights) are graph inputs of the same type and shape: inference reads only their shapes
    (data propagation reads small integer tensors), and copying/serialising the weights made
    checking the full-size LLM step cost gigabytes above the working set (the checker's shape
    inference: 5.6 GB; `sentis-tts check`'s validation: 10 GB)."""
    g = model.graph
    big = [i for i in g.initializer if _payload_bytes(i) >= min_bytes]
    if not big:
        return copy_model(model)
    big_names = {i.name for i in big}
    out = ModelProto()
    copy_fields(model, out, {"graph"})
    copy_fields(g, out.graph, {"initializer"})
    out.graph.initializer.extend(i for i in g.initializer if i.name not in big_names)
    declared = {i.name for i in g.input}
    out.graph.input.extend(onnx.helper.make_tensor_value_info(i.name, i.data_type, list(i.dims))
                           for i in big if i.name not in declared)
    return out


def load_model(model_or_path, *, load_external_data: bool = True) -> ModelProto:
    """Accept a ModelProto, a path or bytes; raise ModelLoadError with one line on failure."""
    if isinstance(model_or_path, ModelProto):
        return model_or_path
    if isinstance(model_or_path, (bytes, bytearray)):
        try:
            return onnx.load_from_string(bytes(model_or_path))
        except Exception as exc:  # noqa: BLE001 - protobuf raises several types
            raise ModelLoadError(f"cannot parse ONNX bytes: {exc}") from None
    path = os.fspath(model_or_path)
    if not os.path.isfile(path):
        raise ModelLoadError(f"{path}: no such file")
    try:
        model = onnx.load(path, load_external_data=load_external_data)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise ModelLoadError(f"{path}: not a readable ONNX model (no graph)")
    return model


def default_opset(model: ModelProto) -> int | None:
    """Version of the default ONNX domain ("" or the misspelled "ai.onnx"), None if absent."""
    for imp in model.opset_import:
        if imp.domain in DEFAULT_DOMAINS:
            return int(imp.version)
    return None


def subgraphs(node: NodeProto) -> Iterator[tuple[str, GraphProto]]:
    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            yield attr.name, attr.g
        elif attr.type == AttributeProto.GRAPHS:
            for g in attr.graphs:
                yield attr.name, g


def has_subgraph(node: NodeProto) -> bool:
    return any(True for _ in subgraphs(node))


def graph_defined_names(graph: GraphProto) -> set[str]:
    names = {i.name for i in graph.input}
    names |= {i.name for i in graph.initializer}
    names |= {i.values.name for i in graph.sparse_initializer}
    for n in graph.node:
        names |= {o for o in n.output if o}
    return names


def rename_reads(nodes, renames: dict[str, str]) -> None:
    """Make `nodes` read `renames[x]` wherever they read `x`: their inputs, and the outer-scope
    reads (node inputs and graph outputs) of their subgraphs, except where a subgraph defines
    `x` itself (it shadows the outer name there)."""
    if not renames:
        return
    for n in nodes:
        for k, i in enumerate(n.input):
            if i in renames:
                n.input[k] = renames[i]
        for _, g in subgraphs(n):
            defined = graph_defined_names(g)
            live = {k: v for k, v in renames.items() if k not in defined}
            rename_reads(g.node, live)
            for o in g.output:
                if o.name in live:
                    o.name = live[o.name]


def outer_references(graph: GraphProto) -> set[str]:
    """Names a subgraph reads from enclosing scopes (implicit inputs)."""
    defined = graph_defined_names(graph)
    used: set[str] = set()
    for n in graph.node:
        used |= node_reads(n)
    used |= {o.name for o in graph.output}
    return {u for u in used if u and u not in defined}


def node_reads(node: NodeProto) -> set[str]:
    """Explicit inputs plus every outer-scope name its subgraphs read."""
    reads = {i for i in node.input if i}
    for _, g in subgraphs(node):
        reads |= outer_references(g)
    return reads


def producers(graph: GraphProto) -> dict[str, NodeProto]:
    out = {}
    for n in graph.node:
        for o in n.output:
            if o:
                out[o] = n
    return out


def consumers(graph: GraphProto) -> dict[str, list[tuple[NodeProto, int]]]:
    """name -> [(node, input index)]; index -1 means read implicitly by a subgraph."""
    out: dict[str, list[tuple[NodeProto, int]]] = defaultdict(list)
    for n in graph.node:
        for idx, i in enumerate(n.input):
            if i:
                out[i].append((n, idx))
        for _, g in subgraphs(n):
            for name in outer_references(g):
                out[name].append((n, -1))
    return out


def node_label(node: NodeProto) -> str:
    return f"'{node.name}' ({node.op_type})" if node.name else f"<unnamed {node.op_type}>"


def unique_namer(used: Iterable[str]):
    """Return f(base) -> a name not in `used` (and remember it)."""
    taken = set(used)

    def make(base: str) -> str:
        name = base
        k = 1
        while name in taken or not name:
            name = f"{base}_{k}"
            k += 1
        taken.add(name)
        return name

    return make


def all_names(graph: GraphProto) -> set[str]:
    """Every value and node name in a graph and its subgraphs (to avoid collisions)."""
    names = graph_defined_names(graph) | {n.name for n in graph.node if n.name}
    for n in graph.node:
        names |= {i for i in n.input if i}
        for _, g in subgraphs(n):
            names |= all_names(g)
    return names


def set_opset(model: ModelProto, version: int) -> None:
    """Set the default-domain opset, spelled "" (Sentis ignores "ai.onnx")."""
    keep = [imp for imp in model.opset_import if imp.domain not in DEFAULT_DOMAINS]
    del model.opset_import[:]
    model.opset_import.append(onnx.helper.make_opsetid("", version))
    model.opset_import.extend(keep)


def iter_graphs(graph: GraphProto) -> Iterator[GraphProto]:
    """The graph and all nested subgraphs, outermost first."""
    yield graph
    for n in graph.node:
        for _, g in subgraphs(n):
            yield from iter_graphs(g)
