"""ZipVoice runtime (numpy + onnxruntime only): front-end, prompt features, duration estimate,
text encoder → fm solve → Vocos on the bundle's graphs. Registered in runtime_ref/families.py."""
