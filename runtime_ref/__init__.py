"""runtime_ref: the whole TTS pipeline on onnxruntime + numpy only.

Never import torch (or exporter) from this package: it is what a user without PyTorch runs,
and the executable specification the C# runtime mirrors.
"""

__version__ = "0.1.0"
