"""ZipVoice fixtures: tiny model dirs in the published layout (seeded random weights) and a bundle
exported from one. The bundle uses small buckets and a 2-step solve (export option num_step) so
the suite stays fast; the default 16 / 8 steps are exercised by the demo and the official tests."""
from __future__ import annotations

import pytest

FRAMES = (192,)
TOKENS = (64,)
STEPS = 2


@pytest.fixture(scope="session")
def zv_dir(tmp_path_factory):
    from exporter.zipvoice.fixture import build_model_dir

    return build_model_dir(tmp_path_factory.mktemp("zipvoice") / "tiny", size="tiny", seed=0)


@pytest.fixture(scope="session")
def zv_distill_dir(tmp_path_factory):
    from exporter.zipvoice.fixture import build_model_dir

    return build_model_dir(tmp_path_factory.mktemp("zipvoice") / "distill", size="tiny", seed=1, variant="zipvoice_distill",
                           fmt="safetensors")


@pytest.fixture(scope="session")
def zv_md(zv_dir):
    from exporter.zipvoice.modeldir import ZipVoiceModelDir

    return ZipVoiceModelDir.open(zv_dir)


@pytest.fixture(scope="session")
def zv_bundle(zv_md, tmp_path_factory):
    """(bundle path, manifest) of `export all` on the tiny dir."""
    from exporter.export import export_components
    from exporter.families import get_family
    from exporter.spec import ExportOptions

    out = tmp_path_factory.mktemp("zipvoice_bundle") / "bundle"
    opts = ExportOptions(flow_lens=FRAMES, extra={"token_lens": TOKENS, "num_step": STEPS})
    m = export_components(zv_md, out, get_family("zipvoice").available_components(), opts, mode="create")
    return out, m


def short_prompt(seconds: float = 1.0, sr: int = 24000):
    from exporter.demo import synthetic_prompt

    return synthetic_prompt(seconds=seconds, sr=sr, seed=3)
