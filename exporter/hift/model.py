"""HiFT vocoder (CosyVoice2 `HiFTGenerator`, 24 kHz config) in plain, export-friendly PyTorch.

Fact sheet §7. Differences from the official module, all numerically checked in tests/hift:
- weight norm is folded into plain `weight`s at load (`fold_weight_norm`);
- the SineGen2 Gaussian noise is an explicit input `noise` (1, 480T, 9) (official: randn_like);
  its uniform random initial phase is inert (it is added at sample 0 only, which the half-pixel
  1/480 linear downsampling never reads) and is left out;
- the sine phase is computed per frame and kept wrapped to [0, 1) cycles instead of as one
  unbounded fp32 cumsum (~1e5 rad after 10 s, where one fp32 ulp is ~0.01 rad): mathematically
  the same signal, but reproducible across backends. The cumulative per-frame phase is an
  output and an input offset (`phase_in`), so chunked vocoding continues the phase exactly;
- the ×480 linear upsampling of the phase (half-pixel, edge-clamped) is a reshape of per-segment
  ramps, not a Resize; STFT/iSTFT are fixed-kernel convolutions (stft.py);
- the streaming `cache_source` overwrite of the first samples of the source is a fixed-length
  input blended in with a 0/1 weight (static shapes);
- exact length: a T-frame graph computes what the official module computes on an n-frame input
  (any 1 <= n <= T, input `n_frames`): 0/1 masks built once from n at every resolution (frames,
  ×8, ×40, ×120+1 STFT frames, ×480 samples) zero every layer's input past the end, as the
  official per-layer zero padding of an n-frame tensor does; the end-dependent boundary
  operations follow n too: the edge clamp of the ×480 phase interpolation, the source STFT's
  right reflection padding (`ConvSTFT`) and the iSTFT's window envelope at the end (`ConvISTFT`).
  Outputs past the end are zero.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..config import HiFTConfig
from .keys import WN_G, WN_V
from .stft import ConvISTFT, ConvSTFT

PHASE_BITS = 20  # per-frame phase increments are rounded to 2^-20 cycles and summed as int32 (exact)


def fold_weight_norm(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official weight-norm parametrization (g = original0, v = original1) -> plain `weight`.
    W = g * v / ||v|| with the norm over every dim except 0 (for ConvTranspose1d dim 0 is the
    input-channel axis, which is how the official checkpoint stores it); same op as the
    official parametrization (torch._weight_norm)."""
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.endswith(WN_V):
            continue
        if k.endswith(WN_G):
            p = k[: -len(WN_G)]
            out[p + "weight"] = torch._weight_norm(sd[p + WN_V], v, 0)
        else:
            out[k] = v
    return out


class Snake(nn.Module):
    """x + 1/(alpha + 1e-9) * sin(alpha x)^2, alpha per channel (linear scale)."""

    def __init__(self, ch: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(ch))

    def forward(self, x):  # (B, C, L)
        a = self.alpha[None, :, None]
        return x + (1.0 / (a + 1e-9)) * torch.sin(x * a).pow(2)


class LengthMasks:
    """0/1 float masks (1, 1, L) of the valid positions of an n-frame input inside a T-frame
    graph, one per resolution: `at(k, extra)` is position < k*n + extra over k*T + extra positions
    (an int32 position table + Less: built once per call, then every layer multiplies). n_frames (1,) int32."""

    def __init__(self, n_frames: torch.Tensor, T: int, dtype: torch.dtype):
        self.n = n_frames.reshape(1, 1, 1).to(torch.int32)
        self.T, self.dtype = T, dtype
        self._cache: dict[tuple[int, int], torch.Tensor] = {}

    def at(self, k: int, extra: int = 0) -> torch.Tensor:
        key = (k, extra)
        if key not in self._cache:
            pos = torch.arange(k * self.T + extra, dtype=torch.int32)[None, None, :]
            self._cache[key] = (pos < self.n * k + extra).to(self.dtype)
        return self._cache[key]

    def frame_one_hot(self, frames: int, offset: int = 0) -> torch.Tensor:
        """(1, frames, 1): 1 at frame n - 1 + offset (offset 0: the last valid frame)."""
        pos = torch.arange(frames, dtype=torch.int32)[None, :, None]
        return (pos == self.n - 1 + offset).to(self.dtype)


