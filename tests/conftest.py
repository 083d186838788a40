"""Shared fixtures: model directories in the official layout with seeded random weights.

Built once per test session (they go through exactly the loading path a real download does).
"""
from __future__ import annotations

import os

import pytest
import torch

# Reproducible numbers: torch results change in the last bits with the thread count. One torch
# thread: onnxruntime sessions in the same process spin their own 2 threads, and OpenMP threads
# competing with them made the PyTorch references ~15x slower on the 2-core CI machine.
torch.set_num_threads(int(os.environ.get("SENTIS_TTS_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Path to a tiny CosyVoice2 model dir (seed 0, .pt checkpoints)."""
    from exporter.fixtures import build_model_dir

    return build_model_dir(tmp_path_factory.mktemp("models") / "tiny", size="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_md(tiny_model_dir):
    """The opened ModelDir of `tiny_model_dir`."""
    from exporter.modeldir import ModelDir

    return ModelDir.open(tiny_model_dir)
