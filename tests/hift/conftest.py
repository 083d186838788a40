import numpy as np
import pytest
import torch

from exporter.hift.model import build_hift

FRAMES = 64  # tiny graph size used by the hift tests


@pytest.fixture(scope="session")
def hift_bundle(tiny_md, tmp_path_factory):
    """The tiny model's `hift` graph (T=64) exported into a bundle once per session."""
    from exporter.export import export_components
    from exporter.spec import ExportOptions
    from runtime_ref.bundle import Bundle

    out = tmp_path_factory.mktemp("hift") / "bundle"
    export_components(tiny_md, out, ["hift"], ExportOptions(hift_frames=FRAMES))
    return Bundle.open(out)


@pytest.fixture(scope="session")
def hift_model(tiny_md):
    return build_hift(tiny_md.config.hift, tiny_md.load_checkpoint("hift"))


def torch_runner(model):
    """runtime_ref-style run function backed by our PyTorch module."""
    names = ("mel", "noise", "phase_in", "phase_ref", "cache_source", "cache_weight", "n_frames")

    def run(feeds):
        with torch.no_grad():
            w, s, p = model(*[torch.from_numpy(feeds[k]) for k in names])
        return {"waveform": w.numpy(), "source": s.numpy(), "phase": p.numpy()}

    return run


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(np.sum((ref - got).astype(np.float64) ** 2), 1e-30)))
