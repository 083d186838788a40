import struct
import zlib

import numpy as np

from exporter.png import heatmap, waveform, write_png


def _decode(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    w, h = ihdr[0], ihdr[1]
    raw = zlib.decompress(idat)
    rows = [raw[y * (3 * w + 1) + 1:(y + 1) * (3 * w + 1)] for y in range(h)]
    return np.frombuffer(b"".join(rows), np.uint8).reshape(h, w, 3)


def test_png_roundtrip(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (7, 5, 3), dtype=np.uint8)
    write_png(tmp_path / "a.png", img)
    np.testing.assert_array_equal(_decode(tmp_path / "a.png"), img)


def test_heatmap_and_waveform(tmp_path):
    a = np.arange(12.0).reshape(3, 4)
    heatmap(tmp_path / "h.png", a, scale=2)
    img = _decode(tmp_path / "h.png")
    assert img.shape == (6, 8, 3)
    assert img[-1, 0].sum() < img[0, -1].sum()  # low values dark at the bottom-left, high bright top-right
    waveform(tmp_path / "w.png", np.sin(np.linspace(0, 20, 5000)), width=100, height=40)
    w = _decode(tmp_path / "w.png")
    assert w.shape == (40, 100, 3) and (w == [31, 119, 180]).all(axis=2).any()


def test_framed_plots_have_title_axes_and_colour_bar(tmp_path):
    from exporter.png import _colormap, heatmap_plot, nice_ticks, waveform_plot

    assert nice_ticks(0, 2.4) == [0.0, 0.5, 1.0, 1.5, 2.0] and nice_ticks(-1, 1, 4) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    a = np.arange(80 * 50, dtype=np.float64).reshape(80, 50)
    heatmap_plot(tmp_path / "m.png", a, title="mel", xlabel="time (s)", ylabel="mel bin", unit="log mel", x_range=(0, 1.0), scale=2)
    img = _decode(tmp_path / "m.png")
    h, w = 80 * 2, 50 * 2
    assert img.shape[0] > h + 40 and img.shape[1] > w + 100  # room for title, ticks, labels and the colour bar
    dark = (img.sum(axis=2) < 150)
    assert dark[:24].any() and dark[-40:].any() and dark[:, :60].any()  # title, x ticks/label, y ticks/label
    ramp = _colormap(np.array([0.0, 1.0]))
    assert all((img == c).all(axis=2).sum() > 0 for c in ramp)  # the colour bar spans the scale from its lowest to its highest colour
    waveform_plot(tmp_path / "w.png", np.sin(np.linspace(0, 50, 24000)), 24000, title="wave", width=300, height=80)
    wimg = _decode(tmp_path / "w.png")
    assert wimg.shape[1] > 300 and (wimg == [31, 119, 180]).all(axis=2).any() and (wimg.sum(axis=2) < 150)[:24].any()
