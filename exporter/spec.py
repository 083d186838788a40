"""Export specs: each graph declares, in one place, its inputs, outputs, fixed and symbolic dims,
dummy/parity inputs and tolerance (like Optimum's per-model ONNX configs). The CLI, the export
driver and the tests all read these.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

DTYPES = {"float32": np.float32, "int32": np.int32, "int64": np.int64, "float16": np.float16}

# How an output is compared with the PyTorch module (GraphSpec.compare; the tolerance bounds the figure):
COMPARE_MAX_ABS = "max_abs"  # max |onnx - torch|
COMPARE_CIRCULAR = "circular"  # values in cycles that wrap at 1: max over elements of the circular
#                                distance min(d, 1 - d), d = |onnx - torch| mod 1 (0.9999 vs 0.0001: 2e-4)
COMPARE_RELATIVE_RMS = "relative_rms"  # max |onnx - torch| / RMS(torch) per parity case (scale-free)
COMPARE_KINDS = (COMPARE_MAX_ABS, COMPARE_CIRCULAR, COMPARE_RELATIVE_RMS)


def compare_error(kind: str, ref: np.ndarray, got: np.ndarray) -> float:
    """The figure `kind` bounds, for one parity case (float64 arithmetic)."""
    if not ref.size:
        return 0.0
    r, g = ref.astype(np.float64), got.astype(np.float64)
    if kind == COMPARE_MAX_ABS:
        return float(np.max(np.abs(r - g)))
    if kind == COMPARE_CIRCULAR:
        d = np.mod(np.abs(r - g), 1.0)
        return float(np.max(np.minimum(d, 1.0 - d)))
    if kind == COMPARE_RELATIVE_RMS:
        rms = float(np.sqrt(np.mean(r * r)))
        err = float(np.max(np.abs(r - g)))
        return err / rms if rms > 0 else (0.0 if err == 0 else float("inf"))
    raise ValueError(f"unknown comparison kind {kind!r}; one of {', '.join(COMPARE_KINDS)}")


@dataclass
class TensorSpec:
    name: str
    shape: tuple[int | str, ...]  # a str is a symbolic dim, declared in GraphSpec.symbolic_dims
    dtype: str = "float32"
    description: str = ""

    def to_dict(self) -> dict:
        d = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.description:
            d["description"] = self.description
        return d


@dataclass
class ExportOptions:
    """What the user asked for on the command line (components read what concerns them)."""

    fp16: bool = False  # float16 weights (graph I/O stays float32)
    opset: int = 17
    sentis_version: str = "2.1"
    parity: bool = True
    seed: int = 0
    threads: int = 2
    flow_lens: tuple[int, ...] = ()  # empty = component default
    max_cache_len: int | None = None
    prefill_chunk: int | None = None
    hift_frames: int | tuple[int, ...] | None = None  # CosyVoice3: one graph per size (buckets)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class GraphSpec:
    name: str  # graph name; file is f"{name}.onnx"
    component: str
    module: torch.nn.Module  # export wrapper: forward(*inputs) in the order of `inputs`
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    # parity/dummy inputs: case index -> {input name: array}; case 0 is also the trace input
    make_inputs: Callable[[int], dict[str, np.ndarray]]
    atol: float  # max-abs tolerance vs PyTorch (per output unless `atol_per_output` has it)
    parity_cases: int = 3
    atol_per_output: dict[str, float] = field(default_factory=dict)
    fixed_dims: dict[str, int] = field(default_factory=dict)  # named fixed lengths for the manifest
    symbolic_dims: dict[str, str] = field(default_factory=dict)  # dim name -> why it must stay dynamic
    passes: list[str] | None = None  # None = graph_passes.DEFAULT_PASSES
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # outputs compared with a custom metric instead of max-abs (e.g. integer token ids: exact)
    exact_outputs: tuple[str, ...] = ()
    # how a float output is compared (default COMPARE_MAX_ABS); the tolerance (atol /
    # atol_per_output) bounds that figure: see COMPARE_KINDS
    compare: dict[str, str] = field(default_factory=dict)
    fp16_exempt: bool = False  # keep fp32 weights even in an fp16 bundle (precision-sensitive)
    # builds the raw graph instead of tracing `module` (e.g. the flow solver: one traced estimator
    # step unrolled in ONNX); gets (opset, a scratch file path), returns a ModelProto with these
    # inputs/outputs. `module` stays the PyTorch reference the parity is measured against.
    build_onnx: Callable[[int, Any], Any] | None = None
    fp16_keep_prefixes: tuple[str, ...] = ()  # in an fp16 bundle, weights whose names start so stay fp32
    # the part of an output a parity case compares, where a host uses only part of it (e.g. the
    # frames a vocoder chunk emits, not the context it re-reads): case -> {output: index tuple};
    # outputs not named are compared whole. `compare_region_doc` says which part, for the manifest.
    compare_region: Callable[[int], dict[str, tuple]] | None = None
    compare_region_doc: str = ""
    # outputs whose float32 rounding is amplified by the model's own math (e.g. a sine phase that
    # integrates the f0 over every frame), so that two float32 implementations differ by more than
    # any fixed bound on some CPUs: compared with the float64 math instead (`float64_reference`
    # builds the same module in float64): ONNX vs float64 must stay within max(tolerance, factor x
    # PyTorch float32's own distance from float64). Output name -> factor.
    float64_reference: Callable[[], torch.nn.Module] | None = None
    float32_limited: dict[str, float] = field(default_factory=dict)

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"

    def torch_inputs(self, case: int = 0) -> tuple[torch.Tensor, ...]:
        arrays = self.make_inputs(case)
        missing = [t.name for t in self.inputs if t.name not in arrays]
        if missing:
            raise KeyError(f"{self.name}: make_inputs({case}) lacks {missing}")
        return tuple(torch.from_numpy(np.ascontiguousarray(arrays[t.name])) for t in self.inputs)

    def static_shapes(self) -> dict[str, list[int]]:
        return {t.name: list(t.shape) for t in self.inputs if all(isinstance(d, int) for d in t.shape)}


@dataclass
class ComponentExport:
    """What a component contributes to a bundle."""

    component: str
    graphs: list[GraphSpec]
    manifest: dict[str, Any] = field(default_factory=dict)  # goes to manifest["components"][component]
    files: dict[str, bytes | np.ndarray] = field(default_factory=dict)  # extra files (relative path -> content)
