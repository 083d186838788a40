"""Errors raised by runtime_ref (no torch, no exporter import)."""


class RuntimeRefError(Exception):
    """A one-line, user-facing error of the reference runtime."""


class BundleError(RuntimeRefError):
    """The bundle is missing a file, a hash does not match, or the manifest is malformed."""
