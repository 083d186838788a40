"""Sentis import rules (per version) and the static checker."""

from .check import FAILING, LEVELS, RULES, CheckReport, Finding, Rule, Violation, check_model, rule_counts, version_bucket
from .importer import ImportAnalysis, analyze_import
from .rules import (
    DEFAULT_VERSION,
    EXPORT_VERSION,
    EXPLICITLY_UNSUPPORTED,
    OPS_2_4,
    SUPPORTED_VERSIONS,
    op_counts_by_version,
    supported_ops,
)

__all__ = [
    "DEFAULT_VERSION",
    "EXPORT_VERSION",
    "FAILING",
    "Finding",
    "ImportAnalysis",
    "LEVELS",
    "Rule",
    "analyze_import",
    "rule_counts",
    "version_bucket",
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
