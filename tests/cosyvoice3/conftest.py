"""CosyVoice3 fixtures: a tiny official-layout model directory (seeded random weights), opened
through the family layer like a real download."""
import pytest


@pytest.fixture(scope="session")
def cv3_model_dir(tmp_path_factory):
    from exporter.cosyvoice3.fixture import build_model_dir

    return build_model_dir(tmp_path_factory.mktemp("cv3") / "tiny", size="tiny", seed=0)


@pytest.fixture(scope="session")
def cv3_md(cv3_model_dir):
    from exporter.families import open_model_dir

    return open_model_dir(cv3_model_dir)
