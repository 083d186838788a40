"""Minimal PNG plots with numpy + zlib (no plotting dependency): heatmaps and waveforms for the
demo report. Images are 8-bit RGB, written with the standard library only."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 array as a PNG file."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {rgb.shape}")
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    Path(path).write_bytes(png)


def _colormap(x: np.ndarray) -> np.ndarray:
    """x in [0, 1] -> RGB, a perceptually ordered dark-blue → yellow ramp."""
    stops = np.array([[13, 8, 135], [126, 3, 168], [204, 71, 120], [248, 149, 64], [240, 249, 33]], np.float64)
    pos = np.clip(x, 0, 1) * (len(stops) - 1)
    i = np.minimum(pos.astype(int), len(stops) - 2)
    f = (pos - i)[..., None]
    return (stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)


def heatmap(path: str | Path, a: np.ndarray, *, vmin: float | None = None, vmax: float | None = None, scale: int = 3) -> None:
    """(rows, cols) array -> PNG, row 0 at the bottom (mel bin 0 low), each cell scale×scale px."""
    a = np.asarray(a, np.float64)
    lo = np.nanmin(a) if vmin is None else vmin
    hi = np.nanmax(a) if vmax is None else vmax
    norm = (a - lo) / (hi - lo if hi > lo else 1.0)
    img = _colormap(norm[::-1])
    img = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)
    write_png(path, img)


def waveform(path: str | Path, x: np.ndarray, *, width: int = 1200, height: int = 200) -> None:
    """A min/max envelope plot of a 1-D signal in [-1, 1]."""
    x = np.asarray(x, np.float64).reshape(-1)
    img = np.full((height, width, 3), 255, np.uint8)
    img[height // 2, :] = (200, 200, 200)
    if x.size:
        edges = np.linspace(0, x.size, width + 1).astype(int)
        for col in range(width):
            seg = x[edges[col]:max(edges[col + 1], edges[col] + 1)]
            lo, hi = float(seg.min()), float(seg.max())
            y0 = int(round((1 - (hi + 1) / 2) * (height - 1)))
            y1 = int(round((1 - (lo + 1) / 2) * (height - 1)))
            img[max(0, y0):min(height, y1 + 1), col] = (31, 119, 180)
    write_png(path, img)
