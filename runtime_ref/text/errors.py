"""Errors of the text front-end (one line each, naming the problem and the fix)."""
from __future__ import annotations

from ..errors import RuntimeRefError


class TextFrontendError(RuntimeRefError):
    """A user-facing text front-end error: missing tokenizer file, unsplittable text, missing optional package."""
