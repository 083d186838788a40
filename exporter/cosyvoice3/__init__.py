"""Fun-CosyVoice3-0.5B: the family's own code (model dir, config, LM/flow/vocoder modules, export
specs, fixture). Shared machinery (Qwen2 backbone and KV-cache step, Euler/CFG solve, HiFT blocks,
STFT, export driver, bundle) is imported from the CosyVoice2 packages, never copied."""
