"""LLM fixtures: the tiny model loaded through the official-layout loader, and fp32 / fp16 bundles
exported once per session through the real export driver (passes + checker + parity)."""
from __future__ import annotations

import pytest
from _llm_reference import CAPACITY, CHUNK


@pytest.fixture(scope="session")
def llm_model(tiny_md):
    from exporter.llm.export import load_model

    return load_model(tiny_md)


def _export(tiny_md, out, fp16):
    from exporter.export import export_components
    from exporter.spec import ExportOptions

    export_components(tiny_md, out, ["llm"], ExportOptions(fp16=fp16, max_cache_len=CAPACITY, prefill_chunk=CHUNK))
    return out


@pytest.fixture(scope="session")
def llm_bundle_path(tiny_md, tmp_path_factory):
    return _export(tiny_md, tmp_path_factory.mktemp("llm") / "b32", fp16=False)


@pytest.fixture(scope="session")
def llm_bundle_fp16_path(tiny_md, tmp_path_factory):
    return _export(tiny_md, tmp_path_factory.mktemp("llm") / "b16", fp16=True)


@pytest.fixture(scope="session")
def llm_rt(llm_bundle_path):
    from runtime_ref.llm import LLM

    return LLM.open(llm_bundle_path)
