"""User-facing errors: one clear line naming the problem and, where possible, the fix."""


class SentisTTSError(Exception):
    """An error the CLI prints as one line (no traceback) and exits non-zero on."""


class ModelDirError(SentisTTSError):
    """The model directory is missing a file, or a file is malformed."""


class CheckpointError(SentisTTSError):
    """A checkpoint does not match the module it should load into."""


class ExportError(SentisTTSError):
    """Export of a component failed (tracing, passes, checker or parity)."""


def summarize_keys(keys, limit: int = 5) -> str:
    """'a, b, c, … (+12 more)' for a list of offending keys."""
    keys = list(keys)
    head = ", ".join(str(k) for k in keys[:limit])
    if len(keys) > limit:
        head += f", … (+{len(keys) - limit} more)"
    return head
