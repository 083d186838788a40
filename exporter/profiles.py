"""Export profiles (configs/*.yaml): named sets of export options — fixed lengths, cache
capacity, precision, Sentis target — so a team can pin them in a file instead of on the
command line. Command-line flags given explicitly override the profile."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path


from .errors import SentisTTSError
from .spec import ExportOptions

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def resolve_profile_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.is_file():
        return p
    cand = CONFIG_DIR / f"{name_or_path}.yaml"
    if cand.is_file():
        return cand
    known = sorted(q.stem for q in CONFIG_DIR.glob("*.yaml")) if CONFIG_DIR.is_dir() else []
    raise SentisTTSError(f"export profile {name_or_path!r} not found (a file path, or one of: {', '.join(known) or 'none'})")


def load_profile(name_or_path: str) -> dict:
    """Read a profile into a dict of ExportOptions field values (validated names and types)."""
    p = resolve_profile_path(name_or_path)
    from .hyperyaml import read_utf8, safe_plain_yaml

    raw = safe_plain_yaml(read_utf8(p), str(p)) or {}
    if not isinstance(raw, dict):
        raise SentisTTSError(f"{p}: expected a mapping of export options")
    opts = raw.get("export", raw)
    names = {f.name for f in fields(ExportOptions)}
    unknown = sorted(set(opts) - names)
    if unknown:
        raise SentisTTSError(f"{p}: unknown export option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    out = dict(opts)
    if "flow_lens" in out:
        out["flow_lens"] = tuple(int(x) for x in out["flow_lens"])
    return out


def apply_profile(options: ExportOptions, profile: dict, explicit: set[str]) -> ExportOptions:
    """Profile values fill every option the user did not give explicitly on the command line."""
    for k, v in profile.items():
        if k not in explicit:
            setattr(options, k, v)
    return options
