"""CosyVoice2 campplus component: model (official state_dict layout), keys, export spec."""
