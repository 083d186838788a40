"""ZipVoice / ZipVoice-Distill (k2-fsa/ZipVoice): token embedding → Zipformer text encoder →
Zipformer flow-matching decoder (CFG + Euler) → Vocos. Family glue: exporter/families/zipvoice.py."""
