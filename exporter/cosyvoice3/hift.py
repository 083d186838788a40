"""CosyVoice3's vocoder `CausalHiFTGenerator` + `CausalConvRNNF0Predictor` (official
cosyvoice/hifigan/generator.py, f0_predictor.py) in plain torch, on the CosyVoice2 HiFT's building
blocks (exporter/hift: Snake, ResBlock, weight-norm folding, integer frame phase, conv STFT/iSTFT).

What the causal variant changes (all checked against the official modules in tests/cosyvoice3):
- every conv is causal (left zero padding); conv_pre (kernel conv_pre_look_right + 1 = 5) and the f0
  predictor's first conv (kernel 4) look right instead: zero padding when finalize, else the last
  4 / 3 mel frames are look-ahead context only and the output is shorter;
- the up-samplers are nearest ×u + causal Conv1d (not ConvTranspose1d);
- the sine source is causal: the frame phase 480·Σ(f0·h/sr mod 1) is held for the 480 samples of
  its frame (nearest, not linear), and the noise is a fixed uniform [0, 1) table (official: drawn
  once at construction) — here the explicit input `noise` (1, 480T, 9);
- finalize=False drops the last 480 samples (they depend on frames not yet seen).
The f0 predictor runs in float64 in the official code; ours runs in the module's dtype.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..hift.model import HiFT, LengthMasks, PHASE_BITS, ResBlock, SourceMerge, fold_weight_norm
from ..hift.stft import ConvISTFT, ConvSTFT
from .config import CausalHiFTConfig


def causal_conv(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """Left zero padding dilation·(k-1) (official CausalConv1d, causal_type='left')."""
    return conv(F.pad(x, (conv.dilation[0] * (conv.kernel_size[0] - 1), 0)))


class CausalResBlock(ResBlock):
    def __init__(self, ch: int, k: int, dilations: tuple[int, ...]):
        super().__init__(ch, k, dilations)
        for c in [*self.convs1, *self.convs2]:
            c.padding = (0,)

    def forward(self, x):
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, self.activations1, self.activations2):
            x = x + causal_conv(c2, a2(causal_conv(c1, a1(x))))
        return x


class CausalF0Predictor(nn.Module):
    """condnet: Conv1d k=first_kernel looking right, then 4 × causal Conv1d k3, ELU after each."""

    def __init__(self, c_in: int, c: int, first_kernel: int):
        super().__init__()
        self.look = first_kernel - 1
        layers: list[nn.Module] = []
        for i in range(5):
            layers += [nn.Conv1d(c_in if i == 0 else c, c, first_kernel if i == 0 else 3), nn.ELU()]
        self.condnet = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, 1)

    def features(self, mel, finalize: bool = True):  # (1, 80, T) -> (1, T or T - look, C): the classifier's input
        x = F.pad(mel, (0, self.look)) if finalize else mel
        x = F.elu(self.condnet[0](x))
        for i in range(2, 10, 2):
            x = F.elu(causal_conv(self.condnet[i], x))
        return x.transpose(1, 2)

    def forward(self, mel, finalize: bool = True):  # (1, 80, T) -> (1, T) or (1, T - look)
        return torch.abs(self.classifier(self.features(mel, finalize)).squeeze(-1))


class CausalHiFT(HiFT):
    """Reuses HiFT.frame_phase (integer-exact frame phase); everything else is the causal layout."""

    def __init__(self, cfg: CausalHiFTConfig):
        nn.Module.__init__(self)
        self.cfg = cfg
        self.hop = cfg.hop_samples
        self.n_harm = cfg.nb_harmonics + 1
        self.phase_bits: int | None = PHASE_BITS
        self.look_right = cfg.conv_pre_look_right
        n_fft, n_bins, base = cfg.istft_n_fft, cfg.istft_n_fft // 2 + 1, cfg.base_channels
        self.m_source = SourceMerge(self.n_harm)
        self.conv_pre = nn.Conv1d(cfg.in_channels, base, cfg.conv_pre_look_right + 1)
        self.ups = nn.ModuleList(nn.Conv1d(base // 2 ** i, base // 2 ** (i + 1), k)
                                 for i, k in enumerate(cfg.upsample_kernel_sizes))
        strides, cum = [], 1
        for r in [1] + list(cfg.upsample_rates[::-1][:-1]):
            cum *= r
            strides.append(cum)
        self.down_strides = strides[::-1]
        self.source_downs = nn.ModuleList()
        self.source_resblocks = nn.ModuleList()
        for i, (u, k, d) in enumerate(zip(self.down_strides, cfg.source_resblock_kernel_sizes, cfg.source_resblock_dilation_sizes)):
            ch = base // 2 ** (i + 1)
            self.source_downs.append(nn.Conv1d(2 * n_bins, ch, 1 if u == 1 else 2 * u, 1 if u == 1 else u))
            self.source_resblocks.append(CausalResBlock(ch, k, tuple(d)))
        self.resblocks = nn.ModuleList(CausalResBlock(base // 2 ** (i + 1), k, tuple(d))
                                       for i in range(len(self.ups))
                                       for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes))
        self.conv_post = nn.Conv1d(base // 2 ** len(self.ups), 2 * n_bins, 7)
        self.f0_predictor = CausalF0Predictor(cfg.f0_in_channels, cfg.f0_cond_channels, cfg.f0_first_kernel)
        self.stft = ConvSTFT(n_fft, cfg.istft_hop_len)
        self.istft = ConvISTFT(n_fft, cfg.istft_hop_len)
        self.register_buffer("harmonics", torch.arange(1, self.n_harm + 1, dtype=torch.float64), persistent=False)

    def phase_increment(self, f0, step):
        """frac(step), step = 480 * (f0 * h / sr mod 1): the official causal SineGen2's order of
        operations (rad mod 1 first), whose float32 rounding onnxruntime and torch share closely."""
        return step - torch.floor(step)

    def frames_to_samples(self, x):  # (1, T, C) -> (1, 480T, C), nearest
        B, T, C = x.shape
        return x[:, :, None, :].expand(B, T, self.hop, C).reshape(B, T * self.hop, C)

    def source(self, f0, noise, phase_in=None, phase_ref=None):
        """f0 (1, T) Hz, noise (1, 480T, H) uniform [0, 1) -> (s (1, 1, 480T), phase (1, T, H)).
        phase_in (1, 1, H) / phase_ref (1, T, 1): as HiFT.frame_phase (None: the utterance's start)."""
        cfg = self.cfg
        if phase_in is None:
            phase_in = torch.zeros(1, 1, self.n_harm, dtype=f0.dtype)
            phase_ref = torch.zeros(1, f0.shape[1], 1, dtype=f0.dtype)
        phase, _ = self.frame_phase(f0, phase_in, phase_ref)
        sines = self.frames_to_samples(cfg.nsf_alpha * torch.sin(2 * math.pi * phase))  # held per frame
        uv = self.frames_to_samples((f0 > cfg.nsf_voiced_threshold).to(f0.dtype)[:, :, None])  # (1, 480T, 1)
        noise_amp = uv * cfg.nsf_sigma + (1 - uv) * cfg.nsf_alpha / 3
        s = torch.tanh(self.m_source.l_linear(sines * uv + noise_amp * noise))
        return s.transpose(1, 2), phase

    def decode(self, mel, s, finalize: bool = True, masks: LengthMasks | None = None):
        """mel (1, 80, T), s (1, 1, 480T) -> waveform. With `masks` (finalize only) the utterance
        ends at frame n inside the T-frame buffer: mel must be zero from n on (the conv_pre look-right
        then reads zeros, the finalize padding); the source STFT reflects and the iSTFT normalises at
        sample 480n, as the official code does at its input's end; the causal layers need no mask
        (nothing past n reaches an earlier sample), the output is zero from 480n on."""
        cfg = self.cfg
        n_bins = cfg.istft_n_fft // 2 + 1
        spec_mask = None if masks is None else masks.at(self.stage_rates()[-1], 1)  # 120n + 1 STFT frames
        s_stft = self.stft(s, masks, self.hop)
        if finalize:
            x = self.conv_pre(F.pad(mel, (0, self.look_right)))
        else:
            x = self.conv_pre(mel)  # the last look_right frames are context only
            up = 1
            for r in cfg.upsample_rates:
                up *= r
            s_stft = s_stft[:, :, :s_stft.shape[2] - up * self.look_right]
        n_k = len(cfg.resblock_kernel_sizes)
        for i, (conv, u) in enumerate(zip(self.ups, cfg.upsample_rates)):
            x = F.leaky_relu(x, cfg.lrelu_slope)
            B, C, L = x.shape
            x = causal_conv(conv, x[:, :, :, None].expand(B, C, L, u).reshape(B, C, L * u))
            if i == len(self.ups) - 1:
                x = F.pad(x, (1, 0), mode="reflect")
            st = self.down_strides[i]
            down = self.source_downs[i]
            si = down(s_stft) if st == 1 else down(F.pad(s_stft, (st - 1, 0)))
            x = x + self.source_resblocks[i](si)
            xs = self.resblocks[i * n_k](x)
            for j in range(1, n_k):
                xs = xs + self.resblocks[i * n_k + j](x)
            x = xs / n_k
        x = causal_conv(self.conv_post, F.leaky_relu(x))
        mag = torch.clamp(torch.exp(x[:, :n_bins]), max=100.0)
        if spec_mask is not None:
            mag = mag * spec_mask  # no STFT frame past 120n enters the overlap-add
        ph = torch.sin(x[:, n_bins:])
        wav = self.istft(mag * torch.cos(ph), mag * torch.sin(ph), masks, self.hop)
        if not finalize:
            wav = wav[:, :wav.shape[1] - self.hop]
        wav = torch.clamp(wav, -cfg.audio_limit, cfg.audio_limit)
        return wav if masks is None else wav * masks.at(self.hop).reshape(1, -1)

    def forward(self, mel, noise, finalize: bool = True):
        """Official CausalHiFTGenerator.inference: mel (1, 80, T), noise (1, 480·T_f0, 9) uniform
        -> waveform (1, 480T) (finalize) or (1, 480(T - 8)) (finalize=False: 3 f0 + 4 conv_pre
        look-ahead frames, and the held-back last frame)."""
        f0 = self.f0_predictor(mel, finalize)
        s, _ = self.source(f0, noise[:, :f0.shape[1] * self.hop])
        x = mel if finalize else mel[:, :, :mel.shape[2] - self.f0_predictor.look]
        return self.decode(x, s, finalize)

    def vocode_chunk(self, mel, noise, phase_in, phase_ref, n_frames):
        """One call of the exported graph: the finalize pass over the first n of T frames
        (n_frames (1,) int32 in 1..T; the rest of mel and noise is ignored) whose sine phase is
        pinned (phase_ref one-hot at frame r: phase[r] = phase_in; all zeros: phase_in is the phase
        before frame 0) -> (waveform (1, 480T), phase (1, T, H) cycles in [0, 1)), zero from frame n.
        Chunked vocoding of a long mel (runtime_ref/cosyvoice3.py CausalVocoder): a chunk starts
        `context` frames before the first frame it emits, its phase pinned at the frame before that
        one to the previous chunk's phase output; outputs `lookahead` frames before its end
        depend on mel frames it has not seen (a later chunk emits them)."""
        masks = LengthMasks(n_frames, mel.shape[-1], mel.dtype)
        mel = mel * masks.at(1)
        f0 = self.f0_predictor(mel, True)
        s, phase = self.source(f0, noise, phase_in, phase_ref)
        wav = self.decode(mel, s * masks.at(self.hop), True, masks)
        return wav, phase * masks.at(1).transpose(1, 2)


def build_causal_hift(cfg: CausalHiFTConfig, state_dict: Mapping[str, torch.Tensor], *, source: str = "hift.pt",
                      dtype: torch.dtype = torch.float32) -> CausalHiFT:
    """Strictly check the official keys, fold weight norm, load into a `dtype` module (float64: the
    weights are widened before the fold, so the folded weights are not rounded to float32), as
    exporter/hift/model.py build_hift."""
    from ..checkpoint import check_state_dict, load_into
    from .keys import hift_keys

    check_state_dict(hift_keys(cfg), state_dict, source=source)
    model = CausalHiFT(cfg)
    if dtype != torch.float32:  # (float32: leave the float64 constant buffers as they are)
        model = model.to(dtype)
        state_dict = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
    load_into(model, fold_weight_norm(state_dict), source=source)
    return model.eval()


def lookahead_frames(cfg: CausalHiFTConfig) -> int:
    """Frames before a call's last mel frame whose samples need mel past it: the f0 predictor's and
    conv_pre's look-right, and the frame the official finalize=False holds back (8)."""
    return (cfg.f0_first_kernel - 1) + cfg.conv_pre_look_right + 1


def measure_context_frames(cfg: CausalHiFTConfig, *, first: int = 64) -> int:
    """The left-context frames a chunk needs so that what it emits is exactly the whole-utterance
    pass (runtime_ref/cosyvoice3.py causal_chunk_plan), from the architecture's structural reach:
    the samples of frame e depend on the source of frames >= e - S (S: the causal stack's reach from
    the source), whose voicing, f0 and pinned phase depend on the mel of frames >= e - S - F (F: the
    f0 predictor's left reach), and on the mel of frames >= e - M through conv_pre and the
    up-samplers (M). Each reach is where a gradient is exactly zero (autograd on a narrow float64
    copy with random weights: a dependency outside the reach is structurally absent, inside it a
    random weight leaves none at zero); the look-right of an emitted frame must fit in what
    `lookahead_frames` holds back."""
    from dataclasses import replace

    frames = first + lookahead_frames(cfg) + 8
    narrow = replace(cfg, base_channels=2 ** (len(cfg.upsample_rates) + 1), f0_cond_channels=8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CausalHiFT(narrow).double().eval()
        H, hop = model.n_harm, model.hop
        mel = (torch.randn(1, cfg.in_channels, frames, dtype=torch.float64) - 5).requires_grad_()
        noise = torch.rand(1, hop * frames, H, dtype=torch.float64).requires_grad_()
        probe = torch.randn(hop, dtype=torch.float64)
    n = torch.tensor([frames], dtype=torch.int32)

    def reach(x: torch.Tensor, out: torch.Tensor) -> tuple[int, int]:
        """(frames before, frames after `first`) of x that `out` depends on."""
        (g,) = torch.autograd.grad(out, x)
        per_frame = g.abs().reshape(frames, -1).sum(1) if x is noise else g[0].abs().sum(0)  # (frames,)
        used = torch.nonzero(per_frame).flatten()
        if int(used.min()) == 0:
            raise ValueError(f"hift: the left reach exceeds {first} frames (an unexpected architecture)")
        return first - int(used.min()), int(used.max()) - first

    zeros = torch.zeros(1, 1, H, dtype=torch.float64)
    no_pin = torch.zeros(1, frames, 1, dtype=torch.float64)
    S, S_right = reach(noise, (model.vocode_chunk(mel, noise, zeros, no_pin, n)[0][0, hop * first: hop * (first + 1)] * probe).sum())
    F, F_right = reach(mel, model.f0_predictor(mel, True)[0, first])
    model.f0_predictor.classifier.weight.data.zero_()  # f0 = 0: unvoiced, no sine: the conv path alone
    model.f0_predictor.classifier.bias.data.zero_()
    M, M_right = reach(mel, (model.vocode_chunk(mel, noise, zeros, no_pin, n)[0][0, hop * first: hop * (first + 1)] * probe).sum())
    right = max(M_right, S_right + F_right)
    if right > lookahead_frames(cfg):
        raise ValueError(f"hift: a frame's samples depend on {right} frames of look-right, more than the "
                         f"{lookahead_frames(cfg)} held back (an unexpected architecture)")
    return max(S + F, M)
