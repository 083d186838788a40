"""The runtime side of the family layer: manifest["family"] -> the family's pipeline and voice
baker (numpy + onnxruntime only). The exporter side is `exporter/families/`.

Every family's pipeline has the same face:
  Pipeline.open(bundle_path, threads=…, **options)
  .sample_rate
  .synthesize(text, voice_name, seed=…, **request) -> object with .audio (float32 samples)
  .stream(text, voice_name, seed=…, **request) -> iterator of float32 chunks
and `bake_voice_from_wav(bundle, wav_path, text=…) -> dict of arrays` (stored by
`runtime_ref.prompt.add_voice_to_bundle`). `synthesize_options` names the request options
(beyond text, voice, seed) the family understands, so a CLI flag that does not apply is refused
in one line instead of being ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import RuntimeRefError


@dataclass(frozen=True)
class RuntimeFamily:
    name: str
    pipeline: Any  # class with .open(path, threads=, **options)
    bake_voice_from_wav: Callable[..., dict]
    synthesize_options: frozenset[str] = frozenset()
    pipeline_options: frozenset[str] = frozenset()
    streaming: bool = True
    voice_entry: Callable[[dict], dict] = lambda voice: {}  # extra manifest fields of a baked voice

    def open(self, bundle, **options):
        """The family's pipeline on an opened Bundle; options it does not take are refused."""
        unknown = sorted(k for k in options if k not in self.pipeline_options)
        if unknown:
            raise RuntimeRefError(f"{self.name} bundles take no {', '.join(unknown)} option")
        return self.pipeline(bundle, **options)


def _cosyvoice2() -> RuntimeFamily:
    from .pipeline import Pipeline
    from .prompt import bake_voice_from_wav

    return RuntimeFamily("cosyvoice2", Pipeline, bake_voice_from_wav,
                         synthesize_options=frozenset({"mode", "instruct", "bistream", "max_new_tokens"}),
                         pipeline_options=frozenset({"normalize", "japanese_reading"}))


def _zipvoice() -> RuntimeFamily:
    from .zipvoice.pipeline import ZipVoicePipeline
    from .zipvoice.voice import bake_voice_from_wav, voice_entry

    return RuntimeFamily("zipvoice", ZipVoicePipeline, bake_voice_from_wav,
                         synthesize_options=frozenset({"speed", "kana"}), pipeline_options=frozenset(), streaming=False,
                         voice_entry=voice_entry)


def _cosyvoice3() -> RuntimeFamily:
    from .cosyvoice3 import CosyVoice3Pipeline, bake_voice_from_wav

    return RuntimeFamily("cosyvoice3", CosyVoice3Pipeline, bake_voice_from_wav,
                         synthesize_options=frozenset({"mode", "instruct", "max_new_tokens"}),
                         pipeline_options=frozenset({"normalize", "japanese_reading"}))


# manifest["family"] -> loader of its runtime (imported on use)
FAMILIES: dict[str, Callable[[], RuntimeFamily]] = {
    "cosyvoice2": _cosyvoice2,
    "cosyvoice3": _cosyvoice3,
    "zipvoice": _zipvoice,
}


def runtime_family(manifest: dict) -> RuntimeFamily:
    name = manifest.get("family", "cosyvoice2")
    if name not in FAMILIES:
        raise RuntimeRefError(f"bundle family {name!r} is not supported by this runtime (known: {', '.join(FAMILIES)})")
    return FAMILIES[name]()


def open_pipeline(path: str | Path, *, threads: int = 2, **options):
    """Open a bundle and its family's pipeline. Options the family does not take are refused."""
    from .bundle import Bundle

    bundle = Bundle.open(path, threads=threads)
    return runtime_family(bundle.manifest).open(bundle, **options)


def check_request_options(family: RuntimeFamily, options: dict) -> None:
    """Refuse request options (given, i.e. not None/False) that the family does not understand."""
    bad = sorted(k for k, v in options.items() if v not in (None, False) and k not in family.synthesize_options)
    if bad:
        raise RuntimeRefError(f"{family.name} bundles do not support {', '.join('--' + b.replace('_', '-') for b in bad)}")
