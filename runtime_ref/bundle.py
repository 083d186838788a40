"""Reading a bundle: manifest, hash checks, onnxruntime sessions. numpy + onnxruntime only."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BundleError

SUPPORTED_SCHEMA = 1
_NP = {"float32": np.float32, "int32": np.int32, "int64": np.int64, "float16": np.float16}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


REEXPORT = "re-export the bundle with `sentis-tts export`"


def _is_rel_path(p) -> bool:
    return isinstance(p, str) and p != "" and not Path(p).is_absolute() and ".." not in Path(p).parts


def _check_tensor_list(where: str, value) -> str | None:
    if not isinstance(value, list):
        return f"{where} is not a list"
    for i, t in enumerate(value):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            return f"{where}[{i}] has no name"
        shape = t.get("shape")
        if not isinstance(shape, list) or not all((isinstance(d, int) and not isinstance(d, bool) and d >= 0) or isinstance(d, str)
                                                  for d in shape):
            return f"{where}[{i}] ({t['name']}) has no valid shape"
        if t.get("dtype") not in _NP:
            return f"{where}[{i}] ({t['name']}) has dtype {t.get('dtype')!r}, not one of {', '.join(_NP)}"
    return None


def manifest_problem(manifest) -> str | None:
    """What is structurally wrong with a parsed manifest.json (None if nothing): the top-level
    sections, every graph entry (file, inputs, outputs), files and voices entries. Component
    sections are checked where they are read."""
    if not isinstance(manifest, dict):
        return f"the top level is a JSON {type(manifest).__name__}, not an object"
    ver = manifest.get("schema_version")
    if ver != SUPPORTED_SCHEMA or isinstance(ver, bool):
        return f"schema_version {ver!r} is not supported (this version reads {SUPPORTED_SCHEMA})"
    if not isinstance(manifest.get("family", ""), str):
        return f"'family' is a {type(manifest['family']).__name__}, not a family name"
    for key in ("graphs", "constants", "components"):
        if not isinstance(manifest.get(key), dict):
            return f"'{key}' is missing or not an object"
    for key in ("files", "voices"):
        if not isinstance(manifest.get(key, {}), dict):
            return f"'{key}' is not an object"
    for name, g in manifest["graphs"].items():
        if not isinstance(g, dict):
            return f"graph '{name}' is not an object"
        if not _is_rel_path(g.get("file")):
            return f"graph '{name}' has no valid 'file' (a path inside the bundle)"
        for io_key in ("inputs", "outputs"):
            problem = _check_tensor_list(f"graph '{name}' {io_key}", g.get(io_key))
            if problem:
                return problem
        if "sha256" in g and not isinstance(g["sha256"], str):
            return f"graph '{name}' has a malformed sha256"
    for rel, f in manifest.get("files", {}).items():
        if not _is_rel_path(rel) or not isinstance(f, dict) or not isinstance(f.get("sha256", ""), str):
            return f"files entry {rel!r} is malformed"
    for name, v in manifest.get("voices", {}).items():
        if not isinstance(v, dict) or not _is_rel_path(v.get("file")):
            return f"voice '{name}' has no valid 'file'"
    return None


def read_manifest(root: str | Path) -> dict:
    """Read and structurally validate `root/manifest.json`; any problem is one BundleError."""
    root = Path(root)
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise BundleError(f"{root}: no manifest.json — not a sentis-tts bundle (create one with `sentis-tts export`)")
    try:
        manifest = json.loads(mpath.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise BundleError(f"{mpath}: not UTF-8 text (byte {e.start}); the file is corrupt ({REEXPORT})") from None
    except json.JSONDecodeError as e:
        raise BundleError(f"{mpath}: not valid JSON (line {e.lineno}): {e.msg} ({REEXPORT})") from None
    except (OSError, RecursionError) as e:
        raise BundleError(f"{mpath}: cannot be read ({type(e).__name__}: {e}) ({REEXPORT})") from None
    problem = manifest_problem(manifest)
    if problem:
        raise BundleError(f"{mpath}: {problem} ({REEXPORT})")
    return manifest


@dataclass
class GraphInfo:
    name: str
    entry: dict

    @property
    def inputs(self) -> list[dict]:
        return self.entry["inputs"]

    @property
    def outputs(self) -> list[dict]:
        return self.entry["outputs"]

    def input(self, name: str) -> dict:
        for i in self.inputs:
            if i["name"] == name:
                return i
        raise BundleError(f"graph {self.name} has no input {name!r}")


class Bundle:
    """A bundle folder written by `sentis-tts export`."""

    # graph values are host numpy arrays: the LLM writes llm_step's new KV rows into its cache in
    # place instead of running llm_cache_append (runtime_ref/llm.py, docs/bundle.md)
    host_cache_write = True

    def __init__(self, root: Path, manifest: dict, *, threads: int = 2):
        self.root = root
        self.manifest = manifest
        self.threads = threads
        self._sessions: dict[str, Any] = {}

    @classmethod
    def open(cls, path: str | Path, *, verify: bool = True, threads: int = 2) -> "Bundle":
        root = Path(path)
        b = cls(root, read_manifest(root), threads=threads)
        if verify:
            b.verify()
        return b

    # -- integrity ------------------------------------------------------------------------------
    def verify(self) -> None:
        """Check that every graph and file listed exists and has the recorded sha256."""
        items = [(g["file"], g.get("sha256")) for g in self.manifest["graphs"].values()]
        items += [(rel, f.get("sha256")) for rel, f in self.manifest.get("files", {}).items()]
        for rel, digest in items:
            p = self.root / rel
            if not p.is_file():
                raise BundleError(f"{self.root}: {rel} is listed in manifest.json but missing (restore it, or {REEXPORT})")
            if digest and _sha256(p) != digest:
                raise BundleError(f"{self.root}: {rel} does not match its sha256 in manifest.json (modified or corrupt; restore it, or {REEXPORT})")

    # -- access ---------------------------------------------------------------------------------
    @property
    def constants(self) -> dict:
        return self.manifest["constants"]

    def component(self, name: str) -> dict:
        comp = self.manifest["components"].get(name)
        if comp is None:
            raise BundleError(f"{self.root}: the bundle has no '{name}' component (export it with `sentis-tts export {name}`)")
        return comp

    def has_graph(self, name: str) -> bool:
        return name in self.manifest["graphs"]

    def graph(self, name: str) -> GraphInfo:
        g = self.manifest["graphs"].get(name)
        if g is None:
            raise BundleError(f"{self.root}: the bundle has no graph '{name}'")
        return GraphInfo(name, g)

    def graphs_of(self, component: str) -> list[str]:
        return [n for n, g in self.manifest["graphs"].items() if g.get("component") == component]

    def load_array(self, rel: str) -> np.ndarray:
        p = self.root / rel
        if not _is_rel_path(rel) or not p.is_file():
            raise BundleError(f"{self.root}: missing {rel} ({REEXPORT})")
        try:
            return np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise BundleError(f"{self.root}: {rel} is not a readable .npy array ({' '.join(str(e).split())[:120]}) ({REEXPORT})") from None

    def session(self, name: str):
        """An onnxruntime InferenceSession for graph `name` (cached)."""
        if name not in self._sessions:
            import onnxruntime as ort

            g = self.graph(name)
            so = ort.SessionOptions()
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.log_severity_level = 3  # a broken graph is one BundleError, not a flood of ORT log lines
            try:
                self._sessions[name] = ort.InferenceSession(str(self.root / g.entry["file"]), so,
                                                            providers=["CPUExecutionProvider"])
            except Exception as e:  # noqa: BLE001
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise BundleError(f"{self.root}: cannot load {g.entry['file']} in onnxruntime: {first[:200]} ({REEXPORT})") from None
            sess = self._sessions[name]
            for kind, declared, actual in (("inputs", g.inputs, sess.get_inputs()), ("outputs", g.outputs, sess.get_outputs())):
                if sorted(t["name"] for t in declared) != sorted(a.name for a in actual):
                    del self._sessions[name]
                    raise BundleError(f"{self.root}: manifest.json lists {kind} {sorted(t['name'] for t in declared)} for graph '{name}' "
                                      f"but {g.entry['file']} has {sorted(a.name for a in actual)} ({REEXPORT})")
        return self._sessions[name]

    def run(self, name: str, feeds: dict[str, np.ndarray], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run graph `name`; feeds are checked against the manifest's I/O contract first."""
        g = self.graph(name)
        for spec in g.inputs:
            if spec["name"] not in feeds:
                raise BundleError(f"{name}: missing input {spec['name']!r}")
            arr = feeds[spec["name"]]
            want = _NP[spec["dtype"]]
            if arr.dtype != want:
                feeds[spec["name"]] = arr = arr.astype(want)
            shape = spec["shape"]
            if len(arr.shape) != len(shape) or any(isinstance(d, int) and d != a for d, a in zip(shape, arr.shape)):
                raise BundleError(f"{name}: input {spec['name']} has shape {list(arr.shape)}, the bundle expects {shape}")
        names = outputs or [o["name"] for o in g.outputs]
        res = self.session(name).run(names, {k: feeds[k] for k in (i["name"] for i in g.inputs)})
        return dict(zip(names, res))
