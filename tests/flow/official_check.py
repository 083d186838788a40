"""Official CosyVoice2 flow modules vs exporter.flow.model on the same random weights.

Run as a script (tests/flow/test_flow_official.py does, in a subprocess, because it stubs modules):
    python tests/flow/official_check.py /tmp/cv_official_flow
where that folder is an unpacked official CosyVoice checkout with Matcha-TTS in
third_party/Matcha-TTS (never inside this repo). Needs pip packages diffusers and einops.
Prints one line per comparison; exits 1 if a figure is out of tolerance.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared official oracle
import official_oracle as oo  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from exporter.checkpoint import load_into  # noqa: E402
from exporter.config import FlowConfig, FlowEncoderConfig, FlowEstimatorConfig  # noqa: E402
from exporter.flow.keys import official_keys, random_checkpoint  # noqa: E402
from exporter.flow.model import Flow, token2mel_torch  # noqa: E402

ROOT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/cv_official_flow"

torch.set_num_threads(2)
# a runnable small config (official up_embed uses input_size, so input_size must equal 512)
cfg = FlowConfig(input_size=512, encoder=FlowEncoderConfig(num_blocks=2, linear_units=256),
                 estimator=FlowEstimatorConfig(channels=(64,), attention_head_dim=16, n_blocks=2, num_mid_blocks=2, num_heads=2))
oo.install(ROOT)
off = oo.official_flow(cfg).eval()
est = off.decoder.estimator
sd = random_checkpoint(cfg, seed=7)
off_keys = {k: tuple(v.shape) for k, v in off.state_dict().items()}
tab = official_keys(cfg)
print("official module keys == keys.py table:", off_keys == tab, len(off_keys), len(tab))
bad = [] if off_keys == tab else ["keys"]
if off_keys != tab:
    print(" only official:", sorted(set(off_keys) - set(tab))[:10]); print(" only table:", sorted(set(tab) - set(off_keys))[:10])
    print(" shape diffs:", [(k, off_keys[k], tab[k]) for k in set(off_keys) & set(tab) if off_keys[k] != tab[k]][:10])
off.load_state_dict(sd, strict=True)
rng = np.random.default_rng(0)
P, N = 20, 57
pt = torch.from_numpy(rng.integers(0, 6561, (1, P))).int(); tk = torch.from_numpy(rng.integers(0, 6561, (1, N))).int()
pm = torch.from_numpy(rng.standard_normal((1, 2 * P, 80)).astype(np.float32) - 5); xv = torch.randn(1, 192)
ours = Flow(cfg, 2 * (P + N)).eval(); load_into(ours, sd, source="random")
for streaming, finalize in [(False, True), (True, False), (True, True)]:
    with torch.inference_mode():
        ref, _ = off.inference(tk, torch.tensor([N]), pt, torch.tensor([P]), pm, torch.tensor([2 * P]), xv, streaming=streaming, finalize=finalize)
    got = token2mel_torch(ours, pt, tk, pm, xv, streaming=streaming, finalize=finalize)
    err = float((ref - got).abs().max())
    bad += [f"mel {streaming}/{finalize}"] if not err <= 1e-4 else []
    print(f"streaming={streaming} finalize={finalize}: mel {tuple(ref.shape)} max-abs {float((ref - got).abs().max()):.3g} (|ref| max {float(ref.abs().max()):.3g})")
# estimator one call, batch 2, random inputs, streaming on/off
T = 150
x, mu, cond = torch.randn(2, 80, T), torch.randn(2, 80, T), torch.randn(2, 80, T)
mask = torch.ones(2, 1, T); t = torch.tensor([0.3, 0.3]); spks = torch.randn(2, 80)
o_est = Flow(cfg, T).eval(); load_into(o_est, sd, source="random")
for s in (False, True):
    with torch.inference_mode():
        r = est(x, mask, mu, t, spks, cond, streaming=s)
        g = o_est.decoder.estimator(x, mask, mu, t, spks, cond, torch.tensor([float(s)]))
    bad += [f"estimator {s}"] if not float((r - g).abs().max()) <= 1e-4 else []
    print(f"estimator streaming={s}: max-abs {float((r - g).abs().max()):.3g} (|ref| max {float(r.abs().max()):.3g})")
print("FAILED: " + ", ".join(bad) if bad else "OK")
sys.exit(1 if bad else 0)