class ResBlock(nn.Module):
    def __init__(self, ch: int, k: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(ch, ch, k, dilation=d, padding=d * (k - 1) // 2) for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(ch, ch, k, padding=(k - 1) // 2) for _ in dilations)
        self.activations1 = nn.ModuleList(Snake(ch) for _ in dilations)
        self.activations2 = nn.ModuleList(Snake(ch) for _ in dilations)

    def forward(self, x, mask=None):
        """x (B, C, L), zero past the end when `mask` (1, 1, L) is given; the result is too
        (Snake(0) = 0, so masking each conv's output keeps every conv's input zero-padded)."""
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, self.activations1, self.activations2):
            if mask is None:
                x = x + c2(a2(c1(a1(x))))
            else:
                x = (x + c2(a2(c1(a1(x)) * mask))) * mask
        return x


class F0Predictor(nn.Module):
    """5 x (Conv1d k3 + ELU), Linear -> |f0| in Hz per frame."""

    def __init__(self, c_in: int, c: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(5):
            layers += [nn.Conv1d(c_in if i == 0 else c, c, 3, padding=1), nn.ELU()]
        self.condnet = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, 1)

    def forward(self, mel, mask=None):  # (1, 80, T) [, (1, 1, T)] -> (1, T)
        x = mel
        for layer in self.condnet:
            x = layer(x)
            if mask is not None and isinstance(layer, nn.ELU):  # ELU(0) = 0: next conv sees zero padding
                x = x * mask
        return torch.abs(self.classifier(x.transpose(1, 2)).squeeze(-1))


class SourceMerge(nn.Module):
    """Holds `m_source.l_linear` (9 harmonics -> 1 excitation)."""

    def __init__(self, n: int):
        super().__init__()
        self.l_linear = nn.Linear(n, 1)


class HiFT(nn.Module):
    def __init__(self, cfg: HiFTConfig, source_cache_len: int = 3840):
        super().__init__()
        self.cfg = cfg
        self.hop = cfg.hop_samples  # 480
        self.n_harm = cfg.nb_harmonics + 1  # 9
        self.source_cache_len = source_cache_len
        self.phase_bits: int | None = PHASE_BITS  # None = plain float cumsum (used for float64 proofs)
        n_fft, n_bins = cfg.istft_n_fft, cfg.istft_n_fft // 2 + 1
        base = cfg.base_channels

        self.f0_predictor = F0Predictor(cfg.f0_in_channels, cfg.f0_cond_channels)
        self.m_source = SourceMerge(self.n_harm)
        self.conv_pre = nn.Conv1d(cfg.in_channels, base, 7, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(base // 2 ** i, base // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes))
        )
        # source STFT downsampled to each stage's rate: strides = cumprod([1] + rates[::-1][:-1]) reversed
        strides, cum = [], 1
        for r in [1] + list(cfg.upsample_rates[::-1][:-1]):
            cum *= r
            strides.append(cum)
        strides = strides[::-1]  # [15, 3, 1]
        self.source_downs = nn.ModuleList()
        self.source_resblocks = nn.ModuleList()
        for i, (u, k, d) in enumerate(zip(strides, cfg.source_resblock_kernel_sizes, cfg.source_resblock_dilation_sizes)):
            ch = base // 2 ** (i + 1)
            self.source_downs.append(nn.Conv1d(2 * n_bins, ch, 1) if u == 1 else nn.Conv1d(2 * n_bins, ch, 2 * u, u, padding=u // 2))
            self.source_resblocks.append(ResBlock(ch, k, tuple(d)))
        self.resblocks = nn.ModuleList(
            ResBlock(base // 2 ** (i + 1), k, tuple(d))
            for i in range(len(self.ups))
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes)
        )
        self.conv_post = nn.Conv1d(base // 2 ** len(self.ups), 2 * n_bins, 7, padding=3)
        self.stft = ConvSTFT(n_fft, cfg.istft_hop_len)
        self.istft = ConvISTFT(n_fft, cfg.istft_hop_len)
        # ramp position of each sample inside a phase segment: (k + 0.5) / 480 (half-pixel)
        self.register_buffer("ramp", (torch.arange(self.hop, dtype=torch.float64) + 0.5) / self.hop, persistent=False)
        self.register_buffer("harmonics", torch.arange(1, self.n_harm + 1, dtype=torch.float64), persistent=False)

    # -- source -------------------------------------------------------------------------------
    def frame_phase(self, f0: torch.Tensor, phase_in: torch.Tensor, phase_ref: torch.Tensor):
        """f0 (1, T) Hz -> (phase (1, T, H) cumulative phase of each frame in cycles, wrapped to
        [0,1); step (1, T, H) per-frame phase advance 480*rad in cycles, unwrapped).
        Official: rad = (f0*h/sr) % 1 per sample (constant within a frame), phase = 2 pi * 480 *
        cumsum_frames(rad); the same modulo 1 cycle.
        phase_ref (1, T, 1) is zero or one-hot: with a one at frame r, phase[r] == phase_in
        (chunked vocoding pins the phase at the last frame the previous chunk emitted);
        all zeros: phase_in is the phase before frame 0."""
        rad = f0[:, :, None] * self.harmonics.to(f0.dtype) / self.cfg.sampling_rate  # (1, T, H)
        rad = rad - torch.floor(rad)  # % 1 (f0 >= 0)
        step = rad * self.hop  # cycles per frame, [0, 480)
        frac = self.phase_increment(f0, step)
        if self.phase_bits is None:
            cum = torch.cumsum(frac, dim=1)
            cum = cum - (cum * phase_ref).sum(dim=1, keepdim=True)
        else:  # exact integer cumsum of increments rounded to 2^-bits cycles (no fp32 drift)
            q = 1 << self.phase_bits
            n = torch.round(frac * q).to(torch.int32)
            cum_i = torch.remainder(torch.cumsum(n, dim=1, dtype=torch.int32), q)  # < 2^20
            ref_i = (cum_i * phase_ref.to(torch.int32)).sum(dim=1, keepdim=True, dtype=torch.int32)
            cum = torch.remainder(cum_i - ref_i + q, q).to(f0.dtype) * (1.0 / q)
        phase = cum + phase_in.to(f0.dtype)  # (1, T, H) + (1, 1, H)
        phase = phase - torch.floor(phase)
        return phase, step

    def phase_increment(self, f0: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Per-frame phase advance in cycles mod 1 (1, T, H), = frac(step).
        frac(480 * f0 * h / sr) (480 * floor(.) is a whole number of cycles), computed from f0
        directly: ~4x less float32 rounding of the increment than frac(step) (what remains between
        backends is the f0's own rounding, integrated over the frames)."""
        frac = f0[:, :, None] * (self.harmonics.to(f0.dtype) * (self.hop / self.cfg.sampling_rate))
        return frac - torch.floor(frac)

    def sample_phase(self, phase: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Linear ×480 upsampling (half-pixel, edge-clamped) of the frame phase, in cycles:
        sample 480j+240+k lies between frames j and j+1 at ramp (k+0.5)/480, so it is
        phase_j + ramp_k * step_{j+1}; the first/last 240 samples repeat frame 0 / n-1 (the
        caller zeroes step from frame n on, which is the clamp at an n-frame end).
        (1, T, H) -> (1, 480T, H)."""
        B, T, H = phase.shape
        zero = torch.zeros_like(step[:, :1])
        base = torch.cat([phase[:, :1], phase], dim=1)  # (1, T+1, H): segment start phases
        incr = torch.cat([zero, step[:, 1:], zero], dim=1)  # (1, T+1, H): segment increments
        ramp = self.ramp.to(phase.dtype)[None, None, :, None]  # (1, 1, 480, 1)
        seg = base[:, :, None, :] + ramp * incr[:, :, None, :]  # (1, T+1, 480, H)
        seg = seg.reshape(B, (T + 1) * self.hop, H)
        half = self.hop // 2
        return seg[:, half: half + T * self.hop]

    def source(self, f0, noise, phase_in, phase_ref, frame_mask=None):
        """f0 (1, T), noise (1, 480T, H) ~ N(0,1), phase_in (1, 1, H) cycles [, frame_mask (1, 1, T)]
        -> (s (1, 1, 480T) merged excitation, phase (1, T, H)); past the mask's end s is garbage."""
        cfg = self.cfg
        B, T = f0.shape
        phase, step = self.frame_phase(f0, phase_in, phase_ref)
        if frame_mask is not None:
            step = step * frame_mask.transpose(1, 2)  # (1, T, 1): no ramp past the last frame
        sines = cfg.nsf_alpha * torch.sin(2 * math.pi * self.sample_phase(phase, step))  # (1, 480T, H)
        uv = (f0 > cfg.nsf_voiced_threshold).to(f0.dtype)  # (1, T)
        uv = uv[:, :, None, None].expand(B, T, self.hop, 1).reshape(B, T * self.hop, 1)  # nearest ×480
        noise_amp = uv * cfg.nsf_sigma + (1 - uv) * cfg.nsf_alpha / 3
        sine_waves = sines * uv + noise_amp * noise
        s = torch.tanh(self.m_source.l_linear(sine_waves))  # (1, 480T, 1)
        return s.transpose(1, 2), phase

    # -- decoder ------------------------------------------------------------------------------
    def stage_rates(self) -> list[int]:
        """Samples per mel frame after each upsampling stage: [8, 40, 120] for the 24 kHz config."""
        out, r = [], 1
        for u in self.cfg.upsample_rates:
            r *= u
            out.append(r)
        return out

    def decode(self, mel: torch.Tensor, s: torch.Tensor, masks: LengthMasks | None = None) -> torch.Tensor:
        """mel (1, 80, T), s (1, 1, 480T) -> waveform (1, 480T). With `masks`, every layer sees its
        input zero past the n-frame end (the official per-layer zero padding), the STFT reflects
        and the iSTFT normalises at that end; mel and s must be zero past it."""
        cfg = self.cfg
        n_bins = cfg.istft_n_fft // 2 + 1
        rates = self.stage_rates()
        spec_mask = None if masks is None else masks.at(rates[-1], 1)  # 120n + 1 STFT frames
        s_stft = self.stft(s, masks, self.hop)  # (1, 18, 120T+1)
        if spec_mask is not None:
            s_stft = s_stft * spec_mask  # the strided source_downs read past the last STFT frame
        x = self.conv_pre(mel)
        if masks is not None:
            x = x * masks.at(1)
        n_k = len(cfg.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, cfg.lrelu_slope))
            last = i == len(self.ups) - 1
            if last:
                x = F.pad(x, (1, 0), mode="reflect")
            m = None if masks is None else (spec_mask if last else masks.at(rates[i]))
            si = self.source_downs[i](s_stft)
            if m is not None:  # transposed conv / strided conv outputs past the end: bias and tails
                x, si = x * m, si * m
            x = x + self.source_resblocks[i](si, m)
            xs = self.resblocks[i * n_k](x, m)
            for j in range(1, n_k):
                xs = xs + self.resblocks[i * n_k + j](x, m)
            x = xs / n_k
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01, as the official code
        mag = torch.clamp(torch.exp(x[:, :n_bins]), max=100.0)
        if spec_mask is not None:
            mag = mag * spec_mask  # no frame past 120n enters the overlap-add
        ph = torch.sin(x[:, n_bins:])
        wav = self.istft(mag * torch.cos(ph), mag * torch.sin(ph), masks, self.hop)
        wav = torch.clamp(wav, -cfg.audio_limit, cfg.audio_limit)
        return wav if masks is None else wav * masks.at(self.hop).reshape(1, -1)  # the last frame's window tail

    def forward(self, mel, noise, phase_in, phase_ref, cache_source, cache_weight, n_frames=None):
        """mel (1, 80, T); noise (1, 480T, 9); phase_in (1, 1, 9) cycles; phase_ref (1, T, 1) zero
        or one-hot (see frame_phase); cache_source (1, 1, S);
        cache_weight (1, 1, 1) in {0, 1}: 1 overwrites source[:, :, :S] with cache_source;
        n_frames (1,) int32 in 1..T: the input's true length (None = T); frames from n on are
        ignored and every output is zero there.
        -> waveform (1, 480T), source (1, 1, 480T), phase (1, T, 9) (cumulative, cycles)."""
        T = mel.shape[-1]
        masks = None if n_frames is None else LengthMasks(n_frames, T, mel.dtype)
        if masks is not None:
            mel = mel * masks.at(1)
        f0 = self.f0_predictor(mel, None if masks is None else masks.at(1))
        s, phase = self.source(f0, noise, phase_in, phase_ref, None if masks is None else masks.at(1))
        S = cache_source.shape[-1]
        head = cache_weight * cache_source + (1 - cache_weight) * s[:, :, :S]
        s = torch.cat([head, s[:, :, S:]], dim=-1)
        if masks is not None:
            s = s * masks.at(self.hop)
            phase = phase * masks.at(1).transpose(1, 2)
        return self.decode(mel, s, masks), s, phase

    def vocode(self, mel, noise, phase_in=None, cache_source=None, n_frames=None):
        """Convenience: whole-utterance call (any T); cache_source of any length <= 480T or None;
        n_frames (int or None): vocode only the first n frames of a longer (padded) input."""
        H = self.n_harm
        if phase_in is None:
            phase_in = torch.zeros(1, 1, H, dtype=mel.dtype)
        if cache_source is None or cache_source.shape[-1] == 0:
            cache_source, w = torch.zeros(1, 1, 0, dtype=mel.dtype), torch.zeros(1, 1, 1, dtype=mel.dtype)
        else:
            w = torch.ones(1, 1, 1, dtype=mel.dtype)
        phase_ref = torch.zeros(1, mel.shape[-1], 1, dtype=mel.dtype)
        n = None if n_frames is None else torch.tensor([int(n_frames)], dtype=torch.int32)
        return self.forward(mel, noise, phase_in, phase_ref, cache_source, w, n)


def build_hift(cfg: HiFTConfig, state_dict: Mapping[str, torch.Tensor], *, source: str = "hift.pt",
               dtype: torch.dtype = torch.float32) -> HiFT:
    """Strictly check the official keys, fold weight norm, strictly load into a `dtype` module
    (float64: the weights are widened before the fold, so the folded weights are not rounded to float32)."""
    from ..checkpoint import check_state_dict, load_into
    from .keys import official_keys

    check_state_dict(official_keys(cfg), state_dict, source=source)
    model = HiFT(cfg)
    if dtype != torch.float32:
        model = model.to(dtype)
        state_dict = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
    load_into(model, fold_weight_norm(state_dict), source=source)
    return model.eval()
