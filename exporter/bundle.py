"""Atomic bundle writing: graphs + manifest.json go to a temporary sibling directory that is
renamed into place only when everything succeeded, so a failed export leaves nothing half-written.

The manifest schema is documented in docs/bundle.md; runtime_ref and the Unity package read only
the bundle.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def new_manifest(family: str = "cosyvoice2") -> dict[str, Any]:
    import onnx
    import torch

    from . import __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "family": family,
        "producer": {"name": "sentis-tts", "version": __version__, "torch": torch.__version__, "onnx": onnx.__version__},
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "source": {},
        "constants": {},
        "components": {},
        "graphs": {},
        "files": {},
        "voices": {},
    }


class BundleWriter:
    """Context manager writing a bundle folder atomically.

    mode='create': `out` must not exist (or overwrite=True replaces it);
    mode='update': an existing bundle is copied into the temp dir first, and the graphs of the
    components being exported replace their previous entries (e.g. `export llm` into a bundle
    that already has the flow).
    """

    def __init__(self, out: str | Path, *, mode: str = "create", overwrite: bool = False, family: str = "cosyvoice2"):
        self.out = Path(out)
        self.mode = mode
        self.overwrite = overwrite
        self.family = family
        self.tmp: Path | None = None
        self.manifest: dict[str, Any] = {}

    # -- context ----------------------------------------------------------------------------
    def __enter__(self) -> "BundleWriter":
        from .errors import SentisTTSError

        from runtime_ref.bundle import read_manifest
        from runtime_ref.errors import BundleError

        if self.out.exists() and not self.out.is_dir():
            raise SentisTTSError(f"--out {self.out} exists and is not a directory (choose a folder name)")
        exists = self.out.is_dir() and any(self.out.iterdir())
        if exists and self.mode == "create" and not self.overwrite:
            raise SentisTTSError(f"{self.out} already exists; pass --overwrite to replace it (or export into a new folder)")
        update = exists and self.mode == "update"
        if update:  # everything about the existing bundle is checked before anything is copied or created
            if not (self.out / MANIFEST).is_file():
                raise SentisTTSError(f"{self.out} is not empty and holds no {MANIFEST}, so it is not a bundle "
                                     "(export into a new or empty folder, or pass --overwrite to replace it)")
            try:
                existing = read_manifest(self.out)
            except BundleError as e:
                raise SentisTTSError(f"cannot update the bundle: {e} — or pass --overwrite to replace it") from None
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
        try:
            if update:
                shutil.copytree(self.out, self.tmp, dirs_exist_ok=True)
                self.manifest = existing
            else:
                self.manifest = new_manifest(self.family)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        try:
            self._write_manifest()
            self._swap_into_place()
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        return False

    # -- content ----------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        assert self.tmp is not None, "use BundleWriter as a context manager"
        return self.tmp

    def drop_component(self, component: str) -> None:
        """Forget previous graphs/files of `component` (update mode)."""
        for name, g in list(self.manifest["graphs"].items()):
            if g.get("component") == component:
                (self.path / g["file"]).unlink(missing_ok=True)
                del self.manifest["graphs"][name]
        for rel, f in list(self.manifest["files"].items()):
            if f.get("component") == component:
                (self.path / rel).unlink(missing_ok=True)
                del self.manifest["files"][rel]
        self.manifest["components"].pop(component, None)

    def add_graph(self, name: str, entry: dict[str, Any]) -> None:
        f = self.path / entry["file"]
        if not f.is_file():
            raise FileNotFoundError(f"graph file {f} was not written")
        entry = dict(entry)
        entry["sha256"] = sha256_file(f)
        entry["bytes"] = f.stat().st_size
        self.manifest["graphs"][name] = entry

    def add_file(self, rel: str, content: bytes | np.ndarray, *, component: str | None = None, description: str = "") -> Path:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, np.ndarray):
            buf = io.BytesIO()
            np.save(buf, content, allow_pickle=False)
            content = buf.getvalue()
        p.write_bytes(content)
        entry: dict[str, Any] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        if component:
            entry["component"] = component
        if description:
            entry["description"] = description
        self.manifest["files"][rel] = entry
        return p

    def _write_manifest(self) -> None:
        (self.path / MANIFEST).write_text(json.dumps(self.manifest, indent=2, sort_keys=False) + "\n")

    def _swap_into_place(self) -> None:
        assert self.tmp is not None
        old = None
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old-{self.tmp.name[-8:]}")
            self.out.rename(old)
        try:
            self.tmp.rename(self.out)
        except BaseException:
            if old is not None:
                old.rename(self.out)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.tmp = self.out
