"""The exported `hift` graph (tiny, T=64): Sentis checker, parity vs PyTorch, runtime_ref
whole-utterance and streaming vocoding, fp16-weight SNR."""
import json

import numpy as np
import pytest
import torch

from exporter.export import export_components, measure_parity
from exporter.hift.export import example_mel
from exporter.spec import ExportOptions
from runtime_ref.bundle import Bundle
from runtime_ref.hift import HiFTVocoder, mel2wav

from .conftest import FRAMES, snr_db, torch_runner


@pytest.fixture(scope="module")
def bundle(hift_bundle):
    return hift_bundle


@pytest.fixture(scope="module")
def bundle_fp16(tiny_md, tmp_path_factory):
    out = tmp_path_factory.mktemp("hift16") / "bundle"
    export_components(tiny_md, out, ["hift"], ExportOptions(hift_frames=FRAMES, fp16=True))
    return Bundle.open(out)


def test_graph_contract_and_checker(bundle):
    g = bundle.graph("hift")
    assert [i["name"] for i in g.inputs] == ["mel", "noise", "phase_in", "phase_ref", "cache_source", "cache_weight", "n_frames"]
    assert g.input("n_frames") == {"name": "n_frames", "shape": [1], "dtype": "int32",
                                   "description": g.input("n_frames")["description"]}
    assert g.input("mel")["shape"] == [1, 80, FRAMES] and g.input("noise")["shape"] == [1, 480 * FRAMES, 9]
    assert [o["shape"] for o in g.outputs] == [[1, 480 * FRAMES], [1, 1, 480 * FRAMES], [1, FRAMES, 9]]
    e = g.entry
    assert e["checker"]["ok"] and not e["symbolic_dims"]
    ops = e["checker"]["op_counts"]
    for banned in ("If", "Loop", "Resize", "RandomNormal", "RandomNormalLike", "RandomUniformLike", "STFT", "DFT"):
        assert banned not in ops
    p = e["parity"]
    assert p["compare"] == {"waveform": "max_abs", "source": "relative_rms", "phase": "circular"}
    assert p["max_abs"]["waveform"] <= 1e-4 and p["cases"] == 4
    assert p["error"]["source"] <= p["atol"]["source"] == 1e-2
    assert p["error"]["phase"] <= p["atol"]["phase"] <= 2e-3
    print(f"export gate: {json.dumps(p)}")
    c = bundle.component("hift")
    assert c["length_input"] == "n_frames"
    assert c["frames"] == FRAMES and c["chunking"]["context_frames"] == 12


@pytest.mark.parametrize("n", [FRAMES, 1, 7, 40, 150])
def test_runtime_mel2wav_vs_pytorch_whole(bundle, hift_model, n):
    """runtime_ref (ORT) vs one whole-utterance PyTorch call on exactly n frames, same noise."""
    mel = example_mel(n, 100 + n)
    noise = np.random.default_rng(n).standard_normal((1, 480 * n, 9)).astype(np.float32)
    with torch.no_grad():
        ref = hift_model.vocode(torch.from_numpy(mel), torch.from_numpy(noise))[0].numpy()
    got = mel2wav(bundle, mel, noise)
    assert got.shape == ref.shape == (1, 480 * n)
    err = np.abs(got - ref)
    print(f"N={n}: max-abs {err.max():.3g}, SNR {snr_db(ref, got):.1f} dB")
    if n <= FRAMES:  # one exact-length graph call
        assert err.max() <= 1e-4 and snr_db(ref, got) >= 70
    else:
        assert err.max() <= 1e-3 and snr_db(ref, got) >= 40


def official_stream_reference(model, mel, sizes, noises):
    """CosyVoice2Model.token2wav's HiFT cache scheme on our PyTorch module, exact call lengths."""
    win = np.hamming(2 * 3840).astype(np.float32)
    out, cache, pos = [], None, 0
    for i, n in enumerate(sizes):
        cur = mel[:, :, pos: pos + n]
        pos += n
        m = cur if cache is None else np.concatenate([cache[0], cur], axis=2)
        with torch.no_grad():
            w, s, _ = model.vocode(torch.from_numpy(m), torch.from_numpy(noises[i]),
                                   cache_source=None if cache is None else torch.from_numpy(cache[1]))
        w, s = w.numpy().copy(), s.numpy()
        if cache is not None:
            w[:, :3840] = w[:, :3840] * win[:3840] + cache[2] * win[3840:]
        if i == len(sizes) - 1:
            out.append(w)
        else:
            cache = (m[:, :, -8:], s[:, :, -3840:], w[:, -3840:])
            out.append(w[:, :-3840])
    return np.concatenate(out, axis=1)


