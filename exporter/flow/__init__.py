"""CosyVoice2 flow component: model (official state_dict layout), keys, export spec."""
