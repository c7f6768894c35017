"""Synthetic "paintings" for tests: pure numpy + Pillow, deterministic by seed.

Each style differs strongly in colour palette *and* texture/composition, so
colour histograms, Gram-matrix texture descriptors and pretrained CNN features
all separate them:

- ``pointillist``: dense small dots in warm reds/oranges/yellows on a dark ground
- ``stripes``:     diagonal bands in cool blues/cyans, no dots, no flat areas
- ``blocks``:      Mondrian-like rectangles in primary colours on white with black bars
- ``swirl``:       smooth concentric swirls / gradients between greens and purples

Within a style the seed varies positions, counts, sizes, angles and applies a
slight palette jitter, so no two images are identical.

``size`` is ``(width, height)`` as in Pillow.
"""

from __future__ import annotations

import csv
import zlib
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["STYLES", "make_painting", "make_collection", "write_labels_csv"]

STYLES: tuple[str, ...] = ("pointillist", "stripes", "blocks", "swirl")

_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "bmp": "BMP",
            "tif": "TIFF", "tiff": "TIFF", "webp": "WEBP"}


def _rng(style: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(style.encode("utf-8")),
                                  int(seed) & 0xFFFFFFFFFFFFFFFF])


def _jitter(rng: np.random.Generator, colours: np.ndarray, amount: float = 14.0) -> np.ndarray:
    """Shift a palette (N, 3) by one small global offset plus per-colour noise."""
    colours = np.asarray(colours, dtype=np.float32)
    shift = rng.uniform(-amount, amount, size=3)
    noise = rng.uniform(-amount / 2, amount / 2, size=colours.shape)
    return np.clip(colours + shift + noise, 0, 255)


def _to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _pointillist(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    # deep brown ground: kept inside one 8-bin histogram cell, unlike black (0,0,0)
    ground = np.array([48.0, 26.0, 16.0]) * rng.uniform(0.82, 1.18) + rng.uniform(-2, 2, 3)
    palette = _jitter(rng, [[220, 50, 30], [245, 130, 25], [250, 210, 50],
                            [200, 80, 60], [255, 175, 90], [170, 30, 40]])
    img = Image.new("RGB", (w, h), tuple(int(c) for c in ground))
    draw = ImageDraw.Draw(img)
    density = rng.uniform(0.020, 0.032)  # dots per pixel
    n = int(density * w * h)
    xs = rng.uniform(0, w, n)
    ys = rng.uniform(0, h, n)
    rmax = rng.uniform(1.6, 2.6)
    rs = rng.uniform(0.9, rmax, n)
    idx = rng.integers(0, len(palette), n)
    # a slight warm "subject" blob: dots near a random centre are brighter
    cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h
    boost = np.exp(-(((xs - cx) / (0.3 * w)) ** 2 + ((ys - cy) / (0.3 * h)) ** 2))
    cols = np.clip(palette[idx] * (0.8 + 0.3 * boost)[:, None], 0, 255).astype(int)
    for x, y, r, c in zip(xs, ys, rs, cols):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(int(c[0]), int(c[1]), int(c[2])))
    return img


