"""What each Sentis version imports from ONNX (facts from shared/reference/sentis.md).

Op sets are the op-type strings the ONNX converter handles (sentis.md §2.1). 2.4.0 handles 147
op types; earlier versions lack the ops listed in `_ADDED`. 2.5 handles the same set as 2.4.
"""

from __future__ import annotations

from onnx import TensorProto

SUPPORTED_VERSIONS = ("1.4", "1.6", "2.1", "2.2", "2.3", "2.4", "2.5")
DEFAULT_VERSION = "2.4"  # newest: the default of `check`; `export` checks the oldest (2.1)
EXPORT_VERSION = "2.1"

# sentis.md §2.1, 2.4.0 converter (147 op types; "Dropout" → Identity, "Scatter" →
# ScatterElements, "Upsample" → Resize, "ImageScaler"/"Swish" are non-standard names it accepts).
OPS_2_4 = frozenset(
    """
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool
    BatchNormalization Bernoulli BitwiseAnd BitwiseNot BitwiseOr BitwiseXor BlackmanWindow Cast
    CastLike Ceil Celu Clip Compress Concat Constant ConstantOfShape Conv ConvTranspose Cos
    Cosh CumSum DFT DepthToSpace Div Dropout Einsum Elu Equal Erf Exp Expand
    Flatten Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalMaxPool
    Greater GreaterOrEqual GridSample HammingWindow HannWindow HardSigmoid HardSwish Hardmax
    Identity ImageScaler InstanceNormalization IsInf IsNaN LRN LSTM LayerNormalization
    LeakyRelu Less LessOrEqual Log LogSoftmax MatMul Max MaxPool Mean MelWeightMatrix Min
    Mish Mod Mul Multinomial Neg NonMaxSuppression NonZero Not OneHot Or PRelu Pad Pow
    RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1
    ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
    ReduceSumSquare Relu Reshape Resize RoiAlign Round STFT Scatter
    ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax
    Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Swish Tan Tanh
    ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
    """.split()
)

# Version (major, minor) in which an op type first appears in the converter (sentis.md §2.1
# "Differences by version"). Everything else in OPS_2_4 is present in every version we support.
_ADDED: dict[str, tuple[int, int]] = {
    "GridSample": (1, 6),
    "Mish": (2, 2),
    **{op: (2, 4) for op in ("BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor")},
    **{op: (2, 4) for op in ("BlackmanWindow", "HammingWindow", "HannWindow")},
    "DFT": (2, 4),
    "STFT": (2, 4),
    "MelWeightMatrix": (2, 4),
}

# sentis.md §2.2: the docs' explicit "unsupported" list (2.4/2.5; the 1.x–2.1 list is a subset).
EXPLICITLY_UNSUPPORTED = frozenset(
    """
    AffineGrid BitShift CenterCropPad Col2Im ConcatFromSequence ConvInteger DeformConv
    DequantizeLinear Det DynamicQuantizeLinear EyeLike GlobalLpPool GroupNormalization GRU If
    ImageDecoder Loop LpNormalization LpPool MatMulInteger MaxRoiPool MaxUnpool
    MeanVarianceNormalization NegativeLogLikelihoodLoss Optional OptionalGetElement
    OptionalHasElement QLinearConv QLinearMatMul QuantizeLinear RegexFullMatch ReverseSequence
    RNN Scan SequenceAt SequenceConstruct SequenceEmpty SequenceErase SequenceInsert
    SequenceLength SequenceMap SoftmaxCrossEntropyLoss SplitToSequence StringConcat
    StringNormalizer StringSplit TfIdfVectorizer Unique
    """.split()
)

# Ops that are in ONNX but not in any converter we read (sentis.md §2.2 "not exhaustive").
HINTS = {
    "GroupNormalization": "export it as Reshape+InstanceNormalization+Reshape+Mul+Add (opset <= 17 TorchScript export)",
    "If": "fold it with the fold_if pass (constant condition) or export one graph per branch",
    "Loop": "unroll it with the unroll_loop pass (constant trip count) or run the loop in C#",
    "Scan": "unroll it in the exporter or run the loop in C#",
    "Attention": "export plain MatMul/Softmax attention (opset <= 17)",
    "RotaryEmbedding": "export RoPE as Slice/Neg/Concat/Mul/Add",
    "RMSNormalization": "export the decomposed form x*(1/sqrt(mean(x^2)+eps))*scale (Sentis fuses it)",
    "STFT": "STFT/DFT need Sentis >= 2.4; for older versions use Conv1d with a fixed DFT basis",
    "DFT": "STFT/DFT need Sentis >= 2.4; for older versions use Conv1d with a fixed DFT basis",
    "Unique": "compute it outside the model",
}

CONTROL_FLOW_OPS = frozenset({"If", "Loop", "Scan"})
DATA_DEPENDENT_SHAPE_OPS = frozenset({"NonZero", "Compress"})

# sentis.md §3 / §10.4
IO_DTYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL})
INITIALIZER_DTYPES = frozenset(
    {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL, TensorProto.INT8, TensorProto.UINT8}
)
MAX_RANK = 8
MAX_FILE_SIZE = 2**31  # protobuf limit; Sentis reads inline weights only reliably below it (§5)

# sentis.md §2.3 attribute restrictions
RESIZE_MODES = frozenset({"nearest", "linear"})
RESIZE_COORD_MODES = frozenset({"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"})
RESIZE_NEAREST_MODES = frozenset({"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"})
PAD_MODES = frozenset({"constant", "reflect", "edge", "wrap"})
CONVTRANSPOSE_GROUP_SINCE = (2, 3)
CONSTANT_SCALAR_ATTRS_SINCE = (2, 3)  # value_float(s)/value_int(s)

DEFAULT_OPSET_RANGE = (15, 17)


def parse_version(version: str) -> tuple[int, int]:
    """'2.1' / '2.1.3' / '2.4.0-pre' -> (2, 1); ValueError for versions we have no rules for."""
    text = str(version).strip().lower().removeprefix("v")
    parts = text.split(".")
    try:
        key = (int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or "x"))
    except (ValueError, IndexError):
        raise ValueError(f"bad Sentis version '{version}' (expected one of {', '.join(SUPPORTED_VERSIONS)})") from None
    if f"{key[0]}.{key[1]}" not in SUPPORTED_VERSIONS:
        raise ValueError(f"no rules for Sentis version '{version}' (supported: {', '.join(SUPPORTED_VERSIONS)})")
    return key


def supported_ops(version: str) -> frozenset[str]:
    """Op types the ONNX converter of this Sentis version handles."""
    v = parse_version(version)
    return frozenset(op for op in OPS_2_4 if _ADDED.get(op, (0, 0)) <= v)


def op_counts_by_version() -> dict[str, int]:
    return {v: len(supported_ops(v)) for v in SUPPORTED_VERSIONS}
