"""A line chart as a PNG with nothing but zlib (no plotting library is installed here).

Used for the model card's loss curve: a few series of (x, y) points, axes, one grid line per loss unit.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from pathlib import Path

from evalsuite.io import atomic_write


def write_png(path: Path, series: list[tuple[list[float], list[float], tuple[int, int, int]]], w=640, h=320) -> None:
    img = [[(255, 255, 255)] * w for _ in range(h)]
    xs = [x for s in series for x in s[0]]
    ys = [y for s in series for y in s[1]]
    x0, x1, y0, y1 = min(xs), max(xs), 0.0, max(ys) * 1.05
    m = 30

    def px(x, y):
        return int(m + (x - x0) / (x1 - x0 or 1) * (w - 2 * m)), int(h - m - (y - y0) / (y1 - y0 or 1) * (h - 2 * m))

    def line(a, b, c):
        (xa, ya), (xb, yb) = a, b
        n = max(abs(xb - xa), abs(yb - ya), 1)
        for t in range(n + 1):
            xx, yy = round(xa + (xb - xa) * t / n), round(ya + (yb - ya) * t / n)
            if 0 <= xx < w and 0 <= yy < h:
                img[yy][xx] = c

    line(px(x0, y0), px(x1, y0), (0, 0, 0))
    line(px(x0, y0), px(x0, y1), (0, 0, 0))
    for gy in range(1, int(y1) + 1):  # a grid line per loss unit
        line(px(x0, gy), px(x1, gy), (225, 225, 225))
    for sx, sy, col in series:
        pts = [px(a, b) for a, b in zip(sx, sy, strict=False)]
        for a, b in zip(pts, pts[1:], strict=False):
            line(a, b, col)
    raw = b"".join(b"\x00" + bytes(itertools.chain.from_iterable(row)) for row in img)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    atomic_write(path, png)
