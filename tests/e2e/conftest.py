"""One run of the README's first command (`sentis-tts demo`, as `run_demo`) per test session; the
end-to-end tests reuse its model dir, bundle and voice."""
import pytest


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    from exporter.demo import run_demo

    out = tmp_path_factory.mktemp("demo") / "demo_out"
    logs: list[str] = []
    result = run_demo(out, seed=0, threads=2, log=logs.append, max_new_tokens=40)
    return out, result, logs


@pytest.fixture(scope="session")
def e2e(demo_run):
    """(ORT pipeline, PyTorch reference pipeline) on the demo bundle."""
    from exporter.modeldir import ModelDir
    from exporter.reference_pipeline import TorchPipeline
    from runtime_ref.bundle import Bundle
    from runtime_ref.pipeline import Pipeline

    out, _, _ = demo_run
    bundle = Bundle.open(out / "bundle")
    return Pipeline(bundle), TorchPipeline(bundle, ModelDir.open(out / "model"))
