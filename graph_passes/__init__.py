"""ONNX graph passes that make models importable by Unity Sentis, and the Sentis checker.

Each pass is a pure function ``ModelProto -> ModelProto`` (the input is never mutated). Passes are
registered by name in :data:`PASSES`; :func:`run_pipeline` runs a list of them in order.
This package knows nothing about CosyVoice.
"""

from .casts import remove_same_dtype_casts
from .cleanup import constant_value_attrs, remove_dead_nodes, remove_empty_concat_inputs, remove_identity
from .control_flow import fold_if, unroll_loop
from .dtypes import check_int64, fix_cast_to_bool
from .errors import GraphPassError, ModelLoadError
from .folding import fold_constants, simplify
from .opset import convert_opset, normalize_default_domain
from .payloads import double_to_float, tensor_payloads
from .pipeline import DEFAULT_PASSES, PASSES, fold_to_fixed_point, run_pipeline
from .precision import weights_to_fp16
from .shapes import fix_input_shapes, infer_shapes

__all__ = [
    "DEFAULT_PASSES",
    "GraphPassError",
    "ModelLoadError",
    "PASSES",
    "check_int64",
    "constant_value_attrs",
    "convert_opset",
    "double_to_float",
    "fix_cast_to_bool",
    "fix_input_shapes",
    "fold_constants",
    "fold_if",
    "fold_to_fixed_point",
    "infer_shapes",
    "normalize_default_domain",
    "remove_dead_nodes",
    "remove_empty_concat_inputs",
    "remove_identity",
    "remove_same_dtype_casts",
    "run_pipeline",
    "simplify",
    "tensor_payloads",
    "unroll_loop",
    "weights_to_fp16",
]
