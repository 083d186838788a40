"""Loading checkpoints safely: `torch.load(weights_only=True)` or safetensors, strict key checks.

Every mismatch (missing keys, unexpected keys, wrong shapes) is reported in one error that lists
the offending keys (first few + count), never as a bare PyTorch traceback.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Iterable, Mapping

import torch

from .errors import CheckpointError, summarize_keys


def load_state_dict(path: str | Path, *, strip_prefixes: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """Read a state_dict from `.pt`/`.pth`/`.bin` (torch zip or legacy pickle, weights only) or
    `.safetensors`. Leading `strip_prefixes` (e.g. 'generator.' in official hift checkpoints,
    'module.' from DDP) are removed when *every* key carries one."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    if p.stat().st_size == 0:
        raise CheckpointError(f"checkpoint is empty (0 bytes): {p}")
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            sd = load_file(str(p))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{p}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
    else:
        try:
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, ValueError, AttributeError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(
                f"{p}: cannot be loaded with torch.load(weights_only=True) — corrupt, or it holds "
                f"pickled Python objects rather than plain tensors ({msg[:200]})"
            ) from None
        for wrapper in ("state_dict", "model"):  # Lightning-style / icefall-style (ZipVoice model.pt) wrappers
            if isinstance(obj, Mapping) and wrapper in obj and isinstance(obj[wrapper], Mapping):
                obj = obj[wrapper]
                break
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{p}: expected a state_dict (mapping of name -> tensor), got {type(obj).__name__}")
        sd = {}
        bad = []
        for k, v in obj.items():
            if isinstance(v, torch.Tensor):
                sd[str(k)] = v
            else:
                bad.append(str(k))
        if bad:
            raise CheckpointError(f"{p}: entries that are not tensors: {summarize_keys(bad)}")
    for prefix in strip_prefixes:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def check_state_dict(
    expected: Mapping[str, tuple[int, ...] | torch.Size],
    actual: Mapping[str, torch.Tensor],
    *,
    source: str,
    ignore_unexpected: Iterable[str] = (),
) -> None:
    """Raise one CheckpointError listing missing keys, unexpected keys and shape mismatches.
    `ignore_unexpected`: keys (or prefixes ending in '.') that may be present and are dropped."""
    ign = tuple(ignore_unexpected)

    def ignored(k: str) -> bool:
        return any(k == i or (i.endswith(".") and k.startswith(i)) for i in ign)

    missing = [k for k in expected if k not in actual]
    unexpected = [k for k in actual if k not in expected and not ignored(k)]
    shapes = [
        f"{k} {tuple(actual[k].shape)} != {tuple(expected[k])}"
        for k in expected
        if k in actual and tuple(actual[k].shape) != tuple(expected[k])
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {summarize_keys(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {summarize_keys(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es): {summarize_keys(shapes, 3)}")
    if problems:
        raise CheckpointError(
            f"{source} does not match the model built from the config: " + "; ".join(problems)
            + " — is the checkpoint from the same model (and the yaml/config.json from the same directory)?"
        )


def load_into(
    module: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    ignore_unexpected: Iterable[str] = (),
) -> torch.nn.Module:
    """Strictly load `state_dict` into `module` (after our own key/shape check for a clear error)."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    check_state_dict(expected, state_dict, source=source, ignore_unexpected=ignore_unexpected)
    filtered = {k: v for k, v in state_dict.items() if k in expected}
    module.load_state_dict(filtered, strict=True)
    return module


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Write a checkpoint in the format its suffix says (.safetensors or torch zip)."""
    p = Path(path)
    sd = {k: v.detach().contiguous() for k, v in state_dict.items()}
    if p.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(p))
    else:
        torch.save(sd, str(p))
