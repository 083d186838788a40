"""The import-time rewrites of ContractSubExpressionPass and FuseDense, matched on ONNX nodes.

Patterns are exact and positional, as in the source (no commutativity):
S-2.1.3 `Runtime/Core/Compiler/Passes/ContractSubExpressionsPass.cs` l.254-297 (remapping rules,
matched per layer in graph order; RMSNorm since 2.1.2) and IE-2.4.0 the same file l.24-125
(`SubgraphRewriter.ReplacePattern`; small constants compare by dtype, length and values,
`Graph/MatcherUtils.cs` l.93-115). A matched interior node may only feed the pattern, and may not
be a graph output (`CheckGraphFullInclusion` / `MatcherUtils.IsContained`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import onnx

X, SCALE, BIAS, EPS = "$x", "$scale", "$bias", "$eps"


def C(value: float):
    return ("$const", float(value))


def _reduce_mean(inner):
    return ("ReduceMean", inner)  # axes must be [-1]; checked in _match


_SQRT2 = float(np.sqrt(np.float32(2.0)))
SWISH = ("Mul", X, ("Sigmoid", X))
GELU = ("Mul", ("Mul", X, ("Add", ("Erf", ("Div", X, C(_SQRT2))), C(1.0))), C(0.5))
GELU_FAST = ("Mul", ("Mul", X, C(0.5)),
             ("Add", ("Tanh", ("Mul", ("Add", X, ("Mul", ("Pow", X, C(3.0)), C(0.044714998453855515))), C(0.7978845834732056))), C(1.0)))
_Y = ("Sub", X, _reduce_mean(X))
LAYER_NORM = ("Add", ("Mul", ("Div", _Y, ("Sqrt", ("Add", _reduce_mean(("Pow", _Y, C(2.0))), EPS))), SCALE), BIAS)
RMS_NORM = ("Mul", SCALE, ("Mul", X, ("Div", C(1.0), ("Sqrt", ("Add", _reduce_mean(("Pow", X, C(2.0))), EPS)))))

# (kind, pattern) in the order both versions try them (the 2.4 rsqrt/NotEqual/atan2/FloorDiv
# patterns change no layer count that matters here and are not modelled)
PATTERNS = [("Swish", SWISH), ("Gelu", GELU), ("GeluFast", GELU_FAST), ("LayerNormalization", LAYER_NORM),
            ("RMSNormalization", RMS_NORM)]


@dataclass
class Match:
    kind: str
    root: onnx.NodeProto
    members: set[int]
    member_names: list[str]
    inputs: list[str]
    output: str
    bindings: dict[str, str] = field(default_factory=dict)

    @property
    def root_name(self) -> str:
        return self.root.name or self.root.output[0]


class _View:
    """Producers and users of the graph as the pass sees it (aliases resolved when given)."""

    def __init__(self, nodes, imp, alias):
        self.imp = imp
        self.resolve = alias or (lambda t: t)
        self.prod: dict[str, onnx.NodeProto] = {}
        self.users: dict[str, list] = defaultdict(list)
        self.outputs = {self.resolve(o) for o in imp.graph_outputs}
        for n in nodes:
            if n is None:
                continue
            if alias is not None and n.output and self.resolve(n.output[0]) != n.output[0]:
                continue  # an alias (same-dtype Cast, Identity, ...): gone
            for o in n.output:
                if o:
                    self.prod[o] = n
            for i in n.input:
                if i:
                    self.users[self.resolve(i)].append(n)


def _const_ok(imp, tensor: str, expected: float, version) -> bool:
    from .importer import FLOAT, sentis_dtype

    v = imp.values.get(tensor)
    if v is None or v.size != 1 or sentis_dtype(imp.dtype.get(tensor)) != FLOAT:
        return False
    if version < (2, 4) and v.ndim > 1:  # ScalarFloat: shape.length == 1 && rank <= 1
        return False
    return bool(np.float32(v.reshape(-1)[0]) == np.float32(expected))


def _axes_minus_one(node, imp) -> bool:
    axes = None
    for a in node.attribute:
        if a.name == "axes":
            axes = list(onnx.helper.get_attribute_value(a))
    if axes is None and len(node.input) > 1 and node.input[1]:
        val = imp.values.get(node.input[1])
        axes = None if val is None else [int(x) for x in np.asarray(val).reshape(-1)]
    return axes == [-1]


def _match(pat, tensor: str, view: _View, binding: dict, members: list, version) -> bool:
    tensor = view.resolve(tensor)
    if isinstance(pat, str):  # placeholder
        if pat in binding:
            return binding[pat] == tensor
        binding[pat] = tensor
        return True
    if pat[0] == "$const":
        return _const_ok(view.imp, tensor, pat[1], version)
    node = view.prod.get(tensor)
    if node is None or node.op_type != pat[0] or node.domain not in ("", "ai.onnx"):
        return False
    args = pat[1:]
    if pat[0] == "ReduceMean":
        if not _axes_minus_one(node, view.imp):
            return False
        if version >= (2, 4):
            keep = next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "keepdims"), 1)
            if not keep:
                return False
        ins = list(node.input[:1])
    else:
        ins = list(node.input)
        if len(ins) != len(args):
            return False
    members.append(node)
    return all(_match(p, i, view, binding, members, version) for p, i in zip(args, ins))


def _contained(root, members, view: _View) -> bool:
    ids = {id(m) for m in members}
    for m in members:
        if m is root:
            continue
        out = m.output[0]
        if out in view.outputs:
            return False
        if any(id(u) not in ids for u in view.users.get(out, [])):
            return False
    return True


def find_matches(nodes, imp, version, *, alias=None, kinds=None) -> list[Match]:
    """Every non-overlapping match of the rewrite patterns of `version` (graph order of roots)."""
    view = _View(nodes, imp, alias)
    taken: set[int] = set()
    matches: list[Match] = []
    patterns = [(k, p) for k, p in PATTERNS if kinds is None or k in kinds]
    if version < (2, 1):  # the RMSNorm rule came with 2.1.2
        patterns = [(k, p) for k, p in patterns if k != "RMSNormalization"]
    for n in nodes:
        if n is None or not n.output or n.output[0] not in view.prod or view.prod[n.output[0]] is not n:
            continue
        for kind, pat in patterns:
            binding: dict = {}
            members: list = []
            if not _match(pat, n.output[0], view, binding, members, version):
                continue
            if not _contained(n, members, view):
                continue
            if any(id(m) in taken for m in members):
                continue
            if version < (2, 4):
                # CheckGraphFullInclusion: exactly one non-constant input (scale/bias/eps constants)
                ext = [binding[p] for p in (SCALE, BIAS, EPS) if p in binding]
                if any(not imp.is_known(t) for t in ext):
                    continue
            if EPS in binding and imp.values.get(binding[EPS]) is None:
                continue  # the replacement reads epsilon's value
            uniq = list({id(m): m for m in members}.values())
            taken.update(id(m) for m in uniq)
            inputs = [binding[X]] + [binding[p] for p in (SCALE, BIAS) if p in binding]
            matches.append(Match(kind, n, {id(m) for m in uniq}, [m.name or m.output[0] for m in uniq], inputs, n.output[0], binding))
            break
    return matches


def apply(layers, matches):
    """Replace the matched layers by one fused layer each (at the root's position)."""
    from .importer import Layer

    if not matches:
        return layers
    member_ids = {i for m in matches for i in m.members}
    by_root = {id(m.root): m for m in matches}
    out = []
    for L in layers:
        if L.node is not None and id(L.node) in by_root:
            m = by_root[id(L.node)]
            out.append(Layer(m.root_name, m.kind, list(m.inputs), [m.output], fused=m.member_names))
        elif L.node is not None and id(L.node) in member_ids:
            continue
        else:
            out.append(L)
    return out


def count_dense(layers, imp) -> int:
    """FuseDensePass: MatMul with constant rank-2 weights whose only user is an Add with a
    constant bias (S-2.1.3 Runtime/Core/Compiler/Passes/FuseDensePass.cs)."""
    users: dict[str, list] = defaultdict(list)
    for L in layers:
        for t in L.inputs:
            if t:
                users[t].append(L)
    n = 0
    for L in layers:
        if L.op != "MatMul" or len(L.inputs) != 2 or not imp.is_known(L.inputs[1]):
            continue
        w = imp.shape.get(L.inputs[1])
        if w is None or len(w) != 2:
            continue
        us = users.get(L.outputs[0], [])
        if len(us) != 1 or us[0].op != "Add" or len(us[0].inputs) != 2:
            continue
        other = us[0].inputs[1] if us[0].inputs[0] == L.outputs[0] else us[0].inputs[0]
        if imp.is_known(other):
            n += 1
    return n
