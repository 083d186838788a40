"""Build the official ZipVoice ONNX exports from tiny random-weight models.

Uses the official k2-fsa/ZipVoice code in a scratch copy (default /tmp/zipvoice_official, or
$ZIPVOICE_OFFICIAL): its model classes, its `convert_scaled_to_non_scaled(is_onnx=True)` and the
export functions and wrappers of `zipvoice/bin/onnx_export.py` (legacy TorchScript exporter,
opset 13, `torch.jit.trace` first, exactly as the published files are made), then onnxruntime's
`quantize_dynamic(op_types_to_quantize=["MatMul"], QInt8)` as that script does.

`onnx_export.py` imports modules the export never calls (the tokenizer: jieba, pypinyin, lhotse,
piper_phonemize; the checkpoint loader: lhotse; `zipvoice.utils.common`: tensorboard). Those are
given placeholder modules in sys.modules while the official code imports, and removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
from pathlib import Path

OFFICIAL = Path(os.environ.get("ZIPVOICE_OFFICIAL", "/tmp/zipvoice_official"))
AVAILABLE = (OFFICIAL / "zipvoice/bin/onnx_export.py").is_file()
MISSING_REASON = f"official ZipVoice copy not at {OFFICIAL} (git archive of the k2-fsa/ZipVoice mirror)"

# tiny, but with every block kind of the official architecture (downsampling stack, conv modules)
TINY_CONFIG = dict(
    fm_decoder_downsampling_factor=[1, 2, 1],
    fm_decoder_num_layers=[1, 1, 1],
    fm_decoder_cnn_module_kernel=[7, 5, 7],
    fm_decoder_feedforward_dim=48,
    fm_decoder_num_heads=2,
    fm_decoder_dim=32,
    text_encoder_num_layers=1,
    text_encoder_feedforward_dim=48,
    text_encoder_cnn_module_kernel=5,
    text_encoder_num_heads=2,
    text_encoder_dim=32,
    time_embed_dim=32,
    text_embed_dim=32,
    query_head_dim=8,
    value_head_dim=4,
    pos_head_dim=4,
    pos_dim=16,
    feat_dim=16,
    vocab_size=26,
    pad_id=0,
)

_PLACEHOLDERS = {
    "torchaudio": {},
    "torch.utils.tensorboard": {"SummaryWriter": object},
    "zipvoice.tokenizer.tokenizer": {"SimpleTokenizer": object},
    "zipvoice.utils.checkpoint": {"load_checkpoint": None},
}


@contextlib.contextmanager
def _official_imports():
    placed = []
    for name, attrs in _PLACEHOLDERS.items():
        if name in sys.modules:
            continue
        try:  # a real module wins where it is installed
            if name != "zipvoice.tokenizer.tokenizer" and name != "zipvoice.utils.checkpoint":
                __import__(name)
                continue
        except Exception:  # noqa: BLE001
            pass
        mod = types.ModuleType(name)
        for k, v in attrs.items():
            setattr(mod, k, v)
        sys.modules[name] = mod
        placed.append(name)
    sys.path.insert(0, str(OFFICIAL))
    try:
        yield
    finally:
        sys.path.remove(str(OFFICIAL))
        for name in placed:
            sys.modules.pop(name, None)


@contextlib.contextmanager
def _legacy_exporter():
    """The published files come from the TorchScript exporter; torch >= 2.9 defaults to dynamo."""
    import torch

    real = torch.onnx.export

    def legacy(*args, **kwargs):
        kwargs.setdefault("dynamo", False)
        return real(*args, **kwargs)

    torch.onnx.export = legacy
    try:
        yield
    finally:
        torch.onnx.export = real


@contextlib.contextmanager
def _quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def export_official(out_dir: Path, *, distill: bool = False, seed: int = 0, quantize: bool = True) -> dict[str, Path]:
    """Export text_encoder / fm_decoder (+ _int8) with the official code; returns name -> path."""
    import torch

    with _official_imports():
        import zipvoice.bin.onnx_export as ox
        from zipvoice.models.zipvoice import ZipVoice
        from zipvoice.models.zipvoice_distill import ZipVoiceDistill
        from zipvoice.utils.scaling_converter import convert_scaled_to_non_scaled

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = (ZipVoiceDistill if distill else ZipVoice)(**TINY_CONFIG)
    with torch.no_grad():  # random weights away from the init (some official inits are zeros)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    convert_scaled_to_non_scaled(model, inplace=True, is_onnx=True)
    files = {"text_encoder": out_dir / "text_encoder.onnx", "fm_decoder": out_dir / "fm_decoder.onnx"}
    with torch.no_grad(), _legacy_exporter(), _quiet():
        ox.export_text_encoder(ox.OnnxTextModel(model=model), filename=files["text_encoder"], opset_version=13)
        ox.export_fm_decoder(ox.OnnxFlowMatchingModel(model=model, distill=distill), filename=files["fm_decoder"],
                             opset_version=13)
    if quantize:
        for name in ("text_encoder", "fm_decoder"):
            dst = out_dir / f"{name}_int8.onnx"
            ox.quantize_dynamic(model_input=files[name], model_output=dst, op_types_to_quantize=["MatMul"],
                                weight_type=ox.QuantType.QInt8)
            files[f"{name}_int8"] = dst
    return files


if __name__ == "__main__":
    dst = Path(sys.argv[1])
    for d in (False, True):
        for k, v in export_official(dst / ("distill" if d else "zipvoice"), distill=d).items():
            print(k, v, v.stat().st_size)
