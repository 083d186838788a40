"""CosyVoice2 hift component: model (official state_dict layout), keys, export spec."""
