"""Sentis import rules (per version) and the static checker."""

from .check import RULES, CheckReport, Violation, check_model
from .rules import (
    DEFAULT_VERSION,
    EXPLICITLY_UNSUPPORTED,
    OPS_2_4,
    SUPPORTED_VERSIONS,
    op_counts_by_version,
    supported_ops,
)

__all__ = [
    "DEFAULT_VERSION",
    "EXPLICITLY_UNSUPPORTED",
    "OPS_2_4",
    "RULES",
    "SUPPORTED_VERSIONS",
    "CheckReport",
    "Violation",
    "check_model",
    "op_counts_by_version",
    "supported_ops",
]
