"""Errors raised by graph passes and the Sentis checker."""

from __future__ import annotations


class GraphPassError(Exception):
    """A pass cannot rewrite the graph safely.

    The message is one line and names the node, its op type and, where it matters, where the
    offending value comes from (the producing node/op or a graph input).
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ModelLoadError(GraphPassError):
    """An ONNX file is missing, unreadable or not a valid ModelProto."""
