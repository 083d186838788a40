"""Minimal PNG plots with numpy + zlib (no plotting dependency): heatmaps and waveforms for the
demo report. Images are 8-bit RGB, written with the standard library only.

`heatmap`/`waveform` write the bare image; `heatmap_plot`/`waveform_plot` frame it as a figure a
person can read: a title, labelled axes with units and tick values, and (heatmaps) a colour bar
with its value range — drawn with a built-in 5×7 pixel font, so the report needs nothing else."""
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


# ---------------------------------------------------------------------------------------- figures
_GLYPHS = {  # 5x7 pixel font: uppercase letters (lowercase is drawn as uppercase), digits, a few signs
    "A": "01110 10001 10001 11111 10001 10001 10001", "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110", "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111", "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111", "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110", "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001", "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001", "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110", "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101", "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110", "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110", "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010", "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 01010 00100 00100 00100 00100", "Z": "11111 00001 00010 00100 01000 10000 11111",
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    ".": "00000 00000 00000 00000 00000 01100 01100", ",": "00000 00000 00000 00000 01100 00100 01000",
    "-": "00000 00000 00000 11111 00000 00000 00000", "+": "00000 00100 00100 11111 00100 00100 00000",
    "(": "00010 00100 01000 01000 01000 00100 00010", ")": "01000 00100 00010 00010 00010 00100 01000",
    "/": "00001 00010 00010 00100 01000 01000 10000", ":": "00000 01100 01100 00000 01100 01100 00000",
    "=": "00000 00000 11111 00000 11111 00000 00000", "|": "00100 00100 00100 00100 00100 00100 00100",
    "%": "11001 11010 00010 00100 01000 01011 10011", "_": "00000 00000 00000 00000 00000 00000 11111", " ": "00000 00000 00000 00000 00000 00000 00000",
}
_FONT = {c: np.array([[b == "1" for b in row] for row in g.split()], bool) for c, g in _GLYPHS.items()}
_INK, _AXIS, _GRID = (20, 20, 20), (90, 90, 90), (225, 225, 225)


def text_width(text: str, size: int = 1) -> int:
    return len(text) * 6 * size


