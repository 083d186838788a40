"""CosyVoice3 flow export: the CosyVoice2 flow export (exporter/flow/export.py: encoder + unrolled
CFG/Euler solve graphs per mel bucket, official noise file, same manifest and runtime contract) on
`DiTFlow`. The encoder graph takes no `streaming` input (the CosyVoice3 encoder has no attention:
streaming only changes the DiT's chunk masks); runtimes feed the inputs a graph declares."""
from __future__ import annotations

from torch import nn

from ..flow import export as flow_export
from ..spec import ComponentExport, ExportOptions
from .flow import DiTFlow


class EncoderGraph(nn.Module):
    def __init__(self, flow: DiTFlow):
        super().__init__()
        self.flow = flow

    def forward(self, tokens, token_mask, conv_mask, xvec):
        return self.flow.encode(tokens, token_mask, conv_mask, None), self.flow.speaker(xvec)


def build(model_dir, options: ExportOptions) -> ComponentExport:
    ce = flow_export.build(model_dir, options, flow_class=DiTFlow)
    for spec in ce.graphs:
        if spec.name.startswith("flow_encoder_"):
            spec.module = EncoderGraph(spec.module.flow)
            spec.inputs = [t for t in spec.inputs if t.name != "streaming"]
            spec.description = "token embedding + PreLookaheadLayer + repeat x token_mel_ratio; speaker affine"
    ce.manifest["estimator"] = "dit"
    return ce
