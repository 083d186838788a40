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
        except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, ValueError, AttributeError,
                TypeError, KeyError, IndexError, OSError, UnicodeDecodeError, MemoryError, OverflowError, RecursionError) as e:
            raise CheckpointError(
                f"{p}: cannot be loaded as plain tensors with torch.load(weights_only=True) — {_load_failure(e)} "
                "(re-download the file, or convert a trusted copy to .safetensors; never load an untrusted "
                "checkpoint with weights_only disabled)"
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
    if not sd:
        raise CheckpointError(f"{p}: holds no tensors (re-download the checkpoint)")
    # model weights are floating point; int64 is kept for counters/index buffers (num_batches_tracked, position ids)
    odd = [f"{k} ({str(v.dtype).replace('torch.', '')})" for k, v in sd.items() if not v.is_floating_point() and v.dtype != torch.int64]
    if odd:
        raise CheckpointError(f"{p}: {len(odd)} tensor(s) are not floating point: {summarize_keys(odd, 3)} "
                              "(model weights are float32/float16/bfloat16: this is not a model checkpoint, or it was converted wrongly)")
    nonfinite = [k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        raise CheckpointError(f"{p}: {len(nonfinite)} tensor(s) hold NaN/Inf values: {summarize_keys(nonfinite)} "
                              "(the checkpoint is corrupt or diverged in training; use an earlier or re-downloaded one)")
    for prefix in strip_prefixes:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _dtype_kind(t: torch.Tensor) -> str:
    return "bool" if t.dtype == torch.bool else ("float" if t.is_floating_point() else ("complex" if t.is_complex() else "int"))


def _load_failure(e: BaseException) -> str:
    """What torch.load said, without its advice to disable weights_only (unsafe for untrusted files)."""
    text = " ".join(str(e).split())
    if isinstance(e, pickle.UnpicklingError) or "weights only load failed" in text.lower() or "weights_only" in text:
        import re

        m = re.search(r"(Unsupported global: GLOBAL [\w.]+|Unsupported operand \d+|Unsupported class [\w.]+)", text)
        return "it holds pickled Python objects, not only tensors" + (f" ({m.group(1)})" if m else "")
    if isinstance(e, (zipfile.BadZipFile, EOFError)) or "zip" in text.lower() or "central directory" in text:
        return f"the file is truncated or not a checkpoint ({type(e).__name__})"
    return f"{type(e).__name__}: {text[:160]}"


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
    assign: bool = False,
) -> torch.nn.Module:
    """Strictly load `state_dict` into `module` (after our own key/shape check for a clear error).
    With `assign` the module takes the checkpoint's tensors themselves instead of a copy (no second
    copy of the weights in memory; for a module built uninitialised) where every dtype matches the
    module's; otherwise the values are copied (and cast) as usual."""
    msd = module.state_dict()
    expected = {k: tuple(v.shape) for k, v in msd.items()}
    check_state_dict(expected, state_dict, source=source, ignore_unexpected=ignore_unexpected)
    dtypes = [f"{k} {state_dict[k].dtype} (expected {msd[k].dtype})" for k in expected if _dtype_kind(msd[k]) != _dtype_kind(state_dict[k])]
    if dtypes:
        raise CheckpointError(f"{source}: {len(dtypes)} tensor(s) have the wrong kind of dtype: {summarize_keys(dtypes, 3)} "
                              "(floating-point weights are stored as integers or bools: the file is not this model's checkpoint)")
    filtered = {k: v for k, v in state_dict.items() if k in expected}
    assign = assign and all(filtered[k].dtype == msd[k].dtype for k in expected)
    module.load_state_dict(filtered, strict=True, assign=assign)
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
