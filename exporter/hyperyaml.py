"""Safe reader for the official `cosyvoice2.yaml` (hyperpyyaml dialect).

The official code loads this file with hyperpyyaml, which *imports and calls* the classes named
in `!new:`/`!name:`/`!apply:` tags. We never do that: tags are parsed into plain records
(`Tagged`), `!ref <a.b>` references (including simple arithmetic such as
`!ref <chunk_size> * <token_mel_ratio>`) are resolved against the document, and nothing is
imported or executed. The result is plain dicts/lists/scalars plus `Tagged` records.
"""
from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
import yaml.composer

from .errors import ModelDirError


@dataclass
class Tagged:
    """A `!kind:target` node: e.g. kind='new', target='cosyvoice.llm.llm.Qwen2LM', args={...}."""

    kind: str  # new | name | apply | module | copy | ref-object | include | tuple | placeholder
    target: str
    args: Any = field(default_factory=dict)  # dict (keyword args), list (positional) or None

    def get(self, key: str, default: Any = None) -> Any:
        if isinstance(self.args, dict):
            return self.args.get(key, default)
        return default

    def __getitem__(self, key: str) -> Any:
        if not isinstance(self.args, dict) or key not in self.args:
            raise KeyError(key)
        return self.args[key]

    def __contains__(self, key: str) -> bool:
        return isinstance(self.args, dict) and key in self.args


@dataclass
class _Ref:
    expr: str  # e.g. "<chunk_size> * <token_mel_ratio>"
    copy: bool = False


# YAML 1.1 (PyYAML) reads "1e-06" as a string; hyperpyyaml (ruamel, YAML 1.2) reads a float.
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _SafeHyperLoader(yaml.SafeLoader):
    """SafeLoader that records hyperpyyaml tags instead of acting on them."""


_SafeHyperLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def _construct_args(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    value = loader.construct_scalar(node)
    return None if value in ("", None) else value


def _multi(kind: str):
    def construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tagged:
        return Tagged(kind=kind, target=suffix, args=_construct_args(loader, node))

    return construct


for _kind in ("new", "name", "apply", "module"):
    _SafeHyperLoader.add_multi_constructor(f"!{_kind}:", _multi(_kind))


def _ref(loader: yaml.SafeLoader, node: yaml.Node) -> _Ref:
    return _Ref(str(loader.construct_scalar(node)))


def _copy(loader: yaml.SafeLoader, node: yaml.Node) -> _Ref:
    return _Ref(str(loader.construct_scalar(node)), copy=True)


def _tuple(loader: yaml.SafeLoader, node: yaml.Node) -> tuple:
    return tuple(loader.construct_sequence(node, deep=True))


def _placeholder(loader: yaml.SafeLoader, node: yaml.Node) -> Tagged:
    return Tagged(kind="placeholder", target="", args=None)


def _include(loader: yaml.SafeLoader, node: yaml.Node) -> Tagged:
    return Tagged(kind="include", target=str(loader.construct_scalar(node)), args=None)


_SafeHyperLoader.add_constructor("!ref", _ref)
_SafeHyperLoader.add_constructor("!copy", _copy)
_SafeHyperLoader.add_constructor("!tuple", _tuple)
_SafeHyperLoader.add_constructor("!PLACEHOLDER", _placeholder)
_SafeHyperLoader.add_constructor("!include", _include)


_REF_NAME = re.compile(r"<([^<>]+)>")
_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


def _safe_arith(expr: str, where: str) -> Any:
    """Evaluate + - * / // % ** on numbers only; anything else is an error."""

    def ev(n: ast.AST) -> Any:
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            return n.value
        if isinstance(n, ast.BinOp) and type(n.op) in _BINOPS:
            return _BINOPS[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            v = ev(n.operand)
            return -v if isinstance(n.op, ast.USub) else v
        raise ModelDirError(f"{where}: unsupported expression in !ref: {expr!r}")

    try:
        return ev(ast.parse(expr, mode="eval"))
    except SyntaxError:
        raise ModelDirError(f"{where}: cannot parse !ref expression {expr!r}") from None


def _lookup(doc: dict, dotted: str, where: str) -> Any:
    node: Any = doc
    for part in re.split(r"[.\[\]]+", dotted.strip()):
        if part == "":
            continue
        if isinstance(node, Tagged):
            node = node.args
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ModelDirError(f"{where}: !ref <{dotted}> does not name a key of the yaml")
    return node


def _resolve(value: Any, doc: dict, where: str, depth: int = 0) -> Any:
    if depth > 50:
        raise ModelDirError(f"{where}: !ref chain too deep (circular reference?)")
    if isinstance(value, _Ref):
        names = _REF_NAME.findall(value.expr)
        stripped = value.expr.strip()
        if len(names) == 1 and stripped == f"<{names[0]}>":
            return _resolve(_lookup(doc, names[0], where), doc, where, depth + 1)
        # arithmetic / string interpolation
        resolved = {n: _resolve(_lookup(doc, n, where), doc, where, depth + 1) for n in names}
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in resolved.values()):
            expr = _REF_NAME.sub(lambda m: repr(resolved[m.group(1)]), value.expr)
            return _safe_arith(expr, where)
        return _REF_NAME.sub(lambda m: str(resolved[m.group(1)]), value.expr)
    if isinstance(value, Tagged):
        return Tagged(value.kind, value.target, _resolve(value.args, doc, where, depth + 1))
    if isinstance(value, dict):
        return {k: _resolve(v, doc, where, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, doc, where, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, doc, where, depth + 1) for v in value)
    return value


# Bounds on what a YAML document may expand to. A real cosyvoice2.yaml has ~300 nodes and uses
# no aliases; a 1 KB "billion laughs" document expands to 9^9 nodes through nested aliases.
MAX_EXPANDED_NODES = 100_000
MAX_ALIASES = 1_000


def _expanded_size(node: yaml.Node, where: str) -> int:
    """Nodes the document has once every alias is expanded (memoised per node: linear time)."""
    sizes: dict[int, int] = {}
    stack = [(node, False)]
    while stack:
        n, children_done = stack.pop()
        if id(n) in sizes:
            continue
        kids = []
        if isinstance(n, yaml.SequenceNode):
            kids = list(n.value)
        elif isinstance(n, yaml.MappingNode):
            kids = [x for kv in n.value for x in kv]
        if not children_done:
            stack.append((n, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
            continue
        sizes[id(n)] = total = 1 + sum(sizes.get(id(k), 1) for k in kids)
        if total > MAX_EXPANDED_NODES:
            raise ModelDirError(f"{where}: the YAML expands to more than {MAX_EXPANDED_NODES} nodes through aliases "
                                "(an alias bomb?); refusing to read it (use the file from the official model)")
    return sizes[id(node)]


class _CountingLoader(_SafeHyperLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.n_aliases = getattr(self, "n_aliases", 0) + 1
            if self.n_aliases > MAX_ALIASES:
                raise ModelDirError(f"{self.where}: more than {MAX_ALIASES} YAML aliases (an alias bomb?); refusing to read it")
        return yaml.composer.Composer.compose_node(self, parent, index)


def safe_yaml(text: str, where: str, loader: type = None):
    """Parse YAML with bounds: at most MAX_ALIASES aliases and MAX_EXPANDED_NODES nodes after
    expansion, nesting the parser can handle; every failure is one ModelDirError."""
    loader_cls = loader or _CountingLoader
    ld = loader_cls(text)
    ld.where = where
    try:
        node = ld.get_single_node()
        if node is None:
            return None
        _expanded_size(node, where)
        return ld.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        pos = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ModelDirError(f"{where}: not valid YAML{pos}: {problem} (fix the file, or use the one from the official model)") from None
    except RecursionError:
        raise ModelDirError(f"{where}: the YAML is nested too deeply to read (a malformed or hostile file)") from None
    finally:
        ld.dispose()


class _PlainCountingLoader(yaml.SafeLoader):
    compose_node = _CountingLoader.compose_node


def safe_plain_yaml(text: str, where: str):
    """Plain YAML (profiles, no hyperpyyaml tags) with the same bounds as `safe_yaml`."""
    return safe_yaml(text, where, loader=_PlainCountingLoader)


def read_utf8(path: str | Path) -> str:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelDirError(f"cannot read {p}: {e.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ModelDirError(f"{p}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); the file is corrupt "
                            "(use the one from the official model)") from None


def loads(text: str, where: str = "<yaml>", overrides: dict | None = None) -> dict:
    """Parse hyperpyyaml text safely. `overrides` replace top-level keys before !ref resolution
    (as `load_hyperpyyaml(f, overrides=...)` does)."""
    doc = safe_yaml(text, where)
    if not isinstance(doc, dict):
        raise ModelDirError(f"{where}: expected a mapping at the top level, got {type(doc).__name__} "
                            "(use the cosyvoice2.yaml of the official model)")
    if overrides:
        doc.update(overrides)
    try:
        return _resolve(doc, doc, where)
    except RecursionError:
        raise ModelDirError(f"{where}: the YAML is nested too deeply to resolve") from None


def load(path: str | Path, overrides: dict | None = None) -> dict:
    p = Path(path)
    return loads(read_utf8(p), where=str(p), overrides=overrides)