def draw_text(img: np.ndarray, x: int, y: int, text: str, *, size: int = 1, color=_INK, vertical: bool = False) -> None:
    """Draw `text` with its top-left corner at (x, y) (bottom-up along the left edge if vertical)."""
    for i, ch in enumerate(text):
        g = _FONT.get(ch.upper(), _FONT[" "])
        g = np.repeat(np.repeat(g, size, axis=0), size, axis=1)
        if vertical:
            g = np.rot90(g)
            y0, x0 = y - (i + 1) * 6 * size, x
        else:
            y0, x0 = y, x + i * 6 * size
        h, w = g.shape
        ys, xs = slice(max(0, y0), max(0, min(img.shape[0], y0 + h))), slice(max(0, x0), max(0, min(img.shape[1], x0 + w)))
        sub = g[ys.start - y0: ys.stop - y0, xs.start - x0: xs.stop - x0]
        img[ys, xs][sub] = color


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k steps) covering [lo, hi]."""
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10.0 ** np.floor(np.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = np.ceil(lo / step - 1e-9) * step
    return [round(float(v), 10) for v in np.arange(first, hi + step * 1e-6, step)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-2:
        return f"{v:.1e}"
    return f"{v:g}" if abs(v) >= 1 else f"{v:.2f}".rstrip("0")


def _figure(plot: np.ndarray, *, title: str, xlabel: str, ylabel: str, x_range: tuple[float, float], y_range: tuple[float, float],
            colorbar: tuple[float, float, str] | None = None) -> np.ndarray:
    """Frame a rendered plot area (H, W, 3): title, axes with ticks and labels, optional colour bar."""
    h, w, _ = plot.shape
    left, right, top, bottom = 62, (96 if colorbar else 16), 26, 40
    img = np.full((top + h + bottom, left + w + right, 3), 255, np.uint8)
    img[top:top + h, left:left + w] = plot
    img[top - 1, left - 1:left + w + 1] = _AXIS
    img[top + h, left - 1:left + w + 1] = _AXIS
    img[top - 1:top + h + 1, left - 1] = _AXIS
    img[top - 1:top + h + 1, left + w] = _AXIS
    draw_text(img, left + (w - text_width(title, 2)) // 2, 4, title, size=2)
    x0, x1 = x_range
    for v in nice_ticks(x0, x1):
        px = left + int(round((v - x0) / (x1 - x0 or 1) * (w - 1)))
        img[top + h:top + h + 4, px] = _AXIS
        draw_text(img, px - text_width(_fmt(v)) // 2, top + h + 6, _fmt(v))
    draw_text(img, left + (w - text_width(xlabel)) // 2, top + h + 22, xlabel)
    y0, y1 = y_range
    for v in nice_ticks(y0, y1):
        py = top + h - 1 - int(round((v - y0) / (y1 - y0 or 1) * (h - 1)))
        img[py, left - 5:left - 1] = _AXIS
        draw_text(img, left - 7 - text_width(_fmt(v)), py - 3, _fmt(v))
    draw_text(img, 4, top + (h + text_width(ylabel)) // 2, ylabel, vertical=True)
    if colorbar is not None:
        lo, hi, label = colorbar
        bx, bw = left + w + 12, 14
        ramp = _colormap(np.linspace(1, 0, h))[:, None, :]
        img[top:top + h, bx:bx + bw] = np.repeat(ramp, bw, axis=1)
        for v in nice_ticks(lo, hi, 4):
            py = top + h - 1 - int(round((v - lo) / (hi - lo or 1) * (h - 1)))
            img[py, bx + bw:bx + bw + 3] = _AXIS
            draw_text(img, bx + bw + 5, py - 3, _fmt(v))
        draw_text(img, left + w + right - 12, top + (h + text_width(label)) // 2, label, vertical=True)
    return img


def heatmap_plot(path: str | Path, a: np.ndarray, *, title: str, xlabel: str, ylabel: str, unit: str,
                 x_range: tuple[float, float], vmin: float | None = None, vmax: float | None = None, scale: int = 3) -> None:
    """A (rows, cols) array as a framed figure: row 0 at the bottom, x axis `x_range` (e.g. seconds),
    y axis the row index, and a colour bar labelled `unit` with its value range."""
    a = np.asarray(a, np.float64)
    lo = float(np.nanmin(a)) if vmin is None else vmin
    hi = float(np.nanmax(a)) if vmax is None else vmax
    norm = (a - lo) / (hi - lo if hi > lo else 1.0)
    plot = np.repeat(np.repeat(_colormap(norm[::-1]), scale, axis=0), scale, axis=1)
    write_png(path, _figure(plot, title=title, xlabel=xlabel, ylabel=ylabel, x_range=x_range, y_range=(0, a.shape[0] - 1),
                            colorbar=(lo, hi if hi > lo else lo + 1, unit)))


def waveform_plot(path: str | Path, x: np.ndarray, rate: int, *, title: str, width: int = 1000, height: int = 180) -> None:
    """A min/max envelope of a signal in [-1, 1] as a framed figure: time in seconds, amplitude."""
    x = np.asarray(x, np.float64).reshape(-1)
    plot = np.full((height, width, 3), 255, np.uint8)
    for v in (-0.5, 0.0, 0.5):
        plot[int(round((1 - (v + 1) / 2) * (height - 1))), :] = _GRID
    if x.size:
        edges = np.linspace(0, x.size, width + 1).astype(int)
        for col in range(width):
            seg = x[edges[col]:max(edges[col + 1], edges[col] + 1)]
            lo, hi = float(np.clip(seg.min(), -1, 1)), float(np.clip(seg.max(), -1, 1))
            y0 = int(round((1 - (hi + 1) / 2) * (height - 1)))
            y1 = int(round((1 - (lo + 1) / 2) * (height - 1)))
            plot[max(0, y0):min(height, y1 + 1), col] = (31, 119, 180)
    write_png(path, _figure(plot, title=title, xlabel="time (s)", ylabel="amplitude", x_range=(0.0, x.size / float(rate)),
                            y_range=(-1.0, 1.0)))
