"""Voices: `sentis-tts voice add` / `import-spk2info`, runtime_ref.prompt without torch."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from runtime_ref import audio as A


@pytest.fixture(scope="module")
def voice_bundle(prompt_bundle, tmp_path_factory, speech_like):
    import shutil

    from exporter.cli import main

    root = tmp_path_factory.mktemp("vb") / "bundle"
    shutil.copytree(prompt_bundle[0], root)
    x = speech_like(4.2, 44100, seed=7)
    wav = root.parent / "prompt.wav"
    A.write_wav(wav, np.stack([x, 0.8 * x], 1), 44100, bits=24)
    with pytest.raises(SystemExit) as e:
        main(["voice", "add", "--bundle", str(root), "--name", "alice", "--wav", str(wav), "--text", "hello there"])
    assert e.value.code in (0, None)
    return root, wav, x


def test_voice_add(voice_bundle, tiny_md):
    from runtime_ref.bundle import Bundle
    from runtime_ref.prompt import load_voice, speaker_embedding, speech_tokens

    root, wav, x = voice_bundle
    b = Bundle.open(root)  # hashes include the voice file
    entry = b.manifest["voices"]["alice"]
    assert entry["prompt_text"] == "hello there" and entry["file"] == "voices/alice.npz"
    v = load_voice(b, "alice")
    k = v["speech_tokens"].shape[0]
    assert k == 105 and v["prompt_mel"].shape == (2 * k, tiny_md.config.mel.num_mels)  # 4.2 s: 105 tokens, 210 frames
    assert v["embedding"].shape == (tiny_md.config.flow.spk_embed_dim,)
    assert v["speech_tokens"].dtype == np.int32 and v["speech_tokens"].min() >= 0
    assert v["speech_tokens"].max() < tiny_md.config.llm.speech_token_size
    assert str(v["prompt_text"]) == "hello there"
    # same numbers as running the graphs directly on the 16 kHz mix-down
    mono16 = A.resample((x + 0.8 * x) / 2, 44100, 16000).astype(np.float32)
    assert np.array_equal(speech_tokens(b, mono16)[:k], v["speech_tokens"])
    assert np.abs(speaker_embedding(b, mono16) - v["embedding"]).max() < 1e-3  # 24-bit quantisation of the WAV
    assert np.isfinite(v["prompt_mel"]).all()


def test_voice_errors(voice_bundle, tmp_path, capsys):
    from exporter.cli import main

    root, _, _ = voice_bundle
    short = tmp_path / "short.wav"
    A.write_wav(short, np.sin(np.arange(8000) / 3) * 0.3, 16000)
    with pytest.raises(SystemExit) as e:
        main(["voice", "add", "--bundle", str(root), "--name", "bob", "--wav", str(short)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 1 and err.startswith("error:") and "at least 1 s" in err and "\n" not in err
    with pytest.raises(SystemExit) as e:
        main(["voice", "add", "--bundle", str(root), "--name", "bad/name", "--wav", str(short)])
    assert e.value.code == 1 and "not allowed" in capsys.readouterr().err
    clipped = tmp_path / "clipped.wav"
    A.write_wav(clipped, np.clip(np.sin(np.arange(32000) / 9) * 1.5, -1, 1), 16000)
    with pytest.raises(SystemExit) as e:
        main(["voice", "add", "--bundle", str(root), "--name", "loud", "--wav", str(clipped)])
    assert e.value.code in (0, None) and "clipped" in capsys.readouterr().err


def test_import_spk2info(voice_bundle, tmp_path):
    from exporter.cli import main
    from runtime_ref.bundle import Bundle
    from runtime_ref.prompt import load_voice

    root, _, _ = voice_bundle
    g = torch.Generator().manual_seed(0)
    spk = {
        "中文女": {"embedding": torch.randn(1, 192, generator=g), "speech_token": torch.randint(0, 6561, (1, 60), generator=g),
                  "speech_feat": torch.randn(1, 117, 80, generator=g)},
        "zs1": {"flow_embedding": torch.randn(1, 192, generator=g), "flow_prompt_speech_token": torch.randint(0, 6561, (1, 40), generator=g),
                "prompt_speech_feat": torch.randn(1, 80, 80, generator=g), "prompt_text": torch.tensor([[5, 6, 7]])},
    }
    path = tmp_path / "spk2info.pt"
    torch.save(spk, path)
    with pytest.raises(SystemExit) as e:
        main(["voice", "import-spk2info", "--bundle", str(root), "--spk2info", str(path)])
    assert e.value.code in (0, None)
    b = Bundle.open(root)
    names = set(b.manifest["voices"])
    assert {"alice", "zs1"} <= names and any(n.startswith("spk_") for n in names)
    v = load_voice(b, "zs1")
    assert v["speech_tokens"].shape == (40,) and v["prompt_mel"].shape == (80, 80)
    assert np.array_equal(v["prompt_text_ids"], [5, 6, 7])
    sft = load_voice(b, next(n for n in names if n.startswith("spk_")))
    assert sft["speech_tokens"].shape == (58,) and sft["prompt_mel"].shape == (116, 80)  # k = min(117//2, 60)
    assert np.allclose(sft["embedding"], spk["中文女"]["embedding"].numpy().ravel())


def test_runtime_ref_bakes_without_torch(voice_bundle):
    root, wav, _ = voice_bundle
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from runtime_ref.bundle import Bundle\nfrom runtime_ref.prompt import bake_voice_from_wav\n"
        f"v = bake_voice_from_wav(Bundle.open({str(root)!r}), {str(wav)!r})\n"
        "print(v['speech_tokens'].shape[0], v['prompt_mel'].shape[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.split() == ["105", "210"]


def test_reexport_keeps_voices(voice_bundle, tiny_md):
    from exporter.export import export_components
    from exporter.spec import ExportOptions

    root, _, _ = voice_bundle
    export_components(tiny_md, root, ["campplus"], ExportOptions(parity=False))
    m = json.loads((root / "manifest.json").read_text())
    assert "alice" in m["voices"] and "voices/alice.npz" in m["files"] and "speech_tokenizer" in m["graphs"]
