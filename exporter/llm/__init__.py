"""CosyVoice2 llm component: model (official state_dict layout), keys, export spec."""
