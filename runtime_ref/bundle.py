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

    def __init__(self, root: Path, manifest: dict, *, threads: int = 2):
        self.root = root
        self.manifest = manifest
        self.threads = threads
        self._sessions: dict[str, Any] = {}

    @classmethod
    def open(cls, path: str | Path, *, verify: bool = True, threads: int = 2) -> "Bundle":
        root = Path(path)
        mpath = root / "manifest.json"
        if not mpath.is_file():
            raise BundleError(f"{root}: no manifest.json — not a sentis-tts bundle (create one with `sentis-tts export`)")
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise BundleError(f"{mpath}: not valid JSON (line {e.lineno}): {e.msg}") from None
        ver = manifest.get("schema_version")
        if ver != SUPPORTED_SCHEMA:
            raise BundleError(f"{mpath}: schema_version {ver!r} is not supported (this runtime reads {SUPPORTED_SCHEMA})")
        for key in ("graphs", "constants", "components"):
            if not isinstance(manifest.get(key), dict):
                raise BundleError(f"{mpath}: missing or malformed '{key}'")
        b = cls(root, manifest, threads=threads)
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
                raise BundleError(f"{self.root}: {rel} is listed in manifest.json but missing")
            if digest and _sha256(p) != digest:
                raise BundleError(f"{self.root}: {rel} does not match its sha256 in manifest.json (modified or corrupt)")

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
        if not p.is_file():
            raise BundleError(f"{self.root}: missing {rel}")
        return np.load(p, allow_pickle=False)

    def session(self, name: str):
        """An onnxruntime InferenceSession for graph `name` (cached)."""
        if name not in self._sessions:
            import onnxruntime as ort

            g = self.graph(name)
            so = ort.SessionOptions()
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            try:
                self._sessions[name] = ort.InferenceSession(str(self.root / g.entry["file"]), so,
                                                            providers=["CPUExecutionProvider"])
            except Exception as e:  # noqa: BLE001
                raise BundleError(f"{self.root}: cannot load {g.entry['file']} in onnxruntime: {str(e).splitlines()[0]}") from None
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
