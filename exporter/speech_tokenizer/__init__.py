"""CosyVoice2 speech_tokenizer component: model (official state_dict layout), keys, export spec."""
