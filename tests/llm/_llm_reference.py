"""Shared settings and torch-side references for the LLM tests (the references live in the
package, exporter/llm/reference.py, because the end-to-end PyTorch pipeline uses them too)."""
from exporter.llm.reference import _draw, torch_generate, torch_nucleus, torch_ras  # noqa: F401

# reachable in a few steps; small chunk so that prompts cross several chunk boundaries
CAPACITY = 160
CHUNK = 16
