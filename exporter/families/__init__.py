"""Model families: everything that differs between CosyVoice2, ZipVoice, … lives in one module
per family under this package; the export driver, graph passes, checker, bundle writer and CLI
are shared and ask the family (like sherpa-onnx's offline-tts-<family>-model files).

A family module defines `FAMILY`, an instance of a `Family` subclass. The family of a model
directory is detected from its files (`Family.detect`); the bundle's manifest records it
(`manifest["family"]`), and runtime_ref (`runtime_ref/families.py`) and the Unity runtime pick
their pipeline from that field.

Adding a family = one module here, its line in `FAMILIES`, and its line in runtime_ref's table.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from ..errors import ModelDirError, SentisTTSError

# family name -> module defining FAMILY (detection order: first match wins)
FAMILIES: dict[str, str] = {
    "cosyvoice2": "exporter.families.cosyvoice2",
    "cosyvoice3": "exporter.families.cosyvoice3",
    "zipvoice": "exporter.families.zipvoice",
}


class Family:
    """What the shared machinery needs to know about one model family."""

    name: str = ""
    title: str = ""  # human name for messages
    marker: str = ""  # what the model directory holds, for "not a model directory" messages
    # component -> module providing `build(model_dir, options) -> ComponentExport`
    components: dict[str, str] = {}

    # -- model directories ----------------------------------------------------------------------
    def detect(self, root: Path) -> bool:
        """True if `root` (an existing directory) is a model directory of this family."""
        raise NotImplementedError

    def open(self, root: Path) -> Any:
        """Read the model directory safely; the object has `.root`, `.family` and `.config`."""
        raise NotImplementedError

    def checkpoint_files(self, md, component: str) -> list[Path]:
        """Checkpoint file(s) a component is exported from (their sha256 goes to the manifest)."""
        return []

    def constants(self, md) -> dict:
        """Family constants recorded in manifest["constants"] (sample rate, frame rates, …)."""
        raise NotImplementedError

    def describe(self, md) -> list[str]:
        """Lines `sentis-tts inspect` prints about the hyper-parameters."""
        raise NotImplementedError

    def config_dict(self, md) -> dict:
        return md.config.to_dict()

    def inventory(self, md) -> dict[str, str]:
        return md.inventory()

    # -- fixtures and demo ----------------------------------------------------------------------
    sizes: tuple[str, ...] = ("tiny", "full")

    def build_fixture(self, dst: Path, *, size: str = "tiny", seed: int = 0, fmt: str = "pt", overwrite: bool = False) -> Path:
        raise NotImplementedError

    def run_demo(self, out: Path, *, seed: int = 0, threads: int = 2, log: Callable[[str], None] = print) -> dict:
        raise NotImplementedError

    # -- components -----------------------------------------------------------------------------
    def available_components(self) -> list[str]:
        """Components whose export module exists in this installation (what `export all` exports)."""
        out = []
        for name, mod in self.components.items():
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as e:
                if e.name != mod:
                    raise
                continue
            out.append(name)
        return out

    def component_builder(self, name: str) -> Callable:
        if name not in self.components:
            raise SentisTTSError(f"unknown {self.name} component {name!r}; one of: {', '.join(self.components)}")
        try:
            mod = importlib.import_module(self.components[name])
        except ModuleNotFoundError as e:
            if e.name == self.components[name]:
                raise SentisTTSError(f"component {name!r} is not implemented in this version of sentis-tts") from None
            raise
        return mod.build


def family_names() -> list[str]:
    return list(FAMILIES)


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise SentisTTSError(f"unknown model family {name!r}; one of: {', '.join(FAMILIES)}")
    return importlib.import_module(FAMILIES[name]).FAMILY


def family_of(md) -> Family:
    """The family of an opened model directory."""
    return get_family(getattr(md, "family", "cosyvoice2"))


def detect_family(path: str | Path) -> Family:
    root = Path(path)
    if not root.exists():
        raise ModelDirError(f"model directory not found: {root}")
    if not root.is_dir():
        raise ModelDirError(f"not a directory: {root} (pass the model folder)")
    for name in FAMILIES:
        fam = get_family(name)
        if fam.detect(root):
            return fam
    known = "; ".join(f"{get_family(n).title}: {get_family(n).marker}" for n in FAMILIES)
    raise ModelDirError(f"{root}: not a model directory of a known family ({known})")


def open_model_dir(path: str | Path):
    """Detect the family of `path` and open it."""
    return detect_family(path).open(Path(path))
