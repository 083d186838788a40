"""Compile-only C# stubs of the real Unity.InferenceEngine API, generated from the extracted public
API (shared/reference/sentis_api/sentis_api_<version>.json: every public type and member of the real
com.unity.ai.inference package, names and signatures only).

The package's Sentis/Unity/Editor layers are compiled against these (tests/unity/test_csharp_core.py),
so a call to a member that does not exist in that version, or with a wrong signature, fails CI.
Emitted: the types the package uses and the types their signatures need; a member whose signature
names a type outside that set (NativeArray<T>.ReadOnly, ComputeBuffer, Awaitable<T>, ...) is left out and listed
in the file's header. Bodies are `throw null`.

    python -m tests.unity.gen_sentis_stubs [--api-dir DIR]   # rewrites tests/unity/stubs/generated/*.g.cs
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "stubs" / "generated"
VERSIONS = ("2.2.0", "2.4.0")
DEFAULT_API_DIR = Path("/work/shared/reference/sentis_api")
NS = "Unity.InferenceEngine"
ROOTS = ["Worker", "Tensor", "Tensor`1", "TensorShape", "DataType", "BackendType", "DeviceType", "Model", "Model.Input",
         "Model.Output", "ModelAsset", "ModelLoader", "ModelWriter", "ModelQuantizer", "QuantizationType", "ITensorData",
         "DynamicTensorShape"]
# names any signature may use: C# keywords/BCL and the UnityEngine names of tests/unity/stubs/UnityEngineStub.cs
EXTERNAL = {"void", "int", "uint", "long", "ulong", "short", "ushort", "byte", "sbyte", "float", "double", "bool", "char",
            "string", "object", "T", "IDisposable", "Stream", "List", "Dictionary", "ReadOnlySpan", "Span", "Array",
            "IEnumerator", "IEnumerable", "Type", "ScriptableObject", "NativeArray"}
KEYWORDS = {"ref", "out", "in", "params", "this", "true", "false", "null", "default", "new"}


def _idents(text: str) -> set[str]:
    text = re.sub(r'"[^"]*"', "", text)
    return {w for w in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text)} - KEYWORDS


def _member_names_ok(m: dict, known: set[str]) -> bool:
    words = set()
    for k in ("return_type", "type"):
        if m.get(k):
            words |= _idents(m[k])
    for p in m.get("params", []):
        words |= _idents(p["type"])
        if "default" in p:
            words |= _idents(str(p["default"]))
    words -= set(m.get("generic_params", []))
    words -= {p["name"] for p in m.get("params", [])}
    return words <= known


def _short(key: str) -> str:
    return key[len(NS) + 1:]


def _params_text(m: dict) -> str:
    return m.get("params_text", "()")


def _body(m: dict, interface: bool, abstract: bool) -> str:
    return ";" if interface or abstract else " { throw null; }"


def _emit_member(m: dict, ty: dict) -> str | None:
    interface = ty["kind"] == "interface"
    mods = m.get("modifiers", [])
    kind = m["kind"]
    acc = "" if interface else "public "
    static = "static " if m["static"] and kind not in ("operator", "conversion") and "const" not in mods else ""
    extra = " ".join(x for x in mods if x in ("override", "abstract", "virtual")) + (" " if any(x in mods for x in ("override", "abstract", "virtual")) else "")
    abstract = "abstract" in mods
    gen = f"<{', '.join(m['generic_params'])}>" if m.get("generic_params") else ""
    cons = "".join(" " + c.replace("unmanaged", "struct") for c in m.get("constraints", []))
    if kind == "field":
        if "const" in mods:
            return None  # value not in the API data; not used by the package
        return f"        public {static}{m['type']} {m['name']};"
    if kind == "property":
        acc_text = " ".join(f"{a};" if interface or abstract else f"{a} {{ throw null; }}" for a in m.get("accessors", ["get"]))
        return f"        {acc}{static}{extra}{m['type']} {m['name']} {{ {acc_text} }}"
    if kind == "indexer":
        params = ", ".join(f"{p['type']} {p['name']}" for p in m["params"])
        acc_text = " ".join(f"{a};" if interface else f"{a} {{ throw null; }}" for a in m.get("accessors", ["get"]))
        return f"        {acc}{m.get('return_type') or m.get('type')} this[{params}] {{ {acc_text} }}"
    if kind == "constructor":
        if ty["kind"] == "struct" and not m["params"]:
            return None
        chain = " : this()" if ty["kind"] == "struct" else ""
        return f"        public {ty['name']}{_params_text(m)}{chain} {{ }}"
    if kind in ("method",):
        return f"        {acc}{static}{extra}{m['return_type']} {m['name']}{gen}{_params_text(m)}{cons}{_body(m, interface, abstract)}"
    if kind == "operator":
        return f"        public static {m['return_type']} {m['name']}{_params_text(m)} {{ throw null; }}"
    return None  # conversions, extension methods: not used by the package


def generate(api: dict) -> str:
    types = api["runtime"]["types"]
    keys = {f"{NS}.{r}" for r in ROOTS}
    known = set(EXTERNAL) | {_short(k).split(".")[-1].split("`")[0] for k in keys}
    lines, skipped = [], []
    by_parent: dict[str | None, list[str]] = {}
    for k in sorted(keys):
        by_parent.setdefault(types[k]["declaring_type"], []).append(k)

    def emit_type(k: str, indent: str) -> None:
        ty = types[k]
        mods = [x for x in ty.get("modifiers", []) if x in ("abstract", "static", "sealed")]
        gen = f"<{', '.join(ty['generic_params'])}>" if ty["generic_params"] else ""
        bases = [b for b in ty.get("bases", []) if _idents(b) <= known]
        if ty["generic_params"]:
            bases_text = (" : " + ", ".join(bases) if bases else "") + " where T : struct"
        else:
            bases_text = " : " + ", ".join(bases) if bases else ""
        lines.append(f"{indent}public {' '.join(mods) + ' ' if mods else ''}{ty['kind']} {ty['name']}{gen}{bases_text}")
        lines.append(indent + "{")
        if ty["kind"] == "enum":
            lines.append(indent + "    " + ", ".join(v["name"] for v in ty["values"]))
        else:
            for m in ty["members"]:
                if m["access"] != "public" or m.get("extension"):
                    continue
                if not _member_names_ok(m, known):
                    skipped.append(f"{_short(k)}.{m['name']}{_params_text(m) if m['kind'] in ('method', 'constructor') else ''}")
                    continue
                text = _emit_member(m, ty)
                if text is not None:
                    lines.append(indent + text[8:].rjust(len(text) - 8 + 4) if False else indent + "    " + text.strip())
            for child in by_parent.get(k, []):
                emit_type(child, indent + "    ")
        lines.append(indent + "}")

    for k in by_parent.get(None, []):
        emit_type(k, "    ")
    head = [f"// GENERATED by tests/unity/gen_sentis_stubs.py from sentis_api_{api['version']}.json (the real public API of",
            f"// {api['package']} {api['version']}); compile-only, bodies throw. Do not edit.",
            "// Members left out (their signatures use types outside this stub):"]
    head += [f"//   {s}" for s in skipped]
    return "\n".join(head + ["#pragma warning disable 0108, 0114, 0660, 0661", "using System;", "using System.Collections;",
                             "using System.Collections.Generic;", "using System.IO;", "using Unity.Collections;", "using UnityEngine;", "",
                             f"namespace {NS}", "{"] + lines + ["}", ""])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--api-dir", type=Path, default=DEFAULT_API_DIR)
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for v in VERSIONS:
        api = json.loads((a.api_dir / f"sentis_api_{v}.json").read_text(encoding="utf-8"))
        (OUT / f"InferenceEngine_{v}.g.cs").write_text(generate(api), encoding="utf-8")
        print(f"wrote {OUT / f'InferenceEngine_{v}.g.cs'}")


if __name__ == "__main__":
    main()