def _stripes(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    palette = _jitter(rng, [[20, 50, 140], [60, 120, 210], [150, 200, 240],
                            [30, 90, 170], [90, 170, 220]])
    angle = rng.uniform(np.pi / 6, np.pi / 3) * rng.choice([-1, 1])
    period = rng.uniform(7.0, 12.0)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (x * np.cos(angle) + y * np.sin(angle)) / period + rng.uniform(0, 1)
    band = np.floor(phase).astype(np.int64)
    order = rng.permutation(len(palette))
    arr = palette[order[band % len(palette)]]
    # soft shading inside each band + faint noise: painterly, not flat
    frac = phase - np.floor(phase)
    arr = arr * (0.85 + 0.25 * np.sin(np.pi * frac))[..., None]
    arr = arr + rng.normal(0, 4.0, size=(h, w, 1))
    return _to_image(arr)


def _blocks(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    white = _jitter(rng, [[242, 240, 232]], 6.0)[0]
    primaries = _jitter(rng, [[215, 30, 30], [250, 215, 20], [25, 55, 170]], 10.0)
    img = Image.new("RGB", (w, h), tuple(int(c) for c in white))
    draw = ImageDraw.Draw(img)
    # recursive guillotine split into rectangles
    rects = [(0, 0, w, h)]
    n_splits = int(rng.integers(5, 9))
    for _ in range(n_splits):
        areas = np.array([(r[2] - r[0]) * (r[3] - r[1]) for r in rects], dtype=float)
        i = int(rng.choice(len(rects), p=areas / areas.sum()))
        x0, y0, x1, y1 = rects.pop(i)
        vertical = (x1 - x0) > (y1 - y0) if rng.random() < 0.75 else rng.random() < 0.5
        if vertical and x1 - x0 > 24:
            s = int(rng.uniform(0.3, 0.7) * (x1 - x0)) + x0
            rects += [(x0, y0, s, y1), (s, y0, x1, y1)]
        elif not vertical and y1 - y0 > 24:
            s = int(rng.uniform(0.3, 0.7) * (y1 - y0)) + y0
            rects += [(x0, y0, x1, s), (x0, s, x1, y1)]
        else:
            rects.append((x0, y0, x1, y1))
    order = rng.permutation(len(rects))
    n_colour = max(3, int(round(len(rects) * rng.uniform(0.45, 0.65))))
    line = max(2, int(round(min(w, h) * rng.uniform(0.025, 0.04))))
    for k, j in enumerate(order):
        x0, y0, x1, y1 = rects[j]
        if k < n_colour:
            c = primaries[k % 3]
            draw.rectangle((x0, y0, x1, y1), fill=tuple(int(v) for v in c))
    for x0, y0, x1, y1 in rects:  # thick black grid lines on every edge
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=(12, 12, 12), width=line)
    return img


def _swirl(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    greens = _jitter(rng, [[40, 150, 70], [130, 200, 90]])
    purples = _jitter(rng, [[110, 40, 140], [190, 120, 210]])
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = x - cx, y - cy
    r = np.hypot(dx, dy) / max(w, h)
    theta = np.arctan2(dy, dx)
    freq = rng.uniform(5.0, 9.0)
    twist = int(rng.integers(1, 3)) * int(rng.choice([-1, 1]))  # integer: no seam at theta=pi
    t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * r + twist * theta + rng.uniform(0, 2 * np.pi))
    g = 0.5 + 0.5 * np.cos(theta + rng.uniform(0, 2 * np.pi))  # slow angular gradient
    green = greens[0] + (greens[1] - greens[0]) * g[..., None]
    purple = purples[0] + (purples[1] - purples[0]) * (1 - g)[..., None]
    arr = green * t[..., None] + purple * (1 - t)[..., None]
    return _to_image(arr)


_MAKERS = {
    "pointillist": _pointillist,
    "stripes": _stripes,
    "blocks": _blocks,
    "swirl": _swirl,
}


def make_painting(style: str, seed: int, size: tuple[int, int] = (160, 128)) -> Image.Image:
    """Return a deterministic synthetic RGB painting of ``style``; size is (width, height)."""
    try:
        maker = _MAKERS[style]
    except KeyError:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}") from None
    w, h = int(size[0]), int(size[1])
    if w < 8 or h < 8:
        raise ValueError(f"size too small: {size}")
    img = maker(_rng(style, seed), w, h)
    assert img.mode == "RGB" and img.size == (w, h)
    return img


def make_collection(
    root: Path,
    n_per_style: int = 8,
    styles: Sequence[str] = STYLES,
    size: tuple[int, int] = (160, 128),
    seed: int = 0,
    fmt: str = "jpg",
    subfolders: bool = True,
) -> list[tuple[str, str]]:
    """Write ``n_per_style`` images per style under ``root``; write nothing else.

    Files go to ``root/<style>/<style>_<i>.<fmt>`` (or ``root/<style>_<i>.<fmt>``
    when ``subfolders`` is False).  Returns ``[(relative_posix_path, style), ...]``
    in style order, then index order.
    """
    root = Path(root)
    ext = fmt.lower().lstrip(".")
    if ext not in _FORMATS:
        raise ValueError(f"unsupported format {fmt!r}")
    pil_fmt = _FORMATS[ext]
    save_kw = {"quality": 92} if pil_fmt in ("JPEG", "WEBP") else {}
    rows: list[tuple[str, str]] = []
    for style in styles:
        folder = root / style if subfolders else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_style):
            img = make_painting(style, seed * 1_000_003 + i, size)
            name = f"{style}_{i}.{ext}"
            img.save(folder / name, pil_fmt, **save_kw)
            rel = f"{style}/{name}" if subfolders else name
            rows.append((rel, style))
    return rows


def write_labels_csv(path: Path, rows: Iterable[tuple[str, str]], column: str = "style") -> None:
    """Write a ``path,<column>`` CSV (UTF-8, ``\\n`` line endings)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", column])
        for rel, label in rows:
            w.writerow([rel, label])


def tree_digest(root: Path) -> str:
    """One digest of a folder tree: names, sizes, modes, mtimes and bytes of every file and folder
    (tests that the collection is never written)."""
    import hashlib
    import os

    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        st = os.stat(dirpath)
        h.update(f"D {dirpath} {st.st_mtime_ns} {st.st_mode}".encode())
        for f in sorted(filenames):
            p = os.path.join(dirpath, f)
            st = os.stat(p)
            h.update(f"F {p} {st.st_size} {st.st_mtime_ns} {st.st_mode}".encode())
            h.update(Path(p).read_bytes())
    return h.hexdigest()
