"""sentis-tts exporter: CosyVoice2 PyTorch re-implementations, export wrappers, bundle writer."""

__version__ = "0.1.0"