def test_stream_official_scheme(bundle, hift_model):
    sizes = [50, 100, 80]  # official hop growth 25 -> 50 tokens (x2 mel frames), then the final rest
    N = sum(sizes)
    mel = example_mel(N, 42)
    calls = [n + (8 if i else 0) for i, n in enumerate(sizes)]
    rng = np.random.default_rng(0)
    noises = [rng.standard_normal((1, 480 * c, 9)).astype(np.float32) for c in calls]
    ref = official_stream_reference(hift_model, mel, sizes, noises)
    it = iter(noises)
    v = HiFTVocoder.from_bundle(bundle)
    pieces = list(v.stream_official([mel[:, :, sum(sizes[:i]): sum(sizes[:i + 1])] for i in range(len(sizes))],
                                    noise_fn=lambda n: next(it)))
    got = np.concatenate(pieces, axis=1)
    assert got.shape == ref.shape == (1, 480 * N)
    err = np.abs(got - ref)[0]
    # the 50-frame first call is one exact-length call; the 108- and 88-frame calls are chunked
    # (T=64), which leaks only through the chunks' context
    print(f"stream vs official-scheme PyTorch: max-abs {err.max():.3g} overall, "
          f"{err[:480 * 50 - 3840].max():.3g} in the first piece, SNR {snr_db(ref, got):.1f} dB")
    assert err[:480 * 50 - 3840].max() <= 1e-4
    assert snr_db(ref, got) >= 60
    with torch.no_grad():  # and vs the whole-utterance call with the first call's noise
        whole = hift_model.vocode(torch.from_numpy(mel), torch.from_numpy(np.random.default_rng(1).standard_normal((1, 480 * N, 9)).astype(np.float32)))[0].numpy()
    print(f"official streaming scheme vs whole utterance (different noise): SNR {snr_db(whole, ref):.1f} dB")


def test_fp16_weights_snr(bundle, bundle_fp16, hift_model):
    assert bundle_fp16.graph("hift").entry["weights_dtype"] in ("float16", "float32")
    n = FRAMES
    mel = example_mel(n, 9)
    noise = np.random.default_rng(9).standard_normal((1, 480 * n, 9)).astype(np.float32)
    ref = mel2wav(bundle, mel, noise)
    got = mel2wav(bundle_fp16, mel, noise)
    snr = snr_db(ref, got)
    print(f"fp16 weights vs fp32: SNR {snr:.1f} dB, max-abs {np.abs(ref - got).max():.3g}; manifest "
          f"{json.dumps(bundle_fp16.component('hift')['precision'])}")
    assert snr >= 30


def test_bench_scripts_run_on_the_tiny_bundle(bundle, tiny_model_dir):
    """bench/hift.py and bench/hift_profile.py (run by hand on full-size dirs) still work:
    they load through ModelDir/Bundle, vocode chunked (100 frames > T=64) and report a ratio."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    common = ["--model-dir", str(tiny_model_dir), "--bundle", str(bundle.root), "--frames", "100", "--threads", "1"]
    out = subprocess.run([sys.executable, "bench/hift.py", *common, "--rounds", "1"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "calls 2" in out
    assert float(re.search(r"ratio ORT/PyTorch:\s+([\d.]+)", out).group(1)) > 0
    assert float(re.search(r"SNR ([\d.]+) dB", out).group(1)) > 60  # chunked ORT == whole PyTorch
    out = subprocess.run([sys.executable, "bench/hift_profile.py", *common, "--runs", "1"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert re.search(r"Conv\s+[\d.]+ ms/frame at \d+ GFLOP/s", out)
    assert 0 < float(re.search(r"everything else free\): ([\d.]+)", out).group(1)) < 100
    assert not list(repo.glob("onnxruntime_profile*")), "profiling must not litter the repo"


def test_export_gate_fails_on_real_errors(bundle, tiny_md, tmp_path):
    """The gate is live per output: an ONNX graph whose weights differ slightly from the module's
    fails on the waveform; one whose f0 is 0.5 Hz off fails on the circular phase distance too."""
    import onnx
    from onnx import numpy_helper

    from exporter.errors import ExportError
    from exporter.hift.export import build

    spec = build(tiny_md, ExportOptions(hift_frames=FRAMES)).graphs[0]
    with torch.no_grad():  # the parity inputs reach realistic high f0
        f0 = max(float(spec.module.f0_predictor(torch.from_numpy(spec.make_inputs(c)["mel"])).max()) for c in range(4))
    print(f"parity inputs: f0 up to {f0:.0f} Hz")
    assert f0 >= 400
    spec.parity_cases = 1  # the full-length case shows both corruptions (keeps the test short)
    model = onnx.load(str(bundle.root / "hift.onnx"))
    bias = spec.module.f0_predictor.classifier.bias.detach().numpy()
    conv = spec.module.resblocks[0].convs1[0].weight.detach().numpy()
    for mutate, expect in (("conv", r"waveform max-abs"), ("f0", r"phase circular")):
        m = onnx.ModelProto()
        m.CopyFrom(model)
        hit = 0
        for init in m.graph.initializer:
            a = numpy_helper.to_array(init)
            if mutate == "conv" and a.shape == conv.shape and np.array_equal(a, conv):
                a = a * np.float32(1.01)
            elif mutate == "f0" and a.shape == bias.shape and np.array_equal(a, bias):
                a = a + np.float32(0.5)
            else:
                continue
            init.CopyFrom(numpy_helper.from_array(a, init.name))
            hit += 1
        assert hit == 1, f"{mutate}: the weight to corrupt was not found once in the graph"
        path = tmp_path / f"hift_{mutate}.onnx"
        onnx.save(m, str(path))
        with pytest.raises(ExportError, match=expect) as e:
            measure_parity(spec, path)
        print(f"corrupted {mutate}: {e.value}")
